/**
 * Renders a scene to a 64x64 RGB image on a white background.
 *
 * Geometry is chosen so that objects line up with the 4x4 patches of the image tokenizer:
 * cell centers sit at 12, 32, 52 px; a large object fills a 16x16 box, a small one 8x8.
 * Pixels are hard-edged (no anti-aliasing): a pixel belongs to a shape when its center does.
 */
import { blankImage, type RgbImage } from '../../functions/core/image.ts';
import type { Color, Scene, SceneObject, Shape, Size } from '../../functions/world/scene.ts';

export const IMAGE_SIZE = 64;
export const BACKGROUND: readonly [number, number, number] = [255, 255, 255];

export const PALETTE: Readonly<Record<Color, readonly [number, number, number]>> = {
  red: [220, 30, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [245, 215, 30],
  purple: [150, 60, 190],
  orange: [250, 140, 20],
};

/** Half the side of the box an object fills, in pixels. */
export const HALF_EXTENT: Readonly<Record<Size, number>> = { small: 4, large: 8 };

/** Pixel center of a cell's row or column (0..2). */
export function cellCenter(index: number): number {
  return 12 + 20 * index;
}

/** Whether the point (dx, dy), relative to the object's center, lies inside the shape. */
export function insideShape(shape: Shape, dx: number, dy: number, h: number): boolean {
  if (dx < -h || dx >= h || dy < -h || dy >= h) return false;
  switch (shape) {
    case 'square':
      return true;
    case 'circle':
      return dx * dx + dy * dy <= h * h;
    case 'triangle':
      // apex at the top center, base along the bottom edge
      return Math.abs(dx) <= (dy + h) / 2;
  }
}

export function drawObject(image: RgbImage, o: SceneObject): void {
  const h = HALF_EXTENT[o.size];
  const cx = cellCenter(o.cell % 3);
  const cy = cellCenter(Math.floor(o.cell / 3));
  const [r, g, b] = PALETTE[o.color];
  for (let y = cy - h; y < cy + h; y++) {
    for (let x = cx - h; x < cx + h; x++) {
      if (!insideShape(o.shape, x + 0.5 - cx, y + 0.5 - cy, h)) continue;
      const i = (y * image.width + x) * 3;
      image.data[i] = r;
      image.data[i + 1] = g;
      image.data[i + 2] = b;
    }
  }
}

/** The scene as pixels. */
export function render(scene: Scene): RgbImage {
  const image = blankImage(IMAGE_SIZE, IMAGE_SIZE, BACKGROUND);
  for (const o of scene.objects) drawObject(image, o);
  return image;
}
