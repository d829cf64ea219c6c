import { describe, expect, it } from 'vitest';
import { resolveCase } from './cases.ts';
import { render } from './render.ts';
import { captionDescribes, judgeAnswer, judgeImage, Tally } from './scorer.ts';
import { parseCaption } from '../../functions/world/language.ts';
import { fillSpec } from '../../functions/world/scene.ts';
import { Rng } from '../../functions/core/rng.ts';

describe('judging images', () => {
  it('accepts an image that shows what the prompt states and nothing else', () => {
    const spec = parseCaption('two green triangles');
    expect(judgeImage(render(fillSpec(spec, new Rng(1))), spec)).toBe(true);
    expect(judgeImage(render(fillSpec(parseCaption('three green triangles'), new Rng(1))), spec)).toBe(false);
    expect(judgeImage(render(fillSpec(parseCaption('a green triangle and a red triangle'), new Rng(1))), spec)).toBe(false);
  });

  it('rejects a blank image', () => {
    expect(judgeImage(render({ objects: [] }), parseCaption('a circle'))).toBe(false);
  });
});

describe('judging answers', () => {
  const c = resolveCase({ task: 'answer', source: 'a small red circle at the top left and a large blue square in the center', question: 'describe the image' }, 0);
  if (c.task !== 'answer') throw new Error('expected an answer case');

  it('compares a caption answer as a scene, in any order', () => {
    expect(judgeAnswer('a large blue square in the center and a small red circle at the top left', c)).toBe(true);
    expect(judgeAnswer('a small red circle at the top left', c)).toBe(false);
    expect(judgeAnswer('a red circle at the top left and a large blue square in the center', c)).toBe(false);
    expect(judgeAnswer('a small red hexagon', c)).toBe(false);
    expect(judgeAnswer('', c)).toBe(false);
  });

  it('matches other answers exactly after normalizing spaces and case', () => {
    const q = resolveCase({ task: 'answer', source: 'a small red circle at the top left', question: 'where is the circle?' }, 0);
    if (q.task !== 'answer') throw new Error('expected an answer case');
    expect(judgeAnswer('Top  left', q)).toBe(true);
    expect(judgeAnswer('top', q)).toBe(false);
  });

  it('needs every object fully stated in a caption', () => {
    const scene = fillSpec(parseCaption('a small red circle at the top left'), new Rng(0));
    expect(captionDescribes('a small red circle at the top left', scene)).toBe(true);
    expect(captionDescribes('a red circle at the top left', scene)).toBe(false);
  });
});

describe('tallying', () => {
  it('reports each category and an overall score that is the mean of the categories', () => {
    const t = new Tally();
    t.add('t2i', 'colors', true);
    t.add('t2i', 'colors', false);
    t.add('t2i', 'counting', true);
    const rows = t.rows();
    expect(rows.map((r) => r.category)).toEqual(['counting', 'colors', 'overall']);
    expect(rows.at(-1)).toEqual({ task: 't2i', category: 'overall', n: 3, score: 0.75 });
  });
});
