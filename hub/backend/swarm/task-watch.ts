// When a job's task ends. Swarm has no task events: one loop asks the managers for the
// tasks of every service waited on (one call for all of them) and for the nodes.
// A ReplicatedJob task on a node that went down, or was drained, stays "running" in
// the store (the jobs orchestrator ignores node events and availability), so a task
// whose node is down or drained ends here, as lost with its node.
import type Docker from 'dockerode';
import { withTimeout } from '../../platform/timeout.js';
import { asNode, type SwarmNode } from './node-engines.js';

export interface TaskEnd {
  exitCode: number;
  /** Set when the task's node went down under it: what to tell the job. */
  nodeLost?: string;
  /** What the Swarm says of an end it made. */
  why?: string;
}

export interface TaskInfo {
  ServiceID: string;
  NodeID?: string;
  CreatedAt?: string;
  Status: { State: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
}

const ENDED = new Set(['complete', 'failed', 'rejected', 'shutdown', 'orphaned']);
/** Node states that mean gone; `unknown` (every node, for a moment, after a manager's leader changes) does not. */
const GONE = new Set(['down', 'disconnected']);
/** A poll that takes longer is given up, and the next one made. */
const POLL_TIMEOUT_MS = 10_000;

/**
 * The task that is a job's: its service's first. A ReplicatedJob with restart `none`
 * has one, but a drain makes the Swarm put another in its place, whose runtime would
 * dial in with a token already spent.
 */
export function currentTask(tasks: TaskInfo[], serviceId: string): TaskInfo | undefined {
  const at = (t: TaskInfo) => Date.parse(t.CreatedAt ?? '') || 0;
  return tasks.filter((t) => t.ServiceID === serviceId).sort((a, b) => at(a) - at(b))[0];
}

export class TaskWatch {
  private readonly waiters = new Map<string, Array<(end: TaskEnd) => void>>();
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly manager: Docker,
    private readonly intervalMs = 250,
  ) {}

  /** Resolves when service `id`'s task ends, or its node is lost, or the service is gone (exit code -1). */
  wait(id: string): Promise<TaskEnd> {
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
      this.schedule();
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timer || this.stopped || !this.waiters.size) return;
    this.timer = setTimeout(() => {
      // A manager that does not answer for a moment is no task's end: the waits go on.
      withTimeout(this.look(), POLL_TIMEOUT_MS, 'the managers did not answer')
        .catch(() => {})
        .finally(() => {
          this.timer = undefined;
          this.schedule();
        });
    }, this.intervalMs);
  }

  private async look(): Promise<void> {
    const ids = [...this.waiters.keys()];
    const alive = new Set(((await this.manager.listServices({ filters: { id: ids } })) as Array<{ ID: string }>).map((s) => s.ID));
    for (const id of ids) if (!alive.has(id)) this.settle(id, { exitCode: -1 });
    if (!alive.size) return;
    // Only services that exist: the engine refuses a task filter naming one that does not.
    const [tasks, nodes] = await Promise.all([
      this.manager.listTasks({ filters: { service: [...alive] } }) as Promise<TaskInfo[]>,
      this.manager.listNodes().then((ns) => new Map((ns as Array<{ ID: string }>).map((n) => [n.ID, asNode(n)]))),
    ]);
    for (const id of alive) {
      const end = this.ended(currentTask(tasks, id), nodes);
      if (end) this.settle(id, end);
    }
  }

  private ended(task: TaskInfo | undefined, nodes: Map<string, SwarmNode>): TaskEnd | undefined {
    if (!task) return undefined;
    const node = task.NodeID ? nodes.get(task.NodeID) : undefined;
    if (ENDED.has(task.Status.State)) {
      // Rejected or failed by the Swarm itself (a constraint no longer met, a pull that failed): its words.
      const why = task.Status.Err && !/^task: non-zero exit/.test(task.Status.Err) ? task.Status.Err : undefined;
      return { exitCode: task.Status.ContainerStatus?.ExitCode ?? -1, ...(why ? { why: `the Swarm ${task.Status.State} it: ${why}` } : {}) };
    }
    // The jobs orchestrator leaves a job's task running on a drained node: drained is gone, for the hub.
    if (node?.availability === 'drain') return { exitCode: -1, nodeLost: `its node ${node.hostname} was drained` };
    if (node && GONE.has(node.state)) {
      return { exitCode: -1, nodeLost: `its node ${node.hostname} (${node.id.slice(0, 12)}) is ${node.state}` };
    }
    return undefined;
  }

  private settle(id: string, end: TaskEnd): void {
    for (const resolve of this.waiters.get(id) ?? []) resolve(end);
    this.waiters.delete(id);
  }
}
