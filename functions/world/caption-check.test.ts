import { describe, expect, it } from 'vitest';
import { captionCheck, describe as caption, sceneOfCaption } from './language.ts';
import type { Scene } from './scene.ts';

const scene: Scene = {
  objects: [
    { shape: 'circle', color: 'red', size: 'small', cell: 0 },
    { shape: 'square', color: 'blue', size: 'large', cell: 4 },
  ],
};

describe('sceneOfCaption', () => {
  it('reads a full caption back to its scene', () => {
    expect(sceneOfCaption(caption(scene))).toEqual(scene);
  });

  it('gives null for a caption that leaves an attribute open, puts two objects in one cell, or leaves the grammar', () => {
    expect(sceneOfCaption('a red circle at the top left')).toBeNull();
    expect(sceneOfCaption('a small red circle on the left and a large blue square on the left')).toBeNull();
    expect(sceneOfCaption('a small red circle square the left')).toBeNull();
  });
});

describe('captionCheck', () => {
  const design = captionCheck('a small red circle at the top left and a large blue square in the center');

  it('agrees with a caption of a scene that shows the prompt, in any order', () => {
    expect(design?.(caption(scene))).toBe(true);
    expect(design?.('a large blue square in the center and a small red circle at the top left')).toBe(true);
    expect(captionCheck('a red circle and a square')?.(caption(scene))).toBe(true);
  });

  it('disagrees when colours go with the wrong shapes, an object is missing or one is extra', () => {
    expect(design?.('a small blue circle at the top left and a large red square in the center')).toBe(false);
    expect(design?.('a small red circle at the top left')).toBe(false);
    expect(captionCheck('two blue squares')?.('a large blue square at the top, a small blue square on the left and a large blue square in the center')).toBe(false);
    expect(captionCheck('two blue squares')?.('a large blue square at the top and a small blue square on the left')).toBe(true);
  });

  it('disagrees with an answer that is not a full caption', () => {
    expect(captionCheck('a red circle')?.('a red circle')).toBe(false);
    expect(captionCheck('a red circle')?.('red')).toBe(false);
  });

  it('cannot read a prompt outside the grammar', () => {
    expect(captionCheck('circle red a')).toBeNull();
  });
});
