/**
 * The HTTP application. Routes are added here as the service grows; handlers build the
 * dependencies and pass them in, so tests can run the same app on loopback.
 */
import { Hono } from 'hono';
import type { Manifest } from '../core/manifest.ts';

export interface AppDeps {
  readonly manifest: Manifest;
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) =>
    c.json({ status: 'ok', model: { name: deps.manifest.name, version: deps.manifest.version } }),
  );
  return app;
}
