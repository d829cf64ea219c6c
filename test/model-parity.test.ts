/**
 * The shipped denoiser.onnx, run by onnxruntime-node, gives the outputs PyTorch gave for
 * the same inputs (fixture written by models/train/parity.py): a dense call with an empty
 * cache and a padded second row, and a sparse step against a prefilled cache.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadPackageDir } from '../functions/storage/package-files.ts';
import { maxAbsDiff, ortFeeds, parityFixture as fixture } from './support/parity.ts';

const pkg = await loadPackageDir('models/shapes-tiny');
const session = await ort.InferenceSession.create(pkg.file('denoiser.onnx'), { intraOpNumThreads: 1 });

describe('denoiser.onnx under onnxruntime-node', () => {
  it('declares the contract inputs and outputs', () => {
    const layers = pkg.manifest.model?.layers ?? 0;
    expect(layers).toBeGreaterThan(0);
    const past = Array.from({ length: layers }, (_, i) => [`past_key_${i}`, `past_value_${i}`]).flat();
    const fresh = Array.from({ length: layers }, (_, i) => [`new_key_${i}`, `new_value_${i}`]).flat();
    expect([...session.inputNames].sort()).toEqual(['attn_bias', 'input_ids', 'position_ids', ...past].sort());
    expect([...session.outputNames].sort()).toEqual(['logits', ...fresh].sort());
  });

  for (const kind of ['dense', 'sparse'] as const) {
    it(`matches PyTorch within 1e-4 on a ${kind} call`, async () => {
      const call = fixture[kind];
      const results = await session.run(ortFeeds(call));
      for (const [name, expected] of Object.entries(call.outputs)) {
        const got = results[name];
        expect(got, name).toBeDefined();
        expect(got?.dims, name).toEqual(expected.dims);
        expect(maxAbsDiff(got?.data as Float32Array, expected.data), name).toBeLessThan(1e-4);
      }
    });
  }
});
