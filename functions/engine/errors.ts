/** Errors the engine raises; package problems (bad files, a graph off the contract) are PackageErrors. */

/**
 * - `invalid-input`: a forward or cache call broke the Denoiser contract (the caller's bug);
 * - `cache-disposed`: a forward used a cache after its `dispose()`;
 * - `cache-busy`: a second forward used a cache while one was still running on it;
 * - `run-failed`: onnxruntime rejected a run (the inputs' dtypes and dims were logged);
 * - `closed`: the engine was closed, or stopped after a worker died.
 */
export type EngineErrorCode = 'invalid-input' | 'cache-disposed' | 'cache-busy' | 'run-failed' | 'closed';

export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
