import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { VisBackbonesError } from '../errors.js';
import { readImage } from '../data/readImage.js';
import { deserializeDetector } from '../tasks/detector.js';
import { ParsedArgs, UsageError, flagString } from './args.js';
import { CliIO, selectBackend } from './common.js';

/** Flags of `detect`. */
export const DETECT_FLAGS = {
  values: ['score-thresh', 'backend', 'max-dets'],
  switches: ['json'],
};

/** ImageNet's mean / std, for a detector folder that does not name its normalisation. */
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** Whether `dir` is a detector folder (`config.json` with format 'visbackbones-detector' + `model.safetensors`). */
export function isDetectorDir(dir: string): boolean {
  try {
    if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'model.safetensors'))) return false;
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { format?: string };
    return cfg.format === 'visbackbones-detector';
  } catch {
    return false;
  }
}

/**
 * `visbackbones detect <detector dir> <image...> [--score-thresh 0.5] [--max-dets N] [--backend wasm|cpu]
 * [--json]`: the detections of each image (its own pixels, no resizing): one line per image with the
 * path and `label score x1,y1,x2,y2` per detection (and the mask area in pixels for Mask R-CNN), or
 * with `--json` one JSON object per image. The folder is what `serializeDetector` writes (the
 * detection demo writes one per model): `config.json` (backbone, neck, head, class names,
 * normalisation) and `model.safetensors`.
 */
export async function detectCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  const [dir, ...images] = args.positional;
  if (!dir) throw new UsageError('detect needs a detector folder (config.json + model.safetensors), then images');
  if (!images.length) throw new UsageError('detect needs at least one image path after the detector folder');
  if (!isDetectorDir(dir))
    throw new VisBackbonesError(
      `'${dir}' is not a detector folder (expected config.json with format 'visbackbones-detector' and model.safetensors)`,
    );
  const st = flagString(args, 'score-thresh');
  const scoreThresh = st === undefined ? 0.5 : Number(st);
  if (!Number.isFinite(scoreThresh) || scoreThresh < 0 || scoreThresh > 1)
    throw new UsageError(`--score-thresh ${st}: expected a number in [0, 1]`);
  const md = flagString(args, 'max-dets');
  const maxDets = md === undefined ? Infinity : Number(md);
  if (md !== undefined && (!Number.isInteger(maxDets) || maxDets <= 0))
    throw new UsageError(`--max-dets ${md}: expected a positive integer`);
  for (const p of images) if (!existsSync(p)) throw new VisBackbonesError(`image not found: ${p}`);
  await selectBackend(args);
  const { detector: det, spec } = deserializeDetector(
    readFileSync(join(dir, 'config.json'), 'utf8'),
    new Uint8Array(readFileSync(join(dir, 'model.safetensors'))),
  );
  const mean = spec.mean ?? IMAGENET_MEAN;
  const std = spec.std ?? IMAGENET_STD;
  const names = spec.classNames ?? null;
  try {
    for (const path of images) {
      const raw = await readImage(path);
      const x = tf.tidy(() => tf.div(tf.sub(tf.div(tf.cast(raw, 'float32'), 255), mean), std) as tf.Tensor3D);
      raw.dispose();
      let d;
      try {
        [d] = det.detect([x]);
      } finally {
        x.dispose();
      }
      const scores = Array.from(d.scores.dataSync());
      const labels = Array.from(d.labels.dataSync());
      const boxes = d.boxes.arraySync() as number[][];
      const areas = d.masks ? tf.tidy(() => Array.from(tf.sum(tf.greaterEqual(d.masks!, 0.5).toFloat(), [1, 2]).dataSync())) : null;
      tf.dispose([d.boxes, d.scores, d.labels, ...(d.masks ? [d.masks] : [])]);
      const keep = scores
        .map((s, i) => (s >= scoreThresh ? i : -1))
        .filter((i) => i >= 0)
        .slice(0, maxDets);
      const found = keep.map((i) => ({
        label: names?.[labels[i]] ?? String(labels[i]),
        labelId: labels[i],
        score: scores[i],
        box: boxes[i].map((v) => Math.round(v * 10) / 10),
        ...(areas ? { maskArea: areas[i] } : {}),
      }));
      if (args.flags.has('json')) io.out(JSON.stringify({ image: path, detections: found }));
      else
        io.out(
          [
            path,
            ...(found.length
              ? found.map(
                  (f) => `${f.label} ${f.score.toFixed(3)} ${f.box.join(',')}${f.maskArea !== undefined ? ` mask ${f.maskArea}px` : ''}`,
                )
              : ['(no detections)']),
          ].join(' | '),
        );
    }
  } finally {
    det.dispose();
  }
  return 0;
}
