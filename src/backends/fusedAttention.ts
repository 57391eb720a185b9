import * as tf from '@tensorflow/tfjs';

/**
 * The attention core `softmax(s * q k^T + bias + mask) v` as one kernel where the active backend has
 * one (webgpu after `registerWebgpuKernels()`), for inference: it has no gradient, so the layers ask
 * for it only while no gradient tape is recording ({@link fusedAttentionCore} returns null then, and
 * elsewhere), and compute the composed ops otherwise.
 */
export const ATTENTION_CORE_KERNEL = 'VisBackbonesAttentionCore';

/** Options of {@link fusedAttentionCore}. */
export interface AttentionCoreOptions {
  /** Heads per group: `bias[g % heads]`, `logitScale[g % heads]`. */
  heads: number;
  /** Plain attention: logits scaled by this (`hd^-0.5`). Ignored with `logitScale`. */
  scale?: number;
  /** Cosine attention (SwinV2): q and k L2-normalised, logits times `exp(min(logitScale, log 100))`, `[heads]` (any shape of that size). */
  logitScale?: tf.Tensor | null;
  /** `[heads, N, M]` added to the logits. */
  bias?: tf.Tensor | null;
  /** `[nW, N, M]` added to the logits of group `g` at `mask[floor(g / heads) % nW]`. */
  mask?: tf.Tensor | null;
}

/** Whether a gradient tape is recording (then the fused kernel, which has no gradient, is not used). */
function taping(): boolean {
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}

/** `softmax(s q k^T + bias + mask) v` for `q` `[G, N, hd]`, `k`, `v` `[G, M, hd]` as one kernel, or null where there is none (or while taping). */
export function fusedAttentionCore(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, opts: AttentionCoreOptions): tf.Tensor3D | null {
  if (!tf.getKernel(ATTENTION_CORE_KERNEL, tf.getBackend()) || taping()) return null;
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3 || [q, k, v].some((t) => t.dtype !== 'float32')) return null;
  const [g, n, hd] = q.shape;
  const m = k.shape[1];
  const { heads } = opts;
  if (k.shape[0] !== g || v.shape[0] !== g || k.shape[2] !== hd || v.shape[1] !== m || v.shape[2] !== hd) return null;
  if (!Number.isInteger(heads) || heads < 1 || g % heads !== 0) return null;
  const fits = (t: tf.Tensor | null | undefined, lead: number) =>
    !t || (t.dtype === 'float32' && t.rank === 3 && t.shape[0] === lead && t.shape[1] === n && t.shape[2] === m);
  const windows = opts.mask ? opts.mask.shape[0] : 1;
  if (!fits(opts.bias, heads) || !fits(opts.mask, windows) || g % (heads * windows) !== 0) return null;
  return runCore({ q, k, v }, opts, hd, windows, {});
}

/** Add the optional inputs to `inputs` and run the attention-core kernel, or null where `logitScale` does not fit. */
function runCore(
  inputs: tf.NamedTensorMap,
  opts: AttentionCoreOptions,
  hd: number,
  windows: number,
  extra: tf.NamedAttrMap,
): tf.Tensor3D | null {
  const { heads } = opts;
  if (opts.logitScale) {
    if (opts.logitScale.size !== heads) return null;
    inputs.logitScale = opts.logitScale;
  }
  if (opts.bias) inputs.bias = opts.bias;
  if (opts.mask) inputs.mask = opts.mask;
  const attrs = { heads, windows, cosine: !!opts.logitScale, scale: opts.scale ?? hd ** -0.5, ...extra };
  return tf.engine().runKernel(ATTENTION_CORE_KERNEL, inputs, attrs) as tf.Tensor3D;
}

/**
 * The same core read straight from a fused qkv projection `[B * N, 3 * heads * hd]` (or `[B, N, ...]`,
 * laid out `[B, N, 3, heads, hd]` as timm's `qkv.reshape(B, N, 3, heads, hd)`) and written with the
 * heads merged, `[B, N, heads * hd]`: `mergeHeads(core(splitQkv(qkv)))` in one kernel (no split, no
 * transposes), or null where there is none (or while taping). Groups are `(b, head)`.
 */
export function fusedAttentionQkv(qkv: tf.Tensor, b: number, n: number, opts: AttentionCoreOptions): tf.Tensor3D | null {
  if (!tf.getKernel(ATTENTION_CORE_KERNEL, tf.getBackend()) || taping() || qkv.dtype !== 'float32') return null;
  const { heads } = opts;
  const width = qkv.shape[qkv.rank - 1];
  if (!Number.isInteger(heads) || heads < 1 || width % (3 * heads) !== 0 || qkv.size !== b * n * width) return null;
  const hd = width / (3 * heads);
  const fits = (t: tf.Tensor | null | undefined, lead: number) =>
    !t || (t.dtype === 'float32' && t.rank === 3 && t.shape[0] === lead && t.shape[1] === n && t.shape[2] === n);
  const windows = opts.mask ? opts.mask.shape[0] : 1;
  if (!fits(opts.bias, heads) || !fits(opts.mask, windows) || b % windows !== 0) return null;
  return runCore({ qkv }, opts, hd, windows, { packed: true, batch: b, tokens: n });
}

/** ConvNeXt V2's global response norm (NHWC) as one kernel (inference only, like the attention core). */
export const GRN_KERNEL = 'VisBackbonesGrn';

/**
 * `x * (1 + gamma * N(x)) + beta` with `N(x) = G(x) / (mean_c G(x) + eps)`, `G(x)_c = |x_c|_2` over
 * H and W (GRN, NHWC `[B, H, W, C]`), as one kernel, or null where there is none or while taping.
 */
export function fusedGrn(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor4D | null {
  if (!tf.getKernel(GRN_KERNEL, tf.getBackend()) || taping() || x.rank !== 4 || x.dtype !== 'float32') return null;
  const c = x.shape[3];
  if (weight.size !== c || bias.size !== c) return null;
  return tf.engine().runKernel(GRN_KERNEL, { x, weight, bias }, { eps }) as tf.Tensor4D;
}

/** ConvNeXt's depthwise conv (+ bias) then LayerNorm over channels (NHWC) as one kernel (inference only, like the attention core). */
export const DW_CONV_LAYER_NORM_KERNEL = 'VisBackbonesDwConvLayerNorm';

/** The depthwise convolution's geometry for {@link fusedDwConvLayerNorm} (PyTorch's symmetric zero `padding`). */
export interface DwConvGeometry {
  stride: number;
  dilation: number;
  padding: number;
}

/**
 * `LayerNorm_C(depthwiseConv(x, weight) + bias)` for NHWC `x` `[B, H, W, C]`, filter `[k, k, C, 1]`,
 * optional `bias` `[C]`, LayerNorm `lnWeight`, `lnBias` `[C]` with `eps`, as one kernel, or null where
 * there is none, while taping, or for another shape (channel multiplier > 1, a non-square filter).
 */
export function fusedDwConvLayerNorm(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
  geo: DwConvGeometry,
  lnWeight: tf.Tensor,
  lnBias: tf.Tensor,
  eps: number,
): tf.Tensor4D | null {
  if (!tf.getKernel(DW_CONV_LAYER_NORM_KERNEL, tf.getBackend()) || taping() || x.rank !== 4 || weight.rank !== 4) return null;
  if ([x, weight, lnWeight, lnBias, bias].some((t) => t && t.dtype !== 'float32')) return null;
  const c = x.shape[3];
  const [kh, kw, wc, mult] = weight.shape;
  if (kh !== kw || wc !== c || mult !== 1 || lnWeight.size !== c || lnBias.size !== c || (bias && bias.size !== c)) return null;
  const inputs: tf.NamedTensorMap = { x, weight, lnWeight, lnBias };
  if (bias) inputs.bias = bias;
  return tf.engine().runKernel(DW_CONV_LAYER_NORM_KERNEL, inputs, { ...geo, eps }) as tf.Tensor4D;
}
