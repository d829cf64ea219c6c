/** `npm start`: the service on @hono/node-server, configured from the environment. */
import { serve } from '@hono/node-server';
import { isStartupError, startRuntime } from './runtime.ts';

try {
  const { config, model, app } = await startRuntime(process.env, { log: (line) => console.log(line) });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
    console.log(`sparse-lavida listening on http://${config.host}:${info.port} (model ${model.pkg.manifest.name}@${model.pkg.manifest.version})`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (e) {
  if (isStartupError(e)) {
    console.error(`sparse-lavida: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
