// What every command gets: where to write, and the one shared client of the hub,
// made on first use so that `--help` and `login` need no token.
import { HubClient } from '../client/index.js';
import { CliError, EXIT } from './exit-codes.js';
import { Output } from './output.js';
import { resolveLogin } from './settings.js';

export interface Context {
  out: Output;
  env: NodeJS.ProcessEnv;
  client(): HubClient;
  /** Exit code the command asks for (the runner of the program exits with it). */
  exitCode: number;
}

export function createContext(env: NodeJS.ProcessEnv = process.env, out = new Output(undefined, env)): Context {
  let client: HubClient | undefined;
  return {
    out,
    env,
    exitCode: 0,
    client() {
      client ??= new HubClient(resolveLogin(env));
      return client;
    },
  };
}

/** For options given more than once (`-e A=1 -e B=2`): each value kept, in order. */
export const repeatable = (value: string, previous: string[] = []) => [...previous, value];

/** `KEY=value` options as an env object; a bad one is named. */
export function parseEnvOptions(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new CliError(`--env ${JSON.stringify(p)}: expected KEY=value`, EXIT.usage);
    env[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return env;
}
