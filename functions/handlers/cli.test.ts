import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { blankImage } from '../core/image.ts';
import { decodePng, encodePng } from '../tokenizers/png.ts';

const BIN = fileURLToPath(new URL('./cli-bin.mjs', import.meta.url));
// The CLI runs outside the repository, so the default model must be found from its own location.
const dir = mkdtempSync(join(tmpdir(), 'sparse-lavida-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real CLI as `npx sparse-lavida` would, with stdout and stderr as pipes (not a TTY). */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const at = (name: string) => join(dir, name);

describe('sparse-lavida generate', () => {
  it('writes a 64x64 PNG and ends with one plain summary line on stderr', async () => {
    const run = await cli('generate', 'a small red circle at the top left', '--steps', '4', '--seed', '5', '--candidates', '1', '-o', 'gen.png');
    expect(run.code).toBe(0);
    const image = decodePng(readFileSync(at('gen.png')));
    expect([image.width, image.height]).toEqual([64, 64]);
    expect(run.stderr).toMatch(/^4 steps in \d+\.\d\d s, \d+ tokens pushed \(sparse sampler, seed 5\); wrote gen\.png\n$/);
    const best = await cli('generate', 'a small red circle at the top left', '--steps', '4', '--seed', '5', '--candidates', '3', '-o', 'best.png');
    // The shipped model checks its candidates and stops once 2 agree with the prompt.
    expect(best.stderr).toMatch(/^4 steps for each of [23] candidates in \d+\.\d\d s, \d+ tokens pushed \(sparse sampler, seed 5\); wrote best\.png\n$/);
  });

  it('draws the same picture again from the same seed', async () => {
    const a = await cli('generate', 'two green triangles', '--steps', '4', '--seed', '9', '-o', 'a.png');
    const b = await cli('generate', 'two green triangles', '--steps', '4', '--seed', '9', '-o', 'b.png');
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(readFileSync(at('a.png')).equals(readFileSync(at('b.png')))).toBe(true);
  });

  it('writes one preview frame per step with --preview-dir, the last one the final image', async () => {
    const run = await cli('generate', 'a large blue square in the center', '--steps', '4', '--seed', '2', '--sampler', 'dense', '--candidates', '1', '--preview-dir', 'frames', '-o', 'framed.png');
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('(dense sampler, seed 2)');
    expect(readdirSync(at('frames')).sort()).toEqual(['step-001.png', 'step-002.png', 'step-003.png', 'step-004.png']);
    const pixels = (file: string) => Buffer.from(decodePng(readFileSync(at(file))).data);
    expect(pixels('frames/step-004.png').equals(pixels('framed.png'))).toBe(true);
    // With candidates, the frames run through each in turn and the image is one candidate's last frame.
    const two = await cli('generate', 'a large blue square in the center', '--steps', '4', '--seed', '2', '--candidates', '2', '--preview-dir', 'frames2', '-o', 'two.png');
    expect(two.code).toBe(0);
    expect(readdirSync(at('frames2'))).toHaveLength(8);
    expect(pixels('frames2/step-004.png').equals(pixels('two.png')) || pixels('frames2/step-008.png').equals(pixels('two.png'))).toBe(true);
  });

  it('exits 1 naming an unknown word, in one line without a stack trace', async () => {
    const run = await cli('generate', 'a red hexagon', '--steps', '4', '-o', 'never.png');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('sparse-lavida: unknown word "hexagon" at position 3 in "a red hexagon"\n');
    expect(existsSync(at('never.png'))).toBe(false);
  });
});

describe('sparse-lavida edit', () => {
  it('reads a PNG of any size and writes the edited 64x64 PNG', async () => {
    writeFileSync(at('source.png'), encodePng(blankImage(96, 80, [220, 40, 40])));
    const run = await cli('edit', 'source.png', 'make the red circle blue', '--steps', '4', '--seed', '1', '-o', 'edited.png');
    expect(run.code).toBe(0);
    const image = decodePng(readFileSync(at('edited.png')));
    expect([image.width, image.height]).toEqual([64, 64]);
  });

  it('exits 1 naming a file that is not a PNG', async () => {
    writeFileSync(at('notes.txt'), 'not an image');
    const run = await cli('edit', 'notes.txt', 'make the red circle blue', '-o', 'edited.png');
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('sparse-lavida: notes.txt: the image is not a PNG (its first bytes are not the PNG signature)\n');
  });
});

describe('sparse-lavida ask', () => {
  it('prints the answer as one non-empty line on stdout', async () => {
    writeFileSync(at('scene.png'), encodePng(blankImage(64, 64)));
    const run = await cli('ask', 'scene.png', 'how many shapes are there?', '--steps', '4', '--seed', '3');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\S.*\n$/);
    // Answers stop at the block holding <end>, so 1 to 4 of the 4 steps run.
    expect(run.stderr).toMatch(/^[1-4] steps? in .* \(sparse sampler, seed 3\)\n$/);
  });
});

describe('bad usage', () => {
  it('exits 2 with the usage text when -o is missing', async () => {
    const run = await cli('generate', 'a red circle');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^sparse-lavida: --output: required \(-o out\.png\)\n\nusage:/);
  });

  it('exits 2 for an unknown command, an unknown option, a wrong argument count or a bad number', async () => {
    const runs = await Promise.all([
      cli('paint', 'a red circle'),
      cli('generate', 'a red circle', '-o', 'x.png', '--fast'),
      cli('ask', 'scene.png'),
      cli('generate', 'a red circle', '-o', 'x.png', '--steps', '2.5'),
      cli('ask', 'scene.png', 'what color is the circle?', '-o', 'x.png'),
    ]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(runs.map((r) => r.stderr.split('\n')[0])).toEqual([
      'sparse-lavida: unknown command "paint"',
      expect.stringContaining("Unknown option '--fast'"),
      'sparse-lavida: ask takes two arguments: in.png "<question>"',
      'sparse-lavida: --steps: expected a whole number',
      'sparse-lavida: ask does not take --output',
    ]);
  });
});
