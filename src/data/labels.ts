import { check } from '../errors.js';
import in1k from './labels/imagenet1k.json';
import type { LabelSource } from './pretrainedCfgs.js';

/** The ImageNet subsets with label files (timm's `timm/data/_info/`). */
export const IMAGENET_SUBSETS: readonly LabelSource[] = ['imagenet-1k', 'imagenet-22k', 'imagenet-21k-goog', 'imagenet-12k'];

/** How a class is named: WordNet synset id, its lemmas (timm's description), or `lemmas: definition` (1k only). */
export type LabelType = 'description' | 'name' | 'detailed';

/** Class counts timm maps to a subset (`infer_imagenet_subset`). */
const BY_COUNT: Record<number, LabelSource> = {
  1000: 'imagenet-1k',
  21841: 'imagenet-22k',
  21843: 'imagenet-21k-goog',
  11821: 'imagenet-12k',
};

/** The ImageNet subset a classifier of `numClasses` predicts (timm's `infer_imagenet_subset`), or null. */
export function imagenetSubsetFor(numClasses: number): LabelSource | null {
  return BY_COUNT[numClasses] ?? null;
}

const IN1K = in1k as { synsets: string[]; lemmas: string[]; definitions: string[] };

function oneK(labelType: LabelType): string[] {
  if (labelType === 'name') return [...IN1K.synsets];
  if (labelType === 'detailed') return IN1K.lemmas.map((l, i) => `${l}: ${IN1K.definitions[i]}`);
  return [...IN1K.lemmas];
}

let large: Promise<{ lemmas: Record<string, string>; subsets: Record<string, string[]> }> | null = null;

async function largeLabels(subset: LabelSource, labelType: LabelType): Promise<string[]> {
  check(
    labelType !== 'detailed',
    () => `imagenetLabels: 'detailed' labels (with definitions) exist for 'imagenet-1k' only, not '${subset}'`,
  );
  large ??= import('./labels/imagenetLarge.json').then(
    (m) => (m.default ?? m) as { lemmas: Record<string, string>; subsets: Record<string, string[]> },
  );
  const d = await large;
  const synsets = d.subsets[subset];
  return labelType === 'name' ? [...synsets] : synsets.map((s) => d.lemmas[s]);
}

/**
 * Class names of an ImageNet subset, index `i` -> class `i` (timm's `ImageNetInfo(subset)`):
 * `'description'` (default; what timm's `inference.py` prints) = the synset's lemmas
 * (`'tench, Tinca tinca'`), `'name'` = the WordNet synset (`'n01440764'`), `'detailed'` =
 * `'lemmas: definition'` (1k only). The 1k lists are bundled (returned synchronously); the
 * larger subsets load lazily (a Promise).
 */
export function imagenetLabels(subset?: 'imagenet-1k', labelType?: LabelType): string[];
export function imagenetLabels(subset: LabelSource, labelType?: LabelType): string[] | Promise<string[]>;
export function imagenetLabels(subset: LabelSource = 'imagenet-1k', labelType: LabelType = 'description'): string[] | Promise<string[]> {
  check(IMAGENET_SUBSETS.includes(subset), () => `imagenetLabels: unknown subset '${subset}' (expected ${IMAGENET_SUBSETS.join(', ')})`);
  check(
    ['description', 'name', 'detailed'].includes(labelType),
    () => `imagenetLabels: labelType must be 'description', 'name' or 'detailed', got '${labelType}'`,
  );
  if (subset === 'imagenet-1k') return oneK(labelType);
  return largeLabels(subset, labelType);
}

/**
 * The class names of a pretrained cfg's classifier: its `labelNames`, else the ImageNet subset its
 * `numClasses` selects (descriptions); null when there are none (0 classes, other datasets).
 */
export async function labelsFor(cfg: {
  labelNames?: string[] | null;
  numClasses?: number;
  labelSource?: string | null;
}): Promise<string[] | null> {
  if (Array.isArray(cfg.labelNames) && cfg.labelNames.length) return [...cfg.labelNames];
  const subset = imagenetSubsetFor(Number(cfg.numClasses));
  return subset ? imagenetLabels(subset, 'description') : null;
}
