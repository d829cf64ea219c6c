import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['functions/**/*.test.ts', 'models/**/*.test.ts', 'test/**/*.test.ts', 'infra/**/*.test.ts', 'sdk/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The pinned AWS SDK warns on every start that its later releases need Node 22 (TOOLCHAIN.md).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
