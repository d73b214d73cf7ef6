// An interactive process in a running container: the engine's exec with a TTY
// (what `docker exec -it` does), so the terminal is a real PTY that runc makes —
// line editing, Ctrl-C as SIGINT to the foreground process, a window size.
import type Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import { HubError } from '../../platform/errors.js';
import type { ExecOptions, ExecSession } from '../types.js';

export async function execInContainer(docker: Docker, containerId: string, o: ExecOptions): Promise<ExecSession> {
  const container = docker.getContainer(containerId);
  let exec: Docker.Exec;
  try {
    exec = await container.exec({
      Cmd: o.command,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      WorkingDir: o.workdir ?? '/workspace',
      Env: Object.entries({ TERM: 'xterm-256color', ...o.env }).map(([k, v]) => `${k}=${v}`),
    });
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404 || status === 409) throw new HubError('NOT_RUNNING', `the container is not running (${(err as Error).message})`);
    throw err;
  }
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as unknown as Duplex;
  // The engine sizes the PTY only once the process runs; until then a resize is refused.
  const resize = async (cols: number, rows: number) => {
    await exec.resize({ w: cols, h: rows }).catch(() => {});
  };
  await resize(o.cols, o.rows);
  const exited = new Promise<number>((resolve) => {
    const done = () =>
      exec.inspect().then(
        (info) => resolve(info.ExitCode ?? -1),
        () => resolve(-1),
      );
    stream.once('end', done);
    stream.once('close', done);
  });
  return { stream, resize, exited };
}
