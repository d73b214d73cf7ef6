import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Two files at a time: each integration file runs its own hub and containers on a 2-core machine.
    maxWorkers: 2,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Run on its own after the rest (npm test): three more engines starting and pulling load the machine
          // every other file's containers share.
          exclude: ['test/integration/swarm-lab.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'swarm',
          include: ['test/integration/swarm-lab.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
