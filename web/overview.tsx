// The front page: health, the warm pool, task metrics, jobs by state and agents with
// their CPU and memory.
import type { JobView } from '../schemas/types.gen.js';
import { Chart } from './chart.js';
import { bytes, duration, elapsed, owner, percent } from './format.js';
import type { Overview } from './live.js';

const GROUPS: Array<{ title: string; states: string[] }> = [
  { title: 'Running', states: ['preparing', 'starting', 'running', 'snapshotting'] },
  { title: 'Queued', states: ['queued'] },
  { title: 'Ended', states: ['succeeded', 'failed', 'timed_out', 'cancelled', 'error'] },
];

export function State({ state }: { state: string }) {
  return <span class={`state state-${state}`}>{state.replace('_', ' ')}</span>;
}

function JobsTable({ jobs, now }: { jobs: JobView[]; now: number }) {
  if (!jobs.length) return <p class="empty">none</p>;
  return (
    <table class="list">
      <thead>
        <tr>
          <th>job</th>
          <th>state</th>
          <th>profile</th>
          <th class="wide">owner</th>
          <th>duration</th>
          <th>exit</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((j) => (
          <tr key={j.id} data-job={j.id}>
            <td>
              <a href={`#/jobs/${j.id}`}>{j.id.slice(0, 8)}</a>
            </td>
            <td>
              <State state={j.state} />
            </td>
            <td>{j.profile}</td>
            <td class="wide">{owner(j.owner)}</td>
            <td>{elapsed(j.startedAt, j.endedAt, now)}</td>
            <td>{j.exitCode ?? '–'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function OverviewPage({ o, now }: { o: Overview; now: number }) {
  const engine = o.health.engine;
  return (
    <div class="page">
      <section class="cards">
        <div class={`card ${o.health.status === 'ok' ? 'good' : 'bad'}`} data-testid="health">
          <h3>Hub</h3>
          <p class="big">{o.health.status}</p>
          <p>
            {o.health.network
              ? o.health.network.isolated
                ? `network ${o.health.network.name} isolated`
                : `network not isolated: ${o.health.network.problem ?? ''}`
              : 'no job network'}
          </p>
        </div>
        <div class={`card ${engine?.reachable === false ? 'bad' : 'good'}`}>
          <h3>Engine</h3>
          <p class="big">{engine?.reachable === false ? 'unreachable' : `${engine?.backend ?? 'docker'} ${engine?.version ?? ''}`}</p>
          <p>{engine?.error ?? ''}</p>
          {engine?.nodes && (
            <ul class="nodes" data-testid="nodes">
              {engine.nodes.map((n) => (
                <li key={n.hostname} class={n.state === 'ready' ? '' : 'bad'}>
                  {n.hostname} ({n.role}): {n.state}
                  {n.availability === 'active' ? '' : `, ${n.availability}`}
                </li>
              ))}
            </ul>
          )}
        </div>
        <div class="card" data-testid="pool">
          <h3>Warm pool</h3>
          {Object.keys(o.pool ?? {}).length ? (
            Object.entries(o.pool).map(([profile, p]) => (
              <p key={profile}>
                {profile}: <strong>{p.idle}</strong> idle, {p.starting} starting (min {p.minIdle}, max {p.max})
              </p>
            ))
          ) : (
            <p>off</p>
          )}
        </div>
      </section>

      <section>
        <h2>Task metrics, last {o.stats.hours} h</h2>
        <div class="split">
          <Chart
            title="jobs per hour"
            testId="jobs-per-hour"
            points={o.stats.jobsPerHour.map((h) => [Date.parse(h.hour) / 1000, h.ended])}
            format={(v) => String(Math.round(v))}
            color="#58a6ff"
            height={110}
          />
          <table class="list" data-testid="stats">
            <thead>
              <tr>
                <th>profile</th>
                <th>ended</th>
                <th>success</th>
                <th>p50</th>
                <th>p95</th>
              </tr>
            </thead>
            <tbody>
              {o.stats.profiles.map((p) => (
                <tr key={p.profile}>
                  <td>{p.profile}</td>
                  <td>{p.ended}</td>
                  <td>{percent(p.successRate)}</td>
                  <td>{duration(p.durationP50 == null ? null : p.durationP50 * 1000)}</td>
                  <td>{duration(p.durationP95 == null ? null : p.durationP95 * 1000)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section>
        <h2>Agents</h2>
        {o.agents.length ? (
          <div class="agents">
            {o.agents.map((a) => (
              <a class="card agent" key={a.name} href={`#/agents/${a.name}`} data-agent={a.name}>
                <h3>
                  {a.name} <State state={a.state} />
                </h3>
                <p>
                  {a.profile} · {a.currentJob ? `running job ${a.currentJob.slice(0, 8)}` : 'idle'}
                </p>
                <Chart title="CPU" points={a.samples.map((s) => [s[0], s[1]])} format={(v) => `${v.toFixed(0)}%`} color="#3fb950" height={40} compact />
                <Chart title="memory" points={a.samples.map((s) => [s[0], s[2]])} format={bytes} color="#d29922" height={40} compact />
              </a>
            ))}
          </div>
        ) : (
          <p class="empty">no agents (create one with docker-agent agents create NAME)</p>
        )}
      </section>

      {GROUPS.map((g) => {
        const jobs = o.jobs.filter((j) => g.states.includes(j.state));
        return (
          <section key={g.title} data-group={g.title.toLowerCase()}>
            <h2>
              {g.title} <span class="count">{jobs.length}</span>
            </h2>
            <JobsTable jobs={jobs} now={now} />
          </section>
        );
      })}
    </div>
  );
}
