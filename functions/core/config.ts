/**
 * The one config object, parsed from the environment with zod. Bad values stop start-up
 * with a message naming the variable.
 */
import { z } from 'zod';

export const LOOPBACK_HOSTS = ['127.0.0.1', '::1', 'localhost'] as const;

export const configSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8787),
    HOST: z.string().min(1).default('127.0.0.1'),
    /** Comma-separated bearer keys; empty means no auth, which is allowed on loopback only. */
    API_KEYS: z
      .string()
      .default('')
      .transform((s) => s.split(',').map((k) => k.trim()).filter((k) => k !== '')),
    MODEL_DIR: z.string().min(1).default('models/shapes-tiny'),
  })
  .transform((env) => ({ port: env.PORT, host: env.HOST, apiKeys: env.API_KEYS, modelDir: env.MODEL_DIR }));

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * @example
 * const config = loadConfig(process.env);
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid environment: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  }
  const config = parsed.data;
  if (config.apiKeys.length === 0 && !(LOOPBACK_HOSTS as readonly string[]).includes(config.host)) {
    throw new ConfigError(`refusing to listen on ${config.host} without API_KEYS: set API_KEYS or bind to 127.0.0.1`);
  }
  return config;
}
