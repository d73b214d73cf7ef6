// Runs a task's steps one after another with bash in /workspace, streaming their
// output through the channel, and enforcing step and job time limits by killing
// every process the step started.
import { spawn, type ChildProcess } from 'node:child_process';
import type { AgentStep, AgentTask, DoneMessage } from '../schemas/types.gen.js';
import { constants } from 'node:os';
import { RuntimeChannel } from './channel.js';
import { Utf8Chunker } from './utf8.js';

export const TIMEOUT_EXIT_CODE = 124;
export const CANCEL_EXIT_CODE = 130;

/** After a step's shell exits, how long to keep reading output held open by its background children. */
const OUTPUT_GRACE_MS = 200;

type Outcome = DoneMessage['outcome'];

interface StepResult {
  exitCode: number;
  ended: 'exited' | 'timed_out' | 'cancelled';
}

export interface RunnerOptions {
  channel: RuntimeChannel;
  cwd: string;
  baseEnv: NodeJS.ProcessEnv;
  /** Kills what a step left behind; the default signals every process but init and ourselves. */
  killAll?: () => void;
}

export class TaskRunner {
  private current?: { child: ChildProcess; stop: (why: 'timed_out' | 'cancelled') => void };
  private cancelled = false;

  constructor(private readonly opts: RunnerOptions) {}

  cancel(): void {
    this.cancelled = true;
    this.current?.stop('cancelled');
  }

  async run(task: AgentTask): Promise<{ exitCode: number; outcome: Outcome }> {
    const { channel } = this.opts;
    const jobDeadline = Date.now() + task.timeout * 1000;
    let outcome: Outcome = 'succeeded';
    let exitCode = 0;
    for (const [index, step] of task.steps.entries()) {
      if (outcome !== 'succeeded' || this.cancelled) {
        if (this.cancelled) outcome = 'cancelled';
        channel.send({ t: 'step', step: index, phase: 'skipped' });
        continue;
      }
      channel.send({ t: 'step', step: index, phase: 'started' });
      const started = Date.now();
      const result = await this.runStep(index, step, { ...task.env, ...step.env }, jobDeadline);
      channel.send({
        t: 'step',
        step: index,
        phase: 'ended',
        exitCode: result.exitCode,
        durationMs: Date.now() - started,
        ...(result.ended === 'timed_out' ? { timedOut: true } : {}),
        ...(result.ended === 'cancelled' ? { cancelled: true } : {}),
      });
      if (result.ended === 'timed_out') outcome = 'timed_out';
      else if (result.ended === 'cancelled') outcome = 'cancelled';
      else if (result.exitCode !== 0) outcome = 'failed';
      if (outcome !== 'succeeded') exitCode = result.exitCode;
    }
    return { exitCode, outcome };
  }

  private runStep(index: number, step: AgentStep, env: Record<string, string>, jobDeadline: number): Promise<StepResult> {
    const { channel, cwd, baseEnv } = this.opts;
    const killAll = this.opts.killAll ?? defaultKillAll;
    // A process group of its own, so a time limit can end the step's whole tree.
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run], {
      cwd,
      env: { ...baseEnv, ...env },
      detached: true,
      stdio: [step.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (step.stdin !== undefined) {
      // A command that exits without reading all of it must not fail the step with EPIPE.
      child.stdin!.on('error', () => {});
      child.stdin!.end(step.stdin);
    }
    const streams = [
      { name: 'stdout' as const, stream: child.stdout!, utf8: new Utf8Chunker() },
      { name: 'stderr' as const, stream: child.stderr!, utf8: new Utf8Chunker() },
    ];

    return new Promise<StepResult>((resolve) => {
      let ended: StepResult['ended'] = 'exited';
      let exitCode: number | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      let open = streams.length;

      // Honour backpressure: while the hub has too much unacknowledged output,
      // stop reading, so the step blocks on its own writes instead of us buffering.
      const pauseIfFull = () => {
        if (channel.pendingBytes >= RuntimeChannel.HIGH_WATER) {
          for (const s of streams) s.stream.pause();
        }
      };
      const resume = () => {
        for (const s of streams) s.stream.resume();
        armGrace();
      };
      channel.on('drain', resume);

      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(limit);
        clearTimeout(graceTimer);
        channel.off('drain', resume);
        for (const s of streams) {
          channel.sendOutput(s.name, index, s.utf8.flush());
          s.stream.destroy();
        }
        this.current = undefined;
        const code = ended === 'timed_out' ? TIMEOUT_EXIT_CODE : ended === 'cancelled' ? CANCEL_EXIT_CODE : (exitCode ?? 1);
        resolve({ exitCode: code, ended });
      };
      // Output still held open by a background child must not keep the step alive forever.
      const armGrace = () => {
        clearTimeout(graceTimer);
        if (exitCode !== undefined && !streams.some((s) => s.stream.isPaused())) {
          graceTimer = setTimeout(finish, OUTPUT_GRACE_MS);
        }
      };

      for (const s of streams) {
        s.stream.on('data', (chunk: Buffer) => {
          channel.sendOutput(s.name, index, s.utf8.push(chunk));
          pauseIfFull();
          armGrace();
        });
        s.stream.on('close', () => {
          if (--open === 0 && exitCode !== undefined) finish();
        });
      }

      const stop = (why: 'timed_out' | 'cancelled') => {
        if (ended !== 'exited') return;
        ended = why;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // the group is already gone
        }
        killAll();
      };
      this.current = { child, stop };

      const budget = Math.min(step.timeout ? step.timeout * 1000 : Infinity, jobDeadline - Date.now());
      const limit = setTimeout(() => stop('timed_out'), Math.max(0, Math.min(budget, 2 ** 31 - 1)));

      child.on('error', (err) => {
        channel.sendOutput('stderr', index, Buffer.from(`docker-agent: cannot start bash: ${err.message}\n`));
        exitCode = 127;
        finish();
      });
      child.on('exit', (code, signal) => {
        exitCode = code ?? 128 + (signal ? constants.signals[signal] : 0);
        if (open === 0) finish();
        else armGrace();
      });
      if (this.cancelled) stop('cancelled');
    });
  }
}

/** kill(-1) reaches every process we may signal except init and ourselves: the whole container. */
function defaultKillAll(): void {
  try {
    process.kill(-1, 'SIGKILL');
  } catch {
    // nothing left to kill
  }
}
