// The hub's one SQLite file: jobs, their events, API tokens, who owns which
// workspace upload, the OIDC repositories seen, and a little metadata.
// WAL lets the API read while the scheduler writes.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { touchPrivate } from '../platform/data-dir.js';

export type Db = Database.Database;

const MIGRATIONS = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     state TEXT NOT NULL,
     profile TEXT NOT NULL,
     spec TEXT NOT NULL,
     steps TEXT NOT NULL,
     created_at TEXT NOT NULL,
     started_at TEXT,
     ended_at TEXT,
     exit_code INTEGER,
     reason TEXT,
     image TEXT,
     container_id TEXT,
     agent_token_hash TEXT,
     session_hash TEXT,
     agent_seq INTEGER NOT NULL DEFAULT 0,
     last_seq INTEGER NOT NULL DEFAULT 0,
     deadline_at INTEGER,
     health TEXT
   );
   CREATE INDEX jobs_state ON jobs(state);
   CREATE UNIQUE INDEX jobs_agent_token ON jobs(agent_token_hash);
   CREATE UNIQUE INDEX jobs_session ON jobs(session_hash);
   CREATE TABLE events (
     job_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     time TEXT NOT NULL,
     type TEXT NOT NULL,
     payload TEXT NOT NULL,
     data BLOB,
     PRIMARY KEY (job_id, seq)
   ) WITHOUT ROWID;
   CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);`,
  `ALTER TABLE jobs ADD COLUMN snapshot TEXT;`,
  // Owners, scopes and ends. Rows from before have no owner: only admin tokens see
  // them. Tokens from before were all-powerful, so they become admin tokens; the
  // one from DOCKER_AGENT_TOKEN is marked so that changing it ends the old value.
  `ALTER TABLE jobs ADD COLUMN owner TEXT;
   CREATE INDEX jobs_owner ON jobs(owner, state);
   ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '["admin"]';
   ALTER TABLE tokens ADD COLUMN source TEXT NOT NULL DEFAULT 'api';
   ALTER TABLE tokens ADD COLUMN expires_at TEXT;
   ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
   ALTER TABLE tokens ADD COLUMN revoked_why TEXT;
   UPDATE tokens SET source = CASE name WHEN 'DOCKER_AGENT_TOKEN' THEN 'env' WHEN 'first start' THEN 'first-start' ELSE 'api' END;
   CREATE TABLE workspace_owners (
     workspace_id TEXT NOT NULL,
     owner TEXT NOT NULL,
     created_at TEXT NOT NULL,
     PRIMARY KEY (workspace_id, owner)
   ) WITHOUT ROWID;
   CREATE TABLE oidc_repositories (name TEXT PRIMARY KEY, repository_id TEXT NOT NULL, first_seen TEXT NOT NULL);`,
  // Named agents; a job may run on one (jobs.agent), after its earlier jobs there.
  `CREATE TABLE agents (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     owner TEXT,
     profile TEXT NOT NULL,
     state TEXT NOT NULL,
     env TEXT NOT NULL,
     idle_timeout REAL,
     image TEXT,
     container_id TEXT,
     volume TEXT NOT NULL,
     token_hash TEXT UNIQUE,
     session_hash TEXT UNIQUE,
     agent_seq INTEGER NOT NULL DEFAULT 0,
     last_seq INTEGER NOT NULL DEFAULT 0,
     current_job TEXT,
     reason TEXT,
     health TEXT,
     created_at TEXT NOT NULL,
     last_activity_at TEXT NOT NULL,
     from_image TEXT
   );
   CREATE TABLE snapshots (
     id TEXT PRIMARY KEY,
     owner TEXT,
     source TEXT NOT NULL,
     image TEXT NOT NULL,
     bytes INTEGER NOT NULL,
     created_at TEXT NOT NULL
   );
   ALTER TABLE jobs ADD COLUMN agent TEXT;
   CREATE INDEX jobs_agent ON jobs(agent, state);`,
  // Dashboard sign-ins: a session stands for the token it was opened with, stored hashed.
  `CREATE TABLE sessions (
     hash TEXT PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     token_id TEXT NOT NULL,
     csrf TEXT NOT NULL,
     created_at TEXT NOT NULL,
     expires_at TEXT NOT NULL
   );
   CREATE INDEX sessions_token ON sessions(token_id);
   CREATE INDEX jobs_ended ON jobs(ended_at);
   CREATE INDEX jobs_owner_ended ON jobs(owner, ended_at);`,
  // OIDC owners became the repository and its admitting entry (github:<id>:<subject>).
  // Rows of github:<id> from before are handed on at the first start that has OIDC
  // entries (oidc-owner-migration.ts): marked here, where the entries are not known.
  `INSERT INTO meta (key, value)
     SELECT 'oidc_owners_by_entry', 'pending'
     WHERE EXISTS (SELECT 1 FROM jobs WHERE owner GLOB 'github:[0-9]*')
        OR EXISTS (SELECT 1 FROM agents WHERE owner GLOB 'github:[0-9]*')
        OR EXISTS (SELECT 1 FROM snapshots WHERE owner GLOB 'github:[0-9]*')
        OR EXISTS (SELECT 1 FROM workspace_owners WHERE owner GLOB 'github:[0-9]*');`,
  // What each principal keeps (storage-budget.ts): a job's spec and output, an upload's size per owner.
  `ALTER TABLE jobs ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
   UPDATE jobs SET stored_bytes = length(CAST(spec AS BLOB)) + coalesce((SELECT sum(length(data)) FROM events WHERE events.job_id = jobs.id), 0);
   CREATE INDEX jobs_owner_bytes ON jobs(owner, stored_bytes);
   ALTER TABLE workspace_owners ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;`,
  // The host a job ran on, where there are several (a Swarm node).
  `ALTER TABLE jobs ADD COLUMN node TEXT;
   ALTER TABLE agents ADD COLUMN node TEXT;`,
];

export function openDb(file: string): Db {
  // Made 0600 before SQLite opens it (it would make it 0644); -wal and -shm take its mode.
  if (file !== ':memory:') touchPrivate(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // WAL + NORMAL survives a killed process (only an OS crash can lose the last commits).
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  // Deleted and overwritten content (an ended job's env values) is zeroed, not left in free pages.
  db.pragma('secure_delete = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return withStatementCache(db);
}

/** Most statements the cache keeps; past it, it starts again (the stores build a bounded set of texts). */
const MAX_CACHED_STATEMENTS = 512;

/**
 * Compiles each statement text once: the stores prepare statements where they use
 * them, several per output frame and state change, and compiling costs more than
 * running them. No store changes a statement's mode (pluck, raw), so one can be shared.
 */
function withStatementCache(db: Db): Db {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = cache.get(sql);
    if (!statement) {
      if (cache.size >= MAX_CACHED_STATEMENTS) cache.clear();
      statement = prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }) as Db['prepare'];
  return db;
}

/** This hub's identity, kept across restarts: its containers carry it as a label. */
export function hubId(db: Db): string {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get('hub_id') as { value: string } | undefined;
  if (row) return row.value;
  const id = randomBytes(6).toString('hex');
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('hub_id', id);
  return id;
}
