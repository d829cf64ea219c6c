/**
 * `GET /` and `GET /playground.js`: the playground, a plain HTML page and one small script
 * (functions/api/playground/) that streams previews with fetch. Both files are read once,
 * when the app is created, and served as they are: no build step, and a Content-Security-Policy
 * that lets the page load nothing from elsewhere.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';

export interface PlaygroundOptions {
  /** Shown in the header, e.g. `shapes-tiny@0.1.0`. */
  readonly model: string;
  /** The server has API keys: the page asks for one and sends it as a bearer token. */
  readonly apiKeyRequired: boolean;
}

const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function readAsset(name: string): string {
  const url = new URL(`./playground/${name}`, import.meta.url);
  try {
    return readFileSync(url, 'utf8');
  } catch (e) {
    // The compiled app needs the files beside it (npm run build copies them to dist/).
    throw new Error(`the playground file ${fileURLToPath(url)} is missing: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * @example
 * app.route('/', playground({ model: 'shapes-tiny@0.1.0', apiKeyRequired: false }));
 */
export function playground(options: PlaygroundOptions): Hono {
  const values: Record<string, string> = { auth: options.apiKeyRequired ? 'bearer' : 'none', model: options.model };
  const page = readAsset('index.html').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`the playground page has an unknown placeholder {{${key}}}`);
    return escapeHtml(value);
  });
  const script = readAsset('playground.js');
  return new Hono()
    .get('/', (c) => c.html(page, 200, HEADERS))
    .get('/playground.js', (c) => c.body(script, 200, { ...HEADERS, 'content-type': 'text/javascript; charset=utf-8' }));
}
