// The program inside every agent container: dial the hub, receive the task, run
// it, report, exit. Configured by the hub through the container's environment.
import { AgentChannel } from './channel.js';
import { healthSampler } from './health.js';
import { TaskRunner } from './steps.js';

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

const channel = new AgentChannel({ url, token, reconnectDeadlineMs, log });
const runner = new TaskRunner({ channel, cwd: process.cwd(), baseEnv });
const sample = healthSampler();
const health = setInterval(() => channel.sendVolatile({ t: 'health', ...sample() }), healthIntervalMs);

channel.on('cancel', (reason: string) => {
  log(`cancelled by the hub: ${reason}`);
  runner.cancel();
});
let finished = false;
channel.on('fatal', (err: Error) => {
  // After our own `done` the hub closing the channel is the normal end.
  if (finished) process.exit(0);
  log(`giving up: ${err.message}`);
  runner.cancel();
  process.exit(3);
});
channel.once('task', async (task) => {
  const { exitCode, outcome } = await runner.run(task);
  channel.send({ t: 'done', exitCode, outcome });
  finished = true;
  await channel.flushed().catch(() => {});
  clearInterval(health);
  channel.close();
});
channel.connect();
