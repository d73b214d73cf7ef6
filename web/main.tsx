// The dashboard: sign-in, then one live connection per tab feeding the overview, a
// job's page or an agent's page (hash routes, so the hub serves one page).
import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { JobEvent, JobView, SessionView } from '../schemas/types.gen.js';
import { currentSession, exists, hub, HubApiError, signIn, signOut } from './api.js';
import { AgentPage } from './agent.js';
import { JobPage, printable } from './job.js';
import { openLive, useNow, type LiveItem, type Overview } from './live.js';
import { OverviewPage } from './overview.js';
import './style.css';

type Route = { page: 'overview' } | { page: 'job'; id: string } | { page: 'agent'; name: string };

function routeOf(hash: string): Route {
  const [, kind, id] = /^#\/(jobs|agents)\/(.+)$/.exec(hash) ?? [];
  if (kind === 'jobs') return { page: 'job', id: decodeURIComponent(id!) };
  if (kind === 'agents') return { page: 'agent', name: decodeURIComponent(id!) };
  return { page: 'overview' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(routeOf(location.hash));
  useEffect(() => {
    const on = () => setRoute(routeOf(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn({ onIn, notice }: { onIn: (s: SessionView) => void; notice: string }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = (new FormData(e.target as HTMLFormElement).get('token') as string).trim();
    setBusy(true);
    try {
      onIn(await signIn(token));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form onSubmit={submit}>
        <h1>docker-agent</h1>
        <p>
          Sign in with an API token of this hub (the first one is in the hub's data folder, in <code>token</code>).
        </p>
        {notice && <p class="note">{notice}</p>}
        <label>
          Token
          <input name="token" type="password" autocomplete="off" required maxLength={512} data-testid="token" />
        </label>
        <button type="submit" disabled={busy} data-testid="sign-in">
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

/** The current item's log: kept from the start of the connection, replayed to a terminal that mounts later. */
function useLogFeed() {
  const chunks = useRef<Array<string | Uint8Array>>([]);
  const writer = useRef<((d: string | Uint8Array) => void) | null>(null);
  const reset = useCallback(() => {
    chunks.current = [];
  }, []);
  const push = useCallback((d: string | Uint8Array) => {
    chunks.current.push(d);
    writer.current?.(d);
  }, []);
  const subscribe = useCallback((write: (d: string | Uint8Array) => void) => {
    for (const c of chunks.current) write(c);
    writer.current = write;
    return () => {
      if (writer.current === write) writer.current = null;
    };
  }, []);
  return { reset, push, subscribe };
}

function Dashboard({ session, onOut }: { session: SessionView; onOut: (notice: string) => void }) {
  const route = useRoute();
  const now = useNow();
  const [overview, setOverview] = useState<Overview | null>(null);
  const [connected, setConnected] = useState(false);
  const [job, setJob] = useState<JobView | undefined>();
  const log = useLogFeed();
  const item: LiveItem | null = route.page === 'job' ? { kind: 'job', id: route.id } : route.page === 'agent' ? { kind: 'agent', id: route.name } : null;
  const itemKey = item ? `${item.kind}:${item.id}` : '';

  const refreshJob = useCallback((id: string) => hub.getJob(id).then(setJob, () => setJob(undefined)), []);

  useEffect(() => {
    log.reset();
    setJob(undefined);
    let close = () => {};
    let left = false;
    // A job or agent that is not there (or not the caller's) is said so; the overview still comes live.
    const itemExists = item ? exists(item.kind === 'job' ? hub.getJob(item.id) : hub.getAgent(item.id)) : Promise.resolve(false);
    void itemExists.then((there) => {
      if (left) return;
      if (route.page === 'job' && there) void refreshJob(route.id);
      close = openLive(there ? item : null, {
        overview: setOverview,
        connected: setConnected,
        event: (e: JobEvent) => {
          const text = printable(e);
          if (text) log.push(text);
          if (route.page === 'job' && ['status', 'step', 'snapshot', 'exit'].includes(e.type)) void refreshJob(route.id);
        },
        ended: (reason) => onOut(`Signed out: ${reason}.`),
      });
    });
    return () => {
      left = true;
      close();
    };
  }, [itemKey]);

  const out = async () => {
    await signOut().catch(() => {});
    onOut('Signed out.');
  };

  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          docker-agent
        </a>
        <span class={`dot ${connected ? 'up' : 'down'}`} title={connected ? 'live' : 'reconnecting'} />
        <span class="who" data-testid="who">
          {session.principal.label}
        </span>
        <button onClick={out} data-testid="sign-out">
          Sign out
        </button>
      </header>
      <main>
        {!overview ? (
          <p class="page empty">connecting…</p>
        ) : route.page === 'job' ? (
          <JobPage job={overview.jobs.find((j) => j.id === route.id) ?? job} now={now} subscribe={log.subscribe} />
        ) : route.page === 'agent' ? (
          <AgentPage agent={overview.agents.find((a) => a.name === route.name)} subscribe={log.subscribe} gone={() => (location.hash = '#/')} />
        ) : (
          <OverviewPage o={overview} now={now} />
        )}
      </main>
    </>
  );
}

function App() {
  const [session, setSession] = useState<SessionView | null | undefined>(undefined);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    currentSession().then(setSession, (err: Error) => setError(err instanceof HubApiError ? err.message : `the hub does not answer: ${err.message}`));
  }, []);
  if (error) return <p class="page error">{error}</p>;
  if (session === undefined) return <p class="page empty">…</p>;
  if (!session || !session.csrf) return <SignIn onIn={(s) => (setNotice(''), setSession(s))} notice={notice} />;
  // The dashboard shows jobs and agents: a token for the metrics alone sees none of it.
  if (!session.principal.scopes.some((s) => s === 'jobs' || s === 'admin')) {
    return (
      <SignIn
        onIn={(s) => (setNotice(''), setSession(s))}
        notice={`Token "${session.principal.label}" has the scopes ${session.principal.scopes.join(', ') || 'none'}; the dashboard needs jobs (or admin).`}
      />
    );
  }
  return <Dashboard key={session.principal.id} session={session} onOut={(n) => (setNotice(n), setSession(null))} />;
}

render(<App />, document.getElementById('app')!);
