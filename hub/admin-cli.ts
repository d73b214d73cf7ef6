// `docker-agent-hub token create|list|revoke` and `docker-agent-hub oidc list|forget`:
// the operator's tools on the host, working on the hub's SQLite file directly
// (whether or not the hub runs: WAL lets both at once). `docker-agent-hub nodes` lists
// and pauses a Swarm's nodes through its manager (DOCKER_HOST). `docker-agent-hub uninstall`
// removes what a stopped hub made on its engine and host. `--json` for scripts.
import { existsSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from './platform/config.js';
import { HubError, validationError } from './platform/errors.js';
import { SCOPES } from './platform/principal.js';
import { hubId, openDb } from './store/db.js';
import { AGENT_SOCKET_NAME } from './backend/types.js';
import { uninstallHub } from './backend/docker/uninstall.js';
import { connectDocker } from './backend/docker/connect.js';
import { listNodes, setAvailability } from './backend/swarm/node-admin.js';
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
  docker-agent-hub nodes [list] [--json]       (the Swarm's nodes, with this hub's jobs on each)
  docker-agent-hub nodes pause|drain|resume NODE [--json]
                                              (pause: what runs there finishes, nothing new goes there;
                                               drain: what runs there is stopped too; resume: back to work)
  docker-agent-hub uninstall [--images] [--volumes] [--data] [--json]
                                              (a stopped hub's containers, network and firewall rules;
                                               its snapshot images, agents' volumes, data folder when asked)
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

/** Runs one admin command; resolves when done (errors are HubErrors with a message to print). */
export async function adminCommand(argv: string[], env: NodeJS.ProcessEnv = process.env, print: Print = (t) => console.log(t)): Promise<void> {
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
        images: { type: 'boolean', default: false },
        volumes: { type: 'boolean', default: false },
        data: { type: 'boolean', default: false },
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
  if (group === 'uninstall') return uninstall(dataDir, v, print);
  if (group === 'nodes') return nodesCommand(dataDir, loadConfig([], env).dockerHost, verb, arg, v.json, print);
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

const AVAILABILITY = { pause: 'pause', drain: 'drain', resume: 'active' } as const;

async function nodesCommand(dataDir: string, host: string | undefined, verb: string | undefined, arg: string | undefined, json: boolean, print: Print) {
  const manager = (await connectDocker(host)).docker;
  if (!verb || verb === 'list') {
    const nodes = await listNodes(manager, storedHubId(dataDir)).catch((err: Error) => {
      throw new HubError('ENGINE_UNAVAILABLE', `DOCKER_HOST is not a Swarm manager's engine: ${err.message}`);
    });
    if (json) return print(JSON.stringify({ nodes }));
    print(
      table([
        ['NODE', 'ID', 'ROLE', 'STATE', 'AVAILABILITY', 'JOBS', 'ADDRESS'],
        ...nodes.map((n) => [n.hostname, n.id.slice(0, 12), n.role, n.state, n.availability, String(n.jobs), n.address]),
      ]),
    );
  } else if (verb in AVAILABILITY) {
    if (!arg) throw usage(`nodes ${verb} needs a node's hostname or id`);
    const node = await setAvailability(manager, arg, AVAILABILITY[verb as keyof typeof AVAILABILITY]);
    if (json) return print(JSON.stringify(node));
    print(
      {
        pause: `paused ${node.hostname}: its jobs finish there, new ones go to other nodes`,
        drain: `drained ${node.hostname}: its jobs are stopped (they end NODE_LOST), new ones go to other nodes`,
        resume: `${node.hostname} takes jobs again`,
      }[verb as keyof typeof AVAILABILITY],
    );
  } else throw usage(`unknown nodes command ${verb}`);
}

function storedHubId(dataDir: string): string {
  const db = openDb(join(dataDir, 'hub.db'));
  try {
    return hubId(db);
  } finally {
    db.close();
  }
}

/** Whether a hub answers on the data folder's agent socket (one started with DOCKER_AGENT_AGENT_URL has none). */
function hubAnswers(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(socket, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function uninstall(dataDir: string, v: { images: boolean; volumes: boolean; data: boolean; json: boolean }, print: Print): Promise<void> {
  // A running hub would make again what this removes, and lose the containers of its running jobs.
  if (await hubAnswers(join(dataDir, 'run', AGENT_SOCKET_NAME))) {
    throw new HubError('IN_USE', `the hub of ${dataDir} is running: stop it first (systemctl stop docker-agent-hub, or Ctrl-C), then uninstall`);
  }
  const id = storedHubId(dataDir);
  const report = await uninstallHub(id, v);
  // The data folder goes only when everything it names is gone: it holds the hub id a second try needs.
  if (v.data && !report.problems.length) rmSync(dataDir, { recursive: true, force: true });
  const done = { hubId: id, ...report, dataDir: v.data && !report.problems.length ? 'removed' : 'kept' };
  if (v.json) print(JSON.stringify(done));
  else {
    print(
      `hub ${id}: removed ${report.containers} container(s), ${report.network ? 'its job network' : 'no job network (none was left)'}, ${report.rules} firewall rule(s)` +
        (v.images ? `, ${report.images} snapshot image(s)` : '') +
        (v.volumes ? `, ${report.volumes} volume(s)` : '') +
        (done.dataDir === 'removed' ? `; removed ${dataDir}` : `; kept ${dataDir}${v.data ? '' : ' (--data removes it)'}`),
    );
    for (const p of report.problems) print(`not removed: ${p}`);
  }
  if (report.problems.length)
    throw new HubError('IN_USE', `${report.problems.length} thing(s) of hub ${id} could not be removed; run uninstall again once they are free`);
}
