import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: builds and the database suites compete for them, so run files two at a time.
    maxWorkers: 2,
    pool: "forks",
  },
});
