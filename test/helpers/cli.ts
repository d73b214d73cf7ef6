// Runs the `docker-agent` command the way a user's shell does: its bin, a fresh
// process, the hub named by the environment, stdout and stderr kept apart.
import { spawn } from 'node:child_process';
import { repoPath } from '../../hub/platform/paths.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const CLI_BIN = repoPath('bin', 'docker-agent.mjs');

export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; input?: string; onStdout?: (stdout: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    // No inherited login: the test says which hub and token, and where the config lives.
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    opts.onStdout?.(stdout, child);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
