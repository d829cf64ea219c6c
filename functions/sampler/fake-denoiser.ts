/**
 * A fake denoiser for sampler tests: two "layers" of exact integer arithmetic that behave
 * like attention where it matters. A token's second-layer key depends on every key it may
 * attend to (as in a transformer), so a cache that stored a key computed in the wrong
 * context changes later logits; and sums mod a prime do not depend on their order, so
 * equal contexts give bit-equal logits however the tokens are batched.
 */
import type { Denoiser, ForwardInput, ForwardOutput, KvCache } from '../core/denoiser.ts';

const P = 2147483647;
const MASK_VALUE = -1e9;

interface FakeCache extends KvCache {
  keys1: number[][];
  keys2: number[][];
  disposed: boolean;
}

export class FakeDenoiser implements Denoiser {
  readonly maskValue = MASK_VALUE;
  readonly calls: ForwardInput[] = [];
  created = 0;
  disposed = 0;

  constructor(
    readonly vocab: number,
    /** Added to the logits of the last row of every batch: makes an unconditional branch differ. */
    readonly uncondShift = 0,
  ) {}

  createCache(batch: number): KvCache {
    this.created++;
    const owner = this;
    const cache: FakeCache = {
      batch,
      get length() {
        return cache.keys1[0]?.length ?? 0;
      },
      keys1: Array.from({ length: batch }, () => []),
      keys2: Array.from({ length: batch }, () => []),
      disposed: false,
      dispose() {
        if (!cache.disposed) owner.disposed++;
        cache.disposed = true;
      },
    };
    return cache;
  }

  async forward(input: ForwardInput): Promise<ForwardOutput> {
    this.calls.push(input);
    const { batch: B, length: N } = input;
    const cache = input.cache as FakeCache | undefined;
    if (cache?.disposed) throw new Error('forward on a disposed cache');
    const C = cache?.length ?? 0;
    const V = this.vocab;
    const logits = new Float32Array(B * input.read.count * V);
    for (let b = 0; b < B; b++) {
      const visible = (q: number, col: number) => input.attnBias[(b * N + q) * (C + N) + col] === 0;
      const k1 = Array.from({ length: N }, (_, q) => (input.inputIds[b * N + q]! * 7919 + input.positionIds[b * N + q]! * 104729 + 12345) % P);
      const h1 = k1.map((own, q) => {
        let s = 0;
        for (let c = 0; c < C; c++) if (visible(q, c)) s = (s + cache!.keys1[b]![c]!) % P;
        for (let j = 0; j < N; j++) if (visible(q, C + j)) s = (s + k1[j]!) % P;
        return (own + s) % P;
      });
      const k2 = h1.map((h) => (h * 31337 + 17) % P);
      for (let r = 0; r < input.read.count; r++) {
        const q = input.read.start + r;
        let s = h1[q]!;
        for (let c = 0; c < C; c++) if (visible(q, c)) s = (s + cache!.keys2[b]![c]!) % P;
        for (let j = 0; j < N; j++) if (visible(q, C + j)) s = (s + k2[j]!) % P;
        const shift = B > 1 && b === B - 1 ? this.uncondShift : 0;
        for (let v = 0; v < V; v++) logits[(b * input.read.count + r) * V + v] = ((s * 9973 + v * 40503) % 1000003) / 1000 + (v === 0 ? shift : 0);
      }
      if (cache && input.append) {
        cache.keys1[b]!.push(...k1.slice(0, input.append));
        cache.keys2[b]!.push(...k2.slice(0, input.append));
      }
    }
    return { logits, vocab: V };
  }
}
