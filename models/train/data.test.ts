import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { idsToCodes } from '../../functions/tokenizers/prompt-layout.ts';
import { judgeImage, captionDescribes } from '../world/scorer.ts';
import { parseCaption, parseInstruction, parseQuestion } from '../../functions/world/language.ts';
import { detect, detectedScene } from '../world/detector.ts';
import { answerQuestion, applyEdit } from '../world/semantics.ts';
import { decodeNpy, encodeNpy } from './npy.ts';

const run = promisify(execFile);
const out = mkdtempSync(join(tmpdir(), 'data-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
const tok = createTokenizers(await loadPackageDir('models/shapes-tiny'));
const { special } = tok.manifest.vocab;

await run(join('node_modules', '.bin', 'tsx'), ['models/train/data-cli.ts', '--out', out, '--n', '40', '--seed', '5']);

function load(task: string, part: 'prompt' | 'answer'): { rows: number[][]; shape: readonly number[] } {
  const arr = decodeNpy(gunzipSync(readFileSync(join(out, `${task}.${part}.npy.gz`))));
  const [n, width] = arr.shape as [number, number];
  return { shape: arr.shape, rows: Array.from({ length: n }, (_, i) => Array.from(arr.data.subarray(i * width, (i + 1) * width))) };
}

/** The text ids of a prompt after its image and separator, without padding. */
function promptText(row: number[], withImage: boolean): string {
  const start = withImage ? 2 + 256 : 1;
  return tok.text.decode(row.slice(start).filter((id) => id !== special.pad));
}

const imageOf = (ids: number[]) => tok.image.decode(idsToCodes(tok.manifest.vocab, ids));

describe('npm run data', () => {
  it('writes each task as uint16 prompt and answer arrays with the sizes meta.json states', () => {
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as { tasks: Record<string, { n: number; prompt_len: number; answer_len: number }> };
    for (const task of ['t2i', 'edit', 'answer']) {
      const m = meta.tasks[task];
      expect(load(task, 'prompt').shape).toEqual([40, m?.prompt_len]);
      expect(load(task, 'answer').shape).toEqual([40, m?.answer_len]);
    }
  });

  it('pairs text-to-image prompts with images that show them', () => {
    for (const row of load('t2i', 'prompt').rows.map((p, i) => [p, load('t2i', 'answer').rows[i] as number[]] as const)) {
      const [prompt, answer] = row;
      expect(prompt[0]).toBe(special.t2i);
      expect(judgeImage(imageOf(answer), parseCaption(promptText(prompt, false)))).toBe(true);
    }
  });

  it('pairs edit prompts with the edited image', () => {
    const answers = load('edit', 'answer').rows;
    load('edit', 'prompt').rows.forEach((prompt, i) => {
      expect(prompt[0]).toBe(special.edit);
      expect(prompt[257]).toBe(special.sep);
      const source = detectedScene(detect(imageOf(prompt.slice(1, 257))));
      expect(source).not.toBeNull();
      const expected = applyEdit(source!, parseInstruction(promptText(prompt, true)));
      expect(judgeImage(imageOf(answers[i] as number[]), expected)).toBe(true);
    });
  });

  it('pairs questions with their answers, filled with end tokens', () => {
    const answers = load('answer', 'answer').rows;
    load('answer', 'prompt').rows.forEach((prompt, i) => {
      const source = detectedScene(detect(imageOf(prompt.slice(1, 257))))!;
      const question = parseQuestion(promptText(prompt, true));
      const answer = answers[i] as number[];
      expect(answer.at(-1)).toBe(special.end);
      const text = tok.text.decode(answer);
      if (question.kind === 'describe') expect(captionDescribes(text, source)).toBe(true);
      else expect(text).toBe(answerQuestion(source, question));
    });
  });
});

describe('.npy files', () => {
  it('round-trip with a header numpy reads (64-byte aligned, little-endian uint16)', () => {
    const bytes = encodeNpy({ dtype: '<u2', shape: [2, 3], data: Uint16Array.from([1, 2, 3, 4, 5, 65535]) });
    expect(bytes.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
    expect((10 + bytes.readUInt16LE(8)) % 64).toBe(0);
    expect(bytes.toString('latin1')).toContain("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }");
    const back = decodeNpy(bytes);
    expect(back.shape).toEqual([2, 3]);
    expect(Array.from(back.data)).toEqual([1, 2, 3, 4, 5, 65535]);
  });
});
