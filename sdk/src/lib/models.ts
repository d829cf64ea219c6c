/** `client.models`: the served models (GET /v1/models, GET /v1/models/{model}). */
import type { RequestOptions } from './client.ts';
import { APIResource } from './resource.ts';
import type { Model, ModelList } from './types.ts';

export class Models extends APIResource {
  /**
   * @example
   * const { data } = await client.models.list();
   * console.log(data.map((m) => `${m.id}@${m.version}`));
   */
  list(options?: RequestOptions): Promise<ModelList> {
    return this.client.get<ModelList>('/v1/models', options);
  }

  /** One model; a NotFoundError when the server does not serve it. */
  retrieve(model: string, options?: RequestOptions): Promise<Model> {
    return this.client.get<Model>(`/v1/models/${encodeURIComponent(model)}`, options);
  }
}
