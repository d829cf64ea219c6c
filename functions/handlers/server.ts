/** `npm start`: the service on @hono/node-server, configured from the environment. */
import { serve } from '@hono/node-server';
import { isStartupError, startRuntime } from './runtime.ts';

try {
  const { config, model, app, shutdown } = await startRuntime(process.env, { log: (line) => console.log(line) });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
    console.log(`sparse-lavida listening on http://${config.host}:${info.port} (model ${model.pkg.manifest.name}@${model.pkg.manifest.version})`);
  });
  let stopping = false;
  // New requests get 503 while runs in progress finish (SHUTDOWN_GRACE_MS); then the engine and the server close.
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log('sparse-lavida: shutting down');
    void shutdown().finally(() => {
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 2_000).unref();
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (e) {
  if (isStartupError(e)) {
    console.error(`sparse-lavida: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
