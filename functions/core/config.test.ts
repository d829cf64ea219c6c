import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('configuration from the environment', () => {
  it('defaults to loopback port 8787 and the shipped model', () => {
    expect(loadConfig({})).toEqual({ port: 8787, host: '127.0.0.1', apiKeys: [], modelDir: 'models/shapes-tiny' });
  });

  it('refuses to bind beyond loopback without API keys', () => {
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(ConfigError);
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/without API_KEYS/);
    expect(loadConfig({ HOST: '0.0.0.0', API_KEYS: 'k1, k2' }).apiKeys).toEqual(['k1', 'k2']);
  });

  it('names a bad variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
  });
});
