// A profile as Dockerfile layers on its base. The first layers are the same for
// every profile, so the engine's layer cache shares them: the runtime's own Node
// (an official build, which starts in ~30 ms where Debian's takes ~100-250 ms; its
// ~100 MB are stored once for all profiles), then the packages every container
// needs. The runtime is copied last, so a new runtime rebuilds only that layer.
import type { Profile } from '../../../schemas/types.gen.js';

export const RUNTIME_PATH = '/opt/docker-agent/runtime.cjs';
/** The Node the runtime runs on; a profile that offers Node to its jobs installs its own (`nodejs`). */
export const RUNTIME_NODE_PATH = '/opt/docker-agent/node';
export const AGENT_UID = 1000;

const APT = 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends';
const APT_CLEAN = 'rm -rf /var/lib/apt/lists/*';

/** A large context file, read only when an image is built; its digest stands for it in the image's tag. */
export interface FileRef {
  file: string;
  digest: string;
}

/** Context files besides the Dockerfile: name in the context → content. */
export interface BuildContext {
  dockerfile: string;
  files: Map<string, string | Buffer | FileRef>;
}

/**
 * `extraCerts` are the host's own certificate authorities (name → PEM): a host
 * behind a TLS-inspecting proxy needs them trusted inside images too, for npm
 * and for jobs that reach the network.
 */
export function dockerfileFor(profile: Profile, base: string, runtime: Buffer, node: FileRef, extraCerts = new Map<string, Buffer>()): BuildContext {
  const files = new Map<string, string | Buffer | FileRef>([
    ['runtime.cjs', runtime],
    ['node', node],
  ]);
  const lines = [
    `FROM ${base}`,
    `COPY node ${RUNTIME_NODE_PATH}`,
    // A base the official build cannot run on (musl, or a glibc older than 2.28) is refused here, not at each job's start.
    `RUN ${RUNTIME_NODE_PATH} -e 0 || { echo "docker-agent: the runtime's Node (an official glibc build) cannot run on base ${base}: it needs glibc 2.28 or newer and libstdc++"; exit 1; }`,
    `RUN ${APT} bash ca-certificates procps && ${APT_CLEAN}`,
  ];
  if (extraCerts.size) {
    for (const [name, pem] of extraCerts) files.set(`ca/${name}`, pem);
    lines.push('COPY ca/ /usr/local/share/ca-certificates/', 'RUN update-ca-certificates', 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt');
  }
  lines.push(
    `RUN groupadd -g ${AGENT_UID} agent && useradd -m -u ${AGENT_UID} -g ${AGENT_UID} -s /bin/bash agent && install -d -o ${AGENT_UID} -g ${AGENT_UID} /workspace`,
  );
  const packages = [...(profile.packages ?? [])];
  if (profile.npm?.length && !packages.includes('npm')) packages.push('npm');
  if (packages.length) lines.push(`RUN ${APT} ${packages.join(' ')} && ${APT_CLEAN}`);
  if (profile.npm?.length) lines.push(`RUN npm install -g --no-fund --no-audit ${profile.npm.join(' ')} && npm cache clean --force`);
  profile.files?.forEach((f, i) => {
    const name = `files/${i}`;
    files.set(name, f.content);
    lines.push(`COPY ${name} ${JSON.stringify(f.path)}`);
    lines.push(`RUN chmod ${f.mode ?? '0644'} ${JSON.stringify(f.path)}`);
  });
  for (const task of profile.setup_tasks ?? []) {
    if (task.description) lines.push(`# ${task.description.replace(/\n/g, ' ')}`);
    lines.push(`RUN ${JSON.stringify(['bash', '-eo', 'pipefail', '-c', task.command])}`);
  }
  const env = Object.entries(profile.environment ?? {});
  if (env.length) lines.push(`ENV ${env.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`);
  lines.push(
    `COPY runtime.cjs ${RUNTIME_PATH}`,
    'WORKDIR /workspace',
    `USER ${profile.user ?? `${AGENT_UID}:${AGENT_UID}`}`,
    `CMD ["${RUNTIME_NODE_PATH}", "${RUNTIME_PATH}"]`,
  );
  return { dockerfile: lines.join('\n') + '\n', files };
}
