/**
 * The PyTorch parity fixture (written by models/train/parity.py): inputs and outputs of a
 * dense call and of a sparse step, as flat tensors, with helpers to run them directly.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

export interface FlatTensor {
  dims: number[];
  data: number[];
}

export interface ParityCall {
  inputs: Record<string, FlatTensor>;
  outputs: Record<string, FlatTensor>;
}

export const parityFixture = JSON.parse(readFileSync('test/fixtures/denoiser-parity.json', 'utf8')) as { dense: ParityCall; sparse: ParityCall };

/** The call's inputs as onnxruntime feeds (`*_ids` as int64, the rest float32). */
export function ortFeeds(call: ParityCall): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, { dims, data }] of Object.entries(call.inputs)) {
    feeds[name] = name.endsWith('_ids')
      ? new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), dims)
      : new ort.Tensor('float32', Float32Array.from(data), dims);
  }
  return feeds;
}

/** Largest elementwise difference; arrays of different lengths are an error. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`comparing ${a.length} values with ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}
