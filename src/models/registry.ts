import { VisBackbonesError } from '../errors.js';
import { withoutInit } from '../layers/init.js';
import type { Module } from '../layers/module.js';
import type { Backbone } from './backbone.js';
import { getPretrainedCfg, hasPretrainedCfg, splitModelNameTag } from '../data/pretrainedCfgs.js';

/** timm's pretrained config of a named variant: what the weights expect. */
export interface PretrainedCfg {
  /** `[C, H, W]`. */
  inputSize: [number, number, number];
  mean: [number, number, number];
  std: [number, number, number];
  cropPct: number;
  interpolation: string;
  numClasses: number;
  /** Hub id of the weights (`timm/<name>.<tag>`), for users who download them; null where none is published. */
  hfHubId?: string | null;
  /** Further timm fields (camelCase: `cropMode`, `license`, `tag`, ...). */
  [extra: string]: unknown;
}

/**
 * What a registered name builds: an image `Backbone` (`'image'`, the default), or another kind of model
 * with its own input (video clips, image-text pairs) that the image-backbone tests do not run.
 */
export type ModelKind = 'image' | 'video' | 'multimodal';

/** A registered variant. */
export interface ModelEntry {
  name: string;
  family: string;
  kind: ModelKind;
  /** The architecture config (camelCase constructor arguments) before user overrides. */
  config: Record<string, unknown>;
  pretrainedCfg: PretrainedCfg;
  /** Build the variant, with camelCase config fields in `overrides` replacing the variant's. */
  create(overrides?: Record<string, unknown>): Backbone;
}

/**
 * A backbone family (timm's model file): the factory, the named variants with their configs typed
 * against the family's config type, the pretrained-config defaults, and a tiny config for tests.
 */
export interface FamilyDefinition<C extends object> {
  /** Registry name (`'swin'`, `'convnextv2'`): what `model.family` holds. */
  name: string;
  /** Builds a model from a config. */
  factory: (config: C) => Backbone;
  /** Pretrained-config defaults of every variant (timm's `_cfg`): mean/std, crop, interpolation. */
  defaults?: Partial<PretrainedCfg>;
  /** Named variants: config fields merged over the factory's defaults. */
  variants: Record<string, C>;
  /** Per-variant pretrained-config fields over `defaults` (crop, classes, hub id). */
  pretrained?: Record<string, Partial<PretrainedCfg>>;
  /**
   * A tiny config of the family for tests and benches (one block per stage, small widths) at an
   * input size, with `numClasses: 0`.
   */
  tiny: (imgSize: number) => C;
  /** A plain (single-stride) backbone: multi-level heads need a simple feature pyramid in front. */
  plain?: boolean;
  /** Whether the family has an image classifier (`forwardLogits`); default true (SeMask: false). */
  classifier?: boolean;
  /**
   * Put a freshly built tiny model into a state where every variable gets a gradient (as after some
   * training), for generic plumbing tests; e.g. SwinV2's zero-initialised res-post-norms.
   */
  liven?: (model: Backbone) => void;
}

/** A registered family, as tests, benches and tools read it. */
export interface Family {
  name: string;
  plain: boolean;
  classifier: boolean;
  defaults: Partial<PretrainedCfg>;
  /** Variant names of this family, in registration order. */
  variants: string[];
  /** Build from an untyped config (checked by the family's factory). */
  create(config: Record<string, unknown>): Backbone;
  /** The tiny test model at `imgSize`, `overrides` merged in, made trainable everywhere (see `liven`). */
  tiny(imgSize: number, overrides?: Record<string, unknown>): Backbone;
  /** The tiny config (without `liven`). */
  tinyConfig(imgSize: number): Record<string, unknown>;
  /** The family's `liven` hook (a no-op where it has none). */
  liven(model: Backbone): void;
}

/** Config fields every backbone accepts besides its architecture ({@link BackboneCommonConfig}). */
const COMMON_FIELDS = ['inChans', 'numClasses', 'featuresOnly', 'outIndices', 'globalPool', 'dropRate', 'dropPathRate'];

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'unset';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * Check config overrides against a family's fields (timm raises "unexpected keyword argument"): an
 * unknown key throws, naming the nearest valid key and the fields; a value of the wrong kind (a string
 * where the family takes a number, ...) throws naming the key, the value and the expected kind.
 */
function checkOverrides(family: string, fields: Map<string, unknown>, overrides: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(overrides)) {
    if (!fields.has(k)) {
      const names = [...fields.keys()].sort();
      const near = names.reduce((best, n) => (editDistance(k, n) < editDistance(k, best) ? n : best), names[0]);
      throw new VisBackbonesError(
        `unexpected config field '${k}' for model family '${family}' (did you mean '${near}'?); its fields: ${names.join(', ')}`,
      );
    }
    const ref = kindOf(fields.get(k));
    const got = kindOf(v);
    if (ref === 'unset' || got === 'unset' || ref === got || ref === 'object' || got === 'object') continue;
    // numbers and per-stage lists are interchangeable where a family takes either (windowSize: 7 | [7, 7, 14, 7])
    if ((ref === 'number' && got === 'array') || (ref === 'array' && got === 'number')) continue;
    throw new VisBackbonesError(`config field '${k}' of model family '${family}' expects a ${ref}, got ${JSON.stringify(v)} (${got})`);
  }
}

const registry = new Map<string, ModelEntry>();
const families = new Map<string, Family>();

/** ImageNet per-channel mean (RGB, 0-1 scale). */
export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet per-channel standard deviation (RGB, 0-1 scale). */
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];
/** Inception / OpenAI-style mean and std (0.5). */
export const INCEPTION_MEAN: [number, number, number] = [0.5, 0.5, 0.5];
export const INCEPTION_STD: [number, number, number] = [0.5, 0.5, 0.5];

/**
 * Register a family and its variants (timm's `@register_model` functions of one model file). Returns
 * the registered {@link Family}.
 */
export function defineFamily<C extends object>(def: FamilyDefinition<C>): Family {
  if (families.has(def.name)) throw new VisBackbonesError(`model family '${def.name}' is registered twice`);
  let fields: Map<string, unknown> | null = null;
  /** The family's fields with example values: the resolved config of a tiny model, the variants' fields. */
  const familyFields = (): Map<string, unknown> => {
    if (fields) return fields;
    const f = new Map<string, unknown>(COMMON_FIELDS.map((k) => [k, undefined]));
    for (const cfg of Object.values(def.variants) as Record<string, unknown>[])
      for (const [k, v] of Object.entries(cfg)) if (!f.has(k) || f.get(k) === undefined) f.set(k, v);
    const probe = withoutInit(() => def.factory(def.tiny(64)));
    for (const [k, v] of Object.entries(probe.config)) if (!f.has(k) || f.get(k) === undefined) f.set(k, v);
    probe.dispose();
    fields = f;
    return f;
  };
  const create = (config: Record<string, unknown>): Backbone => {
    checkOverrides(def.name, familyFields(), config);
    const m = def.factory(config as C);
    m.family = def.name;
    return m;
  };
  const family: Family = {
    name: def.name,
    plain: def.plain ?? false,
    classifier: def.classifier ?? true,
    defaults: def.defaults ?? {},
    variants: Object.keys(def.variants),
    create,
    liven: (m) => def.liven?.(m),
    tinyConfig: (s) => ({ ...(def.tiny(s) as Record<string, unknown>) }),
    tiny: (s, overrides = {}) => {
      const m = create({ ...(def.tiny(s) as Record<string, unknown>), ...overrides });
      family.liven(m);
      return m;
    },
  };
  families.set(def.name, family);
  for (const [name, cfg] of Object.entries(def.variants) as [string, C][]) {
    if (registry.has(name)) throw new VisBackbonesError(`model '${name}' is registered twice`);
    const config = { ...(cfg as Record<string, unknown>) };
    const size = (config.imgSize as number | [number, number] | undefined) ?? 224;
    const [h, w] = Array.isArray(size) ? size : [size, size];
    const pretrainedCfg: PretrainedCfg = {
      inputSize: [(config.inChans as number | undefined) ?? 3, h, w],
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
      cropPct: 0.9,
      interpolation: 'bicubic',
      numClasses: 1000,
      ...def.defaults,
      ...def.pretrained?.[name],
    };
    // timm: numClasses defaults to the default pretrained tag's class count
    const withClasses = def.classifier === false ? config : { numClasses: pretrainedCfg.numClasses, ...config };
    registry.set(name, {
      name,
      family: def.name,
      kind: 'image',
      config,
      pretrainedCfg,
      create: (overrides = {}) => create({ ...withClasses, ...overrides }),
    });
  }
  return family;
}

/** Named models of another kind than image backbones (video, image-text): see {@link defineModels}. */
export interface ModelsDefinition<C extends object, M extends Module> {
  /** Family name (`'video_swin'`, `'beit3'`). */
  name: string;
  kind: Exclude<ModelKind, 'image'>;
  factory: (config: C) => M;
  variants: Record<string, C>;
  /** Pretrained-config fields per variant (input size, mean / std, hub id). */
  pretrained?: Record<string, Partial<PretrainedCfg>>;
}

const otherFamilies = new Map<string, (config: Record<string, unknown>) => Module>();

/**
 * Register named models that are not image backbones, so `createModel(name)` and `listModels()` know
 * them; `listFamilies()` (the image backbones every generic test runs) does not list them.
 */
export function defineModels<C extends object, M extends Module>(def: ModelsDefinition<C, M>): void {
  if (families.has(def.name) || otherFamilies.has(def.name)) throw new VisBackbonesError(`model family '${def.name}' is registered twice`);
  const create = (config: Record<string, unknown>) => def.factory(config as C);
  otherFamilies.set(def.name, create);
  for (const [name, cfg] of Object.entries(def.variants) as [string, C][]) {
    if (registry.has(name)) throw new VisBackbonesError(`model '${name}' is registered twice`);
    const config = { ...(cfg as Record<string, unknown>) };
    const pretrainedCfg: PretrainedCfg = {
      inputSize: [3, 224, 224],
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
      cropPct: 0.9,
      interpolation: 'bicubic',
      numClasses: 0,
      ...def.pretrained?.[name],
    };
    registry.set(name, {
      name,
      family: def.name,
      kind: def.kind,
      config,
      pretrainedCfg,
      create: (overrides = {}) => create({ ...config, ...overrides }) as unknown as Backbone,
    });
  }
}

/** A registered family by name, or a clear error listing the known ones. */
export function getFamily(name: string): Family {
  const f = families.get(name);
  if (!f) throw new VisBackbonesError(`unknown model family '${name}' (known: ${[...families.keys()].join(', ')})`);
  return f;
}

/** Every registered family, in registration (import) order. */
export function listFamilies(): Family[] {
  return [...families.values()];
}

/** The factory of a model family (`'swin'`, `'swinv2'`, ...), as registered with its variants. */
export function getFamilyFactory(family: string): (config: Record<string, unknown>) => Backbone {
  const other = otherFamilies.get(family);
  if (other) return other as unknown as (config: Record<string, unknown>) => Backbone;
  return getFamily(family).create;
}

/** A registered variant's entry, or a clear error listing near names. */
export function getModelEntry(name: string): ModelEntry {
  const e = registry.get(name);
  if (!e) {
    const stem = name.split('_')[0];
    const near = [...registry.keys()].filter((k) => k.startsWith(stem)).slice(0, 12);
    throw new VisBackbonesError(
      `unknown model '${name}'${near.length ? `; similar names: ${near.join(', ')}` : ''} (\`visbackbones list\` or listModels() gives all ${registry.size})`,
    );
  }
  return e;
}

/** Options of {@link createModel} besides the config overrides. */
export interface CreateModelOptions {
  /**
   * Draw random initial weights (default true). `false` builds with zeros, much faster, for a model
   * whose weights are loaded next.
   */
  init?: boolean;
}

/** Options of `createModel(name, { pretrained: true, ... })`: the download options, `numClasses` and config overrides. */
export interface PretrainedCreateOptions {
  pretrained: true;
  numClasses?: number;
  cacheDir?: string;
  revision?: string;
  token?: string;
  endpoint?: string;
  fetch?: typeof fetch;
  offline?: boolean;
  onProgress?: (bytes: number, total: number) => void;
  progress?: boolean;
  [override: string]: unknown;
}

type PretrainedLoader = (name: string, opts: PretrainedCreateOptions) => Promise<Module>;
let pretrainedLoader: PretrainedLoader | null = null;

/**
 * The hub layer registers how `createModel(name, { pretrained: true })` fetches and loads weights
 * (models sit below the hub, so the registry only holds the hook).
 */
export function registerPretrainedLoader(load: PretrainedLoader): void {
  pretrainedLoader = load;
}

/**
 * Build a named variant (timm's `create_model`); `overrides` are camelCase config fields. A name may
 * carry a pretrained tag (`'swinv2_tiny_window8_256.ms_in1k'`): `model.pretrainedCfg` is that tag's cfg
 * (the default tag's without one) and `numClasses` defaults to its class count. With
 * `{ pretrained: true }` it returns a Promise of the model with the tag's weights loaded (download
 * through the Hugging Face cache). Image backbones return a `Backbone`; the video and image-text names
 * return their own model class (pass it as the type parameter).
 */
export function createModel<M extends Module = Backbone>(name: string, opts: PretrainedCreateOptions): Promise<M>;
export function createModel<M extends Module = Backbone>(name: string, overrides?: Record<string, unknown>, opts?: CreateModelOptions): M;
export function createModel<M extends Module = Backbone>(
  name: string,
  overrides: Record<string, unknown> = {},
  opts: CreateModelOptions = {},
): M | Promise<M> {
  if (typeof name !== 'string' || !name) throw new VisBackbonesError(`createModel: expected a model name, got ${JSON.stringify(name)}`);
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides))
    throw new VisBackbonesError(`createModel('${name}'): overrides must be an object of config fields, got ${JSON.stringify(overrides)}`);
  if ('pretrained' in overrides) {
    const p = overrides.pretrained;
    if (p === true) {
      if (!pretrainedLoader)
        throw new VisBackbonesError(
          `createModel('${name}', { pretrained: true }): the weights loader is not registered; import from 'visbackbones' (the package entry), not from its models folder`,
        );
      return pretrainedLoader(name, overrides as PretrainedCreateOptions) as Promise<M>;
    }
    if (p !== false) throw new VisBackbonesError(`createModel('${name}'): pretrained must be true or false, got ${JSON.stringify(p)}`);
    const { pretrained: _unused, ...rest } = overrides;
    void _unused;
    overrides = rest;
  }
  const [arch, tag] = splitModelNameTag(name);
  const e = getModelEntry(arch);
  const timmCfg = hasPretrainedCfg(arch) ? getPretrainedCfg(name) : null; // throws on an unknown tag
  if (tag && !timmCfg) throw new VisBackbonesError(`model '${arch}' has no pretrained tags; got '${name}'`);
  const ov =
    tag && timmCfg && !('numClasses' in overrides) && hasClassifier(e) ? { ...overrides, numClasses: timmCfg.numClasses } : overrides;
  const build = () => e.create(ov) as unknown as M;
  const model = opts.init === false ? withoutInit(build) : build();
  const nc = (model as unknown as { numClasses?: number }).numClasses;
  const cfg = timmCfg ? { ...timmCfg } : { ...e.pretrainedCfg, name: arch, architecture: arch, tag: null };
  if (typeof nc === 'number') cfg.numClasses = nc;
  (model as unknown as { pretrainedCfg: unknown }).pretrainedCfg = cfg;
  return model;
}

/** Whether a registered name builds a classifier (image backbones with `numClasses`). */
function hasClassifier(e: ModelEntry): boolean {
  return e.kind === 'image' && (families.get(e.family)?.classifier ?? true);
}

/** Registered names, sorted; `filter` is a wildcard pattern (`'swinv2*'`) or a substring. */
export function listModels(filter?: string): string[] {
  let names = [...registry.keys()].sort();
  if (filter) {
    if (/[*?]/.test(filter)) {
      const re = new RegExp(
        `^${filter
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      );
      names = names.filter((n) => re.test(n));
    } else names = names.filter((n) => n.includes(filter));
  }
  return names;
}
