/**
 * `Stream<Item>`: the events of a Server-Sent Events response as an async iterable of their
 * JSON payloads. Leaving the loop early (`break`, `return`, a throw) aborts the HTTP request,
 * which cancels the run on the server; an `error` event is thrown as a {@link StreamError};
 * `: ping` comments are skipped and `data: [DONE]` ends a chat stream.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { errorObject, SparseLavidaError, StreamError } from './errors.ts';

export interface StreamOptions {
  /** Maps a failure to read the body (a reset, an abort) to the error the consumer gets. */
  readonly failure?: (e: unknown) => Error;
  /** Called once when the stream ends, however it ends. */
  readonly onEnd?: () => void;
}

/**
 * @example
 * const stream = await client.images.generate({ prompt: 'a red circle', stream: true, preview_every: 2 });
 * for await (const event of stream) {
 *   if (event.type === 'image_generation.partial_image') show(event.b64_json);
 *   else if (wantToStop) break; // aborts the request; the server stops sampling
 * }
 */
export class Stream<Item> implements AsyncIterable<Item> {
  #started = false;

  constructor(
    private readonly iterate: () => AsyncGenerator<Item, void, undefined>,
    /** Aborting it ends the request (and with it the stream). */
    readonly controller: AbortController,
  ) {}

  /** The JSON payloads of an SSE response's events. */
  static fromSSEResponse<Item>(response: Response, controller: AbortController, options: StreamOptions = {}): Stream<Item> {
    return new Stream(() => readEvents<Item>(response, controller, options), controller);
  }

  [Symbol.asyncIterator](): AsyncIterator<Item> {
    if (this.#started) throw new SparseLavidaError('a stream can be iterated only once');
    this.#started = true;
    return this.iterate();
  }

  /** Ends the stream from outside the loop: the request is aborted. */
  abort(): void {
    this.controller.abort();
  }
}

async function* readEvents<Item>(response: Response, controller: AbortController, options: StreamOptions): AsyncGenerator<Item, void, undefined> {
  const failure = options.failure ?? ((e: unknown) => (e instanceof Error ? e : new SparseLavidaError(String(e))));
  let finished = false;
  try {
    if (!response.body) throw new SparseLavidaError('the stream response has no body');
    const reader = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
    let ended = false;
    for (;;) {
      const next = await reader.read().catch((e: unknown) => {
        throw failure(e);
      });
      if (next.done) break;
      const { event, data } = next.value;
      // OpenAI's end marker; read on to the end of the body, which follows it.
      if (ended || data === '[DONE]') {
        ended = true;
        continue;
      }
      const payload = parseJson(data);
      if (event === 'error') throw new StreamError(errorObject(payload), `the stream ended with an error event: ${data}`);
      yield payload as Item;
    }
    finished = true;
  } finally {
    if (!finished) controller.abort();
    options.onEnd?.();
  }
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new SparseLavidaError(`the stream sent an event that is not JSON: ${data.slice(0, 200)}`);
  }
}
