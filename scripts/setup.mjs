#!/usr/bin/env node
// Brings a fresh machine to the state `npm start` and `npm test` need: npm
// dependencies, bundles, a Docker engine, the base image, the agent images.
//
// It runs before `npm ci`, so it may use Node built-ins only. Every phase looks
// before it acts, so a second run rebuilds nothing and takes a second or two.
// Usage: node scripts/setup.mjs [--for=hub|test|deploy]   (progress goes to stderr)
// --for=deploy adds what deploy/Dockerfile copies: Node 24 and its dependencies.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export const DEFAULT_BASE_IMAGE = 'docker-agent/base:bookworm';
const DEBIAN_SUITE = 'bookworm';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const DEFAULT_SOCKET = '/var/run/docker.sock';
const DOCKERD_LOG = '/var/log/docker-agent-dockerd.log';
const ENGINE_START_TIMEOUT_MS = 60_000;
const ROOTFS_PREFIX = 'docker-agent-rootfs-';

/** A failure the user can act on: `hint` says how. */
export class SetupError extends Error {
  constructor(message, hint) {
    super(message);
    this.hint = hint;
  }
}

// ---------------------------------------------------------------- output

function log(line) {
  process.stderr.write(`[setup] ${line}\n`);
}

function elapsed(t0) {
  return `${((performance.now() - t0) / 1000).toFixed(1)} s`;
}

/** Runs one phase: `fn(say)` reports progress through `say` and returns a summary. */
export async function step(name, fn) {
  const t0 = performance.now();
  const say = (msg) => log(`${name}: ${msg}`);
  try {
    const summary = await fn(say);
    say(`${summary} (${elapsed(t0)})`);
  } catch (err) {
    say(`FAILED after ${elapsed(t0)}`);
    throw err;
  }
}

// ---------------------------------------------------------------- processes

function which(cmd) {
  // sbin is often missing from a non-login PATH, yet dockerd and debootstrap live there.
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = path.join(dir, cmd);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

let rootPrefixCache;
/**
 * How to run a command as root: [] when we are root, ['sudo', '-n'] where sudo needs
 * no password (CI runners), null when we cannot.
 */
function rootPrefix() {
  if (rootPrefixCache === undefined) {
    if (process.getuid?.() === 0) rootPrefixCache = [];
    else if (which('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) {
      rootPrefixCache = ['sudo', '-n'];
    } else rootPrefixCache = null;
  }
  return rootPrefixCache;
}

/**
 * Runs a noisy tool with its output condensed: the first line of each kind (apt's
 * "Get:", debootstrap's "I: Retrieving", ...) and every warning or error are shown,
 * so the user sees progress without hundreds of lines. The last lines are kept for
 * the error message.
 */
function run(argv, { say, tool = path.basename(argv.find((a) => !/^(sudo|-n)$/.test(a)) ?? argv[0]) } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail = [];
    const seen = new Set();
    const onLine = (line) => {
      if (!line.trim()) return;
      tail.push(line);
      if (tail.length > 30) tail.shift();
      const words = line.trim().split(/\s+/);
      const kind = words
        .slice(0, /^[A-Z]:$/.test(words[0]) ? 2 : 1)
        .join(' ')
        .replace(/\d+/g, '');
      const important = /^(E:|W:|Err:|error|warning|fatal)/i.test(line.trim());
      if (important || !seen.has(kind)) {
        seen.add(kind);
        say?.(`  ${tool}> ${line.trim()}`);
      }
    };
    readline.createInterface({ input: child.stdout }).on('line', onLine);
    readline.createInterface({ input: child.stderr }).on('line', onLine);
    child.on('error', (err) => reject(new SetupError(`cannot run ${argv[0]}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      reject(new SetupError(`\`${argv.join(' ')}\` failed (${signal ?? `exit code ${code}`}); its last lines:\n` + tail.map((l) => `    ${l}`).join('\n')));
    });
  });
}

/** Runs a command whose own progress output the user should see as is (on stderr). */
function runVisible(argv, env = {}) {
  return new Promise((resolve, reject) => {
    // Setup's whole output goes to stderr, so that `npm start > out` captures the hub only.
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', process.stderr, process.stderr],
      env: { ...process.env, ...env },
    });
    child.on('error', (err) => reject(new SetupError(`cannot run ${argv[0]}: ${err.message}`)));
    child.on('close', (code, signal) => resolve(signal ?? code));
  });
}

let aptListsFresh = false;
/** apt-get install, with the one `apt-get update` a fresh machine (empty lists) needs. */
async function aptInstall(say, packages) {
  const prefix = rootPrefix();
  const apt = which('apt-get');
  if (!apt || !prefix) {
    throw new SetupError(
      `need ${packages.join(', ')} but cannot install ${packages.length > 1 ? 'them' : 'it'}: ` +
        (apt ? 'not root and no password-less sudo' : 'apt-get not found'),
      `install ${packages.join(' ')} yourself (or run setup as root on Debian/Ubuntu), then rerun`,
    );
  }
  // Waits for a dpkg lock held by e.g. unattended-upgrades instead of failing at once.
  const aptGet = (...args) =>
    run([...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', apt, '-o', 'DPkg::Lock::Timeout=300', ...args], {
      say,
      tool: 'apt-get',
    });
  const update = async () => {
    say('apt-get update…');
    await aptGet('update');
    aptListsFresh = true;
  };
  if (!aptListsFresh && !haveAptLists()) await update();
  say(`apt-get install ${packages.join(' ')}…`);
  try {
    await aptGet('install', '-y', ...packages);
  } catch (err) {
    if (aptListsFresh) throw err;
    say('install failed with the cached package lists; refreshing them and retrying');
    await update();
    await aptGet('install', '-y', ...packages);
  }
}

function haveAptLists() {
  try {
    return fs.readdirSync('/var/lib/apt/lists').some((f) => f.includes('_Packages'));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- Docker API

/**
 * Where the engine should be, as dockerode and the docker CLI read it: DOCKER_HOST
 * (unix:// or tcp://, TLS through DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) or the default socket.
 */
export function parseDockerHost(value = process.env.DOCKER_HOST) {
  if (!value) return { url: `unix://${DEFAULT_SOCKET}`, socketPath: DEFAULT_SOCKET };
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) {
      throw new SetupError(`DOCKER_HOST=${value} has no absolute socket path`, 'use e.g. DOCKER_HOST=unix:///var/run/docker.sock');
    }
    return { url: value, socketPath };
  }
  if (value.startsWith('tcp://')) {
    const u = new URL(value.replace(/^tcp:/, 'http:'));
    const tls = !!process.env.DOCKER_TLS_VERIFY && process.env.DOCKER_TLS_VERIFY !== '0';
    const ep = { url: value, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (tls ? 2376 : 2375)), tls };
    if (tls) {
      const certDir = process.env.DOCKER_CERT_PATH || path.join(os.homedir(), '.docker');
      const read = (f) => (fs.existsSync(path.join(certDir, f)) ? fs.readFileSync(path.join(certDir, f)) : undefined);
      Object.assign(ep, { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') });
    }
    return ep;
  }
  throw new SetupError(`DOCKER_HOST=${value} is not supported by setup`, 'use DOCKER_HOST=unix:///path/to/docker.sock or DOCKER_HOST=tcp://host:port');
}

/** One HTTP exchange with the engine; resolves { status, text }. */
function dockerRequest(ep, method, urlPath, { body, headers, timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const where = ep.socketPath
      ? { socketPath: ep.socketPath }
      : { host: ep.host, port: ep.port, ...(ep.tls ? { ca: ep.ca, cert: ep.cert, key: ep.key } : {}) };
    // agent:false: no keep-alive socket left to hold the process open.
    const req = (ep.tls ? https : http).request({ ...where, method, path: urlPath, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

/** Resolves { ok, why }: ok when GET /_ping answers 200 OK. */
export async function ping(ep) {
  try {
    const res = await dockerRequest(ep, 'GET', '/_ping', { timeoutMs: 2000 });
    return res.status === 200 && res.text.trim() === 'OK' ? { ok: true } : { ok: false, why: `HTTP ${res.status} ${res.text.trim().slice(0, 80)}` };
  } catch (err) {
    return { ok: false, why: err.code ?? err.message };
  }
}

// Docker's routes take the reference (slash and all) in the path; escape the rest only.
const imagePath = (name) => `/images/${encodeURI(name).replace(/[?#]/g, encodeURIComponent)}`;

function splitImageName(name) {
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? { repo: name.slice(0, colon), tag: name.slice(colon + 1) } : { repo: name, tag: 'latest' };
}

// ---------------------------------------------------------------- a. npm dependencies

/** Under `npm test`, the very npm that runs us. */
function npmCommand() {
  const npmCli = process.env.npm_execpath;
  return npmCli && /npm-cli\.c?js$/.test(npmCli) ? [process.execPath, npmCli] : ['npm'];
}

export async function ensureNpmDeps(say) {
  const lock = path.join(root, 'package-lock.json');
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  if (!fs.existsSync(lock)) {
    throw new SetupError('package-lock.json is missing', 'run `npm install` once to create it, and commit it');
  }
  // npm writes node_modules/.package-lock.json at the end of every install, so it is
  // older than package-lock.json only when the lock changed since (e.g. a git pull).
  const why = !fs.existsSync(installed)
    ? 'node_modules is not installed'
    : fs.statSync(installed).mtimeMs < fs.statSync(lock).mtimeMs
      ? 'package-lock.json is newer than node_modules'
      : null;
  if (!why) return 'up to date';
  say(`${why}, running npm ci…`);
  const result = await runVisible([...npmCommand(), 'ci']);
  if (result !== 0) {
    throw new SetupError(`npm ci failed (${result})`, "see npm's output above; the npm registry must be reachable");
  }
  return 'installed with npm ci';
}

/**
 * GitHub runs the action on Node 24; the tests run its bundle on that Node too.
 * npm's `node` package brings the binary, kept apart in build/node24 so that it
 * never shadows the Node that runs the hub and the tests.
 */
export const NODE24_DIR = path.join(root, 'build', 'node24');
const NODE24_SPEC = 'node@24';

export async function ensureNode24(say) {
  const bin = path.join(NODE24_DIR, 'node_modules', '.bin', 'node');
  const version = () => execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  if (fs.existsSync(bin) && version().startsWith('v24.')) return `${version()} present`;
  say(`installing ${NODE24_SPEC} from the npm registry into build/node24…`);
  fs.mkdirSync(NODE24_DIR, { recursive: true });
  const result = await runVisible([
    ...npmCommand(),
    'install',
    '--prefix',
    NODE24_DIR,
    '--no-save',
    '--no-package-lock',
    '--no-audit',
    '--no-fund',
    NODE24_SPEC,
  ]);
  if (result !== 0 || !fs.existsSync(bin)) {
    throw new SetupError(`npm install ${NODE24_SPEC} failed (${result})`, "see npm's output above; the npm registry must be reachable");
  }
  return `${version()} installed`;
}

/**
 * The Node the runtime runs on in every agent image: npm's official Node 24 build,
 * stripped of its debug symbols (126 MB → ~108 MB, one layer shared by all profile
 * images). It starts in ~30 ms where Debian's nodejs takes 100-250 ms.
 */
export const RUNTIME_NODE = path.join(root, 'build', 'runtime-node');

export async function ensureRuntimeNode(say) {
  const fresh = fs.existsSync(RUNTIME_NODE) && fs.statSync(RUNTIME_NODE).mtimeMs >= fs.statSync(NODE24_BIN).mtimeMs;
  if (fresh) return 'present';
  const tmp = `${RUNTIME_NODE}.tmp`;
  const stripped = spawnSync('strip', ['--strip-all', '-o', tmp, NODE24_BIN], { encoding: 'utf8' });
  if (stripped.status !== 0) {
    // No binutils: the binary as it comes works the same, ~18 MB larger.
    say(`strip is not available (${(stripped.error?.message ?? stripped.stderr).trim()}); using the binary as it is`);
    fs.copyFileSync(NODE24_BIN, tmp);
  }
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, RUNTIME_NODE);
  return `made from ${execFileSync(RUNTIME_NODE, ['--version'], { encoding: 'utf8' }).trim()}`;
}

/**
 * The production dependencies for Node 24, in build/node24/deps: what the hub's image
 * (deploy/Dockerfile) copies, and the better-sqlite3 the Node 24 test run loads
 * (scripts/node24-sqlite.mjs). better-sqlite3 is native and node_modules' copy is
 * built for the Node that runs npm ci; this one is compiled against the headers that
 * npm's `node` package ships (no download: the machine reaches no Node mirror).
 * Rebuilt only when package-lock.json or the Node 24 binary changed.
 */
export const NODE24_DEPS = path.join(NODE24_DIR, 'deps');
export const NODE24_BIN = path.join(NODE24_DIR, 'node_modules', 'node', 'bin', 'node');

/** Where npm itself (npm-cli.js) is, to run it on another Node. */
function npmCliPath() {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /npm-cli\.c?js$/.test(fromEnv)) return fromEnv;
  const onPath = which('npm');
  const real = onPath && fs.realpathSync(onPath);
  return real && /npm-cli\.c?js$/.test(real) ? real : null;
}

export async function ensureNode24Deps(say) {
  const version = execFileSync(NODE24_BIN, ['--version'], { encoding: 'utf8' }).trim();
  const lock = fs.readFileSync(path.join(root, 'package-lock.json'));
  const stamp = `${version} ${process.platform}-${process.arch} ${createHash('sha256').update(lock).digest('hex')}\n`;
  const stampFile = path.join(NODE24_DEPS, '.stamp');
  const native = path.join(NODE24_DEPS, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  if (fs.existsSync(native) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) return 'up to date';

  const headers = path.join(NODE24_DIR, 'node_modules', 'node', 'node_modules', `node-${process.platform}-${process.arch}`);
  if (!fs.existsSync(path.join(headers, 'include', 'node', 'node_version.h'))) {
    throw new SetupError(`Node ${version}'s headers are not in ${headers}`, "delete build/node24 and rerun setup to reinstall npm's node package");
  }
  const npmCli = npmCliPath();
  if (!npmCli) throw new SetupError('cannot find npm-cli.js to run npm on Node 24', 'run setup through npm (npm test / npm run setup), or put npm on the PATH');
  fs.rmSync(NODE24_DEPS, { recursive: true, force: true });
  fs.mkdirSync(NODE24_DEPS, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(root, f), path.join(NODE24_DEPS, f));
  // JOBS: node-gyp's parallel make (sqlite3.c and the binding compile side by side). build_from_source:
  // prebuild-install would otherwise try a download from GitHub, which this machine cannot reach.
  const npm24 = (tool, ...args) =>
    run(['env', 'JOBS=max', 'npm_config_build_from_source=true', NODE24_BIN, npmCli, '--prefix', NODE24_DEPS, '--no-audit', '--no-fund', ...args], {
      say,
      tool,
    });
  say(`npm ci --omit=dev on ${version} into build/node24/deps…`);
  // No install scripts, as in the project's allowScripts; better-sqlite3's own is run next, on purpose.
  await npm24('npm', 'ci', '--omit=dev', '--ignore-scripts', '--prefer-offline');
  say(`compiling better-sqlite3 against ${version}'s headers (one to two minutes)…`);
  await npm24('node-gyp', 'rebuild', 'better-sqlite3', `--nodedir=${headers}`, '--foreground-scripts');
  if (!fs.existsSync(native)) throw new SetupError(`building better-sqlite3 for Node 24 made no ${native}`);
  // The compiler's objects and sources: tens of MB the image would otherwise carry.
  const pkg = path.join(NODE24_DEPS, 'node_modules', 'better-sqlite3');
  for (const f of [
    'build/Release/obj',
    'build/Release/obj.target',
    'build/Release/.deps',
    'build/Release/sqlite3.a',
    'build/Release/test_extension.node',
    'deps',
    'src',
  ]) {
    fs.rmSync(path.join(pkg, f), { recursive: true, force: true });
  }
  const check = spawnSync(NODE24_BIN, ['-e', "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"], { cwd: NODE24_DEPS, encoding: 'utf8' });
  if (check.status !== 0) throw new SetupError(`the better-sqlite3 built for Node 24 does not load: ${check.stderr.trim().split('\n')[0]}`);
  fs.writeFileSync(stampFile, stamp);
  return `built for ${version}`;
}

/** What the swarm lab (scripts/swarm-lab.ts) runs besides the engine: a registry every node pulls from, and its nodes' own hostnames. */
const SWARM_LAB_TOOLS = { 'docker-registry': 'docker-registry', unshare: 'util-linux' };

/**
 * Programs the tests drive as their users' own tools do: a real terminal (tmux) for
 * the CLI's shell, Prometheus' promtool for /metrics, a real browser for the dashboard,
 * Compose for deploy/compose.yaml and systemd's own checker for the unit.
 */
const TEST_TOOLS = {
  tmux: 'tmux',
  promtool: 'prometheus',
  chromium: 'chromium',
  'docker-compose': 'docker-compose',
  'systemd-analyze': 'systemd',
  // Test hosts in network namespaces (network.test.ts) and the IPv6 fence.
  ip: 'iproute2',
  ip6tables: 'iptables',
  ...SWARM_LAB_TOOLS,
};

export function ensureTestTools(say) {
  return ensureTools(say, TEST_TOOLS);
}

async function ensureTools(say, tools) {
  const missing = Object.entries(tools)
    .filter(([cmd]) => !which(cmd))
    .map(([, pkg]) => pkg);
  if (!missing.length) return `${Object.keys(tools).join(', ')} present`;
  await aptInstall(say, missing);
  return `installed ${missing.join(', ')}`;
}

// ---------------------------------------------------------------- b. bundles

export async function buildBundles() {
  let buildAll;
  try {
    ({ buildAll } = await import('./build.mjs'));
  } catch (err) {
    throw new SetupError(`cannot load scripts/build.mjs: ${err.message}`, 'delete node_modules and rerun setup to reinstall');
  }
  try {
    await buildAll();
  } catch (err) {
    throw new SetupError(`bundling failed: ${err.message.split('\n')[0]}`, 'fix the errors esbuild printed above');
  }
  return 'built build/hub.mjs, build/runtime.cjs and the dashboard (build/web)';
}

// ---------------------------------------------------------------- c. Docker engine

/** Finds the engine that answers, installing and starting Debian's docker.io if none does. */
export async function ensureEngine(say, { baseImage = DEFAULT_BASE_IMAGE } = {}) {
  const ep = parseDockerHost();
  const first = await ping(ep);
  if (first.ok) return ep;

  const pointHint =
    'point DOCKER_HOST at an engine that answers (DOCKER_HOST=unix:///path/to/docker.sock or ' +
    'DOCKER_HOST=tcp://host:2375), or run setup as root on Debian/Ubuntu with DOCKER_HOST unset ' +
    'so it installs and starts docker.io itself';
  if (process.env.DOCKER_HOST) {
    throw new SetupError(
      `no Docker engine answers at DOCKER_HOST=${ep.url} (${first.why})`,
      `start that engine or correct DOCKER_HOST (unix:///path/to/docker.sock or tcp://host:port); ` +
        `or unset DOCKER_HOST to use ${DEFAULT_SOCKET}, which setup installs and starts itself when run as root`,
    );
  }
  if (dockerdRunning()) {
    say(`none answers at ${ep.url} (${first.why}) but dockerd is running; waiting for it…`);
    return waitForEngine(say, ep, null);
  }
  if (process.getuid?.() !== 0) {
    throw new SetupError(`no Docker engine answers at ${ep.url} (${first.why}), and only root may start one here`, pointHint);
  }
  let dockerd = which('dockerd');
  if (!dockerd) {
    if (!which('apt-get')) {
      throw new SetupError(`no Docker engine answers at ${ep.url}, and dockerd is not installed`, pointHint);
    }
    say(`none answers (${first.why}), installing Debian's docker.io…`);
    // A new engine holds no images, so the base-image phase will need debootstrap:
    // one apt-get run for both is quicker than two.
    const extra = baseImage === DEFAULT_BASE_IMAGE ? missingDebootstrapPackages() : [];
    await aptInstall(say, ['docker.io', ...extra]);
    dockerd = which('dockerd');
    if (!dockerd) throw new SetupError('docker.io is installed but dockerd is not found', pointHint);
    if (dockerdRunning()) {
      say('the package started dockerd; waiting for it…');
      return waitForEngine(say, ep, null);
    }
  } else {
    say(`none answers (${first.why}); dockerd is installed but not running`);
  }
  say(`starting ${dockerd} in the background (log: ${DOCKERD_LOG})…`);
  return waitForEngine(say, ep, startDockerd(dockerd));
}

function dockerdRunning() {
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd') return true;
    } catch {
      // the process went away meanwhile
    }
  }
  return false;
}

/** Starts dockerd in its own session so it outlives setup and the npm script that ran it. */
function startDockerd(dockerd) {
  const fd = fs.openSync(DOCKERD_LOG, 'a');
  const child = spawn(dockerd, [], { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  child.unref();
  const state = { exited: null };
  child.on('exit', (code, signal) => (state.exited = signal ?? `exit code ${code}`));
  child.on('error', (err) => (state.exited = err.message));
  return state;
}

async function waitForEngine(say, ep, started) {
  const t0 = Date.now();
  let nextNote = 10_000;
  for (;;) {
    const res = await ping(ep);
    if (res.ok) return ep;
    if (started?.exited) {
      throw new SetupError(
        `dockerd stopped (${started.exited}) before it answered; the end of ${DOCKERD_LOG}:\n${logTail(DOCKERD_LOG)}`,
        'fix what the log says, or point DOCKER_HOST at an engine that answers',
      );
    }
    const waited = Date.now() - t0;
    if (waited > ENGINE_START_TIMEOUT_MS) {
      throw new SetupError(
        `the engine did not answer at ${ep.url} within ${ENGINE_START_TIMEOUT_MS / 1000} s (${res.why})`,
        started || fs.existsSync(DOCKERD_LOG) ? `see ${DOCKERD_LOG}` : 'check that dockerd is healthy',
      );
    }
    if (waited > nextNote) {
      say(`still waiting for ${ep.url} (${Math.round(waited / 1000)} s)…`);
      nextNote += 10_000;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function logTail(file, lines = 15) {
  try {
    const text = fs.readFileSync(file, 'utf8').slice(-8000);
    return text
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => `    ${l}`)
      .join('\n');
  } catch {
    return '    (no log)';
  }
}

// ---------------------------------------------------------------- d. base image

/** Makes sure the engine has the base image, building the default one with debootstrap. */
export async function ensureBaseImage(say, ep, name = DEFAULT_BASE_IMAGE) {
  const found = await dockerRequest(ep, 'GET', `${imagePath(name)}/json`);
  if (found.status === 200) return `${name} is cached on the engine`;
  if (found.status !== 404) {
    throw new SetupError(`the engine answered HTTP ${found.status} to looking up ${name}: ${found.text.trim()}`);
  }
  if (name !== DEFAULT_BASE_IMAGE) {
    throw new SetupError(
      `configured base image ${name} not found on the engine`,
      `load or build ${name} on the engine, or unset DOCKER_AGENT_BASE_IMAGE to let setup build ${DEFAULT_BASE_IMAGE}`,
    );
  }
  say(`${name} not found on the engine; building it from Debian ${DEBIAN_SUITE} with debootstrap`);

  const missing = missingDebootstrapPackages();
  if (missing.length) await aptInstall(say, missing);
  const prefix = rootPrefix();
  if (!prefix) {
    throw new SetupError('debootstrap must run as root (or through password-less sudo)', `rerun setup as root, or build ${name} on the engine yourself`);
  }

  await removeStaleRootfsDirs(prefix);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${ROOTFS_PREFIX}${process.pid}-`));
  const rootfs = path.join(dir, 'rootfs');
  try {
    // Created by root with mode 0755: tar records it as the image's "/", and a
    // private (0700) or user-owned "/" would lock out the containers' non-root user.
    await run([...prefix, 'install', '-d', '-m', '0755', '-o', 'root', '-g', 'root', rootfs], { say });
    const t0 = performance.now();
    say(`debootstrap --variant=minbase ${DEBIAN_SUITE} (about 25 s)…`);
    await run([...prefix, which('debootstrap'), '--variant=minbase', `--keyring=${DEBIAN_KEYRING}`, DEBIAN_SUITE, rootfs, DEBIAN_MIRROR], {
      say,
      tool: 'debootstrap',
    });
    say(`root file system ready (${elapsed(t0)}); importing it into the engine…`);
    const bytes = await importRootfs(ep, prefix, rootfs, name);
    return `${name} built (${Math.round(bytes / 1e6)} MB imported)`;
  } finally {
    await removeTree(prefix, dir);
  }
}

function missingDebootstrapPackages() {
  return [
    ...(which('debootstrap') ? [] : ['debootstrap']),
    // Ubuntu lacks Debian's keys, without which debootstrap cannot check the mirror.
    ...(fs.existsSync(DEBIAN_KEYRING) ? [] : ['debian-archive-keyring']),
  ];
}

/**
 * Streams `tar -c` of the root file system into POST /images/create?fromSrc=- (what
 * `docker import` does, without needing the CLI). It lands under a temporary tag and
 * gets its real name only once tar and the engine both succeeded, so an interrupted
 * import never passes for a cached base image.
 */
async function importRootfs(ep, prefix, rootfs, name) {
  const { repo, tag } = splitImageName(name);
  const tmpTag = `${tag}-importing-${process.pid}`;
  const argv = [...prefix, 'tar', '-C', rootfs, '--numeric-owner', '-c', '.'];
  const tar = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let tarErr = '';
  tar.stdout.on('data', (c) => (bytes += c.length));
  tar.stderr.on('data', (c) => (tarErr += c));
  const tarDone = new Promise((resolve) => {
    tar.on('error', (err) => resolve(err.message));
    tar.on('close', (code, signal) => resolve(code === 0 ? null : (signal ?? `exit code ${code}`)));
  });
  const q = new URLSearchParams({ fromSrc: '-', repo, tag: tmpTag });
  try {
    const res = await dockerRequest(ep, 'POST', `/images/create?${q}`, {
      body: tar.stdout,
      headers: { 'Content-Type': 'application/x-tar' },
    });
    const tarFailed = await tarDone;
    if (tarFailed) throw new SetupError(`tar of the root file system failed (${tarFailed}): ${tarErr.trim()}`);
    if (res.status !== 200) throw new SetupError(`the engine refused the import: HTTP ${res.status} ${res.text.trim()}`);
    // The answer is a stream of JSON messages; a failure arrives as one with "error".
    for (const line of res.text.split('\n')) {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.error) throw new SetupError(`the engine failed to import the root file system: ${msg.error}`);
    }
    const tagged = await dockerRequest(ep, 'POST', `${imagePath(`${repo}:${tmpTag}`)}/tag?${new URLSearchParams({ repo, tag })}`);
    if (tagged.status !== 201 && tagged.status !== 200) {
      throw new SetupError(`tagging the imported image as ${name} failed: HTTP ${tagged.status} ${tagged.text.trim()}`);
    }
    return bytes;
  } finally {
    tar.kill();
    // Only the temporary name goes; the image stays under its real one.
    await dockerRequest(ep, 'DELETE', `${imagePath(`${repo}:${tmpTag}`)}?noprune=1`).catch(() => {});
  }
}

async function removeTree(prefix, dir) {
  // --one-file-system: a debootstrap killed mid-way can leave /proc or /sys mounted inside.
  await run([...prefix, 'rm', '-rf', '--one-file-system', dir]).catch((err) => {
    log(`warning: could not remove ${dir}: ${err.message}`);
  });
}

/** Removes root file systems left by runs that were killed before their cleanup. */
async function removeStaleRootfsDirs(prefix) {
  let entries = [];
  try {
    entries = fs.readdirSync(os.tmpdir());
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = new RegExp(`^${ROOTFS_PREFIX}(\\d+)-`).exec(entry);
    if (!m || fs.existsSync(`/proc/${m[1]}`)) continue;
    log(`removing ${path.join(os.tmpdir(), entry)} left by an interrupted run`);
    await removeTree(prefix, path.join(os.tmpdir(), entry));
  }
}

// ---------------------------------------------------------------- e. agent images

/**
 * The hub builds (and caches) agent images on the base image: the default profile's
 * for the hub, every built-in profile's for the tests (which run a smoke job in each).
 */
export async function prepareAgentImages(say, ep, profiles) {
  const hub = path.join(root, 'build', 'hub.mjs');
  say(`running node build/hub.mjs ${['prepare', ...profiles].join(' ')}…`);
  const result = await runVisible([process.execPath, hub, 'prepare', ...profiles], { DOCKER_HOST: ep.url });
  if (result !== 0) {
    throw new SetupError(`node build/hub.mjs prepare failed (${typeof result === 'number' ? `exit code ${result}` : result})`, 'see its output above');
  }
  return 'ready';
}

// ---------------------------------------------------------------- main

export async function main(args) {
  const forArg = args.find((a) => a.startsWith('--for='))?.slice('--for='.length);
  const unknown = args.filter((a) => !a.startsWith('--for='));
  if (unknown.length || (forArg !== undefined && !['hub', 'test', 'deploy', 'swarm-lab'].includes(forArg))) {
    throw new SetupError(`unexpected arguments: ${args.join(' ')}`, 'usage: node scripts/setup.mjs [--for=hub|test|deploy|swarm-lab]');
  }
  const t0 = performance.now();
  const baseImage = process.env.DOCKER_AGENT_BASE_IMAGE || DEFAULT_BASE_IMAGE;
  let engine;

  await step('npm dependencies', ensureNpmDeps);
  await step('bundles', buildBundles);
  // Every hub needs it: the runtime in each agent image runs on it.
  await step('node 24', ensureNode24);
  await step("the runtime's node", ensureRuntimeNode);
  if (forArg === 'test' || forArg === 'deploy') await step('node 24 dependencies', ensureNode24Deps);
  if (forArg === 'test') await step('test tools', ensureTestTools);
  if (forArg === 'swarm-lab') await step('swarm lab tools', (say) => ensureTools(say, SWARM_LAB_TOOLS));
  await step('docker engine', async (say) => {
    engine = await ensureEngine(say, { baseImage });
    return `${engine.url} answers`;
  });
  await step('base image', (say) => ensureBaseImage(say, engine, baseImage));
  await step('agent images', (say) => prepareAgentImages(say, engine, forArg === 'test' ? ['all'] : []));
  log(`ready${forArg ? ` for ${forArg}` : ''} in ${elapsed(t0)}`);
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err) => {
      if (err instanceof SetupError) {
        log(`error: ${err.message}`);
        if (err.hint) log(`to fix: ${err.hint}`);
      } else {
        log(`unexpected error: ${err?.stack ?? err}`);
      }
      process.exit(1);
    },
  );
}
