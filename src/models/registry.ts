import { VisBackbonesError } from '../errors.js';
import type { Backbone } from './backbone.js';

/** timm's pretrained config of a named variant: what the weights expect. */
export interface PretrainedCfg {
  /** `[C, H, W]`. */
  inputSize: [number, number, number];
  mean: [number, number, number];
  std: [number, number, number];
  cropPct: number;
  interpolation: string;
  numClasses: number;
  /** Hub id of the weights (`timm/<name>.<tag>`), for users who download them. */
  hfHubId?: string;
}

/** A registered variant. */
export interface ModelEntry {
  name: string;
  family: string;
  /** The architecture config (camelCase constructor arguments) before user overrides. */
  config: Record<string, unknown>;
  pretrainedCfg: PretrainedCfg;
  /** Build the variant, with camelCase config fields in `overrides` replacing the variant's. */
  create(overrides?: Record<string, unknown>): Backbone;
}

const registry = new Map<string, ModelEntry>();
const families = new Map<string, (config: Record<string, unknown>) => Backbone>();

/** ImageNet per-channel mean (RGB, 0-1 scale). */
export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet per-channel standard deviation (RGB, 0-1 scale). */
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** Register a named variant (timm's `@register_model`). */
export function registerModel(
  name: string,
  family: string,
  config: Record<string, unknown>,
  factory: (config: Record<string, unknown>) => Backbone,
  pretrainedCfg: Partial<PretrainedCfg> = {},
): void {
  const size = (config.imgSize as number | undefined) ?? 224;
  const cfg: PretrainedCfg = {
    inputSize: [3, size, size],
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    cropPct: 0.9,
    interpolation: 'bicubic',
    numClasses: 1000,
    ...pretrainedCfg,
  };
  registry.set(name, { name, family, config, pretrainedCfg: cfg, create: (overrides = {}) => factory({ ...config, ...overrides }) });
  if (!families.has(family)) families.set(family, factory);
}

/** The factory of a model family (`'swin'`, `'swinv2'`, ...), as registered with its variants. */
export function getFamilyFactory(family: string): (config: Record<string, unknown>) => Backbone {
  const f = families.get(family);
  if (!f) throw new VisBackbonesError(`unknown model family '${family}' (known: ${[...families.keys()].join(', ')})`);
  return f;
}

/** A registered variant's entry, or a clear error listing near names. */
export function getModelEntry(name: string): ModelEntry {
  const e = registry.get(name);
  if (!e) {
    const stem = name.split('_')[0];
    const near = [...registry.keys()].filter((k) => k.startsWith(stem)).slice(0, 12);
    throw new VisBackbonesError(`unknown model '${name}'${near.length ? `; similar names: ${near.join(', ')}` : ''} (listModels() gives all ${registry.size})`);
  }
  return e;
}

/** Build a named variant (timm's `create_model`); `overrides` are camelCase config fields. */
export function createModel(name: string, overrides: Record<string, unknown> = {}): Backbone {
  return getModelEntry(name).create(overrides);
}

/** Registered names, sorted; `filter` is a wildcard pattern (`'swinv2*'`) or a substring. */
export function listModels(filter?: string): string[] {
  let names = [...registry.keys()].sort();
  if (filter) {
    if (/[*?]/.test(filter)) {
      const re = new RegExp(`^${filter.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
      names = names.filter((n) => re.test(n));
    } else names = names.filter((n) => n.includes(filter));
  }
  return names;
}
