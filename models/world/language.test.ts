import { describe as group, expect, it } from 'vitest';
import { Rng } from '../../functions/core/rng.ts';
import { splitWords } from '../../functions/tokenizers/words.ts';
import {
  describe, GrammarError, instructionText, parseCaption, parseInstruction, parseQuestion, questionText, WORDS,
} from '../../functions/world/language.ts';
import { generateCases, sampleEdit, sampleQuestion } from './cases.ts';
import { fillSpec, sampleScene, satisfies, scenesEqual, specOf } from '../../functions/world/scene.ts';
import { EDIT_KINDS, QUESTION_KINDS } from '../../functions/world/language.ts';

function grammarError(fn: () => unknown): GrammarError {
  try {
    fn();
  } catch (e) {
    if (e instanceof GrammarError) return e;
    throw e;
  }
  throw new Error('expected a GrammarError');
}

group('captions', () => {
  it('writes the design example the way the design spells it', () => {
    const scene = {
      objects: [
        { shape: 'circle', color: 'red', size: 'small', cell: 0 },
        { shape: 'square', color: 'blue', size: 'large', cell: 4 },
      ] as const,
    };
    expect(describe(scene)).toBe('a small red circle at the top left and a large blue square in the center');
  });

  it('parses every caption it writes back to the same scene', () => {
    const rng = new Rng(1);
    for (let i = 0; i < 500; i++) {
      const scene = sampleScene(rng);
      const spec = parseCaption(describe(scene));
      expect(satisfies(scene, spec)).toBe(true);
      expect(scenesEqual(fillSpec(spec, new Rng(i)), scene)).toBe(true);
    }
  });

  it('reads counting prompts as several equal objects', () => {
    const spec = parseCaption('two green triangles');
    expect(spec.objects).toEqual([{ shape: 'triangle', color: 'green' }, { shape: 'triangle', color: 'green' }]);
    expect(parseCaption('three small circles').objects).toHaveLength(3);
  });

  it('uses "an" before a vowel and accepts both articles', () => {
    expect(describe({ objects: [{ shape: 'circle', color: 'orange', size: 'large', cell: 4 }] })).toBe('a large orange circle in the center');
    expect(parseCaption('an orange circle').objects).toEqual([{ shape: 'circle', color: 'orange' }]);
  });

  it('draws the attributes a prompt leaves open from the seed', () => {
    const spec = parseCaption('a circle');
    const a = fillSpec(spec, new Rng(1));
    const b = fillSpec(spec, new Rng(1));
    expect(scenesEqual(a, b)).toBe(true);
    const seen = new Set<string>();
    for (let s = 0; s < 50; s++) seen.add(fillSpec(spec, new Rng(s)).objects[0]?.color ?? '');
    expect(seen.size).toBeGreaterThan(3);
  });

  it('names an unknown word and its position', () => {
    const e = grammarError(() => parseCaption('a red hexagon at the top'));
    expect(e.word).toBe('hexagon');
    expect(e.position).toBe(3);
    expect(e.message).toContain('"hexagon" at position 3');
  });

  it('names a known word that is out of place', () => {
    const e = grammarError(() => parseCaption('a red blue circle'));
    expect(e.word).toBe('blue');
    expect(e.position).toBe(3);
    expect(e.message).toContain('expected a shape');
  });

  it('rejects an incomplete sentence at its end', () => {
    const e = grammarError(() => parseCaption('a small red'));
    expect(e.position).toBe(4);
    expect(e.message).toContain('at the end');
  });

  it('has a vocabulary without duplicates that covers every generated sentence', () => {
    expect(new Set(WORDS).size).toBe(WORDS.length);
    for (const task of ['t2i', 'edit', 'answer'] as const) {
      for (const c of generateCases(task, 120, 5)) {
        const sentences = [...Object.values(c.case).slice(1), ...(c.task === 'answer' ? [c.expected] : [])];
        for (const word of sentences.flatMap((s) => splitWords(s))) expect(WORDS).toContain(word);
      }
    }
  });
});

group('instructions', () => {
  it('parses every instruction it writes back to the same edit', () => {
    const rng = new Rng(2);
    let made = 0;
    for (let i = 0; i < 400; i++) {
      const scene = sampleScene(rng);
      const edit = sampleEdit(EDIT_KINDS[i % EDIT_KINDS.length]!, scene, rng);
      if (!edit) continue;
      made++;
      expect(parseInstruction(instructionText(edit))).toEqual(edit);
    }
    expect(made).toBeGreaterThan(300);
  });

  it('reads the design examples', () => {
    expect(parseInstruction('make the red circle blue')).toEqual({ kind: 'recolor', ref: { shape: 'circle', color: 'red' }, color: 'blue' });
    expect(parseInstruction('move the blue square to the left')).toEqual({ kind: 'move', ref: { shape: 'square', color: 'blue' }, cell: 3 });
    expect(parseInstruction('remove the green triangle')).toEqual({ kind: 'remove', ref: { shape: 'triangle', color: 'green' } });
    expect(parseInstruction('add a small yellow circle at the bottom right')).toEqual({
      kind: 'add', object: { shape: 'circle', size: 'small', color: 'yellow', cell: 8 },
    });
    expect(parseInstruction('make the red circle large')).toEqual({ kind: 'resize', ref: { shape: 'circle', color: 'red' }, size: 'large' });
  });

  it('says what is missing from an instruction', () => {
    expect(grammarError(() => parseInstruction('make the red circle')).message).toContain('expected a color or a size');
    expect(grammarError(() => parseInstruction('paint the red circle blue')).word).toBe('paint');
  });
});

group('questions', () => {
  it('parses every question it writes back to the same question', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 300; i++) {
      const scene = sampleScene(rng);
      const q = sampleQuestion(QUESTION_KINDS[i % QUESTION_KINDS.length]!, scene, rng);
      if (!q) continue;
      expect(parseQuestion(questionText(q))).toEqual(q);
    }
  });

  it('reads the design examples', () => {
    expect(parseQuestion('what color is the circle?')).toEqual({ kind: 'color', ref: { shape: 'circle' } });
    expect(parseQuestion('how many shapes are there?')).toEqual({ kind: 'count' });
    expect(parseQuestion('where is the red circle?')).toEqual({ kind: 'position', ref: { shape: 'circle', color: 'red' } });
    expect(parseQuestion('describe the image')).toEqual({ kind: 'describe' });
  });

  it('keeps a full scene spec complete through the caption', () => {
    const scene = sampleScene(new Rng(9), 3);
    expect(parseCaption(describe(scene))).toEqual(specOf(scene));
  });
});
