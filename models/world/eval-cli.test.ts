import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { loadPackageDir } from '../../functions/storage/package-files.ts';
import { createTokenizers } from '../../functions/tokenizers/model-tokenizers.ts';
import { codesToIds } from '../../functions/tokenizers/prompt-layout.ts';
import { tokenizeCase, type TokenizedCase } from './model-io.ts';
import { resolveCase } from './cases.ts';
import { render } from './render.ts';

const run = promisify(execFile);
const TSX = join('node_modules', '.bin', 'tsx');

async function evalCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(TSX, ['models/world/eval-cli.ts', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('npm run eval', () => {
  it('scores a hand-written JSONL file of cases with the oracle and writes JSON', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'eval-')), 'scores.json');
    const r = await evalCli('--oracle', '--prompts', 'test/fixtures/cases.jsonl', '--json', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/t2i\s+overall\s+4\s+1\.00/);
    expect(r.stdout).toMatch(/edit\s+overall\s+5\s+1\.00/);
    expect(r.stdout).toMatch(/answer\s+overall\s+4\s+1\.00/);
    const json = JSON.parse(readFileSync(out, 'utf8')) as { results: { task: string; category: string; score: number }[] };
    expect(json.results.find((r) => r.task === 'edit' && r.category === 'move')?.score).toBe(1);
  });

  it('names the line and the word when a sentence leaves the grammar', async () => {
    const r = await evalCli('--oracle', '--prompts', 'test/fixtures/cases-bad-word.jsonl');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('line 2: unknown word "hexagon" at position 3');
  });

  it('filters generated cases by task and scores the VQ round trip', async () => {
    const r = await evalCli('--oracle-vq', '--task', 'edit', '--n', '20', '--seed', '3');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/edit\s+overall\s+20\s+1\.00/);
    expect(r.stdout).not.toMatch(/^t2i/m);
  });

  it('exports tokenized cases and scores the ids a sampler writes back for them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eval-io-'));
    const casesFile = join(dir, 'cases.jsonl');
    const exported = await evalCli('--export', casesFile, '--n', '12', '--seed', '4');
    expect(exported.code).toBe(0);
    const tok = createTokenizers(await loadPackageDir('models/shapes-tiny'));
    const lines = readFileSync(casesFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TokenizedCase);
    expect(lines).toHaveLength(36);
    // A perfect sampler: the reference render for images, the world's answer for questions;
    // then spoil the first case of each task.
    const outputs = lines.map((line) => {
      const c = resolveCase(line.case, line.seed);
      expect(tokenizeCase(tok, c, line.index)).toEqual(line);
      let output: number[];
      if (c.task === 'answer') output = [...tok.text.encode(c.expected), tok.manifest.vocab.special.end];
      else output = codesToIds(tok.manifest.vocab, tok.image.encode(render(c.reference)));
      const spoiled = line.index % 12 === 0;
      if (spoiled) output = c.task === 'answer' ? tok.text.encode('zero') : output.map(() => tok.manifest.vocab.image.start);
      return JSON.stringify({ index: line.index, seed: line.seed, case: line.case, output });
    });
    const outFile = join(dir, 'outputs.jsonl');
    writeFileSync(outFile, outputs.join('\n'));
    const scored = await evalCli('--score', outFile, '--json', join(dir, 's.json'), '--explain');
    expect(scored.code).toBe(0);
    // The spoiled cases, explained: a blank image shows nothing; "zero" is not the answer.
    const wrong = scored.stdout.split('\n').filter((l) => l.startsWith('wrong '));
    expect(wrong).toHaveLength(3);
    expect(wrong[0]).toMatch(/^wrong #0 t2i\/\w+: ".+" -> nothing$/);
    expect(wrong[1]).toMatch(/^wrong #12 edit\/\w+: ".+" \+ ".+" -> nothing \(want .+\)$/);
    expect(wrong[2]).toMatch(/^wrong #24 answer\/\w+: ".+" \+ ".+" -> "zero" \(want ".+"\)$/);
    const json = JSON.parse(readFileSync(join(dir, 's.json'), 'utf8')) as { results: { task: string; category: string; n: number; score: number }[] };
    for (const task of ['t2i', 'edit', 'answer']) {
      const rows = json.results.filter((r) => r.task === task && r.category !== 'overall');
      expect(rows.reduce((a, r) => a + r.n * r.score, 0)).toBe(11);
    }
  });

  it('runs sparse with some of its switches off; the caches change no answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eval-switches-'));
    const scores = async (switches: string) => {
      const out = join(dir, `${switches || 'none'}.json`);
      const r = await evalCli('--sampler', 'sparse', '--switches', switches, '--task', 'answer', '--n', '12', '--seed', '3', '--json', out);
      expect(r.code).toBe(0);
      const tokens = Number(/(\d+) tokens in per case/.exec(r.stdout)?.[1]);
      return { results: (JSON.parse(readFileSync(out, 'utf8')) as { results: unknown[] }).results, tokens };
    };
    const cached = await scores('prompt-cache,response-cache');
    const none = await scores('');
    const promptOnly = await scores('prompt-cache');
    expect(cached.results).toEqual(none.results);
    // The prompt cache feeds the prompt once, the response cache each decoded token once.
    expect(cached.tokens).toBeLessThan(promptOnly.tokens);
    expect(promptOnly.tokens).toBeLessThan(none.tokens);
    const dense = await evalCli('--sampler', 'dense', '--switches', 'truncation', '--n', '1');
    expect(dense.code).toBe(2);
    expect(dense.stderr).toContain('--switches needs --sampler sparse');
    const unknown = await evalCli('--sampler', 'sparse', '--switches', 'truncation,kv-cache', '--n', '1');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('response-cache');
  });

  it('explains each wrong case of a model run: the prompt and what the detector saw', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'eval-explain-')), 'scores.json');
    // One step decodes all 256 tokens at once: some of these images come out wrong.
    const r = await evalCli('--sampler', 'sparse', '--task', 't2i', '--n', '6', '--seed', '11', '--steps', '1', '--explain', '--json', out);
    expect(r.code).toBe(0);
    const rows = (JSON.parse(readFileSync(out, 'utf8')) as { results: { category: string; n: number; score: number }[] }).results;
    const wrongCount = rows.filter((x) => x.category !== 'overall').reduce((a, x) => a + Math.round(x.n * (1 - x.score)), 0);
    const wrong = r.stdout.split('\n').filter((l) => l.startsWith('wrong '));
    expect(wrongCount).toBeGreaterThan(0);
    expect(wrong).toHaveLength(wrongCount);
    for (const line of wrong) expect(line).toMatch(/^wrong #[0-5] t2i\/\w+: "[a-z ]+" -> .+$/);
    const indices = wrong.map((line) => Number(/^wrong #(\d+)/.exec(line)?.[1]));
    expect(new Set(indices).size).toBe(indices.length);
    const exported = await evalCli('--export', join(tmpdir(), 'never.jsonl'), '--explain');
    expect(exported.code).toBe(2);
    expect(exported.stderr).toContain('--explain does not go with --export');
  });

  it('refuses sampling settings out of range for a task before its first case', async () => {
    const r = await evalCli('--sampler', 'sparse', '--registers', '9', '--task', 'answer', '--n', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('npm run eval: answer: registers must be a whole number in 0..8, got 9');
    expect(r.stdout).toBe('');
  });

  it('refuses to run without a mode', async () => {
    const r = await evalCli('--n', '5');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('choose one mode');
  });
});
