// GitHub as far as the action meets it, on loopback: the REST calls of the
// PR-comment mode, the archive download (redirected like codeload), and the
// Actions OIDC token service with its JWKS. It answers from a small model the test
// sets up and records every call, so tests assert what the action asked and sent.
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PullModel {
  sha: string;
  /** The head branch, in headRepo. */
  ref?: string;
  headRepo: string | null;
  baseRepo: string;
}

/** An update of a branch, as GitHub's repository activity lists it. */
export interface ActivityModel {
  ref: string;
  before: string;
  after: string;
  timestamp: string;
  activity_type: 'push' | 'force_push' | 'branch_creation';
}

export interface GitHubModel {
  /** Permission by login; a login not here is not a collaborator (404). */
  permissions: Record<string, string>;
  pulls: Record<number, PullModel>;
  /** Gzipped tarballs by commit sha. */
  tarballs: Record<string, Buffer>;
  /** Branch updates by repository (`owner/name`), in any order. */
  activity: Record<string, ActivityModel[]>;
  /** Claims of the OIDC tokens handed out (the audience comes from the request). */
  oidcClaims: Record<string, unknown>;
  /** Seconds an OIDC token lives. */
  oidcTtl: number;
}

export interface Call {
  method: string;
  path: string;
  body?: unknown;
}

export interface FakeGitHub {
  url: string;
  model: GitHubModel;
  calls: Call[];
  /** What the runner puts in ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN. */
  oidcEnv: Record<string, string>;
  close(): Promise<void>;
}

const OIDC_REQUEST_TOKEN = 'runner-request-token';

export async function startFakeGitHub(model: Partial<GitHubModel> = {}): Promise<FakeGitHub> {
  const full: GitHubModel = { permissions: {}, pulls: {}, tarballs: {}, activity: {}, oidcClaims: {}, oidcTtl: 300, ...model };
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'fake-1', alg: 'RS256', use: 'sig' };
  const calls: Call[] = [];
  let url = '';

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  };
  const notFound = (res: ServerResponse) => json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });

  async function readBody(req: IncomingMessage): Promise<unknown> {
    let text = '';
    for await (const chunk of req) text += chunk;
    return text ? JSON.parse(text) : undefined;
  }

  /** What a route is given: the path's captures, the query, the parsed body. */
  interface Asked {
    m: RegExpExecArray;
    query: URLSearchParams;
    body: unknown;
    req: IncomingMessage;
    res: ServerResponse;
  }
  /** `*`: any method, as the fake answered before it had a table. */
  type Route = [method: '*' | 'POST', path: RegExp, answer: (c: Asked) => void | Promise<void>];

  const routes: Route[] = [
    ['*', /^\/oidc\/token$/, oidcToken],
    [
      '*',
      /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/,
      ({ m, res }) => {
        const permission = full.permissions[decodeURIComponent(m[3]!)];
        if (!permission) return notFound(res);
        json(res, 200, { permission, role_name: permission, user: { login: m[3] } });
      },
    ],
    [
      '*',
      /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/,
      ({ m, res }) => {
        const pull = full.pulls[Number(m[3])];
        if (!pull) return notFound(res);
        json(res, 200, {
          number: Number(m[3]),
          state: 'open',
          head: { sha: pull.sha, ref: pull.ref ?? 'feature', repo: pull.headRepo ? { full_name: pull.headRepo } : null },
          base: { sha: '0'.repeat(40), ref: 'main', repo: { full_name: pull.baseRepo } },
        });
      },
    ],
    ['*', /^\/repos\/([^/]+)\/([^/]+)\/activity$/, activity],
    [
      'POST',
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)\/reactions$/,
      ({ body, res }) => json(res, 201, { id: calls.length, content: (body as { content: string }).content }),
    ],
    [
      'POST',
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/,
      ({ body, res }) => json(res, 201, { id: calls.length, body: (body as { body: string }).body }),
    ],
    [
      '*',
      /^\/repos\/([^/]+)\/([^/]+)\/tarball\/([^/]+)$/,
      ({ m, res }) => {
        if (!full.tarballs[m[3]!]) return notFound(res);
        // As GitHub does: a redirect to the archive host.
        res.writeHead(302, { location: `${url}/codeload/${m[1]}/${m[2]}/legacy.tar.gz/${m[3]}` }).end();
      },
    ],
    [
      '*',
      /^\/codeload\/([^/]+)\/([^/]+)\/legacy\.tar\.gz\/([^/]+)$/,
      ({ m, res }) => {
        const archive = full.tarballs[m[3]!];
        if (!archive) return notFound(res);
        res.writeHead(200, { 'content-type': 'application/x-gzip', 'content-length': archive.length }).end(archive);
      },
    ],
  ];

  async function oidcToken({ req, res, query }: Asked): Promise<void> {
    if (req.headers.authorization !== `Bearer ${OIDC_REQUEST_TOKEN}`) return json(res, 401, { message: 'bad request token' });
    const value = await new SignJWT({ ...full.oidcClaims })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid! })
      .setIssuer(url)
      .setAudience(query.get('audience') ?? url)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + full.oidcTtl)
      .sign(privateKey);
    json(res, 200, { value });
  }

  /** Newest first, in pages with a cursor in the Link header, as GitHub lists them. */
  function activity({ m, query, req, res }: Asked): void {
    const pathname = new URL(req.url ?? '/', url).pathname;
    const ref = query.get('ref') ?? '';
    const wanted = ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
    const all = (full.activity[`${m[1]}/${m[2]}`] ?? [])
      .filter((a) => !ref || a.ref === wanted)
      .sort((a, b) => Date.parse(b.timestamp) - Date.parse(a.timestamp))
      .map((a, i) => ({ id: i + 1, node_id: `RA_${i + 1}`, actor: { login: 'Codertocat' }, ...a }));
    const perPage = Number(query.get('per_page') ?? 30);
    const start = Number(query.get('after') ?? 0);
    const page = all.slice(start, start + perPage);
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
    if (start + perPage < all.length) {
      const next = new URL(`${url}${pathname}`);
      query.forEach((v, k) => next.searchParams.set(k, v));
      next.searchParams.set('after', String(start + perPage));
      headers.link = `<${next}>; rel="next"`;
    }
    res.writeHead(200, headers).end(JSON.stringify(page));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname, searchParams } = new URL(req.url ?? '/', url);
    const body = await readBody(req);
    // The JWKS is fetched by the hub, not the action; it is not a call to assert on.
    if (pathname === '/.well-known/jwks') return json(res, 200, { keys: [jwk] });
    calls.push({ method: req.method!, path: `${pathname}${searchParams.size ? `?${searchParams}` : ''}`, ...(body === undefined ? {} : { body }) });
    for (const [method, path, answer] of routes) {
      const m = path.exec(pathname);
      if (m && (method === '*' || req.method === method)) return answer({ m, query: searchParams, body, req, res });
    }
    notFound(res);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => json(res, 500, { message: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    model: full,
    calls,
    oidcEnv: { ACTIONS_ID_TOKEN_REQUEST_URL: `${url}/oidc/token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: OIDC_REQUEST_TOKEN },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
