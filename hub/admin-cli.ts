// `docker-agent-hub token create|list|revoke` and `docker-agent-hub oidc list|forget`:
// the operator's tools on the host, working on the hub's SQLite file directly
// (whether or not the hub runs: WAL lets both at once). `--json` for scripts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from './platform/config.js';
import { HubError, validationError } from './platform/errors.js';
import { SCOPES } from './platform/principal.js';
import { openDb } from './store/db.js';
import { OidcRepositories } from './store/oidc-repositories.js';
import { TokenStore } from './store/tokens.js';
import { createToken, revokeToken, tokenView } from './auth/tokens.js';
import { validateTokenRequest } from './platform/validation.js';

export const ADMIN_USAGE = `usage:
  docker-agent-hub token create --name NAME --scopes ${SCOPES.join(',')} [--expires-in-days N] [--json]
  docker-agent-hub token list [--json]
  docker-agent-hub token revoke ID [--json]
  docker-agent-hub oidc list [--json]
  docker-agent-hub oidc forget OWNER/NAME     (accept a new repository id for that name)
each also takes --data-dir DIR (default: DOCKER_AGENT_DATA_DIR or ~/.local/share/docker-agent)`;

type Print = (text: string) => void;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function usage(message: string): HubError {
  return new HubError('CONFIG_INVALID', `${message}\n${ADMIN_USAGE}`);
}

/** Runs one admin command; returns when done (errors are HubErrors with a message to print). */
export function adminCommand(argv: string[], env: NodeJS.ProcessEnv = process.env, print: Print = (t) => console.log(t)): void {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        name: { type: 'string' },
        scopes: { type: 'string' },
        'expires-in-days': { type: 'string' },
        json: { type: 'boolean', default: false },
        'data-dir': { type: 'string' },
      },
    });
  } catch (err) {
    throw usage((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  const [group, verb, arg] = positionals;
  const dataDir = v['data-dir'] ?? loadConfig([], env).dataDir;
  const file = join(dataDir, 'hub.db');
  if (!existsSync(file)) throw new HubError('CONFIG_INVALID', `no hub database at ${file}: start the hub once, or pass --data-dir`);
  const db = openDb(file);
  try {
    if (group === 'token') tokenCommand(new TokenStore(db), verb, arg, v, print);
    else if (group === 'oidc') oidcCommand(new OidcRepositories(db), verb, arg, v.json, print);
    else throw usage(`unknown command ${group}`);
  } finally {
    db.close();
  }
}

function tokenCommand(
  tokens: TokenStore,
  verb: string | undefined,
  arg: string | undefined,
  v: { name?: string; scopes?: string; 'expires-in-days'?: string; json: boolean },
  print: Print,
): void {
  if (verb === 'create') {
    const days = v['expires-in-days'];
    const req = {
      name: v.name,
      scopes: (v.scopes ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      ...(days === undefined ? {} : { expiresInDays: Number(days) }),
    };
    const checked = validateTokenRequest(req);
    if (!checked.ok)
      throw validationError(
        'token',
        checked.issues.map((i) => ({ ...i, path: i.path.replace(/^\/expiresInDays/, '--expires-in-days').replace(/^\/(\w+)/, '--$1') })),
      );
    const created = createToken(tokens, checked.value, 'cli');
    if (v.json) return print(JSON.stringify(created));
    print(`created token ${created.id} "${created.name}" (${created.scopes.join(', ')}${created.expiresAt ? `, expires ${created.expiresAt}` : ''})`);
    print(`secret (shown this once): ${created.token}`);
  } else if (verb === 'list') {
    const all = tokens.list().map(tokenView);
    if (v.json) return print(JSON.stringify({ tokens: all }));
    const now = tokens.nowIso();
    const state = (t: (typeof all)[number]) =>
      t.revokedAt ? `revoked ${t.revokedAt}` : t.expiresAt && t.expiresAt <= now ? `expired ${t.expiresAt}` : 'active';
    print(
      table([
        ['ID', 'NAME', 'SCOPES', 'SOURCE', 'CREATED', 'EXPIRES', 'STATE'],
        ...all.map((t) => [t.id, t.name, t.scopes.join(','), t.source, t.createdAt, t.expiresAt ?? 'never', state(t)]),
      ]),
    );
  } else if (verb === 'revoke') {
    if (!arg) throw usage("token revoke needs the token's id (see token list)");
    const rec = revokeToken(tokens, arg, 'revoked on the command line');
    if (v.json) return print(JSON.stringify(tokenView(rec)));
    print(`revoked token ${rec.id} "${rec.name}" (open event streams of it end within a second)`);
  } else throw usage(`unknown token command ${verb ?? '(none)'}`);
}

function oidcCommand(repos: OidcRepositories, verb: string | undefined, arg: string | undefined, json: boolean, print: Print): void {
  if (verb === 'list') {
    const all = repos.list();
    if (json) return print(JSON.stringify({ repositories: all }));
    print(table([['REPOSITORY', 'ID', 'FIRST SEEN'], ...all.map((r) => [r.name, r.repositoryId, r.firstSeen])]));
  } else if (verb === 'forget') {
    if (!arg) throw usage('oidc forget needs OWNER/NAME');
    const forgotten = repos.forget(arg);
    if (json) return print(JSON.stringify({ forgotten }));
    print(forgotten ? `forgot the id of ${arg}; the next token of that name pins its id` : `${arg} was not pinned`);
  } else throw usage(`unknown oidc command ${verb ?? '(none)'}`);
}
