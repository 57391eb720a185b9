import { check } from '../errors.js';
import type { RgbImage } from './imageGrid.js';

/**
 * A tiny 5x7 bitmap font (printable ASCII: letters, digits and common punctuation) for labelling
 * figures without a canvas or a font file, so the same code draws captions in Node and in browsers.
 * Each glyph is 7 rows of 5 bits, most significant bit on the left; glyphs advance by 6 pixels.
 */

/** Glyph width and height in font pixels; glyphs advance by `GLYPH_W + 1`, lines by `GLYPH_H + 2`. */
export const GLYPH_W = 5;
export const GLYPH_H = 7;

// prettier-ignore
const GLYPHS: Record<string, number[]> = {
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '!': [4, 4, 4, 4, 4, 0, 4],
  '"': [10, 10, 0, 0, 0, 0, 0],
  '#': [10, 31, 10, 10, 10, 31, 10],
  '%': [24, 25, 2, 4, 8, 19, 3],
  '&': [12, 18, 20, 8, 21, 18, 13],
  "'": [4, 4, 0, 0, 0, 0, 0],
  '(': [2, 4, 8, 8, 8, 4, 2],
  ')': [8, 4, 2, 2, 2, 4, 8],
  '*': [0, 4, 21, 14, 21, 4, 0],
  '+': [0, 4, 4, 31, 4, 4, 0],
  ',': [0, 0, 0, 0, 6, 4, 8],
  '-': [0, 0, 0, 31, 0, 0, 0],
  '.': [0, 0, 0, 0, 0, 6, 6],
  '/': [1, 1, 2, 4, 8, 16, 16],
  '0': [14, 17, 19, 21, 25, 17, 14],
  '1': [4, 12, 4, 4, 4, 4, 14],
  '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14],
  '4': [2, 6, 10, 18, 31, 2, 2],
  '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14],
  '7': [31, 1, 2, 4, 8, 8, 8],
  '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  ':': [0, 6, 6, 0, 6, 6, 0],
  ';': [0, 6, 6, 0, 6, 4, 8],
  '<': [2, 4, 8, 16, 8, 4, 2],
  '=': [0, 0, 31, 0, 31, 0, 0],
  '>': [8, 4, 2, 1, 2, 4, 8],
  '?': [14, 17, 1, 2, 4, 0, 4],
  '@': [14, 17, 1, 13, 21, 21, 14],
  A: [14, 17, 17, 31, 17, 17, 17],
  B: [30, 17, 17, 30, 17, 17, 30],
  C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28],
  E: [31, 16, 16, 30, 16, 16, 31],
  F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15],
  H: [17, 17, 17, 31, 17, 17, 17],
  I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12],
  K: [17, 18, 20, 24, 20, 18, 17],
  L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17],
  N: [17, 17, 25, 21, 19, 17, 17],
  O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16],
  Q: [14, 17, 17, 17, 21, 18, 13],
  R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30],
  T: [31, 4, 4, 4, 4, 4, 4],
  U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4],
  W: [17, 17, 17, 21, 21, 21, 10],
  X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 17, 10, 4, 4, 4],
  Z: [31, 1, 2, 4, 8, 16, 31],
  '[': [14, 8, 8, 8, 8, 8, 14],
  '\\': [16, 16, 8, 4, 2, 1, 1],
  ']': [14, 2, 2, 2, 2, 2, 14],
  '^': [4, 10, 17, 0, 0, 0, 0],
  _: [0, 0, 0, 0, 0, 0, 31],
  '`': [8, 4, 0, 0, 0, 0, 0],
  a: [0, 0, 14, 1, 15, 17, 15],
  b: [16, 16, 22, 25, 17, 17, 30],
  c: [0, 0, 14, 16, 16, 17, 14],
  d: [1, 1, 13, 19, 17, 17, 15],
  e: [0, 0, 14, 17, 31, 16, 14],
  f: [6, 9, 8, 28, 8, 8, 8],
  g: [0, 15, 17, 17, 15, 1, 14],
  h: [16, 16, 22, 25, 17, 17, 17],
  i: [4, 0, 12, 4, 4, 4, 14],
  j: [2, 0, 6, 2, 2, 18, 12],
  k: [16, 16, 18, 20, 24, 20, 18],
  l: [12, 4, 4, 4, 4, 4, 14],
  m: [0, 0, 26, 21, 21, 17, 17],
  n: [0, 0, 22, 25, 17, 17, 17],
  o: [0, 0, 14, 17, 17, 17, 14],
  p: [0, 0, 30, 17, 30, 16, 16],
  q: [0, 0, 13, 19, 15, 1, 1],
  r: [0, 0, 22, 25, 16, 16, 16],
  s: [0, 0, 14, 16, 14, 1, 30],
  t: [8, 8, 28, 8, 8, 9, 6],
  u: [0, 0, 17, 17, 17, 19, 13],
  v: [0, 0, 17, 17, 17, 10, 4],
  w: [0, 0, 17, 17, 21, 21, 10],
  x: [0, 0, 17, 10, 4, 10, 17],
  y: [0, 0, 17, 17, 15, 1, 14],
  z: [0, 0, 31, 2, 4, 8, 31],
  '{': [2, 4, 4, 8, 4, 4, 2],
  '|': [4, 4, 4, 4, 4, 4, 4],
  '}': [8, 4, 4, 2, 4, 4, 8],
  '~': [0, 0, 8, 21, 2, 0, 0],
};

/** The characters {@link drawText} can draw (any other character is drawn as `?`). */
export const FONT_CHARS: string = Object.keys(GLYPHS).join('');

/** The 7 row bitmasks of a character's glyph (`?` for characters outside {@link FONT_CHARS}). */
export function glyph(ch: string): readonly number[] {
  return GLYPHS[ch] ?? GLYPHS['?'];
}

/** Width and height in pixels of `text` (lines split at `\n`) drawn at integer `scale`. */
export function measureText(text: string, scale = 1): { width: number; height: number } {
  const lines = text.split('\n');
  const cols = Math.max(...lines.map((l) => l.length));
  return { width: cols > 0 ? (cols * (GLYPH_W + 1) - 1) * scale : 0, height: (lines.length * (GLYPH_H + 2) - 2) * scale };
}

/** Options of {@link drawText} and {@link textImage}. */
export interface TextOptions {
  /** Integer upscaling of the 5x7 glyphs (default 1). */
  scale?: number;
  /** Text colour, RGB in [0, 1] (default black). */
  color?: [number, number, number];
}

/**
 * Draw `text` (lines split at `\n`) into an {@link RgbImage} in place, with its top-left corner at
 * pixel `(x, y)`; pixels outside the image are skipped.
 */
export function drawText(image: RgbImage, text: string, x: number, y: number, opts: TextOptions = {}): void {
  const s = opts.scale ?? 1;
  check(Number.isInteger(s) && s >= 1, () => `scale=${s}: expected a positive integer`);
  const color = opts.color ?? [0, 0, 0];
  text.split('\n').forEach((line, li) => {
    const y0 = y + li * (GLYPH_H + 2) * s;
    for (let c = 0; c < line.length; c++) {
      const rows = glyph(line[c]);
      const x0 = x + c * (GLYPH_W + 1) * s;
      for (let gy = 0; gy < GLYPH_H; gy++) {
        for (let gx = 0; gx < GLYPH_W; gx++) {
          if (!((rows[gy] >> (GLYPH_W - 1 - gx)) & 1)) continue;
          for (let dy = 0; dy < s; dy++) {
            for (let dx = 0; dx < s; dx++) {
              const px = x0 + gx * s + dx;
              const py = y0 + gy * s + dy;
              if (px < 0 || py < 0 || px >= image.width || py >= image.height) continue;
              image.data.set(color, (py * image.width + px) * 3);
            }
          }
        }
      }
    }
  });
}

/** Options of {@link textImage}. */
export interface TextImageOptions extends TextOptions {
  /** Background colour, RGB in [0, 1] (default white). */
  background?: [number, number, number];
  /** Image size (default: the text's size plus `pad` on every side); the text is centred vertically. */
  width?: number;
  height?: number;
  /** Margin around the text in pixels (default 2). */
  pad?: number;
  /** Horizontal placement inside `width` (default 'left', after `pad`). */
  align?: 'left' | 'center' | 'right';
}

/** An {@link RgbImage} holding `text`, e.g. a row label for {@link imageGrid}. */
export function textImage(text: string, opts: TextImageOptions = {}): RgbImage {
  const s = opts.scale ?? 1;
  const pad = opts.pad ?? 2;
  const size = measureText(text, s);
  const width = opts.width ?? size.width + 2 * pad;
  const height = opts.height ?? size.height + 2 * pad;
  check(
    Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0,
    () => `textImage size ${width}x${height}: expected positive integers`,
  );
  const data = new Float32Array(width * height * 3);
  const bg = opts.background ?? [1, 1, 1];
  for (let i = 0; i < width * height; i++) data.set(bg, i * 3);
  const image = { width, height, data };
  const align = opts.align ?? 'left';
  const x = align === 'left' ? pad : align === 'right' ? width - pad - size.width : Math.floor((width - size.width) / 2);
  drawText(image, text, x, Math.floor((height - size.height) / 2), opts);
  return image;
}
