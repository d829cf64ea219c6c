/** The parts of s3rver 3.7 (a Koa application) that the tests use; the package ships no types. */
declare module 's3rver' {
  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
  }
  interface KoaContext {
    method: string;
    path: string;
    query: Record<string, string | string[] | undefined>;
    req: import('node:http').IncomingMessage;
    status: number;
    type: string;
    body: unknown;
    store: { getBucket(name: string): Promise<unknown> };
  }
  type Middleware = (ctx: KoaContext, next: () => Promise<unknown>) => Promise<unknown>;
  export default class S3rver {
    constructor(options: S3rverOptions);
    /** Koa's middleware list, composed when the server starts listening. */
    middleware: Middleware[];
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
