import { describe, expect, it } from 'vitest';
import { parseCaption, parseInstruction, parseQuestion, WorldError } from '../../functions/world/language.ts';
import { answerQuestion, applyEdit } from './semantics.ts';
import { fillSpec, satisfies, type Scene } from '../../functions/world/scene.ts';
import { Rng } from '../../functions/core/rng.ts';

const scene: Scene = fillSpec(
  parseCaption('a small red circle at the top left, a large blue square in the center and a small red triangle at the bottom right'),
  new Rng(0),
);

const edited = (instruction: string) => applyEdit(scene, parseInstruction(instruction));

describe('applying edits', () => {
  it('recolors, resizes, moves and removes the object a reference names', () => {
    expect(satisfies(fillSpec(edited('make the red circle blue'), new Rng(1)), parseCaption(
      'a small blue circle at the top left, a large blue square in the center and a small red triangle at the bottom right'))).toBe(true);
    expect(edited('make the square small').objects).toContainEqual({ shape: 'square', color: 'blue', size: 'small', cell: 4 });
    expect(edited('move the triangle to the left').objects).toContainEqual({ shape: 'triangle', color: 'red', size: 'small', cell: 3 });
    expect(edited('remove the blue square').objects).toHaveLength(2);
  });

  it('adds an object with only what the instruction states', () => {
    const small = fillSpec(parseCaption('a red circle at the top'), new Rng(0));
    const spec = applyEdit(small, parseInstruction('add a green square'));
    expect(spec.objects).toHaveLength(2);
    expect(spec.objects[1]).toEqual({ shape: 'square', color: 'green' });
  });

  it('refuses edits that do not fit the scene, saying why', () => {
    expect(() => edited('make the green circle red')).toThrow(WorldError);
    expect(() => edited('make the red shape blue')).toThrow(/shape/);
    expect(() => edited('remove the red circle at the bottom')).toThrow(/no object/);
    expect(() => edited('move the circle to the center')).toThrow(/center is already taken/);
    expect(() => edited('add a red square at the top')).toThrow(/already holds 3/);
    expect(() => applyEdit(scene, parseInstruction('remove the small red shape'))).toThrow();
  });

  it('refuses an ambiguous reference', () => {
    expect(() => edited('make the small red circle large')).not.toThrow();
    const twoRed = fillSpec(parseCaption('a red circle at the top and a red circle at the bottom'), new Rng(0));
    expect(() => applyEdit(twoRed, parseInstruction('remove the red circle'))).toThrow(/ambiguous: 2 objects/);
  });
});

describe('answering questions', () => {
  const ask = (q: string) => answerQuestion(scene, parseQuestion(q));

  it('answers each kind of question', () => {
    expect(ask('what color is the square?')).toBe('blue');
    expect(ask('what size is the circle?')).toBe('small');
    expect(ask('what shape is at the bottom right?')).toBe('triangle');
    expect(ask('where is the red triangle?')).toBe('bottom right');
    expect(ask('how many shapes are there?')).toBe('three');
    expect(ask('how many red shapes are there?')).toBe('two');
    expect(ask('how many green circles are there?')).toBe('zero');
    expect(ask('describe the image')).toBe(
      'a small red circle at the top left, a large blue square in the center and a small red triangle at the bottom right');
  });

  it('says when a question does not fit the image', () => {
    expect(() => ask('what shape is at the top?')).toThrow(/nothing is at the top/);
    expect(() => ask('what color is the red shape?')).toThrow();
  });
});
