import { describe, expect, it } from 'vitest';
import { blankImage, type RgbImage } from '../../functions/core/image.ts';
import { Rng } from '../../functions/core/rng.ts';
import { detect, detectedScene, detectionEquals, detectionMatches } from './detector.ts';
import { IMAGE_SIZE, PALETTE, cellCenter, drawObject, render } from './render.ts';
import { COLORS, SHAPES, sampleScene, type Color, type Scene, type SceneObject } from '../../functions/world/scene.ts';

type Rgb = readonly [number, number, number];
type Pixel = readonly [number, number];

function paint(image: RgbImage, pixels: readonly Pixel[], rgb: (p: Pixel) => Rgb): RgbImage {
  for (const p of pixels) {
    const i = (p[1] * image.width + p[0]) * 3;
    image.data.set(rgb(p), i);
  }
  return image;
}

/** A blank world image. */
function canvas(): RgbImage {
  return blankImage(IMAGE_SIZE, IMAGE_SIZE);
}

/** The pixels of a w x h box with top left corner (x, y). */
function box(x: number, y: number, w: number, h: number): Pixel[] {
  const out: Pixel[] = [];
  for (let dy = 0; dy < h; dy++) for (let dx = 0; dx < w; dx++) out.push([x + dx, y + dy]);
  return out;
}

/** Per channel Gaussian noise of `sigma` (0..255 scale), rounded and clamped. */
function withNoise(image: RgbImage, sigma: number, rng: Rng): RgbImage {
  return { ...image, data: image.data.map((v) => Math.min(255, Math.max(0, Math.round(v + sigma * rng.normal())))) };
}

/**
 * Pulls every pixel half-way towards the mean of its 4x4 patch, the way a k-means codebook
 * centroid averages the edge patches it stands for.
 */
function softenPatches(image: RgbImage): RgbImage {
  const data = new Uint8Array(image.data);
  for (let py = 0; py < image.height; py += 4) {
    for (let px = 0; px < image.width; px += 4) {
      const patch = box(px, py, 4, 4).map(([x, y]) => (y * image.width + x) * 3);
      for (let k = 0; k < 3; k++) {
        const mean = patch.reduce((s, i) => s + (image.data[i + k] as number), 0) / patch.length;
        for (const i of patch) data[i + k] = Math.round(((image.data[i + k] as number) + mean) / 2);
      }
    }
  }
  return { ...image, data };
}

/**
 * In a share `rate` of the 4x4 patches that mix background and object, flips one pixel on
 * the object's outline, the way a VQ code that almost fits a patch redraws its edge.
 */
function flipEdgePixels(image: RgbImage, rate: number, rng: Rng): RgbImage {
  const { width, height } = image;
  const at = (x: number, y: number): number => (y * width + x) * 3;
  const isObject = (x: number, y: number): boolean =>
    x >= 0 && y >= 0 && x < width && y < height && image.data.subarray(at(x, y), at(x, y) + 3).some((v) => v !== 255);
  const data = new Uint8Array(image.data);
  for (let py = 0; py < height; py += 4) {
    for (let px = 0; px < width; px += 4) {
      const patch = box(px, py, 4, 4);
      const inside = patch.filter(([x, y]) => isObject(x, y));
      if (inside.length === 0 || inside.length === patch.length || rng.next() >= rate) continue;
      const outline = patch.filter(([x, y]) =>
        [[1, 0], [-1, 0], [0, 1], [0, -1]].some(([dx = 0, dy = 0]) => isObject(x + dx, y + dy) !== isObject(x, y)),
      );
      const [x, y] = rng.pick(outline);
      const [ox, oy] = inside[0] as Pixel;
      data.set(isObject(x, y) ? [255, 255, 255] : image.data.subarray(at(ox, oy), at(ox, oy) + 3), at(x, y));
    }
  }
  return { ...image, data };
}

function exactRate(scenes: readonly Scene[], image: (s: Scene) => RgbImage): number {
  return scenes.filter((s) => detectionEquals(detect(image(s)), s)).length / scenes.length;
}

function scenes(count: number, seed: number): Scene[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => sampleScene(rng));
}

/** Ways to change one object of a scene into something else. */
const CHANGES = {
  color: (o: SceneObject, _s: Scene, rng: Rng): SceneObject => ({
    ...o,
    color: rng.pick(COLORS.filter((c) => c !== o.color)),
  }),
  shape: (o: SceneObject, _s: Scene, rng: Rng): SceneObject => ({
    ...o,
    shape: rng.pick(SHAPES.filter((c) => c !== o.shape)),
  }),
  size: (o: SceneObject): SceneObject => ({ ...o, size: o.size === 'small' ? 'large' : 'small' }),
  cell: (o: SceneObject, s: Scene, rng: Rng): SceneObject => ({
    ...o,
    cell: rng.pick([...Array(9).keys()].filter((c) => !s.objects.some((p) => p.cell === c))),
  }),
} as const;

const red = (): Rgb => PALETTE.red;

describe('detect', () => {
  it('reads back every object of 500 random rendered scenes', () => {
    expect(exactRate(scenes(500, 1), render)).toBe(1);
  });

  it('reads back at least 98% of 500 scenes under Gaussian pixel noise of sigma 8/255', () => {
    const rng = new Rng(2);
    expect(exactRate(scenes(500, 2), (s) => withNoise(render(s), 8, rng))).toBeGreaterThanOrEqual(0.98);
  });

  it('reads back scenes whose 4x4 patches were softened like a VQ round trip, with noise on top', () => {
    const rng = new Rng(3);
    expect(exactRate(scenes(200, 3), (s) => withNoise(softenPatches(render(s)), 8, rng))).toBe(1);
  });

  it('reads back scenes with an outline pixel flipped in half the edge patches', () => {
    const rng = new Rng(5);
    expect(exactRate(scenes(200, 5), (s) => flipEdgePixels(render(s), 0.5, rng))).toBe(1);
  });

  it.each(Object.keys(CHANGES) as (keyof typeof CHANGES)[])(
    'reads a scene with one object of another %s as that scene, never the original',
    (kind) => {
      const rng = new Rng(4);
      for (const original of scenes(200, 4)) {
        const index = rng.int(original.objects.length);
        const changed: Scene = {
          objects: original.objects.map((o, i) => (i === index ? CHANGES[kind](o, original, rng) : o)),
        };
        const detection = detect(render(changed));
        expect(detectionEquals(detection, original)).toBe(false);
        expect(detectionEquals(detection, changed)).toBe(true);
      }
    },
  );

  it('reports a real extra object and ignores a speck of 3 pixels', () => {
    const scene: Scene = { objects: [{ shape: 'circle', color: 'blue', size: 'large', cell: 0 }] };
    const speck = paint(render(scene), [[40, 40], [41, 40], [40, 41]], red);
    expect(detectionEquals(detect(speck), scene)).toBe(true);

    const extra = render(scene);
    drawObject(extra, { shape: 'triangle', color: 'red', size: 'small', cell: 8 });
    expect(detectionEquals(detect(extra), scene)).toBe(false);
    expect(detect(extra).objects).toHaveLength(2);
  });

  it('reports two objects drawn into one cell as two, which no scene of the world matches', () => {
    const c = cellCenter(1);
    const image = paint(canvas(), [...box(c - 10, c - 4, 8, 8), ...box(c + 2, c - 4, 8, 8)], red);
    const detection = detect(image);
    expect(detection.objects.map((o) => [o.shape, o.size, o.cell])).toEqual([['square', 'small', 4], ['square', 'small', 4]]);
    expect(detectedScene(detection)).toBeNull();
    expect(detectionMatches(detection, { objects: [{ shape: 'square', color: 'red' }, { shape: 'square', color: 'red' }] })).toBe(false);
  });

  it('reads an object painted in a checkerboard of two colors as color unknown', () => {
    const c = cellCenter(1);
    const image = paint(canvas(), box(c - 8, c - 8, 16, 16), ([x, y]) =>
      (x + y) % 2 === 0 ? PALETTE.red : PALETTE.blue,
    );
    expect(detect(image).objects).toMatchObject([{ shape: 'square', size: 'large', color: 'unknown' }]);
  });

  it('reads an object in an even blend of any two palette colors as color unknown', () => {
    const c = cellCenter(1);
    for (const [i, a] of COLORS.entries()) {
      for (const b of COLORS.slice(i + 1)) {
        const mid = (k: 0 | 1 | 2): number => Math.round((PALETTE[a][k] + PALETTE[b][k]) / 2);
        const blend: Rgb = [mid(0), mid(1), mid(2)];
        const image = paint(canvas(), box(c - 8, c - 8, 16, 16), () => blend);
        expect(detect(image).objects, `${a} + ${b}`).toMatchObject([{ color: 'unknown' }]);
      }
    }
  });

  it('reads the color of 3 in 4 pixels or more, and unknown when fewer hold it', () => {
    const c = cellCenter(1);
    const colorWhenBlueEvery = (n: number): Color | 'unknown' | undefined => {
      const pixels = box(c - 8, c - 8, 16, 16);
      const image = paint(canvas(), pixels, ([x, y]) => ((y * 16 + x) % n === 0 ? PALETTE.blue : PALETTE.red));
      return detect(image).objects[0]?.color;
    };
    expect(colorWhenBlueEvery(5)).toBe('red');
    expect(colorWhenBlueEvery(3)).toBe('unknown');
  });

  it('reads a thin line, an L and an upside-down triangle as no shape', () => {
    const c = cellCenter(1);
    const line = box(c - 8, c - 1, 16, 2);
    const ell = [...box(c - 8, c - 8, 4, 16), ...box(c - 4, c + 4, 12, 4)];
    const flipped: Pixel[] = [];
    const upright = render({ objects: [{ shape: 'triangle', color: 'red', size: 'large', cell: 4 }] });
    for (const [x, y] of box(c - 8, c - 8, 16, 16)) {
      if (upright.data[(y * IMAGE_SIZE + x) * 3 + 1] !== 255) flipped.push([x, 2 * c - 1 - y]);
    }
    for (const pixels of [line, ell, flipped]) {
      const image = paint(canvas(), pixels, red);
      expect(detect(image).objects).toMatchObject([{ shape: 'unknown', color: 'red' }]);
    }
  });

  it('reads a shape half-way between a circle and a square as no shape', () => {
    const c = cellCenter(1);
    const byDistance = box(c - 8, c - 8, 16, 16).sort(
      ([ax, ay], [bx, by]) => Math.hypot(ax + 0.5 - c, ay + 0.5 - c) - Math.hypot(bx + 0.5 - c, by + 0.5 - c),
    );
    const circle = detect(render({ objects: [{ shape: 'circle', color: 'red', size: 'large', cell: 4 }] })).objects[0];
    const halfWay = Math.round(((circle?.pixels ?? 0) + 256) / 2);
    const image = paint(canvas(), byDistance.slice(0, halfWay), red);
    expect(detect(image).objects).toMatchObject([{ shape: 'unknown', size: 'large' }]);
  });

  it('reads squares between the two sizes as squares of neither size', () => {
    const c = cellCenter(1);
    for (const side of [12, 14]) {
      const image = paint(canvas(), box(c - side / 2, c - side / 2, side, side), red);
      const expected = { shape: 'square', size: 'unknown', color: 'red', cell: 4 };
      expect(detect(image).objects, `side ${side}`).toMatchObject([expected]);
    }
  });

  it('rejects an image that is not 64x64', () => {
    expect(() => detect(blankImage(32, 32))).toThrow(RangeError);
  });
});

describe('detectionMatches', () => {
  const scene: Scene = {
    objects: [
      { shape: 'circle', color: 'red', size: 'large', cell: 0 },
      { shape: 'square', color: 'green', size: 'small', cell: 8 },
    ],
  };

  it('matches a spec that leaves attributes open, one object to one spec', () => {
    const detection = detect(render(scene));
    const spec = { objects: [{ shape: 'square' }, { shape: 'circle', color: 'red' }] } as const;
    expect(detectionMatches(detection, spec)).toBe(true);
    expect(detectionMatches(detection, { objects: [{ shape: 'circle' }, { shape: 'circle' }] })).toBe(false);
    expect(detectionMatches(detection, { objects: [{ shape: 'circle' }] })).toBe(false);
  });

  it('matches no spec when an object is unknown, even one that leaves that attribute open', () => {
    const image = render(scene);
    const c = cellCenter(1);
    paint(image, box(c - 8, c - 8, 16, 16), ([x, y]) => ((x + y) % 2 === 0 ? PALETTE.red : PALETTE.blue));
    const detection = detect(image);
    expect(detection.objects).toHaveLength(3);
    expect(detectedScene(detection)).toBeNull();
    const spec = { objects: [{ shape: 'circle' }, { shape: 'square' }, { shape: 'square' }] } as const;
    expect(detectionMatches(detection, spec)).toBe(false);
  });
});
