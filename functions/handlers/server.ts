/** `npm start`: the service on @hono/node-server, configured from the environment. */
import { serve } from '@hono/node-server';
import { createApp } from '../api/app.ts';
import { ConfigError, loadConfig } from '../core/config.ts';
import { loadPackageDir, PackageError } from '../storage/package-files.ts';

try {
  const config = loadConfig(process.env);
  const pkg = await loadPackageDir(config.modelDir);
  const app = createApp({ manifest: pkg.manifest });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
    console.log(`sparse-lavida listening on http://${config.host}:${info.port} (model ${pkg.manifest.name}@${pkg.manifest.version})`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (e) {
  if (e instanceof ConfigError || e instanceof PackageError) {
    console.error(`sparse-lavida: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
