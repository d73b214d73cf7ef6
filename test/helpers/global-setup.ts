// Builds the bundles and the default profile's image before any test file runs
// (the image is cached by content hash, so this is quick after `npm test`'s set-up).
import { DockerBackend } from '../../hub/backend/docker/backend.js';
import { loadConfig } from '../../hub/platform/config.js';
import { ProfileRegistry } from '../../hub/profiles/registry.js';
// @ts-expect-error: a plain .mjs build script without types
import { buildAll } from '../../scripts/build.mjs';

export default async function setup() {
  await buildAll();
  const config = loadConfig([], {});
  const backend = await DockerBackend.connect(config);
  await backend.prepare(new ProfileRegistry(config.builtinProfilesDir).get(config.defaultProfile));
}
