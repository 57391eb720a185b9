/**
 * Direct loop implementations (float64) of the operations the heads are made of, written from the
 * PyTorch definitions, to check the tfjs modules independently. Maps are NHWC; weights are in PyTorch
 * layouts, as a state dict holds them.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/utils/random.js';

export interface Arr {
  data: Float64Array;
  shape: number[];
}

export function fromTensor(t: tf.Tensor): Arr {
  return { data: Float64Array.from(t.dataSync() as Float32Array), shape: t.shape.slice() };
}

export function toTensor(a: Arr): tf.Tensor {
  return tf.tensor(Float32Array.from(a.data), a.shape);
}

export function zeros(shape: number[]): Arr {
  return { data: new Float64Array(shape.reduce((x, y) => x * y, 1)), shape };
}

/** Deterministic pseudo-random numbers (mulberry32) for fixed test weights and inputs. */
export function rng(seed: number): () => number {
  return mulberry32(seed);
}

export function randomTensor(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * r();
  return tf.tensor(v, shape);
}

/**
 * Replace every tensor of a module's state dict by fixed random values: weights in +-1/sqrt(fan_in),
 * biases in +-0.2, norm weights in [0.5, 1.5], running variances in [0.5, 1.5], running means in +-0.3.
 * Returns the dict that was loaded (PyTorch layouts).
 */
export function fixedWeights(
  m: { stateDict(): Record<string, tf.Tensor>; loadStateDict(sd: Record<string, tf.Tensor>): unknown },
  seed: number,
): Record<string, Arr> {
  const sd = m.stateDict();
  const out: Record<string, tf.Tensor> = {};
  let k = 0;
  for (const [name, t] of Object.entries(sd)) {
    k += 1;
    const s = seed * 1000 + k;
    if (name.endsWith('num_batches_tracked')) out[name] = tf.zeros(t.shape);
    else if (name.endsWith('running_var')) out[name] = randomTensor(t.shape, s, 0.5, 1.5);
    else if (name.endsWith('running_mean')) out[name] = randomTensor(t.shape, s, -0.3, 0.3);
    else if (t.rank === 1 && name.endsWith('weight')) out[name] = randomTensor(t.shape, s, 0.5, 1.5);
    else if (t.rank === 1) out[name] = randomTensor(t.shape, s, -0.2, 0.2);
    else {
      const fanIn = t.size / t.shape[0];
      const b = 1 / Math.sqrt(fanIn);
      out[name] = randomTensor(t.shape, s, -b, b);
    }
  }
  m.loadStateDict(out);
  const arrs: Record<string, Arr> = {};
  for (const [n, t] of Object.entries(out)) arrs[n] = fromTensor(t);
  tf.dispose([...Object.values(sd), ...Object.values(out)]);
  return arrs;
}

const idx4 = (s: number[], b: number, y: number, x: number, c: number) => ((b * s[1] + y) * s[2] + x) * s[3] + c;

/** `nn.Conv2d` (groups 1): weight `[O, I, kh, kw]`, symmetric zero padding. */
export function conv2d(x: Arr, w: Arr, bias: Arr | null, stride = 1, pad = 0): Arr {
  const [B, H, W, C] = x.shape;
  const [O, I, KH, KW] = w.shape;
  if (I !== C) throw new Error(`conv2d ref: ${C} channels vs weight ${I}`);
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  const y = zeros([B, OH, OW, O]);
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++)
        for (let o = 0; o < O; o++) {
          let s = bias ? bias.data[o] : 0;
          for (let ky = 0; ky < KH; ky++) {
            const iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < KW; kx++) {
              const ix = ox * stride + kx - pad;
              if (ix < 0 || ix >= W) continue;
              for (let c = 0; c < C; c++) s += x.data[idx4(x.shape, b, iy, ix, c)] * w.data[((o * I + c) * KH + ky) * KW + kx];
            }
          }
          y.data[idx4(y.shape, b, oy, ox, o)] = s;
        }
  return y;
}

/** `nn.ConvTranspose2d(I, O, k, stride=k)`: weight `[I, O, k, k]`; `y[k i + p, k j + q, o] = sum_c x[i, j, c] w[c, o, p, q] + b[o]`. */
export function convTranspose2d(x: Arr, w: Arr, bias: Arr | null): Arr {
  const [B, H, W, C] = x.shape;
  const [I, O, K] = w.shape;
  if (I !== C) throw new Error('convTranspose ref: channels');
  const y = zeros([B, H * K, W * K, O]);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++)
        for (let p = 0; p < K; p++)
          for (let q = 0; q < K; q++)
            for (let o = 0; o < O; o++) {
              let s = bias ? bias.data[o] : 0;
              for (let c = 0; c < C; c++) s += x.data[idx4(x.shape, b, i, j, c)] * w.data[((c * O + o) * K + p) * K + q];
              y.data[idx4(y.shape, b, i * K + p, j * K + q, o)] = s;
            }
  return y;
}

/** LayerNorm over the channel axis (detectron2's / timm's LayerNorm2d), biased variance. */
export function layerNormC(x: Arr, w: Arr | null, b: Arr | null, eps: number): Arr {
  const C = x.shape[x.shape.length - 1];
  const y = zeros(x.shape.slice());
  for (let p = 0; p < x.data.length / C; p++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x.data[p * C + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x.data[p * C + c] - m) ** 2;
    v /= C;
    for (let c = 0; c < C; c++)
      y.data[p * C + c] = ((x.data[p * C + c] - m) / Math.sqrt(v + eps)) * (w ? w.data[c] : 1) + (b ? b.data[c] : 0);
  }
  return y;
}

/** BatchNorm in eval mode with running statistics. */
export function batchNormEval(x: Arr, w: Arr, b: Arr, mean: Arr, vr: Arr, eps = 1e-5): Arr {
  const C = x.shape[x.shape.length - 1];
  const y = zeros(x.shape.slice());
  for (let i = 0; i < x.data.length; i++) {
    const c = i % C;
    y.data[i] = ((x.data[i] - mean.data[c]) / Math.sqrt(vr.data[c] + eps)) * w.data[c] + b.data[c];
  }
  return y;
}

/** BatchNorm in training mode: batch statistics (biased variance) and the new running statistics. */
export function batchNormTrain(
  x: Arr,
  w: Arr,
  b: Arr,
  mean: Arr,
  vr: Arr,
  eps = 1e-5,
  momentum = 0.1,
): { y: Arr; runningMean: Arr; runningVar: Arr } {
  const C = x.shape[x.shape.length - 1];
  const n = x.data.length / C;
  const y = zeros(x.shape.slice());
  const rm = zeros([C]);
  const rv = zeros([C]);
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let p = 0; p < n; p++) m += x.data[p * C + c];
    m /= n;
    let v = 0;
    for (let p = 0; p < n; p++) v += (x.data[p * C + c] - m) ** 2;
    for (let p = 0; p < n; p++) y.data[p * C + c] = ((x.data[p * C + c] - m) / Math.sqrt(v / n + eps)) * w.data[c] + b.data[c];
    rm.data[c] = (1 - momentum) * mean.data[c] + momentum * m;
    rv.data[c] = (1 - momentum) * vr.data[c] + momentum * (v / (n - 1));
  }
  return { y, runningMean: rm, runningVar: rv };
}

export function relu(x: Arr): Arr {
  return { data: x.data.map((v) => Math.max(0, v)), shape: x.shape.slice() };
}

/** erf by its Taylor series (|x| < 5; 1 beyond), accurate to ~1e-12 in float64. */
export function erf(x: number): number {
  if (Math.abs(x) >= 5) return Math.sign(x);
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    const t = term / (2 * n + 1);
    sum += t;
    if (Math.abs(t) < 1e-17) break;
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export function gelu(x: Arr): Arr {
  return { data: x.data.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))), shape: x.shape.slice() };
}

export function add(a: Arr, b: Arr): Arr {
  return { data: a.data.map((v, i) => v + b.data[i]), shape: a.shape.slice() };
}

/** Concatenate NHWC maps along channels. */
export function concatC(xs: Arr[]): Arr {
  const [B, H, W] = xs[0].shape;
  const C = xs.reduce((s, x) => s + x.shape[3], 0);
  const y = zeros([B, H, W, C]);
  for (let p = 0; p < B * H * W; p++) {
    let off = 0;
    for (const x of xs) {
      const c = x.shape[3];
      for (let k = 0; k < c; k++) y.data[p * C + off + k] = x.data[p * c + k];
      off += c;
    }
  }
  return y;
}

/** `nn.AdaptiveAvgPool2d(o)`: bin i of o averages rows [floor(i n / o), ceil((i + 1) n / o)). */
export function adaptiveAvgPool(x: Arr, o: number): Arr {
  const [B, H, W, C] = x.shape;
  const y = zeros([B, o, o, C]);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < o; i++)
      for (let j = 0; j < o; j++) {
        const y0 = Math.floor((i * H) / o);
        const y1 = Math.ceil(((i + 1) * H) / o);
        const x0 = Math.floor((j * W) / o);
        const x1 = Math.ceil(((j + 1) * W) / o);
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += x.data[idx4(x.shape, b, yy, xx, c)];
          y.data[idx4(y.shape, b, i, j, c)] = s / ((y1 - y0) * (x1 - x0));
        }
      }
  return y;
}

/** PyTorch bilinear, align_corners=False: src = max((dst + 0.5) in / out - 0.5, 0); neighbour clamped at the border. */
export function bilinear(x: Arr, oh: number, ow: number): Arr {
  const [B, H, W, C] = x.shape;
  const y = zeros([B, oh, ow, C]);
  const coord = (d: number, n: number, o: number) => {
    const src = Math.max(((d + 0.5) * n) / o - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = i0 + (i0 < n - 1 ? 1 : 0);
    const l1 = src - i0;
    return [i0, i1, 1 - l1, l1];
  };
  for (let b = 0; b < B; b++)
    for (let i = 0; i < oh; i++) {
      const [y0, y1, wy0, wy1] = coord(i, H, oh);
      for (let j = 0; j < ow; j++) {
        const [x0, x1, wx0, wx1] = coord(j, W, ow);
        for (let c = 0; c < C; c++) {
          const g = (yy: number, xx: number) => x.data[idx4(x.shape, b, yy, xx, c)];
          y.data[idx4(y.shape, b, i, j, c)] = wy0 * (wx0 * g(y0, x0) + wx1 * g(y0, x1)) + wy1 * (wx0 * g(y1, x0) + wx1 * g(y1, x1));
        }
      }
    }
  return y;
}

/** PyTorch 'nearest': src = min(floor(dst * in / out), in - 1). */
export function nearest(x: Arr, oh: number, ow: number): Arr {
  const [B, H, W, C] = x.shape;
  const y = zeros([B, oh, ow, C]);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const si = Math.min(Math.floor((i * H) / oh), H - 1);
        const sj = Math.min(Math.floor((j * W) / ow), W - 1);
        for (let c = 0; c < C; c++) y.data[idx4(y.shape, b, i, j, c)] = x.data[idx4(x.shape, b, si, sj, c)];
      }
  return y;
}

/** `F.max_pool2d(x, k, s)` without padding, floor mode. */
export function maxPool(x: Arr, k: number, s: number): Arr {
  const [B, H, W, C] = x.shape;
  const OH = Math.floor((H - k) / s) + 1;
  const OW = Math.floor((W - k) / s) + 1;
  const y = zeros([B, OH, OW, C]);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++)
        for (let c = 0; c < C; c++) {
          let m = -Infinity;
          for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) m = Math.max(m, x.data[idx4(x.shape, b, i * s + p, j * s + q, c)]);
          y.data[idx4(y.shape, b, i, j, c)] = m;
        }
  return y;
}

/** Max |a - e| and whether |a - e| <= atol + rtol |e| everywhere. */
export function maxErr(actual: tf.Tensor, expected: Arr, atol: number, rtol: number): { maxAbsErr: number; ok: boolean } {
  if (actual.shape.join(',') !== expected.shape.join(',')) throw new Error(`shape [${actual.shape}] vs expected [${expected.shape}]`);
  const a = actual.dataSync();
  let m = 0;
  let ok = true;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - expected.data[i]);
    if (!(d <= atol + rtol * Math.abs(expected.data[i]))) ok = false;
    if (!(d <= m)) m = d;
  }
  return { maxAbsErr: m, ok };
}
