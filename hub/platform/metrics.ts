// The hub's metrics in Prometheus' text format (prom-client), on a registry of
// the hub's own (several hubs may share a process in tests). Counters and
// histograms are fed where things happen (a job's state changes, an event is
// stored, an image is built, a request is answered); gauges are read when scraped.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricsSources {
  /** Jobs not ended, by state. */
  jobsByState(): Record<string, number>;
  /** Named agents, by state. */
  agentsByState(): Record<string, number>;
  /** Warm containers waiting, by profile. */
  poolIdle(): Record<string, number>;
  /** Whether the engine answers. */
  engineUp(): Promise<boolean>;
  /** A cluster's nodes (the swarm backend), as the last look found them. */
  nodes(): Array<{ state: string; availability: string }>;
}

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export class HubMetrics {
  readonly registry = new Registry();
  private sources?: MetricsSources;

  readonly jobsEnded = new Counter({
    name: 'docker_agent_jobs_ended_total',
    help: 'Jobs that ended, by final state and profile.',
    labelNames: ['state', 'profile'],
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: 'docker_agent_job_duration_seconds',
    help: "From a job's container start to its end.",
    labelNames: ['profile'],
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'docker_agent_job_queue_wait_seconds',
    help: 'From a job being accepted to it running.',
    labelNames: ['profile'],
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly eventBytes = new Counter({
    name: 'docker_agent_event_bytes_written_total',
    help: 'Output bytes stored in the event log.',
    registers: [this.registry],
  });
  readonly imageBuilds = new Histogram({
    name: 'docker_agent_image_build_seconds',
    help: 'Profile image builds, by profile.',
    labelNames: ['profile'],
    buckets: SECONDS,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'docker_agent_http_requests_total',
    help: 'API requests by method, route (its pattern) and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });

  constructor() {
    const sources = () => this.sources;
    const registry = this.registry;
    /** A gauge of counts by one label, read from the hub when scraped. */
    function counts(name: string, help: string, label: string, read: (s: MetricsSources) => Record<string, number>) {
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect() {
          this.reset();
          const s = sources();
          for (const [value, n] of Object.entries(s ? read(s) : {})) this.set({ [label]: value }, n);
        },
      });
    }
    counts('docker_agent_jobs', 'Jobs not ended, by state (queued, preparing, starting, running, snapshotting).', 'state', (s) => s.jobsByState());
    counts('docker_agent_agents', 'Named agents by state.', 'state', (s) => s.agentsByState());
    counts('docker_agent_pool_idle', 'Warm pool containers waiting for a job, by profile.', 'profile', (s) => s.poolIdle());
    new Gauge({
      name: 'docker_agent_nodes',
      help: "A Swarm's nodes by state (ready, down, …) and availability (active, pause, drain); none on one host.",
      labelNames: ['state', 'availability'],
      registers: [registry],
      collect() {
        this.reset();
        for (const n of sources()?.nodes() ?? []) this.inc({ state: n.state, availability: n.availability });
      },
    });
    new Gauge({
      name: 'docker_agent_engine_up',
      help: '1 when the Docker engine answers, 0 when it does not.',
      registers: [registry],
      async collect() {
        this.set((await sources()?.engineUp()) ? 1 : 0);
      },
    });
  }

  /** What the gauges read, known once the services exist. */
  readFrom(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** A job reached `state`: ended ones are counted, their time in the queue and running observed. */
  jobState(job: { profile: string; createdAt: string; startedAt?: string; endedAt?: string }, state: string): void {
    const s = (from?: string, to?: string) => (from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : undefined);
    if (state === 'running') {
      const wait = s(job.createdAt, job.startedAt);
      if (wait !== undefined) this.queueWait.observe({ profile: job.profile }, wait);
    }
    if (['succeeded', 'failed', 'timed_out', 'cancelled', 'error'].includes(state)) {
      this.jobsEnded.inc({ state, profile: job.profile });
      const ran = s(job.startedAt, job.endedAt);
      if (ran !== undefined) this.jobDuration.observe({ profile: job.profile }, ran);
    }
  }
}
