/**
 * The TypeScript sampler, running the shipped denoiser.onnx through the engine, decodes
 * exactly the tokens the Python reference sampler decoded at every step (temperature 0),
 * in dense and in sparse mode (fixture: models/train/sample.py golden).
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../functions/engine/engine.ts';
import { Pipeline } from '../functions/pipeline/pipeline.ts';
import { sample } from '../functions/sampler/sample.ts';
import { loadPackageDir } from '../functions/storage/package-files.ts';
import { createTokenizers } from '../functions/tokenizers/model-tokenizers.ts';

interface Trace {
  task: 't2i' | 'edit' | 'answer';
  prompt: number[];
  uncond: number[];
  options: { mode: 'dense' | 'sparse'; steps: number; schedule: 'shift' | 'cosine'; shift: number; guidance: number; seed: number; text_block: number; registers: number | null };
  steps: { positions: number[]; tokens: number[] }[];
  answer: number[];
  tokens_in: number;
}

const fixture = JSON.parse(readFileSync('test/fixtures/golden-traces.json', 'utf8')) as { traces: Trace[] };
const pkg = await loadPackageDir('models/shapes-tiny');
const engine = await createEngine(pkg, { log: () => {} });
afterAll(() => engine.close());
const pipeline = new Pipeline(createTokenizers(pkg), engine);

describe('golden traces of the reference sampler', () => {
  for (const trace of fixture.traces) {
    const registers = trace.options.registers === null ? '' : `, ${trace.options.registers} registers`;
    it(`${trace.task} ${trace.options.mode}${trace.task === 'answer' ? ` (text block ${trace.options.text_block}${registers})` : ''}: same tokens at every step`, async () => {
      const it = sample(engine, pipeline.samplerModel(), pipeline.problem(trace.task, trace.prompt, trace.uncond), {
        sampler: trace.options.mode, steps: trace.options.steps,
        schedule: { kind: trace.options.schedule, shift: trace.options.shift },
        temperature: 0, guidance: trace.options.guidance, seed: trace.options.seed, textBlock: trace.options.text_block,
        ...(trace.options.registers === null ? {} : { registers: trace.options.registers }),
      });
      const steps: { positions: number[]; tokens: number[] }[] = [];
      let result;
      for (;;) {
        const r = await it.next();
        if (r.done) {
          result = r.value;
          break;
        }
        steps.push({ positions: [...r.value.positions], tokens: [...r.value.tokens] });
      }
      expect(steps).toEqual(trace.steps);
      expect(result.answer).toEqual(trace.answer);
      expect(result.tokensIn).toBe(trace.tokens_in);
    });
  }
});
