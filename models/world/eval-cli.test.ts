import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

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

  it('refuses to run without a mode', async () => {
    const r = await evalCli('--n', '5');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--oracle or --oracle-vq');
  });
});
