/** Whether onnxruntime-node was installed with its CUDA provider (never with ONNXRUNTIME_NODE_INSTALL=skip). */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const ortRoot = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
export const cudaProviderInstalled = existsSync(join(ortRoot, 'bin/napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'));
