/**
 * `GET /docs`: the OpenAPI document rendered on the server as one self-contained HTML page
 * (no scripts, no CDN), so it works where the service has no internet access.
 */

/** The parts of an OpenAPI 3.1 document the page shows. */
export interface OpenApiDocument {
  readonly info: { readonly title: string; readonly version: string; readonly description?: string | undefined };
  readonly paths?: Readonly<Record<string, object>> | undefined;
  readonly components?: { readonly schemas?: Readonly<Record<string, unknown>> | undefined } | undefined;
}

interface Operation {
  readonly summary?: string;
  readonly description?: string;
  readonly requestBody?: { readonly content?: Record<string, { readonly schema?: unknown }> };
  readonly responses?: Record<string, { readonly description?: string; readonly content?: Record<string, { readonly schema?: unknown }> }>;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A schema as a link to its component, or inline JSON. */
function schemaHtml(schema: unknown): string {
  const ref = typeof schema === 'object' && schema !== null && '$ref' in schema ? String(schema.$ref) : undefined;
  if (ref !== undefined) {
    const name = ref.split('/').at(-1) ?? ref;
    return `<a href="#schema-${escape(name)}">${escape(name)}</a>`;
  }
  return `<pre>${escape(JSON.stringify(schema, null, 2))}</pre>`;
}

function contentHtml(content: Record<string, { readonly schema?: unknown }> | undefined): string {
  if (content === undefined) return '';
  return `<ul>${Object.entries(content)
    .map(([type, media]) => `<li><code>${escape(type)}</code>: ${schemaHtml(media.schema)}</li>`)
    .join('')}</ul>`;
}

function operationHtml(path: string, method: string, op: Operation): string {
  const id = `op-${method}-${path.replace(/[^a-z0-9]+/gi, '-')}`;
  const body = op.requestBody?.content ? `<h4>Request body</h4>${contentHtml(op.requestBody.content)}` : '';
  const responses = Object.entries(op.responses ?? {})
    .map(([status, r]) => `<li><strong>${escape(status)}</strong> ${escape(r.description ?? '')}${contentHtml(r.content)}</li>`)
    .join('');
  return `<section id="${escape(id)}"><h3><span class="method">${escape(method.toUpperCase())}</span> <code>${escape(path)}</code></h3>
<p>${escape(op.summary ?? '')}</p>${op.description ? `<p>${escape(op.description)}</p>` : ''}${body}<h4>Responses</h4><ul>${responses}</ul></section>`;
}

/**
 * @example
 * app.get('/docs', (c) => c.html(renderDocs(app.getOpenAPI31Document(config))));
 */
export function renderDocs(doc: OpenApiDocument): string {
  const operations = Object.entries(doc.paths ?? {}).flatMap(([path, item]) => {
    const byMethod = item as Partial<Record<(typeof METHODS)[number], Operation>>;
    return METHODS.flatMap((method) => {
      const op = byMethod[method];
      return op === undefined ? [] : [{ path, method, op }];
    });
  });
  const index = operations.map(({ path, method }) => `<li><a href="#op-${method}-${escape(path.replace(/[^a-z0-9]+/gi, '-'))}">${method.toUpperCase()} ${escape(path)}</a></li>`).join('');
  const schemas = Object.entries(doc.components?.schemas ?? {})
    .map(([name, schema]) => `<section id="schema-${escape(name)}"><h3>${escape(name)}</h3><pre>${escape(JSON.stringify(schema, null, 2))}</pre></section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(doc.info.title)} API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.6rem;overflow:auto;border-radius:4px}
section{border-top:1px solid #ddd;padding-top:.5rem}.method{display:inline-block;min-width:3.5rem;color:#06c}
</style></head><body>
<h1>${escape(doc.info.title)} <small>${escape(doc.info.version)}</small></h1>
${doc.info.description ? `<p>${escape(doc.info.description)}</p>` : ''}
<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<h2>Operations</h2><ul>${index}</ul>
${operations.map(({ path, method, op }) => operationHtml(path, method, op)).join('\n')}
<h2>Schemas</h2>
${schemas}
</body></html>`;
}
