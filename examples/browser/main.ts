/**
 * The browser example: load a converted model directory, run an image through it, show each
 * stage's feature map as RGB (first three principal components) and one shifted window's attention.
 *
 * Query parameters: `model` (directory URL, default `./model/`), `backend` (`webgl` default,
 * `webgpu`, `cpu`), `stage` / `block` (the attention block, default 0 / 1: the first shifted block),
 * `seed` / `index` (the generated input image), and `check` (URL of a fixture's `io.safetensors`: its
 * `input` is used and the logits are compared with its `logits` using `atol` / `rtol`).
 * Results are left in `window.__vb` and `document.body.dataset.status` for tests.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { Backbone, ModuleLayer, readSafetensors, SwinTransformer } from '../../src/index.js';
import { syntheticShapes } from '../../src/data/syntheticShapes.js';
import { colormap, RgbImage } from '../../src/viz/imageGrid.js';
import { pcaToRgb } from '../../src/viz/pca.js';
import { windowAttentionMaps } from '../../src/models/swin/windowAttentionMaps.js';

/** What the page reports (read by the end-to-end test). */
interface PageResult {
  backend?: string;
  model?: string;
  inputShape?: number[];
  logits?: number[][];
  top?: number[];
  /** The top class of each image by name (the model directory's `classNames`, else `class <index>`), with its softmax probability. */
  topNames?: { name: string; prob: number }[];
  check?: { maxAbsErr: number; worstExcess: number; atol: number; rtol: number };
  features?: { shape: number[]; rgbMin: number; rgbMax: number }[];
  attention?: {
    stage: number;
    block: number;
    window: number[];
    shift: number[];
    grid: number[];
    windowIndex: number;
    query: number;
    rowSums: number[];
    row: number[];
  };
  error?: string;
  millis?: number;
}

const params = new URLSearchParams(location.search);
const result: PageResult = {};
(window as unknown as { __vb: PageResult }).__vb = result;
const statusEl = document.getElementById('status')!;
const logEl = document.getElementById('log')!;

function log(line: string): void {
  logEl.textContent += `${line}\n`;
}

function setStatus(state: 'loading' | 'done' | 'error', text: string): void {
  document.body.dataset.status = state;
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

/** Draw an RGB image on a canvas, upscaled by `scale` (nearest neighbour). */
function draw(canvas: HTMLCanvasElement, im: RgbImage, scale: number): CanvasRenderingContext2D {
  const small = document.createElement('canvas');
  small.width = im.width;
  small.height = im.height;
  const sctx = small.getContext('2d')!;
  const data = sctx.createImageData(im.width, im.height);
  for (let i = 0; i < im.width * im.height; i++) {
    for (let k = 0; k < 3; k++) data.data[i * 4 + k] = Math.round(Math.min(1, Math.max(0, im.data[i * 3 + k])) * 255);
    data.data[i * 4 + 3] = 255;
  }
  sctx.putImageData(data, 0, 0);
  canvas.width = im.width * scale;
  canvas.height = im.height * scale;
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  return ctx;
}

/** The first image of an NHWC batch as a displayable image (min-max scaled per channel set). */
function displayImage(x: tf.Tensor4D, mean: number[], std: number[], raw: boolean): RgbImage {
  const [, h, w] = x.shape;
  const v = x.slice([0, 0, 0, 0], [1, -1, -1, -1]);
  const d = v.dataSync();
  v.dispose();
  const out = new Float32Array(h * w * 3);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < h * w * 3; i++) {
    out[i] = raw ? d[i] : d[i] * std[i % 3] + mean[i % 3];
    lo = Math.min(lo, out[i]);
    hi = Math.max(hi, out[i]);
  }
  if (raw) for (let i = 0; i < out.length; i++) out[i] = (out[i] - lo) / (hi - lo || 1);
  return { width: w, height: h, data: out };
}

/** Read an uploaded image into a normalised `[1, H, W, 3]` tensor of the model's input size. */
async function fileToTensor(file: File, h: number, w: number, mean: number[], std: number[]): Promise<tf.Tensor4D> {
  const bmp = await createImageBitmap(file);
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  const ctx = c.getContext('2d')!;
  ctx.drawImage(bmp, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data;
  const buf = new Float32Array(h * w * 3);
  for (let i = 0; i < h * w; i++) for (let k = 0; k < 3; k++) buf[i * 3 + k] = (px[i * 4 + k] / 255 - mean[k]) / std[k];
  return tf.tensor4d(buf, [1, h, w, 3]);
}

async function run(
  model: tf.LayersModel,
  backbone: Backbone,
  info: { mean: number[]; std: number[]; inputShape: number[]; classNames?: string[] | null },
  x: tf.Tensor4D,
  raw: boolean,
  expected?: { logits: tf.Tensor },
): Promise<void> {
  const t0 = performance.now();
  const [h, w] = info.inputShape;
  const scale = Math.max(1, Math.floor(192 / Math.max(h, w)));
  draw(document.getElementById('input') as HTMLCanvasElement, displayImage(x, info.mean, info.std, raw), scale);

  // logits through the LayersModel, as an application would call it
  const logits = model.predict(x) as tf.Tensor2D;
  result.logits = logits.arraySync();
  result.top = result.logits.map((r) => r.indexOf(Math.max(...r)));
  const names = Array.isArray(info.classNames) ? info.classNames : null;
  const probs = tf.tidy(() => tf.softmax(logits).arraySync() as number[][]);
  result.topNames = result.top.map((k, i) => ({ name: names?.[k] ?? `class ${k}`, prob: probs[i][k] }));
  log(
    `logits ${logits.shape.join('x')}, top class per image: ${result.topNames.map((t) => `${t.name} (${(100 * t.prob).toFixed(1)}%)`).join(', ')}`,
  );
  const caption = document.getElementById('input-caption');
  if (caption) caption.textContent = `input: ${result.topNames[0].name} (${(100 * result.topNames[0].prob).toFixed(1)}%)`;
  if (expected) {
    const atol = Number(params.get('atol') ?? '1e-4');
    const rtol = Number(params.get('rtol') ?? '1e-3');
    const a = logits.dataSync();
    const e = expected.logits.dataSync();
    let maxAbsErr = 0;
    let worstExcess = -Infinity;
    for (let i = 0; i < e.length; i++) {
      const d = Math.abs(a[i] - e[i]);
      maxAbsErr = Math.max(maxAbsErr, Number.isNaN(d) ? Infinity : d);
      worstExcess = Math.max(worstExcess, Number.isNaN(d) ? Infinity : d - (atol + rtol * Math.abs(e[i])));
    }
    result.check = { maxAbsErr, worstExcess, atol, rtol };
    log(
      `reference logits: max abs err ${maxAbsErr.toExponential(3)} (atol ${atol}, rtol ${rtol}) ${worstExcess <= 0 ? 'within tolerance' : 'OUT OF TOLERANCE'}`,
    );
  }
  logits.dispose();

  // stage feature maps, first image, as RGB via PCA
  const x0 = x.slice([0, 0, 0, 0], [1, -1, -1, -1]);
  const feats = backbone.forwardIntermediates(x0, { intermediatesOnly: true });
  const holder = document.getElementById('features')!;
  holder.innerHTML = '';
  result.features = [];
  feats.forEach((f, i) => {
    const rgb = pcaToRgb(f);
    const fig = document.createElement('figure');
    const canvas = document.createElement('canvas');
    draw(canvas, rgb, Math.max(1, Math.floor((h * scale) / rgb.height)));
    const cap = document.createElement('figcaption');
    cap.textContent = `stage ${i}: ${f.shape.slice(1).join('x')} (stride ${backbone.featureInfo[i].reduction})`;
    fig.append(canvas, cap);
    holder.append(fig);
    result.features!.push({ shape: f.shape, rgbMin: Math.min(...rgb.data), rgbMax: Math.max(...rgb.data) });
  });
  tf.dispose(feats);

  // one shifted window's attention (Swin / SwinV2 models)
  if (backbone instanceof SwinTransformer) {
    const stage = Number(params.get('stage') ?? '0');
    const block = Math.min(Number(params.get('block') ?? '1'), backbone.layers.items[stage].blocks.length - 1);
    const m = windowAttentionMaps(backbone, x0, stage, block);
    const [gh, gw] = m.grid;
    const [wh, ww] = m.window;
    const [sh, sw] = m.shift;
    // the window holding the image centre, and its centre token as the query
    const cy = ((((gh >> 1) - sh) % gh) + gh) % gh;
    const cx = ((((gw >> 1) - sw) % gw) + gw) % gw;
    const windowIndex = Math.floor(cy / wh) * (gw / ww) + Math.floor(cx / ww);
    const query = (cy % wh) * ww + (cx % ww);
    const n = wh * ww;
    const p = m.probs.dataSync() as Float32Array;
    m.probs.dispose();
    const row = Array.from(p.subarray((windowIndex * m.heads * n + query) * n, (windowIndex * m.heads * n + query + 1) * n)); // head 0
    const rowSums: number[] = [];
    for (let r = 0; r < m.windowsPerImage * m.heads * n; r++) rowSums.push(p.subarray(r * n, (r + 1) * n).reduce((s, v) => s + v, 0));
    // paint the window's probabilities at the tokens' grid positions (undoing the cyclic shift)
    const grid = new Float32Array(gh * gw).fill(NaN);
    const wi = Math.floor(windowIndex / (gw / ww));
    const wj = windowIndex % (gw / ww);
    for (let t = 0; t < n; t++) {
      const gy = (wi * wh + Math.floor(t / ww) + sh) % gh;
      const gx = (wj * ww + (t % ww) + sw) % gw;
      grid[gy * gw + gx] = row[t];
    }
    const heat = colormap(
      Array.from(grid, (v) => (Number.isNaN(v) ? 0 : v)),
      gw,
      gh,
      { min: 0, max: Math.max(...row) },
    );
    const img = displayImage(x0, info.mean, info.std, raw);
    const cell = (h * scale) / gh;
    const canvas = document.getElementById('attention') as HTMLCanvasElement;
    const ctx = draw(canvas, img, scale);
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++) {
        const v = grid[gy * gw + gx];
        const k = (gy * gw + gx) * 3;
        ctx.fillStyle = Number.isNaN(v)
          ? 'rgba(0,0,0,0.55)'
          : `rgba(${heat.data[k] * 255},${heat.data[k + 1] * 255},${heat.data[k + 2] * 255},0.8)`;
        ctx.fillRect(gx * cell, gy * cell, cell, cell);
      }
    }
    const qy = (Math.floor(windowIndex / (gw / ww)) * wh + Math.floor(query / ww) + sh) % gh;
    const qx = ((windowIndex % (gw / ww)) * ww + (query % ww) + sw) % gw;
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 2;
    ctx.strokeRect(qx * cell + 1, qy * cell + 1, cell - 2, cell - 2);
    document.getElementById('attention-caption')!.textContent =
      `stage ${stage} block ${block}: window ${windowIndex} (shift ${sh},${sw}), head 0, query at the white square`;
    result.attention = { stage, block, window: m.window, shift: m.shift, grid: m.grid, windowIndex, query, rowSums, row };
    log(
      `attention: stage ${stage} block ${block}, window ${wh}x${ww} shifted by ${sh},${sw}, ${m.windowsPerImage} windows, ${m.heads} heads`,
    );
  }
  x0.dispose();
  result.millis = performance.now() - t0;
}

async function main(): Promise<void> {
  setStatus('loading', 'loading…');
  const backend = params.get('backend') ?? 'webgl';
  const ok = await tf.setBackend(backend).catch(() => false);
  if (!ok) throw new Error(`backend '${backend}' is not available in this browser`);
  await tf.ready();
  result.backend = tf.getBackend();
  log(`backend: ${result.backend}`);
  const dir = (params.get('model') ?? './model/').replace(/\/?$/, '/');
  const info = await (await fetch(`${dir}visbackbones.json`)).json();
  result.model = info.model;
  result.inputShape = info.inputShape;
  const model = await tf.loadLayersModel(`${dir}model.json`);
  const layer = model.layers.find((l) => l instanceof ModuleLayer) as ModuleLayer | undefined;
  if (!layer) throw new Error(`${dir}model.json holds no visbackbones module layer`);
  const backbone = layer.module as Backbone;
  log(`model: ${info.model} (${info.family}), input ${info.inputShape.join('x')}, ${backbone.numParams()} parameters`);
  const [h, w] = info.inputShape;

  const checkUrl = params.get('check');
  if (checkUrl) {
    const io = readSafetensors(new Uint8Array(await (await fetch(checkUrl)).arrayBuffer()));
    const x = tf.transpose(io.input, [0, 2, 3, 1]) as tf.Tensor4D; // fixtures store NCHW
    await run(model, backbone, info, x, true, { logits: io.logits });
    tf.dispose([x, ...Object.values(io)]);
  } else {
    const ds = syntheticShapes({ imageSize: Math.max(h, w), seed: Number(params.get('seed') ?? '3') });
    const big = ds.batch([Number(params.get('index') ?? '5')], info.mean, info.std).images;
    const x = big.shape[1] === h && big.shape[2] === w ? big : (tf.image.resizeBilinear(big, [h, w]) as tf.Tensor4D);
    await run(model, backbone, info, x, false);
    tf.dispose([x, big]);
  }
  document.getElementById('file')!.addEventListener('change', async (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (!f) return;
    setStatus('loading', 'running…');
    const x = await fileToTensor(f, h, w, info.mean, info.std);
    await run(model, backbone, info, x, false);
    x.dispose();
    setStatus('done', `done (${result.millis!.toFixed(0)} ms on ${result.backend})`);
  });
  setStatus('done', `done (${result.millis!.toFixed(0)} ms on ${result.backend})`);
}

main().catch((e: Error) => {
  result.error = e.message;
  log(`error: ${e.stack ?? e.message}`);
  setStatus('error', `error: ${e.message}`);
});
