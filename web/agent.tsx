// An agent's page: start, stop, destroy; CPU and memory; its log live; a shell.
import { useState } from 'preact/hooks';
import { hub } from './api.js';
import { Chart } from './chart.js';
import { ago, bytes } from './format.js';
import type { Overview } from './live.js';
import { State } from './overview.js';
import { LogView, Shell } from './terminal.js';

type Agent = Overview['agents'][number];

export function AgentPage({
  agent,
  subscribe,
  gone,
}: {
  agent: Agent | undefined;
  subscribe: (write: (d: string | Uint8Array) => void) => () => void;
  gone: () => void;
}) {
  const [message, setMessage] = useState('');
  const [shell, setShell] = useState(false);
  if (!agent) return <p class="page empty">no such agent (or not yours)</p>;
  const act = (what: string, run: () => Promise<unknown>, after?: () => void) => async () => {
    setMessage(`${what}…`);
    try {
      await run();
      setMessage('');
      after?.();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  const path = `/v1/agents/${encodeURIComponent(agent.name)}`;
  const running = agent.state === 'running';
  return (
    <div class="page">
      <header class="item-head">
        <h2>
          agent {agent.name} <State state={agent.state} />
        </h2>
        <div class="actions">
          {agent.state === 'stopped' && (
            <button onClick={act('starting', () => hub.startAgent(agent.name))} data-testid="start">
              Start
            </button>
          )}
          {running && (
            <button onClick={() => setShell(!shell)} data-testid="open-shell">
              {shell ? 'Close shell' : 'Shell'}
            </button>
          )}
          {(running || agent.state === 'starting') && (
            <button onClick={act('stopping', () => hub.stopAgent(agent.name))} data-testid="stop">
              Stop
            </button>
          )}
          <button
            class="danger"
            data-testid="destroy"
            onClick={() => confirm(`Destroy agent ${agent.name} and its /workspace volume?`) && act('destroying', () => hub.destroyAgent(agent.name), gone)()}
          >
            Destroy
          </button>
        </div>
      </header>
      {message && <p class="note">{message}</p>}
      <dl class="facts">
        <dt>profile</dt>
        <dd>{agent.profile}</dd>
        <dt>doing</dt>
        <dd>{agent.currentJob ? <a href={`#/jobs/${agent.currentJob}`}>job {agent.currentJob.slice(0, 8)}</a> : 'idle'}</dd>
        <dt>last active</dt>
        <dd>{ago(agent.lastActivityAt)}</dd>
        <dt>volume</dt>
        <dd>{agent.volume}</dd>
        {agent.reason && (
          <>
            <dt>reason</dt>
            <dd>{agent.reason}</dd>
          </>
        )}
      </dl>
      <div class="split">
        <Chart title="CPU" testId="cpu-chart" points={agent.samples.map((s) => [s[0], s[1]])} format={(v) => `${v.toFixed(0)}%`} color="#3fb950" />
        <Chart title="memory" testId="memory-chart" points={agent.samples.map((s) => [s[0], s[2]])} format={bytes} color="#d29922" />
      </div>
      {shell && running && (
        <>
          <h3>Shell</h3>
          <Shell path={`${path}/shell`} onExit={(m) => setMessage(m)} />
        </>
      )}
      <h3>Log</h3>
      <LogView feed={subscribe} resetKey={agent.name} testId="log" />
    </div>
  );
}
