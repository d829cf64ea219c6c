import type { SparseLavida } from './client.ts';

/** A group of methods (`client.images`, `client.chat.completions`, …) over the client's request path. */
export abstract class APIResource {
  constructor(protected readonly client: SparseLavida) {}
}
