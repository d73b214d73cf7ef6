// The program inside every agent container: dial the hub and run what it sends.
// A one-shot job's container gets its task in the welcome, runs it, reports and
// exits. A named agent's gets none: it stays connected and runs each task the hub
// sends, one at a time in the order they came, until the hub stops the container.
// Configured by the hub through the container's environment.
import type { AgentTask } from '../schemas/types.gen.js';
import { RuntimeChannel } from './channel.js';
import { healthSampler } from './health.js';
import type { TaskRunner } from './steps.js';
import { fetchWorkspace } from './workspace.js';

const log = (msg: string) => process.stderr.write(`[docker-agent runtime] ${msg}\n`);

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    log(`${name} is not set; the runtime is started by the docker-agent hub, not by hand`);
    process.exit(2);
  }
  return value;
}

const url = required('DOCKER_AGENT_HUB_URL');
const token = required('DOCKER_AGENT_AGENT_TOKEN');
const healthIntervalMs = Number(process.env.DOCKER_AGENT_HEALTH_INTERVAL_MS ?? 5000);
const reconnectDeadlineMs = Number(process.env.DOCKER_AGENT_RECONNECT_DEADLINE_MS ?? 10 * 60 * 1000);

// The steps must not see how the runtime talks to the hub.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DOCKER_AGENT_')));

const channel = new RuntimeChannel({ url, token, reconnectDeadlineMs, log });
// Dialled first: the steps' code loads while the hub answers (a cold job waits for both).
channel.connect();
const steps = import('./steps.js');
const sample = healthSampler();
const health = setInterval(() => channel.sendVolatile({ t: 'health', ...sample() }), healthIntervalMs);

let runner: TaskRunner | undefined;
channel.on('cancel', (reason: string) => {
  log(`cancelled by the hub: ${reason}`);
  runner?.cancel();
});
let finished = false;
channel.on('fatal', (err: Error) => {
  // After our own `done` (or, for an agent, when the hub stops it) the hub closing the channel is the normal end.
  if (finished) process.exit(0);
  log(`giving up: ${err.message}`);
  runner?.cancel();
  process.exit(3);
});

async function runOne(task: AgentTask, opts: { shared: boolean }): Promise<void> {
  // An agent's container also holds shells and what earlier tasks left running: a cancel ends this task's processes only.
  if (task.workspace) {
    try {
      await fetchWorkspace(url, channel.session, process.cwd());
    } catch (err) {
      channel.send({ t: 'done', exitCode: 1, outcome: 'error', reason: `unpacking the workspace failed: ${(err as Error).message}` });
      return;
    }
  }
  const { TaskRunner } = await steps;
  runner = new TaskRunner({ channel, cwd: process.cwd(), baseEnv, ...(opts.shared ? { killAll: () => {} } : {}) });
  const { exitCode, outcome } = await runner.run(task);
  runner = undefined;
  channel.send({ t: 'done', exitCode, outcome });
}

const queue: AgentTask[] = [];
let busy = false;
async function drain(): Promise<void> {
  if (busy) return;
  busy = true;
  while (queue.length) await runOne(queue.shift()!, { shared: true });
  busy = false;
}

channel.once('welcome', async (task: AgentTask | undefined) => {
  if (!task) {
    // A named agent: tasks come one by one, for as long as the container runs.
    finished = true;
    channel.on('task', (next: AgentTask) => {
      queue.push(next);
      void drain();
    });
    return;
  }
  await runOne(task, { shared: false });
  finished = true;
  await channel.flushed().catch(() => {});
  clearInterval(health);
  channel.close();
});
