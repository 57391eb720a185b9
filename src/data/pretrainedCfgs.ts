import { VisBackbonesError } from '../errors.js';
import data from './pretrainedCfgs.json';

/** The ImageNet label subset a classifier's class count selects (timm's `infer_imagenet_subset`). */
export type LabelSource = 'imagenet-1k' | 'imagenet-22k' | 'imagenet-21k-goog' | 'imagenet-12k';

/**
 * timm's `PretrainedCfg` of one pretrained tag (timm 1.0 `timm/models/_pretrained.py`), fields in camelCase:
 * where the weights are, what the classifier predicts, and the eval preprocessing they expect.
 */
export interface TimmPretrainedCfg {
  /** `'<architecture>.<tag>'` (the architecture alone for a cfg without a tag). */
  name: string;
  architecture: string;
  /** The pretrained tag (`'ms_in1k'`), null for an untagged cfg (CSWin's official ones). */
  tag: string | null;
  /** Hugging Face Hub repository (`'timm/<name>'`, `'<repo>@<revision>'` selects a revision). */
  hfHubId: string | null;
  /** File inside the hub repository (null: `model.safetensors`). */
  hfHubFilename: string | null;
  /** Original (non-hub) checkpoint URL, usually a PyTorch pickle. */
  url: string | null;
  hasWeights: boolean;
  /** Classes of the checkpoint's classifier (0: no head). */
  numClasses: number;
  /** Leading classifier rows to drop on load (a background class). */
  labelOffset: number | null;
  labelNames: string[] | null;
  labelSource: LabelSource | null;
  /** `[C, H, W]` the weights were trained / evaluated at. */
  inputSize: [number, number, number];
  testInputSize: [number, number, number] | null;
  minInputSize: [number, number, number] | null;
  fixedInputSize: boolean;
  interpolation: 'bicubic' | 'bilinear';
  /** Eval crop fraction: resize to `size / cropPct`, centre-crop `size`. */
  cropPct: number;
  testCropPct: number | null;
  cropMode: 'center' | 'squash' | 'border';
  mean: [number, number, number];
  std: [number, number, number];
  firstConv: string | null;
  classifier: string | null;
  poolSize: [number, number] | null;
  license: string | null;
  originUrl: string | null;
  paperIds: string | null;
  notes: string[] | null;
  [extra: string]: unknown;
}

interface ArchEntry {
  defaultTag: string;
  tags: string[];
  inTimm: boolean;
  pretrained: Record<string, TimmPretrainedCfg>;
}

const MODELS = (data as unknown as { models: Record<string, ArchEntry> }).models;

function copyCfg(c: TimmPretrainedCfg): TimmPretrainedCfg {
  return JSON.parse(JSON.stringify(c)) as TimmPretrainedCfg;
}

/** Architectures that have pretrained cfgs (every registered timm / CSWin name). */
export function pretrainedArchitectures(): string[] {
  return Object.keys(MODELS).sort();
}

/** Split `'<arch>.<tag>'` at the first dot (timm's `split_model_name_tag`). */
export function splitModelNameTag(name: string): [string, string] {
  const i = name.indexOf('.');
  return i < 0 ? [name, ''] : [name.slice(0, i), name.slice(i + 1)];
}

/** Whether `nameOrTag` names a known pretrained cfg (an architecture, or `'<arch>.<tag>'`). */
export function hasPretrainedCfg(nameOrTag: string): boolean {
  const [arch, tag] = splitModelNameTag(nameOrTag);
  const e = MODELS[arch];
  return !!e && (tag === '' || tag in e.pretrained);
}

/**
 * timm's pretrained cfg of `'<arch>'` (its default tag, as `timm.create_model` picks it) or
 * `'<arch>.<tag>'`. A fresh copy each call. An unknown architecture or tag throws one error listing
 * the architecture's tags.
 */
export function getPretrainedCfg(name: string): TimmPretrainedCfg {
  if (typeof name !== 'string' || !name)
    throw new VisBackbonesError(`getPretrainedCfg: expected a model name, got ${JSON.stringify(name)}`);
  const [arch, tag] = splitModelNameTag(name);
  const e = MODELS[arch];
  if (!e) {
    const stem = arch.split('_')[0];
    const near = Object.keys(MODELS)
      .filter((k) => k.startsWith(stem))
      .slice(0, 12);
    throw new VisBackbonesError(`no pretrained cfg for model '${arch}'${near.length ? `; similar names: ${near.join(', ')}` : ''}`);
  }
  const t = tag === '' ? e.defaultTag : tag;
  const cfg = e.pretrained[t];
  if (!cfg) {
    const tags = e.tags.filter((x) => x !== '');
    throw new VisBackbonesError(
      `model '${arch}' has no pretrained tag '${tag}'; ` +
        (tags.length ? `its tags: ${tags.map((x) => `${arch}.${x}`).join(', ')}` : 'it takes no tag'),
    );
  }
  return copyCfg(cfg);
}

/** Every tag of an architecture in timm's order (default first); `['']` for an untagged cfg. */
export function pretrainedTags(arch: string): string[] {
  const e = MODELS[arch];
  if (!e) throw new VisBackbonesError(`no pretrained cfg for model '${arch}'`);
  return [...e.tags];
}

/** timm's `_natural_key`: digit runs compare as numbers. */
function naturalKey(s: string): (string | number)[] {
  return s
    .toLowerCase()
    .split(/(\d+)/)
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

function naturalCompare(a: string, b: string): number {
  const ka = naturalKey(a);
  const kb = naturalKey(b);
  for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
    const x = ka[i];
    const y = kb[i];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return ka.length - kb.length;
}

/**
 * `'<arch>.<tag>'` names that have weights (timm's `list_pretrained`), natural-sorted; untagged cfgs
 * are listed by their architecture name. `filter`: a wildcard pattern (`'swinv2*'`) or a substring.
 */
export function listPretrained(filter?: string): string[] {
  let names: string[] = [];
  for (const e of Object.values(MODELS)) for (const c of Object.values(e.pretrained)) if (c.hasWeights) names.push(c.name);
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
  return names.sort(naturalCompare);
}
