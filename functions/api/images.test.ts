import { describe, expect, it } from 'vitest';
import { partialImageSteps } from './images.ts';

describe('partialImageSteps', () => {
  it('spreads partial_images over the steps every request takes, before the last one', () => {
    expect([...partialImageSteps({ totalSteps: 40, fewestSteps: 40 }, { partial_images: 3 })]).toEqual([10, 20, 30]);
    // Checked candidates may stop after 2 of 16: the partial images come from those 2.
    expect([...partialImageSteps({ totalSteps: 64, fewestSteps: 8 }, { partial_images: 1 })]).toEqual([4]);
    expect([...partialImageSteps({ totalSteps: 4, fewestSteps: 4 }, { partial_images: 0 })]).toEqual([]);
  });

  it('streams every preview_every steps up to the most a request takes', () => {
    expect([...partialImageSteps({ totalSteps: 64, fewestSteps: 8 }, { preview_every: 16 })]).toEqual([16, 32, 48]);
  });
});
