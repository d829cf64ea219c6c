/**
 * The names of the denoiser graph's inputs and outputs (docs/design.md section 3) for a model of
 * `layers` layers, and the checks that a loaded graph, and every feed built for it, match.
 */

export const TOKEN_INPUTS = ['input_ids', 'position_ids', 'attn_bias'] as const;

export function pastKeyName(layer: number): string {
  return `past_key_${layer}`;
}
export function pastValueName(layer: number): string {
  return `past_value_${layer}`;
}
export function newKeyName(layer: number): string {
  return `new_key_${layer}`;
}
export function newValueName(layer: number): string {
  return `new_value_${layer}`;
}

/** Every input the graph must declare, in contract order. */
export function contractInputs(layers: number): string[] {
  const past = Array.from({ length: layers }, (_, i) => [pastKeyName(i), pastValueName(i)]).flat();
  return [...TOKEN_INPUTS, ...past];
}

/** Every output the graph must declare, in contract order. */
export function contractOutputs(layers: number): string[] {
  const fresh = Array.from({ length: layers }, (_, i) => [newKeyName(i), newValueName(i)]).flat();
  return ['logits', ...fresh];
}

/**
 * What is wrong with a graph's declared names, one clause per problem, or `[]` when it has
 * exactly the contract's inputs and at least its outputs (extra outputs are never fetched).
 *
 * @example
 * contractProblems(['input_ids', 'position_ids', 'attn_bias'], ['logits'], 1);
 * // ['missing inputs past_key_0, past_value_0', 'missing outputs new_key_0, new_value_0']
 */
export function contractProblems(inputNames: readonly string[], outputNames: readonly string[], layers: number): string[] {
  const problems: string[] = [];
  const wantIn = contractInputs(layers);
  const missingIn = wantIn.filter((n) => !inputNames.includes(n));
  const extraIn = inputNames.filter((n) => !wantIn.includes(n));
  const missingOut = contractOutputs(layers).filter((n) => !outputNames.includes(n));
  if (missingIn.length > 0) problems.push(`missing inputs ${missingIn.join(', ')}`);
  if (extraIn.length > 0) problems.push(`unexpected inputs ${extraIn.join(', ')}`);
  if (missingOut.length > 0) problems.push(`missing outputs ${missingOut.join(', ')}`);
  return problems;
}

/** The inputs the graph declares that `feeds` lacks (an empty list when the run can go ahead). */
export function missingFeeds(inputNames: readonly string[], feeds: Readonly<Record<string, unknown>>): string[] {
  return inputNames.filter((n) => !(n in feeds));
}
