import { describe, expect, it } from 'vitest';
import { cudaProviderInstalled } from '../../test/support/ort.ts';
import { ExecutionProviderError, requireExecutionProvider } from './execution-provider.ts';

describe('the execution provider check', () => {
  it('accepts the CPU', async () => {
    await expect(requireExecutionProvider('cpu')).resolves.toBeUndefined();
  });

  it.skipIf(cudaProviderInstalled)('refuses CUDA where its libraries are missing, saying what to do', async () => {
    const check = requireExecutionProvider('cuda');
    await expect(check).rejects.toThrow(ExecutionProviderError);
    await expect(check).rejects.toThrow(/^ORT_EXECUTION_PROVIDER=cuda, but onnxruntime-node cannot use it: .+set ORT_EXECUTION_PROVIDER=cpu/);
  });
});
