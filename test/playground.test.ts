/**
 * The playground in a real browser: Debian's chromium driven by playwright-core (TOOLCHAIN.md)
 * against the real server on loopback. The page streams a preview every step, then shows
 * the final image with its timings; questions stream their answer. The shipped model is
 * barely trained: these tests check what the page shows, never image or answer quality.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankImage } from '../functions/core/image.ts';
import { encodePng } from '../functions/tokenizers/png.ts';
import { loadModel, serveApi, type ApiUnderTest, type ModelUnderTest } from './support/api.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

/** A 64x64 white PNG with a red square in the middle. */
function scenePng(): Buffer {
  const image = blankImage(64, 64);
  for (let y = 24; y < 40; y++) for (let x = 24; x < 40; x++) image.data.set([220, 30, 30], (y * 64 + x) * 3);
  return encodePng(image);
}

interface Frame {
  readonly src: string;
  readonly phase: string | undefined;
}

/**
 * Records every image the preview <img> shows, in order, with its phase (partial, final).
 * Browser code goes to the page as text: this project compiles without the DOM types.
 */
async function recordPreviews(page: Page): Promise<() => Promise<Frame[]>> {
  await page.evaluate(`{
    const img = document.getElementById('preview');
    window.seen = [];
    new MutationObserver(() => {
      const last = window.seen.at(-1);
      if (last?.src !== img.src || last?.phase !== img.dataset.phase) window.seen.push({ src: img.src, phase: img.dataset.phase });
    }).observe(img, { attributes: true, attributeFilter: ['src', 'data-phase'] });
  }`);
  return async () => (await page.evaluate('window.seen')) as Frame[];
}

describe.skipIf(!existsSync(CHROMIUM))(`the playground in Chromium (skipped only where ${CHROMIUM} is missing: apt-get install chromium)`, () => {
  let model: ModelUnderTest;
  let api: ApiUnderTest;
  let browser: Browser;

  beforeAll(async () => {
    model = await loadModel();
    api = await serveApi(model);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  });

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await model?.engine.close();
  });

  /** Problems the page reported (uncaught errors, CSP refusals), checked as each test ends. */
  const problems = new Map<Page, string[]>();

  async function open(url = api.url): Promise<Page> {
    const page = await browser.newPage();
    const seen: string[] = [];
    problems.set(page, seen);
    page.on('pageerror', (e) => seen.push(e.message));
    // A refused request (the 401 below) is logged by the browser too; it is not the page's fault.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) seen.push(m.text());
    });
    await page.goto(url);
    return page;
  }

  /** Clicks a segmented switch's label, as a user does (the radio itself is visually hidden). */
  async function choose(page: Page, name: string, value: string): Promise<void> {
    await page.click(`label:has(> input[name=${name}][value=${value}])`);
    expect(await page.isChecked(`input[name=${name}][value=${value}]`)).toBe(true);
  }

  async function close(page: Page): Promise<void> {
    await page.close();
    expect(problems.get(page)).toEqual([]);
  }

  it('streams at least 3 different previews, then shows the final image with its timing', async () => {
    const page = await open();
    const frames = await recordPreviews(page);
    await page.fill('#prompt', 'a small red circle at the top left');
    await choose(page, 'sampler', 'sparse');
    await page.fill('#steps', '8');
    await page.fill('#seed', '3');
    await page.fill('#candidates', '2');
    await page.click('#generate');
    await page.waitForSelector('#preview[data-phase=final]');
    await page.waitForSelector('#stats:not([hidden])');

    const seen = await frames();
    const firstFinal = seen.findIndex((f) => f.phase === 'final');
    const previews = seen.slice(0, firstFinal);
    expect(previews.every((f) => f.phase === 'partial')).toBe(true);
    expect(new Set(previews.map((f) => f.src)).size).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)?.src).toMatch(/^data:image\/png;base64,/);
    // One preview per step of both candidates before the last, each kept in the strip of frames.
    expect(await page.locator('#frames img').count()).toBe(15);
    const shown = (await page.evaluate(`{
      const img = document.getElementById('preview');
      ({ width: img.naturalWidth, shownWidth: img.getBoundingClientRect().width, rendering: getComputedStyle(img).imageRendering });
    }`)) as { width: number; shownWidth: number; rendering: string };
    expect(shown).toMatchObject({ width: 64, rendering: 'pixelated' });
    expect(shown.shownWidth).toBeGreaterThan(64);

    const stats = await page.textContent('#stats');
    expect(stats).toMatch(/total\d+ ms \(server\)/);
    expect(stats).toMatch(/first preview\d+ ms \(server\)/);
    expect(stats).toMatch(/tokens processed[\d,]+ in \d+ forward passes/);
    expect(await page.textContent('#status')).toBe('done: 8 steps, best of 2, sparse sampler, seed 3');
    await close(page);
  });

  it('edits an uploaded image with the dense sampler, streaming its previews', async () => {
    const page = await open();
    const frames = await recordPreviews(page);
    await choose(page, 'task', 'edit');
    await page.setInputFiles('#source', { name: 'scene.png', mimeType: 'image/png', buffer: scenePng() });
    await page.waitForSelector('#source-thumb:not([hidden])');
    await page.fill('#prompt', 'make the red square blue');
    await choose(page, 'sampler', 'dense');
    await page.fill('#steps', '6');
    await page.click('#generate');
    await page.waitForSelector('#preview[data-phase=final]');
    const seen = await frames();
    expect(seen.filter((f) => f.phase === 'partial')).toHaveLength(5);
    expect(await page.textContent('#status')).toMatch(/^done: 6 steps, dense sampler/);
    await close(page);
  });

  it('streams the answer to a question about an uploaded image', async () => {
    const image = `data:image/png;base64,${scenePng().toString('base64')}`;
    const question = 'what color is the square?';
    const res = await fetch(`${api.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: image } }] }] }),
    });
    const expected = ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content;
    expect(expected).not.toBe('');

    const page = await open();
    await choose(page, 'task', 'ask');
    await page.setInputFiles('#source', { name: 'scene.png', mimeType: 'image/png', buffer: scenePng() });
    await page.waitForSelector('#source-thumb:not([hidden])');
    await page.fill('#prompt', question);
    await page.click('#generate');
    await page.locator('#status', { hasText: /^done$/ }).waitFor();
    // Greedy answers (the model's default temperature, 0) are the same streamed or not.
    expect(await page.textContent('#answer')).toBe(expected);
    expect(await page.textContent('#stats')).toMatch(/tokens processed[\d,]+ in \d+ forward passes/);
    await close(page);
  });

  it('asks for the API key when the server has keys, and sends it as a bearer token', async () => {
    const locked = await serveApi(model, { apiKeys: ['playground-key'] });
    try {
      const page = await open(locked.url);
      await page.waitForSelector('#api-key', { state: 'visible' });
      await page.fill('#prompt', 'two green triangles');
      await page.fill('#steps', '4');
      await page.fill('#api-key', 'wrong-key');
      await page.click('#generate');
      await page.waitForSelector('#status.error');
      expect(await page.textContent('#status')).toBe('the API key is not valid');
      await page.fill('#api-key', 'playground-key');
      await page.click('#generate');
      await page.waitForSelector('#preview[data-phase=final]');
      await close(page);
    } finally {
      await locked.close();
    }
  });
});
