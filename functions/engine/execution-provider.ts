/**
 * The execution provider check behind `ORT_EXECUTION_PROVIDER`. onnxruntime-node lists CUDA
 * among its backends whether or not its provider libraries are installed, so the only
 * reliable test is to open a session on CUDA: a one-node model is enough. Asking for CUDA
 * where it cannot run stops start-up instead of quietly running on the CPU.
 */
import ort from 'onnxruntime-node';
import type { ExecutionProvider } from '../core/config.ts';

export class ExecutionProviderError extends Error {
  override readonly name = 'ExecutionProviderError';
}

/**
 * A serialized ONNX model, y = Identity(x) over float32[1] (IR version 8, opset 17), as
 * written by `onnx.helper.make_model(make_graph([make_node('Identity', ['x'], ['y'])], 'probe', …))`.
 */
const PROBE_MODEL = Buffer.from(
  '080812003a3b0a100a017812017922084964656e74697479120570726f62655a0f0a0178120a0a08080112040a020801620f0a0179120a0a08080112040a02080142040a001011',
  'hex',
);

/**
 * Resolves when onnxruntime can run on `provider`; rejects with an ExecutionProviderError
 * saying why not.
 *
 * @example
 * await requireExecutionProvider(config.executionProvider);
 */
export async function requireExecutionProvider(provider: ExecutionProvider): Promise<void> {
  if (provider === 'cpu') return;
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(PROBE_MODEL, { executionProviders: [provider], logSeverityLevel: 4 });
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    throw new ExecutionProviderError(
      `ORT_EXECUTION_PROVIDER=${provider}, but onnxruntime-node cannot use it: ${reason}. ` +
        'CUDA needs an NVIDIA driver and onnxruntime-node installed with its CUDA libraries (infra/Dockerfile.cuda); set ORT_EXECUTION_PROVIDER=cpu to run on the CPU.',
    );
  }
  await session.release();
}
