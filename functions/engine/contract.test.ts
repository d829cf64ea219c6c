import { describe, expect, it } from 'vitest';
import { contractInputs, contractOutputs, contractProblems, missingFeeds } from './contract.ts';

describe('the denoiser contract', () => {
  const inputs = contractInputs(2);
  const outputs = contractOutputs(2);

  it('names the inputs and outputs of every layer', () => {
    expect(inputs).toEqual(['input_ids', 'position_ids', 'attn_bias', 'past_key_0', 'past_value_0', 'past_key_1', 'past_value_1']);
    expect(outputs).toEqual(['logits', 'new_key_0', 'new_value_0', 'new_key_1', 'new_value_1']);
  });

  it('accepts a graph with exactly its inputs, whatever their order, and extra outputs', () => {
    expect(contractProblems([...inputs].reverse(), [...outputs, 'hidden'], 2)).toEqual([]);
  });

  it('names what a graph lacks or has in excess', () => {
    expect(contractProblems([...inputs, 'extra'], outputs, 3)).toEqual([
      'missing inputs past_key_2, past_value_2',
      'unexpected inputs extra',
      'missing outputs new_key_2, new_value_2',
    ]);
  });

  it('names the graph inputs a feed set lacks', () => {
    expect(missingFeeds(inputs, { input_ids: 1, position_ids: 1, attn_bias: 1 })).toEqual(inputs.slice(3));
  });
});
