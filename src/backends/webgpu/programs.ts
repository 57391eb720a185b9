/**
 * WGSL programs of our own for tfjs's 'webgpu' backend. Each is a plain object of the shape of
 * tfjs-backend-webgpu's `WebGPUProgram`, run by the backend's `runWebGPUProgram`, which prepends the
 * bindings (`result`, one `array<f32>` per variable name, `uniforms`) and the `main` entry point.
 * Nothing here imports `@tensorflow/tfjs-backend-webgpu`: the types are local.
 */

/** The part of tfjs-backend-webgpu's `WebGPUProgram` that ours fill in. */
export interface VbProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** Adds `size : i32` (the output size, in vec4 when outputComponent is 4) to the uniforms. */
  size?: boolean;
  uniforms?: string;
  outputComponent?: number;
  variableComponents?: number[];
  getUserCode(): string;
}

const flatLayout = (rank: number) => ({ x: Array.from({ length: rank }, (_, i) => i) });

/**
 * The program as an instance of a class named `name` (the backend labels pipelines and profiles, and
 * our dispatch counter counts, by `constructor.name`).
 */
function named(name: string, program: VbProgram): VbProgram {
  const cls = { [name]: class {} }[name];
  return Object.assign(new cls(), program);
}

/**
 * `erfc(z)` with fractional error below 1.2e-7 for every z (Numerical Recipes' Chebyshev fit
 * `erfcc`), and exact GELU `x * Phi(x) = 0.5 x erfc(-x / sqrt 2)`, which keeps its relative accuracy for
 * negative x (no cancellation in `1 + erf`).
 */
export const GELU_WGSL = `
fn vbErfc(x : f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
      t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
      t * (-0.82215223 + t * 0.17087277)))))))));
  return select(2.0 - r, r, x >= 0.0);
}
fn vbGelu(x : f32) -> f32 {
  return 0.5 * x * vbErfc(-0.70710678118654752 * x);
}
fn vbGelu4(v : vec4<f32>) -> vec4<f32> {
  return vec4<f32>(vbGelu(v.x), vbGelu(v.y), vbGelu(v.z), vbGelu(v.w));
}
`;

/** Workgroup-wide sum and max over `WG` threads (tree reduction in workgroup memory). */
const reduceWgsl = (wg: number) => `
const WG = ${wg};
var<workgroup> vbRed : array<f32, ${wg}>;
fn vbWgSum(v : f32, tid : i32) -> f32 {
  vbRed[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2; s > 0; s = s >> 1) {
    if (tid < s) { vbRed[tid] = vbRed[tid] + vbRed[tid + s]; }
    workgroupBarrier();
  }
  let r = vbRed[0];
  workgroupBarrier();
  return r;
}
fn vbWgMax(v : f32, tid : i32) -> f32 {
  vbRed[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2; s > 0; s = s >> 1) {
    if (tid < s) { vbRed[tid] = max(vbRed[tid], vbRed[tid + s]); }
    workgroupBarrier();
  }
  let r = vbRed[0];
  workgroupBarrier();
  return r;
}
`;

/** Threads per row of the row-wise programs: 64, or 128/256 for long rows. */
function rowWorkgroup(cols: number): number {
  return cols >= 2048 ? 256 : cols >= 512 ? 128 : 64;
}

/**
 * LayerNorm over the last axis in one dispatch: one workgroup per row, mean then variance of the
 * centred values (two reads of the row, as `tf.moments`), then `(x - mean) * rsqrt(var + eps) * w + b`;
 * with `residual`, `+ r` as well (Swin V2's post-norm `x + norm(f(x))`).
 */
export function layerNormProgram(rows: number, cols: number, residual: boolean): VbProgram {
  const wg = rowWorkgroup(cols);
  return named('VbLayerNormProgram', {
    variableNames: residual ? ['x', 'w', 'b', 'r'] : ['x', 'w', 'b'],
    outputShape: [rows, cols],
    shaderKey: `vbLayerNorm_${wg}_${residual}`,
    dispatchLayout: flatLayout(2),
    dispatch: [rows, 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms: 'rows : i32, cols : i32, eps : f32,',
    getUserCode: () => `
${reduceWgsl(wg)}
fn main(index : i32) {
  let row = index / WG;
  let tid = i32(localId.x);
  let cols = uniforms.cols;
  let n = select(0, cols, row < uniforms.rows);
  let base = row * cols;
  var s = 0.0;
  for (var c = tid; c < n; c += WG) { s += x[base + c]; }
  let mean = vbWgSum(s, tid) / f32(cols);
  var q = 0.0;
  for (var c = tid; c < n; c += WG) { let d = x[base + c] - mean; q += d * d; }
  let rstd = inverseSqrt(vbWgSum(q, tid) / f32(cols) + uniforms.eps);
  for (var c = tid; c < n; c += WG) {
    let y = (x[base + c] - mean) * rstd * w[c] + b[c];
    result[base + c] = ${residual ? 'y + r[base + c]' : 'y'};
  }
}`,
  });
}

/** Exact GELU elementwise (vec4 where the size allows). */
export function geluProgram(size: number): VbProgram {
  const comp = size % 4 === 0 ? 4 : 1;
  const wg = 64;
  return named('VbGeluProgram', {
    variableNames: ['x'],
    outputShape: [size],
    shaderKey: `vbGelu_${comp}`,
    dispatchLayout: flatLayout(1),
    dispatch: [Math.ceil(size / comp / wg), 1, 1],
    workgroupSize: [wg, 1, 1],
    size: true,
    outputComponent: comp,
    getUserCode: () => `
${GELU_WGSL}
fn main(index : i32) {
  if (index < uniforms.size) { result[index] = ${comp === 4 ? 'vbGelu4' : 'vbGelu'}(x[index]); }
}`,
  });
}

/**
 * `softmax(x + bias[g % heads] + mask[(g / heads) % windows])` over the last axis of `x` `[G, N, M]`
 * in one dispatch, one workgroup per row (window attention's probabilities).
 */
export function biasMaskSoftmaxProgram(g: number, n: number, m: number, parts: { bias: boolean; mask: boolean }): VbProgram {
  const wg = rowWorkgroup(m);
  const names = ['x'];
  if (parts.bias) names.push('bias');
  if (parts.mask) names.push('mask');
  const logit = ['x[base + c]', parts.bias ? 'bias[bBase + c]' : '', parts.mask ? 'mask[mBase + c]' : ''].filter(Boolean).join(' + ');
  return named('VbBiasMaskSoftmaxProgram', {
    variableNames: names,
    outputShape: [g, n, m],
    shaderKey: `vbBiasMaskSoftmax_${wg}_${parts.bias}_${parts.mask}`,
    dispatchLayout: flatLayout(3),
    dispatch: [g * n, 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms: 'rows : i32, n : i32, m : i32, heads : i32, windows : i32,',
    getUserCode: () => `
${reduceWgsl(wg)}
fn logitAt(base : i32, bBase : i32, mBase : i32, c : i32) -> f32 {
  return ${logit};
}
fn main(index : i32) {
  let row = index / WG;
  let tid = i32(localId.x);
  let m = uniforms.m;
  let cols = select(0, m, row < uniforms.rows);
  let gi = row / uniforms.n;
  let i = row - gi * uniforms.n;
  let head = gi % uniforms.heads;
  let win = (gi / uniforms.heads) % uniforms.windows;
  let base = row * m;
  let bBase = (head * uniforms.n + i) * m;
  let mBase = (win * uniforms.n + i) * m;
  var mx = -3.402823e+38;
  for (var c = tid; c < cols; c += WG) { mx = max(mx, logitAt(base, bBase, mBase, c)); }
  mx = vbWgMax(mx, tid);
  var sum = 0.0;
  for (var c = tid; c < cols; c += WG) { sum += exp(logitAt(base, bBase, mBase, c) - mx); }
  sum = vbWgSum(sum, tid);
  for (var c = tid; c < cols; c += WG) { result[base + c] = exp(logitAt(base, bBase, mBase, c) - mx) / sum; }
}`,
  });
}

/** `x + gamma * y` with `gamma` per channel (last axis) in one dispatch (residual + layer scale). */
export function scaledResidualProgram(size: number): VbProgram {
  const wg = 64;
  return named('VbScaledResidualProgram', {
    variableNames: ['x', 'y', 'gamma'],
    outputShape: [size],
    shaderKey: 'vbScaledResidual',
    dispatchLayout: flatLayout(1),
    dispatch: [Math.ceil(size / wg), 1, 1],
    workgroupSize: [wg, 1, 1],
    size: true,
    uniforms: 'channels : i32,',
    getUserCode: () => `
fn main(index : i32) {
  if (index < uniforms.size) { result[index] = x[index] + gamma[index % uniforms.channels] * y[index]; }
}`,
  });
}

/**
 * The attention core per query row in one dispatch: `softmax(s * q k^T + bias + mask) v` for
 * `q` `[G, N, hd]`, `k`, `v` `[G, M, hd]`, one workgroup per row `(g, i)`: the M logits in workgroup
 * memory, max and sum by workgroup reductions, then `hd` weighted sums of v. With `cosine`
 * (SwinV2), q and k are L2-normalised (`x / max(|x|, 1e-12)`) and `s = exp(min(logitScale[head],
 * log 100))`; else `s` is the `scale` uniform (`hd^-0.5`). `bias[g % heads]`, `mask[(g / heads) % windows]`.
 */
export function attentionCoreProgram(
  g: number,
  n: number,
  m: number,
  hd: number,
  parts: { bias: boolean; mask: boolean; cosine: boolean; packed?: boolean },
): VbProgram {
  const wg = m >= 512 ? 256 : m >= 128 ? 128 : 64;
  const packed = parts.packed ?? false;
  const names = packed ? ['qkv'] : ['q', 'k', 'v'];
  if (parts.cosine) names.push('ls');
  if (parts.bias) names.push('bias');
  if (parts.mask) names.push('mask');
  return named('VbAttentionCoreProgram', {
    variableNames: names,
    outputShape: [g, n, hd],
    shaderKey: `vbAttentionCore_${wg}_${m}_${parts.bias}_${parts.mask}_${parts.cosine}_${packed}`,
    dispatchLayout: flatLayout(3),
    dispatch: [g * n, 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms: 'rows : i32, n : i32, m : i32, hd : i32, heads : i32, windows : i32, scale : f32,',
    getUserCode: () => `
${reduceWgsl(wg)}
var<workgroup> vbP : array<f32, ${m}>;
${
  packed
    ? `// qkv [B * N, 3, heads, hd] (the fused projection), out [B * N, heads, hd] (heads merged)
fn qAt(g : i32, i : i32, d : i32) -> f32 {
  let hh = uniforms.heads * uniforms.hd;
  return qkv[((g / uniforms.heads) * uniforms.n + i) * 3 * hh + (g % uniforms.heads) * uniforms.hd + d];
}
fn kAt(g : i32, j : i32, d : i32) -> f32 {
  let hh = uniforms.heads * uniforms.hd;
  return qkv[((g / uniforms.heads) * uniforms.m + j) * 3 * hh + hh + (g % uniforms.heads) * uniforms.hd + d];
}
fn vAt(g : i32, j : i32, d : i32) -> f32 {
  let hh = uniforms.heads * uniforms.hd;
  return qkv[((g / uniforms.heads) * uniforms.m + j) * 3 * hh + 2 * hh + (g % uniforms.heads) * uniforms.hd + d];
}
fn outIndex(g : i32, i : i32, d : i32) -> i32 {
  return ((g / uniforms.heads) * uniforms.n + i) * uniforms.heads * uniforms.hd + (g % uniforms.heads) * uniforms.hd + d;
}`
    : `fn qAt(g : i32, i : i32, d : i32) -> f32 { return q[(g * uniforms.n + i) * uniforms.hd + d]; }
fn kAt(g : i32, j : i32, d : i32) -> f32 { return k[(g * uniforms.m + j) * uniforms.hd + d]; }
fn vAt(g : i32, j : i32, d : i32) -> f32 { return v[(g * uniforms.m + j) * uniforms.hd + d]; }
fn outIndex(g : i32, i : i32, d : i32) -> i32 { return (g * uniforms.n + i) * uniforms.hd + d; }`
}
fn main(index : i32) {
  let row = index / WG;
  let tid = i32(localId.x);
  let valid = row < uniforms.rows;
  let m = uniforms.m;
  let hd = uniforms.hd;
  let cols = select(0, m, valid);
  let gi = row / uniforms.n;
  let i = row - gi * uniforms.n;
  let head = gi % uniforms.heads;
  let win = (gi / uniforms.heads) % uniforms.windows;
  var qs = 1.0;
  var sc = uniforms.scale;
  ${
    parts.cosine
      ? `if (valid) {
    var qq = 0.0;
    for (var d = 0; d < hd; d++) { let a = qAt(gi, i, d); qq += a * a; }
    qs = 1.0 / max(sqrt(qq), 1e-12);
  }
  sc = exp(min(ls[head], 4.605170185988092));`
      : ''
  }
  var mx = -3.402823e+38;
  for (var j = tid; j < cols; j += WG) {
    var dot = 0.0;
    var kk = 0.0;
    for (var d = 0; d < hd; d++) {
      let kv = kAt(gi, j, d);
      dot += qAt(gi, i, d) * kv;
      kk += kv * kv;
    }
    var l = ${parts.cosine ? 'dot * qs / max(sqrt(kk), 1e-12) * sc' : 'dot * sc'};
    ${parts.bias ? 'l += bias[(head * uniforms.n + i) * m + j];' : ''}
    ${parts.mask ? 'l += mask[(win * uniforms.n + i) * m + j];' : ''}
    vbP[j] = l;
    mx = max(mx, l);
  }
  mx = vbWgMax(mx, tid);
  var s = 0.0;
  for (var j = tid; j < cols; j += WG) { let e = exp(vbP[j] - mx); vbP[j] = e; s += e; }
  s = vbWgSum(s, tid);
  let hdv = select(0, hd, valid);
  for (var d = tid; d < hdv; d += WG) {
    var acc = 0.0;
    for (var j = 0; j < m; j++) { acc += vbP[j] * vAt(gi, j, d); }
    result[outIndex(gi, i, d)] = acc / s;
  }
}`,
  });
}

/**
 * Swin's cyclic shift and window partition as one copy: `x` `[B, H, W, C]` -> `[B * nW, wh * ww, C]`
 * with `out[(b, a, c'), (i, j)] = x[b, (a wh + i + sh) mod H, (c' ww + j + sw) mod W]` (`torch.roll`
 * by `-shift`, then the partition); `reverse`: the inverse (merge the windows, roll by `+shift`).
 * Channels in vec4 where C allows.
 */
export function windowCopyProgram(size: number, channels: number, reverse: boolean): VbProgram {
  const comp = channels % 4 === 0 ? 4 : 1;
  const wg = 64;
  return named(reverse ? 'VbWindowReverseProgram' : 'VbWindowPartitionProgram', {
    variableNames: ['x'],
    outputShape: [size],
    shaderKey: `vbWindow_${reverse}_${comp}`,
    dispatchLayout: flatLayout(1),
    dispatch: [Math.ceil(size / comp / wg), 1, 1],
    workgroupSize: [wg, 1, 1],
    size: true,
    outputComponent: comp,
    uniforms: 'c : i32, h : i32, w : i32, wh : i32, ww : i32, sh : i32, sw : i32,',
    getUserCode: () => `
fn main(index : i32) {
  if (index >= uniforms.size) { return; }
  let c = uniforms.c;
  let ch = index % c;
  let p = index / c;
  let nWw = uniforms.w / uniforms.ww;
  let nW = (uniforms.h / uniforms.wh) * nWw;
  let n = uniforms.wh * uniforms.ww;
  ${
    reverse
      ? `// p = (b, hh, ww'): output pixel; its source is the rolled-back position in the windows
  let wpix = p % uniforms.w;
  let hp = (p / uniforms.w) % uniforms.h;
  let b = p / (uniforms.w * uniforms.h);
  let hs = (hp - uniforms.sh + uniforms.h) % uniforms.h;
  let ws = (wpix - uniforms.sw + uniforms.w) % uniforms.w;
  let win = b * nW + (hs / uniforms.wh) * nWw + ws / uniforms.ww;
  let tok = (hs % uniforms.wh) * uniforms.ww + ws % uniforms.ww;
  result[index] = x[(win * n + tok) * c + ch];`
      : `// p = (window, token): window = (b, a, c'), token = (i, j)
  let tok = p % n;
  let win = p / n;
  let b = win / nW;
  let wi = win % nW;
  let hs = ((wi / nWw) * uniforms.wh + tok / uniforms.ww + uniforms.sh) % uniforms.h;
  let ws = ((wi % nWw) * uniforms.ww + tok % uniforms.ww + uniforms.sw) % uniforms.w;
  result[index] = x[((b * uniforms.h + hs) * uniforms.w + ws) * c + ch];`
  }
}`,
  });
}

/** GRN pass 1: `gx[b, c] = sqrt(sum_hw x[b, hw, c]^2)` for NHWC `x` `[B, HW, C]`, one workgroup per `(b, c)`. */
export function grnNormProgram(b: number, c: number): VbProgram {
  const wg = 64;
  return named('VbGrnNormProgram', {
    variableNames: ['x'],
    outputShape: [b, c],
    shaderKey: 'vbGrnNorm',
    dispatchLayout: flatLayout(2),
    dispatch: [b * c, 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms: 'rows : i32, hw : i32, c : i32,',
    getUserCode: () => `
${reduceWgsl(wg)}
fn main(index : i32) {
  let row = index / WG;
  let tid = i32(localId.x);
  let c = uniforms.c;
  let bi = row / c;
  let ch = row - bi * c;
  let n = select(0, uniforms.hw, row < uniforms.rows);
  var s = 0.0;
  for (var p = tid; p < n; p += WG) { let v = x[(bi * uniforms.hw + p) * c + ch]; s += v * v; }
  s = vbWgSum(s, tid);
  if (tid == 0 && row < uniforms.rows) { result[row] = sqrt(s); }
}`,
  });
}

/**
 * GRN pass 2: `y = x * (1 + gamma * gx / (mean_c gx + eps)) + beta`, each workgroup inside one image
 * (it reduces that image's `gx` row for the mean first).
 */
export function grnApplyProgram(b: number, hw: number, c: number): VbProgram {
  const wg = 64;
  const chunks = Math.ceil((hw * c) / wg);
  return named('VbGrnApplyProgram', {
    variableNames: ['x', 'gx', 'gamma', 'beta'],
    outputShape: [b, hw, c],
    shaderKey: 'vbGrnApply',
    dispatchLayout: flatLayout(3),
    dispatch: [b * chunks, 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms: 'b : i32, hw : i32, c : i32, chunks : i32, eps : f32,',
    getUserCode: () => `
${reduceWgsl(wg)}
fn main(index : i32) {
  let wgi = index / WG;
  let tid = i32(localId.x);
  let c = uniforms.c;
  let bi = min(wgi / uniforms.chunks, uniforms.b - 1);
  var s = 0.0;
  for (var k = tid; k < c; k += WG) { s += gx[bi * c + k]; }
  let mean = vbWgSum(s, tid) / f32(c);
  let e = (wgi - bi * uniforms.chunks) * WG + tid;
  if (wgi < uniforms.b * uniforms.chunks && e < uniforms.hw * c) {
    let ch = e % c;
    let i = bi * uniforms.hw * c + e;
    let scale = 1.0 + gamma[ch] * (gx[bi * c + ch] / (mean + uniforms.eps));
    result[i] = x[i] * scale + beta[ch];
  }
}`,
  });
}

/**
 * Workgroups for one workgroup per row: `[rows, 1, 1]`, or split over y where rows exceed WebGPU's
 * 65535 per dimension (the backend's `getGlobalIndex` flattens x and y, so `index / WG` is still the
 * row; the surplus workgroups see `row >= rows` and write nothing).
 */
function rowDispatch(rows: number): [number, number, number] {
  const y = Math.ceil(rows / 65535);
  return [Math.ceil(rows / y), y, 1];
}

/**
 * ConvNeXt's depthwise `k x k` conv (zero padding `pad`, `stride`, `dilation`, bias) and the LayerNorm
 * over channels after it, in one dispatch: one workgroup per output pixel `(b, oy, ox)` of NHWC `x`
 * `[B, H, W, C]` (filter `[k, k, C, 1]`); each thread convolves its channels into the output row, then
 * mean and variance of the row (two passes, as `tf.moments`), then `(y - mean) * rstd * lw + lb`.
 */
export function dwConvLayerNormProgram(rows: number, c: number, bias: boolean): VbProgram {
  const wg = rowWorkgroup(c);
  const names = ['x', 'wt'];
  if (bias) names.push('bias');
  names.push('lw', 'lb');
  return named('VbDwConvLayerNormProgram', {
    variableNames: names,
    outputShape: [rows, c],
    shaderKey: `vbDwConvLayerNorm_${wg}_${bias}`,
    dispatchLayout: flatLayout(2),
    dispatch: rowDispatch(rows),
    workgroupSize: [wg, 1, 1],
    uniforms: 'rows : i32, c : i32, h : i32, w : i32, ho : i32, wo : i32, k : i32, stride : i32, dil : i32, pad : i32, eps : f32,',
    getUserCode: () => `
${reduceWgsl(wg)}
fn main(index : i32) {
  let row = index / WG;
  let tid = i32(localId.x);
  let c = uniforms.c;
  let n = select(0, c, row < uniforms.rows);
  let ox = row % uniforms.wo;
  let oy = (row / uniforms.wo) % uniforms.ho;
  let bi = row / (uniforms.wo * uniforms.ho);
  let base = row * c;
  var s = 0.0;
  for (var ch = tid; ch < n; ch += WG) {
    var acc = 0.0;
    for (var ky = 0; ky < uniforms.k; ky++) {
      let iy = oy * uniforms.stride + ky * uniforms.dil - uniforms.pad;
      if (iy < 0 || iy >= uniforms.h) { continue; }
      for (var kx = 0; kx < uniforms.k; kx++) {
        let ix = ox * uniforms.stride + kx * uniforms.dil - uniforms.pad;
        if (ix < 0 || ix >= uniforms.w) { continue; }
        acc += x[((bi * uniforms.h + iy) * uniforms.w + ix) * c + ch] * wt[(ky * uniforms.k + kx) * c + ch];
      }
    }
    ${bias ? 'acc += bias[ch];' : ''}
    result[base + ch] = acc;
    s += acc;
  }
  let mean = vbWgSum(s, tid) / f32(c);
  var q = 0.0;
  for (var ch = tid; ch < n; ch += WG) { let d = result[base + ch] - mean; q += d * d; }
  let rstd = inverseSqrt(vbWgSum(q, tid) / f32(c) + uniforms.eps);
  for (var ch = tid; ch < n; ch += WG) { result[base + ch] = (result[base + ch] - mean) * rstd * lw[ch] + lb[ch]; }
}`,
  });
}
