/**
 * Runs evaluation cases through a producer of results and scores them. Producers are the
 * model-free oracles here (ground-truth renders, optionally through the VQ tokenizer) and,
 * with the engine, the model itself.
 */
import type { RgbImage } from '../../functions/core/image.ts';
import type { ImageVq } from '../../functions/tokenizers/image-vq.ts';
import type { GenerationOptions, Pipeline, Usage } from '../../functions/pipeline/pipeline.ts';
import type { ResolvedCase } from './cases.ts';
import { detect, detectedScene } from './detector.ts';
import { render } from './render.ts';
import { judgeAnswer, judgeImageSeen, Tally } from './scorer.ts';
import { answerQuestion } from './semantics.ts';

type ImageCase = Extract<ResolvedCase, { task: 't2i' | 'edit' }>;
type AnswerCase = Extract<ResolvedCase, { task: 'answer' }>;

/** What produces results for cases: an image for t2i and edit, text for answer. */
export interface Producer {
  image(c: ImageCase): Promise<RgbImage>;
  answer(c: AnswerCase): Promise<string>;
}

/**
 * Ground truth: the reference render of the expected scene; answers read off the source
 * image by the detector. With `vq`, every image passes through encode/decode first, which
 * measures what the tokenizer loses.
 */
export function oracleProducer(vq?: ImageVq): Producer {
  const through = (image: RgbImage) => (vq ? vq.decode(vq.encode(image)) : image);
  return {
    image: async (c) => through(render(c.reference)),
    answer: async (c) => {
      const seen = detectedScene(detect(through(render(c.source))));
      if (!seen) return '';
      try {
        return answerQuestion(seen, c.question);
      } catch {
        return '';
      }
    },
  };
}

/**
 * The model through the pipeline: each case is sampled with its own seed, so a run is
 * reproducible; sampling settings default to the manifest's. `tokensIn` counts the tokens
 * pushed through the network so far, over every case.
 */
export function pipelineProducer(pipeline: Pipeline, options: GenerationOptions): Producer & { readonly tokensIn: number } {
  let tokensIn = 0;
  const finish = async <E, R extends { usage: Usage }>(it: AsyncGenerator<E, R, void>): Promise<R> => {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        tokensIn += r.value.usage.tokensIn;
        return r.value;
      }
    }
  };
  return {
    get tokensIn() {
      return tokensIn;
    },
    image: async (c) => {
      const opts = { ...options, seed: c.seed };
      if (c.task === 't2i') return (await finish(pipeline.generate(c.case.task === 't2i' ? c.case.prompt : '', opts))).image;
      const instruction = c.case.task === 'edit' ? c.case.instruction : '';
      return (await finish(pipeline.edit(render(c.source), instruction, opts))).image;
    },
    answer: async (c) => {
      const question = c.case.task === 'answer' ? c.case.question : '';
      return (await finish(pipeline.answer(render(c.source), question, { ...options, seed: c.seed }))).text;
    },
  };
}

export interface CaseResult {
  /** The case's place in the list (the `index` that `--export` writes for it). */
  readonly index: number;
  readonly case: ResolvedCase;
  readonly correct: boolean;
  /** What came out: the answer's text, or what the detector saw in the image. */
  readonly seen: string;
}

export async function runEval(
  cases: readonly ResolvedCase[],
  producer: Producer,
  onResult?: (r: CaseResult) => void,
): Promise<Tally> {
  const tally = new Tally();
  for (const [index, c] of cases.entries()) {
    let result: CaseResult;
    if (c.task === 'answer') {
      const answer = await producer.answer(c);
      result = { index, case: c, correct: judgeAnswer(answer, c), seen: answer };
    } else {
      result = { index, case: c, ...judgeImageSeen(await producer.image(c), c.expected) };
    }
    tally.add(c.task, c.category, result.correct);
    onResult?.(result);
  }
  return tally;
}
