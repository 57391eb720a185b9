import { check } from '../errors.js';
import type { RgbImage } from './imageGrid.js';
import { drawText, GLYPH_H, measureText } from './text.js';

/** One line of a {@link lineChart}: `(x, y)` points, drawn in order. */
export interface ChartSeries {
  name: string;
  points: [number, number][];
  /** RGB in [0, 1] (default: a colour of the built-in palette). */
  color?: [number, number, number];
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Picture size in pixels (default 420 x 260). */
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  /** Axis ranges (default: the data's range; y padded by 5%). */
  xRange?: [number, number];
  yRange?: [number, number];
  /** Draw a dot at every point (default: when a series has at most 40 points). */
  markers?: boolean;
}

const PALETTE: [number, number, number][] = [
  [0.12, 0.47, 0.71],
  [0.89, 0.1, 0.11],
  [0.2, 0.63, 0.17],
  [1, 0.5, 0],
  [0.42, 0.24, 0.6],
];

/** "Nice" tick values covering `[lo, hi]` (about `n` of them: steps of 1, 2 or 5 times a power of ten). */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  check(Number.isFinite(lo) && Number.isFinite(hi), () => `niceTicks: range [${lo}, ${hi}] is not finite`);
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function fmt(v: number, step: number): string {
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(digits, 6));
}

/**
 * A line chart as an {@link RgbImage} (no canvas: Node and browsers alike), e.g. a training curve:
 * axes with tick labels, one polyline per series, a legend. Encode it with `imageGrid([[chart]])` +
 * `encodePng`.
 */
export function lineChart(series: ChartSeries[], opts: LineChartOptions = {}): RgbImage {
  const width = opts.width ?? 420;
  const height = opts.height ?? 260;
  check(
    Number.isInteger(width) && width >= 120 && Number.isInteger(height) && height >= 80,
    () => `lineChart: size ${width}x${height} too small`,
  );
  check(series.length > 0, 'lineChart needs at least one series');
  const pts = series.flatMap((s) => s.points);
  check(pts.length > 0, 'lineChart: every series is empty');
  for (const [x, y] of pts) check(Number.isFinite(x) && Number.isFinite(y), () => `lineChart: point (${x}, ${y}) is not finite`);
  let [x0, x1] = opts.xRange ?? [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = opts.yRange ?? [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  if (!opts.yRange) {
    const m = 0.05 * (y1 - y0);
    [y0, y1] = [y0 - m, y1 + m];
  }
  const data = new Float32Array(width * height * 3).fill(1);
  const img: RgbImage = { width, height, data };
  const put = (x: number, y: number, c: readonly number[]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    data.set(c, (y * width + x) * 3);
  };
  const yTicks = niceTicks(y0, y1, 5);
  const xTicks = niceTicks(x0, x1, 6);
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  const xStep = xTicks.length > 1 ? xTicks[1] - xTicks[0] : 1;
  const yLabels = yTicks.map((v) => fmt(v, yStep));
  const left = 8 + Math.max(...yLabels.map((l) => measureText(l).width));
  const top = opts.title ? GLYPH_H + 8 : 6;
  const bottom = height - (GLYPH_H + 6) - (opts.xLabel ? GLYPH_H + 4 : 0);
  const right = width - 8;
  const px = (x: number) => left + ((x - x0) / (x1 - x0)) * (right - left);
  const py = (y: number) => bottom - ((y - y0) / (y1 - y0)) * (bottom - top);
  const grey = [0.85, 0.85, 0.85];
  const black = [0, 0, 0];
  yTicks.forEach((v, i) => {
    const y = Math.round(py(v));
    for (let x = left; x <= right; x++) put(x, y, grey);
    drawText(img, yLabels[i], left - 4 - measureText(yLabels[i]).width, y - 3);
  });
  for (const v of xTicks) {
    const x = Math.round(px(v));
    for (let y = top; y <= bottom; y++) put(x, y, grey);
    const l = fmt(v, xStep);
    drawText(img, l, x - Math.floor(measureText(l).width / 2), bottom + 4);
  }
  for (let x = left; x <= right; x++) put(x, bottom, black);
  for (let y = top; y <= bottom; y++) put(left, y, black);
  if (opts.title) drawText(img, opts.title, Math.floor((width - measureText(opts.title).width) / 2), 3);
  if (opts.xLabel) drawText(img, opts.xLabel, Math.floor((left + right - measureText(opts.xLabel).width) / 2), height - GLYPH_H - 3);
  const clipY = (y: number) => Math.min(bottom, Math.max(top, y));
  series.forEach((s, si) => {
    const c = s.color ?? PALETTE[si % PALETTE.length];
    const markers = opts.markers ?? s.points.length <= 40;
    const line = (ax: number, ay: number, bx: number, by: number) => {
      const n = Math.max(1, Math.ceil(Math.max(Math.abs(bx - ax), Math.abs(by - ay))));
      for (let k = 0; k <= n; k++) {
        const x = Math.round(ax + ((bx - ax) * k) / n);
        const y = Math.round(clipY(ay + ((by - ay) * k) / n));
        put(x, y, c);
        put(x, y + 1, c);
      }
    };
    for (let i = 1; i < s.points.length; i++) line(px(s.points[i - 1][0]), py(s.points[i - 1][1]), px(s.points[i][0]), py(s.points[i][1]));
    if (markers)
      for (const [x, y] of s.points)
        for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) put(Math.round(px(x)) + dx, Math.round(clipY(py(y))) + dy, c);
  });
  // legend, top right
  let ly = top + 4;
  for (const [si, s] of series.entries()) {
    const c = s.color ?? PALETTE[si % PALETTE.length];
    const w = measureText(s.name).width;
    const lx = right - w - 18;
    for (let x = lx; x < lx + 12; x++) for (let dy = 0; dy < 2; dy++) put(x, ly + 3 + dy, c);
    drawText(img, s.name, lx + 15, ly);
    ly += GLYPH_H + 4;
  }
  return img;
}
