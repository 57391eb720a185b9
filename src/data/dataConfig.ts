import { check } from '../errors.js';
import { getPretrainedCfg, TimmPretrainedCfg } from './pretrainedCfgs.js';

/** ImageNet mean / std (timm's `IMAGENET_DEFAULT_MEAN` / `_STD`). */
const DEFAULT_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const DEFAULT_STD: [number, number, number] = [0.229, 0.224, 0.225];
/** timm's `DEFAULT_CROP_PCT`. */
export const DEFAULT_CROP_PCT = 0.875;

/** The eval preprocessing of a model (timm's `resolve_data_config` result). */
export interface DataConfig {
  /** `[3, H, W]`. */
  inputSize: [3, number, number];
  interpolation: string;
  mean: [number, number, number];
  std: [number, number, number];
  cropPct: number;
  cropMode: 'center' | 'squash' | 'border';
}

/** Overrides of {@link resolveDataConfig}, as timm's `args`. */
export interface ResolveDataConfigOptions {
  /** Use the cfg's `testInputSize` / `testCropPct` where it has them. */
  useTestSize?: boolean;
  inputSize?: [number, number, number];
  /** A square size (`inputSize` wins). */
  imgSize?: number;
  interpolation?: string;
  mean?: number[];
  std?: number[];
  cropPct?: number;
  cropMode?: 'center' | 'squash' | 'border';
}

/** Anything with a pretrained cfg: a model (`model.pretrainedCfg`) or the cfg itself. */
export type DataConfigSource =
  { pretrainedCfg?: Record<string, unknown> | null } | Partial<TimmPretrainedCfg> | Record<string, unknown> | string;

function cfgOf(src: DataConfigSource): Record<string, unknown> {
  if (typeof src === 'string') return getPretrainedCfg(src);
  check(
    typeof src === 'object' && src !== null,
    () => `resolveDataConfig: expected a model, a pretrained cfg or a model name, got ${String(src)}`,
  );
  const pc = (src as { pretrainedCfg?: unknown }).pretrainedCfg;
  if (pc && typeof pc === 'object') return pc as Record<string, unknown>;
  return src as Record<string, unknown>;
}

function triple(v: unknown, name: string): [number, number, number] {
  const a = v as number[];
  check(
    Array.isArray(a) && (a.length === 3 || a.length === 1) && a.every((x) => typeof x === 'number' && Number.isFinite(x)),
    () => `resolveDataConfig: ${name} must be 1 or 3 numbers, got ${JSON.stringify(v)}`,
  );
  return (a.length === 1 ? [a[0], a[0], a[0]] : [a[0], a[1], a[2]]) as [number, number, number];
}

/**
 * timm's `resolve_data_config` (`timm/data/config.py`): the eval preprocessing of a model, a
 * pretrained cfg or a model name (`'<arch>[.<tag>]'`). Overrides in `opts` win; then the cfg
 * (`testInputSize` / `testCropPct` only with `useTestSize`); missing fields default to 224,
 * `'bicubic'`, ImageNet mean/std, crop 0.875, `'center'`.
 */
export function resolveDataConfig(modelOrCfg: DataConfigSource, opts: ResolveDataConfigOptions = {}): DataConfig {
  const cfg = cfgOf(modelOrCfg);
  let inputSize: number[] = [3, 224, 224];
  if (opts.inputSize != null) {
    check(
      Array.isArray(opts.inputSize) && opts.inputSize.length === 3,
      () => `resolveDataConfig: inputSize must be [C, H, W], got ${JSON.stringify(opts.inputSize)}`,
    );
    inputSize = [...opts.inputSize];
  } else if (opts.imgSize != null) {
    check(
      Number.isInteger(opts.imgSize) && opts.imgSize > 0,
      () => `resolveDataConfig: imgSize must be a positive integer, got ${opts.imgSize}`,
    );
    inputSize = [3, opts.imgSize, opts.imgSize];
  } else if (opts.useTestSize && Array.isArray(cfg.testInputSize)) inputSize = [...(cfg.testInputSize as number[])];
  else if (Array.isArray(cfg.inputSize)) inputSize = [...(cfg.inputSize as number[])];
  check(
    inputSize.length === 3 && inputSize[0] === 3 && inputSize.every((x) => Number.isInteger(x) && x > 0),
    () => `resolveDataConfig: input size must be [3, H, W] with positive integers, got [${inputSize.join(', ')}]`,
  );
  const interpolation = opts.interpolation || (cfg.interpolation as string) || 'bicubic';
  const mean = opts.mean != null ? triple(opts.mean, 'mean') : cfg.mean ? triple(cfg.mean, 'mean') : DEFAULT_MEAN;
  const std = opts.std != null ? triple(opts.std, 'std') : cfg.std ? triple(cfg.std, 'std') : DEFAULT_STD;
  check(
    std.every((s) => s > 0),
    () => `resolveDataConfig: std must be positive, got [${std.join(', ')}]`,
  );
  let cropPct = DEFAULT_CROP_PCT;
  if (opts.cropPct) cropPct = opts.cropPct;
  else if (opts.useTestSize && cfg.testCropPct) cropPct = cfg.testCropPct as number;
  else if (cfg.cropPct) cropPct = cfg.cropPct as number;
  check(typeof cropPct === 'number' && cropPct > 0, () => `resolveDataConfig: cropPct must be a positive number, got ${cropPct}`);
  const cropMode = (opts.cropMode || (cfg.cropMode as string) || 'center') as DataConfig['cropMode'];
  check(
    ['center', 'squash', 'border'].includes(cropMode),
    () => `resolveDataConfig: cropMode must be 'center', 'squash' or 'border', got '${cropMode}'`,
  );
  return { inputSize: inputSize as [3, number, number], interpolation, mean: [...mean], std: [...std], cropPct, cropMode };
}
