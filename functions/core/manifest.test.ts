import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { manifestSchema } from './manifest.ts';

const shipped = JSON.parse(readFileSync(new URL('../../models/shapes-tiny/manifest.json', import.meta.url), 'utf8'));

function issues(m: unknown): string[] {
  const r = manifestSchema.safeParse(m);
  return r.success ? [] : r.error.issues.map((i) => i.message);
}

describe('the manifest schema', () => {
  it('accepts the shipped manifest with its model and sampling sections', () => {
    const m = manifestSchema.parse(shipped);
    expect(m.model?.file).toBe('denoiser.onnx');
    expect(Object.keys(m.sampling ?? {}).sort()).toEqual(['answer', 'edit', 't2i']);
  });

  it('refuses a model file that the manifest does not list', () => {
    expect(issues({ ...shipped, model: { ...shipped.model, file: 'other.onnx' } })).toContain('other.onnx is not listed in files');
  });

  it('refuses a register count that differs from the register positions', () => {
    expect(issues({ ...shipped, model: { ...shipped.model, registers: shipped.model.registers + 1 } })).toContain(
      'registers must equal positions.segments.registers.count',
    );
  });

  it('refuses a position segment that ends past the position table', () => {
    const positions = { ...shipped.model.positions, size: shipped.model.positions.size - 1 };
    expect(issues({ ...shipped, model: { ...shipped.model, positions } })).toContain('a position segment ends past positions.size');
  });

  it('refuses sampling defaults without a step count', () => {
    const { steps: _steps, ...t2i } = shipped.sampling.t2i;
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i } }).length).toBeGreaterThan(0);
  });

  it('refuses a task that feeds more registers than the model has', () => {
    const answer = { ...shipped.sampling.answer, registers: shipped.model.registers + 1 };
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, answer } })).toContain(`at most model.registers (${shipped.model.registers}) registers`);
  });

  it('takes candidate variants for image tasks only, each with known fields', () => {
    const t2i = { ...shipped.sampling.t2i, variants: [{}, { guidance: 1, temperature: 1 }] };
    expect(manifestSchema.parse({ ...shipped, sampling: { ...shipped.sampling, t2i } }).sampling?.t2i?.variants).toHaveLength(2);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, variants: [] } } }).length).toBeGreaterThan(0);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, variants: [{ steps: 4 }] } } }).length).toBeGreaterThan(0);
    const answer = { ...shipped.sampling.answer, variants: [{ temperature: 1 }] };
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, answer } })).toContain('variants is for image tasks (answers draw one candidate)');
  });

  it('takes a verify question for text to image in a known language, and refuses it elsewhere', () => {
    const verify = { question: 'describe the image', language: 'shapes-world', stopAfter: 2 };
    const t2i = { ...shipped.sampling.t2i, verify };
    expect(manifestSchema.parse({ ...shipped, sampling: { ...shipped.sampling, t2i } }).sampling?.t2i?.verify).toEqual(verify);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { ...verify, language: 'english' } } } }).length).toBeGreaterThan(0);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { ...verify, stopAfter: 0 } } } }).length).toBeGreaterThan(0);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { ...verify, minExplained: 1 } } } }).length).toBeGreaterThan(0);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { ...verify, rankBy: 'fit' } } } }).length).toBeGreaterThan(0);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { ...verify, minRegionFit: 3 } } } }).length).toBeGreaterThan(0);
    expect(manifestSchema.parse({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { ...verify, minRegionFit: -100 } } } }).sampling?.t2i?.verify?.minRegionFit).toBe(-100);
    expect(manifestSchema.parse({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { ...verify, minExplained: -5 } } } }).sampling?.t2i?.verify?.minExplained).toBe(-5);
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, t2i: { ...t2i, verify: { question: 'describe the image' } } } }).length).toBeGreaterThan(0);
    const edit = { ...shipped.sampling.edit, verify };
    expect(issues({ ...shipped, sampling: { ...shipped.sampling, edit } })).toContain('verify is for text to image (it reads the prompt as a description)');
  });
});
