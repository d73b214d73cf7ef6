// What GitHub's runner makes of a step's output: each line is either a workflow
// command that takes effect (`::name props::data`, or the older `##[name props]data`
// anywhere in the line) or text shown in the log with the secrets masked. After
// `::stop-commands::TOKEN` nothing is a command until a line `::TOKEN::`. Written
// after the runner's ActionCommand.TryParseV2/TryParse and ActionCommandManager, so
// tests can check what a job's output could and could not do to a workflow.

export interface WorkflowCommand {
  command: string;
  properties: Record<string, string>;
  data: string;
}

export interface RunnerLog {
  /** The log as the runner keeps it: text lines, groups and annotations as `##[group]…`, secrets as ***. */
  text: string;
  /** Every command that took effect, in order. */
  commands: WorkflowCommand[];
  masks: string[];
}

// The commands the runner registers (runner's ActionCommandManager and its extensions).
const REGISTERED = [
  'add-mask',
  'add-matcher',
  'remove-matcher',
  'debug',
  'notice',
  'warning',
  'error',
  'group',
  'endgroup',
  'echo',
  'save-state',
  'set-output',
  'set-env',
  'add-path',
  'stop-commands',
];

const unescape = (s: string, pairs: [string, string][]) => pairs.reduce((t, [from, to]) => t.split(from).join(to), s);
const DATA: [string, string][] = [
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%25', '%'],
];
const PROPERTY: [string, string][] = [
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%3A', ':'],
  ['%2C', ','],
  ['%25', '%'],
];
const LEGACY: [string, string][] = [
  ['%3B', ';'],
  ['%0D', '\r'],
  ['%0A', '\n'],
  ['%5D', ']'],
  ['%25', '%'],
];

function parse(line: string, registered: Set<string>): WorkflowCommand | undefined {
  const trimmed = line.trimStart();
  if (trimmed.startsWith('::')) {
    const end = trimmed.indexOf('::', 2);
    if (end >= 0) {
      const info = trimmed.slice(2, end);
      const space = info.indexOf(' ');
      const command = space < 0 ? info : info.slice(0, space);
      if (registered.has(command.toLowerCase())) {
        const properties: Record<string, string> = {};
        if (space > 0) {
          for (const pair of info
            .slice(space + 1)
            .trim()
            .split(',')
            .filter(Boolean)) {
            const eq = pair.indexOf('=');
            if (eq > 0 && eq < pair.length - 1) properties[pair.slice(0, eq)] = unescape(pair.slice(eq + 1), PROPERTY);
          }
        }
        return { command, properties, data: unescape(trimmed.slice(end + 2), DATA) };
      }
    }
  }
  const at = line.indexOf('##[');
  if (at < 0) return undefined;
  const rb = line.indexOf(']', at);
  if (rb < 0) return undefined;
  const info = line.slice(at + 3, rb);
  const space = info.indexOf(' ');
  const command = space < 0 ? info : info.slice(0, space);
  if (!registered.has(command.toLowerCase())) return undefined;
  const properties: Record<string, string> = {};
  if (space > 0) {
    for (const pair of info
      .slice(space + 1)
      .split(';')
      .filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq > 0 && eq < pair.length - 1) properties[pair.slice(0, eq)] = unescape(pair.slice(eq + 1), LEGACY);
    }
  }
  return { command, properties, data: unescape(line.slice(rb + 1), LEGACY) };
}

export function runnerLog(raw: string): RunnerLog {
  const registered = new Set(REGISTERED);
  const commands: WorkflowCommand[] = [];
  const masks: string[] = [];
  const shown: string[] = [];
  let stopToken: string | undefined;
  const lines = raw.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    const cmd = parse(line, registered);
    if (!cmd) {
      shown.push(line);
    } else if (stopToken !== undefined) {
      // Stopped: only the resume token is a command; anything else is just text.
      if (cmd.command.toLowerCase() === stopToken.toLowerCase()) {
        registered.delete(stopToken.toLowerCase());
        stopToken = undefined;
      } else {
        shown.push(line);
      }
    } else if (cmd.command === 'stop-commands') {
      stopToken = cmd.data;
      registered.add(stopToken.toLowerCase());
    } else {
      commands.push(cmd);
      if (cmd.command === 'add-mask' && cmd.data.trim()) masks.push(cmd.data);
      if (['group', 'endgroup', 'error', 'warning', 'notice'].includes(cmd.command)) shown.push(`##[${cmd.command}]${cmd.data}`);
    }
  }
  const mask = (s: string) => masks.reduce((t, m) => t.split(m).join('***'), s);
  return { text: shown.map(mask).join('\n') + (shown.length ? '\n' : ''), commands, masks };
}
