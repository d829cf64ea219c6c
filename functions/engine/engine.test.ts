/**
 * The engine on the shipped model, through real onnxruntime-node worker threads: parity with
 * a direct ORT run, the exactness of the sparse cache, the cache lifecycle, merged runs, the
 * worker pool, bad inputs, the caller's event loop, and packages it must refuse.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ForwardInput, ForwardOutput, KvCache } from '../core/denoiser.ts';
import { loadPackageDir, PackageError, type LoadedPackage } from '../storage/package-files.ts';
import { removeTempDirs, SHIPPED, tempDir } from '../../test/support/packages.ts';
import { maxAbsDiff, ortFeeds, parityFixture as fixture, type FlatTensor, type ParityCall } from '../../test/support/parity.ts';
import { createEngine, loadEngine, type Engine } from './engine.ts';
import { EngineError } from './errors.ts';

const pkg = await loadPackageDir(SHIPPED);
const model = pkg.manifest.model!;
const special = pkg.manifest.vocab.special;
const segments = model.positions.segments;
const MASK = model.maskValue;

function flat(call: ParityCall, name: string): FlatTensor {
  const f = call.inputs[name];
  if (!f) throw new Error(`fixture lacks ${name}`);
  return f;
}

/** A Denoiser input from a parity fixture call ([B,1,N,C+N] bias is [B,N,C+N] row-major). */
function fixtureInput(call: ParityCall, cache?: KvCache): ForwardInput {
  const [batch = 0, length = 0] = flat(call, 'input_ids').dims;
  return {
    batch,
    length,
    inputIds: Int32Array.from(flat(call, 'input_ids').data),
    positionIds: Int32Array.from(flat(call, 'position_ids').data),
    attnBias: Float32Array.from(flat(call, 'attn_bias').data),
    read: { start: 0, count: length },
    ...(cache ? { cache } : {}),
  };
}


/**
 * The step-causal bias (docs/design.md section 1) of queries in `queryBlocks` over keys in
 * `keyBlocks` (the cache's, then the queries' own): block i may attend block j iff
 * (i <= m and j <= i) or (i > m and (j <= m or j = i)). Rows repeat it `batch` times.
 */
function stepCausalBias(batch: number, queryBlocks: number[], keyBlocks: number[], m: number): Float32Array {
  const one = queryBlocks.flatMap((i) => keyBlocks.map((j) => ((i <= m && j <= i) || (i > m && (j <= m || j === i)) ? 0 : MASK)));
  return Float32Array.from({ length: batch * one.length }, (_, k) => one[k % one.length] as number);
}

const repeat = <T,>(value: T, n: number): T[] => new Array<T>(n).fill(value);
/** `perRow` repeated for `batch` rows. */
const rows = (batch: number, perRow: number[]) => Int32Array.from(Array.from({ length: batch }, () => perRow).flat());

/** Two prompts of four tokens (task token then three words), positions of a t2i prompt. */
const PROMPTS = [
  [special.t2i, 8, 24, 30],
  [special.t2i, 9, 20, 33],
];
const PROMPT_POS = [segments.task.start, segments.text.start, segments.text.start + 1, segments.text.start + 2];
const REG_POS = Array.from({ length: model.registers }, (_, i) => segments.registers.start + i);
const answerPos = (idx: number[]) => idx.map((i) => segments.image.start + i);

function prefillInput(cache: KvCache, batch = 2): ForwardInput {
  const n = PROMPT_POS.length;
  return {
    batch,
    length: n,
    inputIds: Int32Array.from(PROMPTS.slice(0, batch).flat()),
    positionIds: rows(batch, PROMPT_POS),
    attnBias: new Float32Array(batch * n * n),
    cache,
    append: n,
    read: { start: 0, count: 0 },
  };
}

let engine: Engine;
beforeAll(async () => {
  engine = await createEngine(pkg);
});
afterAll(() => engine.close());
afterEach(removeTempDirs);

describe('forward passes match onnxruntime run directly', () => {
  let session: ort.InferenceSession;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(pkg.file(model.file), { intraOpNumThreads: 1 });
  });
  afterAll(() => session.release());

  it('a dense call of two rows (one padded) equals the direct run and the PyTorch fixture within 1e-4', async () => {
    const out = await engine.forward(fixtureInput(fixture.dense));
    const direct = await session.run(ortFeeds(fixture.dense));
    expect(out.vocab).toBe(pkg.manifest.vocab.size);
    expect(maxAbsDiff(out.logits, direct.logits?.data as Float32Array)).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.logits, fixture.dense.outputs.logits?.data ?? [])).toBeLessThan(1e-4);
  });

  it('returns only the tokens it was asked to read, row after row', async () => {
    const full = await engine.forward(fixtureInput(fixture.dense));
    const part = await engine.forward({ ...fixtureInput(fixture.dense), read: { start: 2, count: 3 } });
    const v = full.vocab;
    const want = [0, 1].flatMap((b) => [...full.logits.subarray((b * 9 + 2) * v, (b * 9 + 5) * v)]);
    expect(part.logits.length).toBe(2 * 3 * v);
    expect(maxAbsDiff(part.logits, want)).toBe(0);
  });

  it('a sparse step against a cache prefilled through forward equals the fixture and the direct run', async () => {
    const cache = engine.createCache(1);
    const prompt = fixtureInput(fixture.dense);
    // The fixture's cache is its prompt (the first 4 tokens of dense row 0) run alone.
    await engine.forward({
      batch: 1,
      length: 4,
      inputIds: prompt.inputIds.slice(0, 4),
      positionIds: prompt.positionIds.slice(0, 4),
      attnBias: new Float32Array(16),
      cache,
      append: 4,
      read: { start: 0, count: 0 },
    });
    expect(cache.length).toBe(flat(fixture.sparse, 'past_key_0').dims[2]);
    const out = await engine.forward(fixtureInput(fixture.sparse, cache));
    const direct = await session.run(ortFeeds(fixture.sparse));
    expect(maxAbsDiff(out.logits, fixture.sparse.outputs.logits?.data ?? [])).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.logits, direct.logits?.data as Float32Array)).toBeLessThan(1e-4);
    cache.dispose();
  });
});

describe('the sparse cache is exact', () => {
  it('logits of a step read through the cache equal one uncached forward with the step-causal bias', async () => {
    const B = 2;
    const P = PROMPT_POS.length;
    const R = model.registers;
    const c1 = [5, 130, 201];
    const c2 = [17, 64, 99, 250];
    const c3 = [33, 34];
    const tok1 = [60, 61, 62];
    const tok2 = [70, 71, 72, 73];
    const cache = engine.createCache(B);

    await engine.forward(prefillInput(cache, B));
    expect(cache.length).toBe(P);
    // Step 1: this step's masks and the registers; nothing decoded yet, nothing appended.
    const n1 = c1.length + R;
    await engine.forward({
      batch: B,
      length: n1,
      inputIds: rows(B, [...repeat(special.mask, c1.length), ...repeat(special.reg, R)]),
      positionIds: rows(B, [...answerPos(c1), ...REG_POS]),
      attnBias: stepCausalBias(B, repeat(1, n1), [...repeat(0, P), ...repeat(1, n1)], 0),
      cache,
      read: { start: 0, count: c1.length },
    });
    expect(cache.length).toBe(P);
    // Step 2: step 1's tokens (appended), step 2's masks, registers.
    const n2 = c1.length + c2.length + R;
    const q2 = [...repeat(1, c1.length), ...repeat(2, c2.length + R)];
    await engine.forward({
      batch: B,
      length: n2,
      inputIds: rows(B, [...tok1, ...repeat(special.mask, c2.length), ...repeat(special.reg, R)]),
      positionIds: rows(B, [...answerPos(c1), ...answerPos(c2), ...REG_POS]),
      attnBias: stepCausalBias(B, q2, [...repeat(0, P), ...q2], 1),
      cache,
      append: c1.length,
      read: { start: c1.length, count: c2.length },
    });
    expect(cache.length).toBe(P + c1.length);
    // Step 3, read through a cache holding the prompt and step 1's tokens.
    const n3 = c2.length + c3.length + R;
    const q3 = [...repeat(2, c2.length), ...repeat(3, c3.length + R)];
    const cached = await engine.forward({
      batch: B,
      length: n3,
      inputIds: rows(B, [...tok2, ...repeat(special.mask, c3.length), ...repeat(special.reg, R)]),
      positionIds: rows(B, [...answerPos(c2), ...answerPos(c3), ...REG_POS]),
      attnBias: stepCausalBias(B, q3, [...repeat(0, P), ...repeat(1, c1.length), ...q3], 2),
      cache,
      append: c2.length,
      read: { start: c2.length, count: c3.length },
    });
    expect(cache.length).toBe(P + c1.length + c2.length);
    cache.dispose();

    // The same tokens in one uncached pass: prompt, step 1's tokens, step 2's, step 3's masks, registers.
    const blocks = [...repeat(0, P), ...repeat(1, c1.length), ...repeat(2, c2.length), ...repeat(3, c3.length + R)];
    const n = blocks.length;
    const ids = (b: number) => [...(PROMPTS[b] ?? []), ...tok1, ...tok2, ...repeat(special.mask, c3.length), ...repeat(special.reg, R)];
    const uncached = await engine.forward({
      batch: B,
      length: n,
      inputIds: Int32Array.from([...ids(0), ...ids(1)]),
      positionIds: rows(B, [...PROMPT_POS, ...answerPos(c1), ...answerPos(c2), ...answerPos(c3), ...REG_POS]),
      attnBias: stepCausalBias(B, blocks, blocks, 2),
      read: { start: P + c1.length + c2.length, count: c3.length },
    });
    expect(maxAbsDiff(cached.logits, uncached.logits)).toBeLessThan(1e-4);
    // The two prompts differ, so the rows must too: a cache mixing rows up would not pass.
    const v = cached.vocab;
    expect(maxAbsDiff(cached.logits.subarray(0, c3.length * v), cached.logits.subarray(c3.length * v))).toBeGreaterThan(1e-3);
  });
});

describe('the cache lifecycle', () => {
  it('grows by what each forward appends and frees its worker-side tensors on dispose', async () => {
    const cache = engine.createCache(2);
    expect(cache.batch).toBe(2);
    expect(cache.length).toBe(0);
    await engine.forward(prefillInput(cache));
    expect(cache.length).toBe(4);
    expect(engine.stats().held.tokens).toBeGreaterThanOrEqual(2 * 4);
    const before = engine.stats().held;
    cache.dispose();
    await engine.forward(fixtureInput(fixture.dense));
    expect(engine.stats().held).toEqual({ caches: before.caches - 1, tokens: before.tokens - 2 * 4 });
  });

  it('refuses a forward on a disposed cache, and disposing twice is harmless', async () => {
    const cache = engine.createCache(2);
    await engine.forward(prefillInput(cache));
    cache.dispose();
    cache.dispose();
    const use = engine.forward({ ...prefillInput(cache), attnBias: new Float32Array(2 * 4 * 8) });
    await expect(use).rejects.toThrow(EngineError);
    await expect(use).rejects.toMatchObject({ code: 'cache-disposed', message: expect.stringMatching(/^forward: cache \d+ has been disposed$/) });
  });

  it('refuses a second forward on a cache while the first is unfinished', async () => {
    const cache = engine.createCache(2);
    const first = engine.forward(prefillInput(cache));
    await expect(engine.forward(prefillInput(cache))).rejects.toMatchObject({ code: 'cache-busy', message: expect.stringMatching(/in use by an unfinished forward/) });
    await first;
    expect(cache.length).toBe(4);
    cache.dispose();
  });

  it('rejects a queued forward whose cache is disposed before it runs', async () => {
    const blocker = engine.forward(fixtureInput(fixture.dense));
    const cache = engine.createCache(2);
    const queued = engine.forward(prefillInput(cache));
    cache.dispose();
    await expect(queued).rejects.toMatchObject({ code: 'cache-disposed', message: expect.stringMatching(/disposed while this forward was queued/) });
    await blocker;
  });

  it('refuses a cache of another engine and a batch that does not match the cache', async () => {
    const foreign: KvCache = { batch: 2, length: 0, dispose: () => undefined };
    await expect(engine.forward(prefillInput(foreign))).rejects.toThrow(/^forward: the cache was not created by this engine$/);
    const cache = engine.createCache(2);
    await expect(engine.forward(prefillInput(cache, 1))).rejects.toThrow(/^forward: batch 1 does not match the cache's 2 rows$/);
    expect(() => engine.createCache(0)).toThrow(/^createCache: batch must be a positive integer, got 0$/);
    cache.dispose();
  });

  it('refuses malformed inputs before they reach a worker', async () => {
    const cache = engine.createCache(2);
    await engine.forward(prefillInput(cache));
    // The bias must now cover the 4 cached columns too.
    await expect(engine.forward({ ...prefillInput(cache), append: 0 })).rejects.toThrow(
      /^forward: attnBias has 32 entries, expected batch × length × \(cache \+ length\) = 2 × 4 × \(4 \+ 4\) = 64$/,
    );
    const ok = { ...prefillInput(cache), attnBias: new Float32Array(64) };
    await expect(engine.forward({ ...ok, inputIds: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 161]) })).rejects.toThrow(/inputIds\[7\] = 161 is outside the vocabulary \[0, 161\)/);
    await expect(engine.forward({ ...ok, positionIds: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 586]) })).rejects.toThrow(/positionIds\[7\] = 586 is outside the position table \[0, 586\)/);
    await expect(engine.forward({ ...ok, append: 5 })).rejects.toThrow(/append must be an integer in \[0, length = 4\], got 5/);
    await expect(engine.forward({ ...ok, read: { start: 3, count: 2 } })).rejects.toThrow(/read \[3, 5\) must lie within the 4 tokens of a row/);
    // None of them ran or changed the cache.
    expect(cache.length).toBe(4);
    cache.dispose();
  });
});

describe('scheduling', () => {
  /** A step of N = 6 tokens (2 decoded, appended, then 4 masks) against `cache`. */
  function step(cache: KvCache | undefined, c: number, shift: number): ForwardInput {
    const batch = cache?.batch ?? 1;
    const n = 6;
    const q = [1, 1, 2, 2, 2, 2];
    return {
      batch,
      length: n,
      inputIds: rows(batch, [60 + shift, 61, special.mask, special.mask, special.mask, special.mask]),
      positionIds: rows(batch, answerPos([shift, 40, 41, 42, 43, 44 + shift])),
      attnBias: stepCausalBias(batch, q, [...repeat(0, c), ...q], 1),
      ...(cache ? { cache, append: 2 } : {}),
      read: { start: 2, count: 4 },
    };
  }

  it('merges queued forwards of the same length into one run, each getting exactly its own rows and cache', async () => {
    const alone = [engine.createCache(2), engine.createCache(1)];
    const merged = [engine.createCache(2), engine.createCache(1)];
    for (const cache of [...alone, ...merged]) await engine.forward(prefillInput(cache, cache.batch));
    // Caches of different lengths: the second pair gets one more step first.
    for (const cache of [alone[1]!, merged[1]!]) await engine.forward(step(cache, 4, 9));

    const expected: ForwardOutput[] = [];
    for (const input of [step(alone[0], 4, 1), step(alone[1], 6, 2), step(undefined, 0, 3)]) expected.push(await engine.forward(input));
    const before = engine.stats();
    // A dense call of another length occupies the worker, so the three steps queue behind it and run together.
    const blocker = engine.forward(fixtureInput(fixture.dense));
    await new Promise((resolve) => setImmediate(resolve));
    const got = await Promise.all([step(merged[0], 4, 1), step(merged[1], 6, 2), step(undefined, 0, 3)].map((s) => engine.forward(s)));
    await blocker;
    const after = engine.stats();
    expect(after.forwards - before.forwards).toBe(4);
    expect(after.runs - before.runs).toBe(2);
    got.forEach((out, i) => expect(maxAbsDiff(out.logits, expected[i]!.logits), `forward ${i}`).toBeLessThan(1e-4));
    // The caches grew by their own appends, and hold what the unmerged ones hold.
    expect(merged.map((c) => c.length)).toEqual([6, 8]);
    // Submitted in one turn of the event loop to an idle worker, two forwards also run as one.
    const next = await Promise.all([step(alone[0], 6, 4), step(merged[0], 6, 4)].map((s) => engine.forward(s)));
    expect(engine.stats().runs - after.runs).toBe(1);
    expect(maxAbsDiff(next[0]!.logits, next[1]!.logits)).toBeLessThan(1e-4);
    for (const cache of [...alone, ...merged]) cache.dispose();
  });

  it('runs a pool: caches spread over the workers, dense calls go to whichever is free', async () => {
    const pool = await createEngine(pkg, { workers: 2, intraOpNumThreads: 1, maxBatchRows: 1 });
    try {
      const caches = [pool.createCache(1), pool.createCache(1)];
      await Promise.all(caches.map((c) => pool.forward(prefillInput(c, 1))));
      expect(pool.stats().runsByWorker).toEqual([1, 1]);
      const dense = await Promise.all([0, 1].map(() => pool.forward(fixtureInput(fixture.dense))));
      expect(pool.stats().runsByWorker).toEqual([2, 2]);
      const reference = await engine.forward(fixtureInput(fixture.dense));
      for (const out of dense) expect(maxAbsDiff(out.logits, reference.logits)).toBeLessThan(1e-4);
    } finally {
      await pool.close();
    }
  });
});

describe('the caller’s event loop', () => {
  it('keeps ticking while forward passes run', async () => {
    const n = 290;
    const input: ForwardInput = {
      batch: 1,
      length: n,
      inputIds: Int32Array.from({ length: n }, (_, i) => (i < 34 ? 8 + (i % 50) : pkg.manifest.vocab.image.start + (i % 100))),
      positionIds: Int32Array.from({ length: n }, (_, i) => i),
      attnBias: new Float32Array(n * n),
      read: { start: 0, count: 1 },
    };
    const forwards = 6;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      for (let i = 0; i < forwards; i++) await engine.forward(input);
    } finally {
      clearInterval(timer);
    }
    // Run on this thread, each forward would block the loop: at most one tick per forward.
    expect(ticks).toBeGreaterThanOrEqual(3 * forwards);
  });
});

describe('closing', () => {
  it('rejects pending forwards with a clear error, then refuses new work', async () => {
    const doomed = await createEngine(pkg);
    const cache = doomed.createCache(2);
    const pending = [doomed.forward(fixtureInput(fixture.dense)), doomed.forward(prefillInput(cache)), doomed.forward(fixtureInput(fixture.dense))];
    const outcomes = Promise.allSettled(pending);
    await doomed.close();
    for (const outcome of await outcomes) {
      expect(outcome).toMatchObject({ status: 'rejected', reason: { name: 'EngineError', code: 'closed', message: 'forward: the engine was closed while this forward was pending' } });
    }
    await expect(doomed.forward(fixtureInput(fixture.dense))).rejects.toThrow(/^forward: the engine was closed$/);
    expect(() => doomed.createCache(1)).toThrow(/^createCache: the engine was closed$/);
    cache.dispose();
    await doomed.close();
  });

  it('waits for a run in progress to finish on its worker, since ending the thread mid-run aborts the process', async () => {
    // A 4 × 300-token forward runs for tens of milliseconds: close() lands while it is on the worker.
    const batch = 4;
    const n = 300;
    const input: ForwardInput = {
      batch,
      length: n,
      inputIds: new Int32Array(batch * n).fill(pkg.manifest.vocab.special.mask),
      positionIds: rows(batch, Array.from({ length: n }, (_, i) => i)),
      attnBias: new Float32Array(batch * n * n),
      read: { start: 0, count: 1 },
    };
    for (let i = 0; i < 6; i++) {
      const closing = await createEngine(pkg);
      const outcome = closing.forward(input).then(
        () => 'finished',
        (e: EngineError) => e.code,
      );
      await new Promise((r) => setTimeout(r, 1 + (i % 3)));
      await closing.close();
      expect(await outcome).toBe('closed');
    }
  });
});

describe('packages the engine refuses', () => {
  it('a tampered graph, naming the file', async () => {
    const dir = tempDir('tampered-');
    cpSync(SHIPPED, dir, { recursive: true });
    const bytes = readFileSync(join(dir, model.file));
    const at = bytes.length >> 1;
    bytes[at] = (bytes[at] as number) ^ 0xff;
    writeFileSync(join(dir, model.file), bytes);
    const load = loadEngine(dir);
    await expect(load).rejects.toThrow(PackageError);
    await expect(load).rejects.toMatchObject({ file: model.file, message: expect.stringMatching(/^denoiser\.onnx fails its sha256 check/) });
  });

  it('a graph without the inputs of the layers its manifest declares, naming what is missing', async () => {
    const deeper: LoadedPackage = { ...pkg, manifest: { ...pkg.manifest, model: { ...model, layers: model.layers + 1 } } };
    const start = createEngine(deeper);
    await expect(start).rejects.toThrow(PackageError);
    const l = model.layers;
    await expect(start).rejects.toThrow(
      `${model.file} does not follow the denoiser contract for ${l + 1} layers (manifest model.layers): missing inputs past_key_${l}, past_value_${l}; missing outputs new_key_${l}, new_value_${l}`,
    );
  });
});

describe('a failing run', () => {
  it('logs the dtype and dims of its inputs and rejects with the shape of the run', async () => {
    // A manifest claiming a longer position table than the graph's lets an out-of-range
    // position through the engine's checks, so onnxruntime itself fails the run.
    const size = model.positions.size + 10;
    const wider: LoadedPackage = { ...pkg, manifest: { ...pkg.manifest, model: { ...model, positions: { ...model.positions, size } } } };
    const lines: string[] = [];
    const broken = await createEngine(wider, { log: (line) => lines.push(line) });
    try {
      const run = broken.forward({
        batch: 1,
        length: 2,
        inputIds: Int32Array.from([special.t2i, 8]),
        positionIds: Int32Array.from([0, size - 1]),
        attnBias: new Float32Array(4),
        read: { start: 0, count: 2 },
      });
      await expect(run).rejects.toMatchObject({ code: 'run-failed', message: expect.stringMatching(/^forward: the denoiser run failed \(1 forward, B=1 N=2 C=0\): ./) });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`inputs: input_ids int64 [1,2]; position_ids int64 [1,2]; attn_bias float32 [1,1,2,2]; past_key_0 float32 [1,${model.heads},0,${model.headDim}];`);
      // The engine still serves the next forward.
      await expect(broken.forward(fixtureInput(fixture.dense))).resolves.toMatchObject({ vocab: pkg.manifest.vocab.size });
    } finally {
      await broken.close();
    }
  });
});
