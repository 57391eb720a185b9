import { check } from '../../errors.js';
import type { PoolingMode } from '../../layers/poolingAttention.js';

/**
 * timm's `MultiScaleVitCfg` in camelCase: the architecture of an MViTv2 (Li et al. 2022). Every field
 * is optional and takes timm's default; scalars `embedDim` / `numHeads` double per stage.
 */
export interface MultiScaleVitCfg {
  /** Blocks per stage (default `[2, 3, 16, 3]`). */
  depths?: number[];
  /** Width of stage 0 (doubled per stage) or one width per stage (default 96). */
  embedDim?: number | number[];
  /** Heads of stage 0 (doubled per stage) or one count per stage (default 1). */
  numHeads?: number | number[];
  mlpRatio?: number;
  /** Pool before the q/k/v projections (timm's `MultiScaleAttentionPoolFirst`): not supported. */
  poolFirst?: boolean;
  /** Change the width inside attention at a stage's first block (default true), else in its MLP. */
  expandAttn?: boolean;
  qkvBias?: boolean;
  useClsToken?: boolean;
  useAbsPos?: boolean;
  residualPooling?: boolean;
  mode?: PoolingMode;
  /** Pooling kernel of q, k and v (default `[3, 3]`). */
  kernelQkv?: [number, number];
  /** Query stride per stage (default `[[1, 1], [2, 2], [2, 2], [2, 2]]`). */
  strideQ?: [number, number][] | null;
  /** Key/value stride per stage; derived from `strideKvAdaptive` when null. */
  strideKv?: [number, number][] | null;
  /** Stage-0 key/value stride, divided by each strided query stage (default `[4, 4]`). */
  strideKvAdaptive?: [number, number] | null;
  patchKernel?: [number, number];
  patchStride?: [number, number];
  patchPadding?: [number, number];
  poolType?: string;
  /** `'spatial'` (decomposed relative positions) or anything else for none. */
  relPosType?: string;
  actLayer?: string;
  normLayer?: string;
  normEps?: number;
}

/** A {@link MultiScaleVitCfg} after timm's `__post_init__`: every field set, per-stage lists. */
export interface ResolvedMultiScaleVitCfg {
  depths: number[];
  embedDim: number[];
  numHeads: number[];
  mlpRatio: number;
  poolFirst: boolean;
  expandAttn: boolean;
  qkvBias: boolean;
  useClsToken: boolean;
  useAbsPos: boolean;
  residualPooling: boolean;
  mode: PoolingMode;
  kernelQkv: [number, number];
  strideQ: [number, number][];
  strideKv: [number, number][];
  strideKvAdaptive: [number, number] | null;
  patchKernel: [number, number];
  patchStride: [number, number];
  patchPadding: [number, number];
  poolType: string;
  relPosType: string;
  actLayer: string;
  normLayer: string;
  normEps: number;
}

const pair = (p: [number, number]): [number, number] => [p[0], p[1]];

/**
 * Fill timm's defaults and apply `MultiScaleVitCfg.__post_init__`: scalar widths / heads double per
 * stage, and without an explicit `strideKv` the adaptive kv stride is divided by each stage's
 * query stride (never below 1), so keys keep a constant resolution.
 */
export function resolveMultiScaleVitCfg(cfg: MultiScaleVitCfg = {}): ResolvedMultiScaleVitCfg {
  const depths = (cfg.depths ?? [2, 3, 16, 3]).slice();
  const n = depths.length;
  check(n > 0 && depths.every((d) => Number.isInteger(d) && d > 0), () => `cfg.depths must be positive integers, got [${depths}]`);
  const perStage = (name: string, v: number | number[]): number[] => {
    const out = Array.isArray(v) ? v.slice() : Array.from({ length: n }, (_, i) => v * 2 ** i);
    check(out.length === n, () => `cfg.${name} has ${out.length} entries but cfg.depths has ${n} stages`);
    return out;
  };
  const embedDim = perStage('embedDim', cfg.embedDim ?? 96);
  const numHeads = perStage('numHeads', cfg.numHeads ?? 1);
  const strideQ: [number, number][] = cfg.strideQ ?? [
    [1, 1],
    [2, 2],
    [2, 2],
    [2, 2],
  ];
  check(
    Array.isArray(strideQ) && strideQ.length >= n,
    () => `cfg.strideQ needs one [sh, sw] per stage (${n}), got ${JSON.stringify(cfg.strideQ)}`,
  );
  const strideKvAdaptive: [number, number] | null = cfg.strideKvAdaptive === undefined ? [4, 4] : cfg.strideKvAdaptive;
  let strideKv: [number, number][];
  if (cfg.strideKv) strideKv = cfg.strideKv.map(pair);
  else {
    check(strideKvAdaptive !== null, () => 'cfg.strideKv and cfg.strideKvAdaptive are both null: one of them is needed');
    let s = pair(strideKvAdaptive as [number, number]);
    strideKv = [];
    for (let i = 0; i < n; i++) {
      if (Math.min(...strideQ[i]) > 1) s = [Math.max(Math.floor(s[0] / strideQ[i][0]), 1), Math.max(Math.floor(s[1] / strideQ[i][1]), 1)];
      strideKv.push(pair(s));
    }
  }
  check(strideKv.length >= n, () => `cfg.strideKv needs one [sh, sw] per stage (${n}), got ${JSON.stringify(cfg.strideKv)}`);
  return {
    depths,
    embedDim,
    numHeads,
    mlpRatio: cfg.mlpRatio ?? 4,
    poolFirst: cfg.poolFirst ?? false,
    expandAttn: cfg.expandAttn ?? true,
    qkvBias: cfg.qkvBias ?? true,
    useClsToken: cfg.useClsToken ?? false,
    useAbsPos: cfg.useAbsPos ?? false,
    residualPooling: cfg.residualPooling ?? true,
    mode: cfg.mode ?? 'conv',
    kernelQkv: pair(cfg.kernelQkv ?? [3, 3]),
    strideQ: strideQ.map(pair),
    strideKv,
    strideKvAdaptive: strideKvAdaptive ? pair(strideKvAdaptive) : null,
    patchKernel: pair(cfg.patchKernel ?? [7, 7]),
    patchStride: pair(cfg.patchStride ?? [4, 4]),
    patchPadding: pair(cfg.patchPadding ?? [3, 3]),
    poolType: cfg.poolType ?? 'max',
    relPosType: cfg.relPosType ?? 'spatial',
    actLayer: cfg.actLayer ?? 'gelu',
    normLayer: cfg.normLayer ?? 'layernorm',
    normEps: cfg.normEps ?? 1e-6,
  };
}
