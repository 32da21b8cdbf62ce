import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: run files in parallel on both, never more.
    maxWorkers: 2,
    // The run fails if a process it started is still running after the last test.
    globalSetup: ['test/helpers/noLeftoverProcesses.ts'],
  },
});
