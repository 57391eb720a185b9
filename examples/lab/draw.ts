/** The lab's pictures: the loss curve and the labelled preview grid, drawn on canvases. */
import type { RgbImage } from '../../src/viz/imageGrid.js';
import type { Preview, Tile } from './methods.js';

/** Where each column of the last grid was drawn (canvas pixels), for tests and tooltips. */
export interface GridLayout {
  columns: { label: string; x: number; width: number }[];
  top: number;
  height: number;
}

/** Plot losses (and a running mean over `smooth` steps) with axes labels. */
export function drawLossCurve(canvas: HTMLCanvasElement, losses: number[], totalSteps: number, smooth = 10): void {
  const ctx = canvas.getContext('2d')!;
  const { width: w, height: h } = canvas;
  const left = 48;
  const bottom = 22;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = '#999';
  ctx.strokeRect(left, 6, w - left - 8, h - bottom - 6);
  ctx.fillStyle = '#444';
  ctx.font = '11px system-ui, sans-serif';
  if (losses.length === 0) {
    ctx.fillText('loss: no steps yet', left + 8, h / 2);
    return;
  }
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const span = hi - lo || 1;
  const n = Math.max(totalSteps, losses.length, 2);
  const px = (i: number) => left + ((w - left - 8) * i) / (n - 1);
  const py = (v: number) => 6 + (h - bottom - 12) * (1 - (v - lo) / span) + 3;
  ctx.fillText(hi.toFixed(3), 2, 14);
  ctx.fillText(lo.toFixed(3), 2, h - bottom);
  ctx.fillText('0', left, h - 6);
  ctx.fillText(`step ${n}`, w - 60, h - 6);
  const line = (vals: number[], colour: string, lw: number) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = lw;
    ctx.beginPath();
    vals.forEach((v, i) => (i ? ctx.lineTo(px(i), py(v)) : ctx.moveTo(px(i), py(v))));
    ctx.stroke();
  };
  line(losses, '#9ab', 1);
  const mean = losses.map((_, i) => {
    const a = losses.slice(Math.max(0, i - smooth + 1), i + 1);
    return a.reduce((s, v) => s + v, 0) / a.length;
  });
  line(mean, '#c33', 2);
  ctx.lineWidth = 1;
}

function rgbToCanvas(im: RgbImage): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = im.width;
  c.height = im.height;
  const ctx = c.getContext('2d')!;
  const data = ctx.createImageData(im.width, im.height);
  for (let i = 0; i < im.width * im.height; i++) {
    for (let k = 0; k < 3; k++) data.data[i * 4 + k] = Math.round(Math.min(1, Math.max(0, im.data[i * 3 + k])) * 255);
    data.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(data, 0, 0);
  return c;
}

/** HOG histograms as the usual glyphs: per cell, one line per orientation bin, brightness by its weight. */
function drawHog(ctx: CanvasRenderingContext2D, t: Extract<Tile, { kind: 'hog' }>, x0: number, y0: number, size: number): void {
  ctx.fillStyle = '#000';
  ctx.fillRect(x0, y0, size, size);
  const cw = size / t.gridW;
  const ch = size / t.gridH;
  let max = 0;
  for (const v of t.cells) max = Math.max(max, v);
  if (!(max > 0)) return;
  ctx.lineWidth = 1;
  for (let i = 0; i < t.gridH; i++) {
    for (let j = 0; j < t.gridW; j++) {
      const cx = x0 + (j + 0.5) * cw;
      const cy = y0 + (i + 0.5) * ch;
      for (let b = 0; b < t.nbins; b++) {
        const v = Math.max(0, t.cells[(i * t.gridW + j) * t.nbins + b]) / max;
        if (v < 0.05) continue;
        // bin b holds gradient phases around (b + 0.5) * pi / nbins; the edge runs across the gradient
        const a = ((b + 0.5) * Math.PI) / t.nbins + Math.PI / 2;
        const r = 0.48 * Math.min(cw, ch);
        ctx.strokeStyle = `rgba(255,255,255,${v.toFixed(3)})`;
        ctx.beginPath();
        ctx.moveTo(cx - r * Math.sin(a), cy - r * Math.cos(a));
        ctx.lineTo(cx + r * Math.sin(a), cy + r * Math.cos(a));
        ctx.stroke();
      }
    }
  }
}

/** Draw the preview grid (labels on top, one row per image), each tile upscaled to `cell` pixels. */
export function drawPreview(canvas: HTMLCanvasElement, preview: Preview, cell = 128): GridLayout {
  const pad = 6;
  const top = 20;
  const rows = Math.max(...preview.columns.map((c) => c.tiles.length));
  canvas.width = pad + preview.columns.length * (cell + pad);
  canvas.height = top + rows * (cell + pad);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.font = '12px system-ui, sans-serif';
  ctx.textAlign = 'center';
  const layout: GridLayout = { columns: [], top, height: rows * (cell + pad) - pad };
  preview.columns.forEach((col, c) => {
    const x = pad + c * (cell + pad);
    ctx.fillStyle = '#333';
    ctx.fillText(col.label, x + cell / 2, 14);
    layout.columns.push({ label: col.label, x, width: cell });
    col.tiles.forEach((t, r) => {
      const y = top + r * (cell + pad);
      if (t.kind === 'rgb') ctx.drawImage(rgbToCanvas(t.image), x, y, cell, cell);
      else drawHog(ctx, t, x, y, cell);
    });
  });
  ctx.textAlign = 'start';
  return layout;
}
