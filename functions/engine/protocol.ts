/**
 * Messages between the engine (main thread) and its ORT workers. A worker owns one
 * onnxruntime session and the keys/values of the caches created on it; the main thread only
 * holds cache ids. Typed arrays travel by structured clone (to the worker) or are transferred
 * (logits, back).
 */
import type { ExecutionProvider } from '../core/config.ts';

/** `workerData` of an ORT worker. */
export interface WorkerSetup {
  /** The verified bytes of the denoiser graph. */
  readonly model: Uint8Array;
  readonly layers: number;
  readonly heads: number;
  readonly headDim: number;
  /** The bias value meaning "may not attend", used to mask padding when runs are merged. */
  readonly maskValue: number;
  readonly executionProvider: ExecutionProvider;
  readonly intraOpNumThreads: number;
}

/** What a worker's caches hold: how many, and their tokens (rows × length, summed). */
export interface HeldCaches {
  readonly caches: number;
  readonly tokens: number;
}

/** One forward's share of a run: `batch` rows of `length` tokens against cache `cache` (null: C = 0). */
export interface RunPart {
  readonly cache: number | null;
  readonly batch: number;
  readonly length: number;
  /** C as the main thread counts it; the worker checks that it agrees. */
  readonly pastLength: number;
  readonly inputIds: Int32Array;
  readonly positionIds: Int32Array;
  /** [batch, length, pastLength + length]. */
  readonly attnBias: Float32Array;
  readonly append: number;
  readonly read: { readonly start: number; readonly count: number };
}

export type ToWorker =
  | { readonly type: 'cache-create'; readonly cache: number; readonly batch: number }
  | { readonly type: 'cache-dispose'; readonly cache: number }
  /** One session.run for all parts (same `length`; rows stacked in part order). */
  | { readonly type: 'run'; readonly run: number; readonly parts: readonly RunPart[] }
  /** After the messages before it (a run in progress finishes): release the session and exit. */
  | { readonly type: 'close' };

export type FromWorker =
  | { readonly type: 'ready'; readonly inputNames: readonly string[]; readonly outputNames: readonly string[] }
  | { readonly type: 'start-failed'; readonly message: string }
  /** `logits[i]`: part i's [batch * read.count * vocab]; `held`: the worker's caches after the run. */
  | { readonly type: 'ran'; readonly run: number; readonly logits: Float32Array[]; readonly vocab: number; readonly held: HeldCaches }
  /** `inputs`: the dtype and dims of every feed, e.g. `input_ids int64 [1,13]` (never data). */
  | { readonly type: 'run-failed'; readonly run: number; readonly message: string; readonly inputs: string };
