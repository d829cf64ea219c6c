/**
 * The TypeScript sampler, running the shipped denoiser.onnx through the engine, decodes
 * exactly the tokens the Python reference sampler decoded at every step (temperature 0),
 * in dense and in sparse mode (fixture: models/train/sample.py golden).
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../functions/engine/engine.ts';
import { Pipeline } from '../functions/pipeline/pipeline.ts';
import { sample, type SampleProblem } from '../functions/sampler/sample.ts';
import { loadPackageDir } from '../functions/storage/package-files.ts';
import { createTokenizers } from '../functions/tokenizers/model-tokenizers.ts';

interface Trace {
  task: 't2i' | 'edit' | 'answer';
  prompt: number[];
  uncond: number[];
  options: { mode: 'dense' | 'sparse'; steps: number; schedule: 'shift' | 'cosine'; shift: number; guidance: number; seed: number; text_block: number };
  steps: { positions: number[]; tokens: number[] }[];
  answer: number[];
  tokens_in: number;
}

const fixture = JSON.parse(readFileSync('test/fixtures/golden-traces.json', 'utf8')) as { traces: Trace[] };
const pkg = await loadPackageDir('models/shapes-tiny');
const engine = await createEngine(pkg, { log: () => {} });
afterAll(() => engine.close());
const pipeline = new Pipeline(createTokenizers(pkg), engine);
const manifest = pkg.manifest;
const seg = manifest.model!.positions.segments;

describe('golden traces of the reference sampler', () => {
  for (const trace of fixture.traces) {
    it(`${trace.task} ${trace.options.mode}: same tokens at every step`, async () => {
      const length = manifest.limits[trace.task]!.answer;
      const { special, text, image } = manifest.vocab;
      const problem: SampleProblem = {
        kind: trace.task === 'answer' ? 'text' : 'image',
        grid: manifest.image.grid,
        length,
        prompts: [trace.prompt, trace.uncond].map((ids) => ({ ids, positions: pipeline.promptPositions(trace.task, ids.length) })),
        answerPositions: Array.from({ length }, (_, i) => (trace.task === 'answer' ? seg.answer.start : seg.image.start) + i),
        allowed: trace.task === 'answer' ? [[special.end, special.end + 1], [text.start, text.start + text.count]] : [[image.start, image.start + image.count]],
      };
      const it = sample(engine, {
        maskId: special.mask, regId: special.reg, endId: special.end, padId: special.pad,
        registers: manifest.model!.registers,
        registerPositions: Array.from({ length: seg.registers.count }, (_, i) => seg.registers.start + i),
      }, problem, {
        sampler: trace.options.mode, steps: trace.options.steps,
        schedule: { kind: trace.options.schedule, shift: trace.options.shift },
        temperature: 0, guidance: trace.options.guidance, seed: trace.options.seed, textBlock: trace.options.text_block,
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
