import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import type { U8Image } from './imageOps.js';
import type { DecodePool } from './decodePool.js';
import { readImage } from './readImage.js';
import { DataRng } from './rng.js';
import type { BatchImageTransform } from './batchTransform.js';
import type { ImageTransform } from './transforms.js';

/** Image files an {@link imageFolder} picks up (timm's `IMG_EXTENSIONS` that the decoder reads). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff'];

/** A classification dataset: `<root>/<class>/<image>` files, class `i` = the `i`-th folder name. */
export interface ImageFolder {
  root: string;
  classNames: string[];
  samples: { path: string; label: number }[];
}

/** timm's `natural_key` ordering (digit runs numerically), as its `ImageDataset` sorts classes. */
function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true, sensitivity: 'variant' }) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * Node: list `<root>/<class>/**\/<image>` (timm's `find_images_and_targets`): classes are the
 * top-level folder names in natural order, files in natural order of their relative path.
 */
export async function imageFolder(root: string, opts: { extensions?: string[] } = {}): Promise<ImageFolder> {
  const { readdir, stat } = await import('node:fs/promises');
  const { join, extname } = await import('node:path');
  const exts = (opts.extensions ?? IMAGE_EXTENSIONS).map((e) => e.toLowerCase());
  let top: string[];
  try {
    check((await stat(root)).isDirectory(), () => `imageFolder: '${root}' is not a folder`);
    top = await readdir(root);
  } catch (e) {
    if (e instanceof VisBackbonesError) throw e;
    throw new VisBackbonesError(`imageFolder: cannot read '${root}': ${(e as Error).message}`);
  }
  const classes: string[] = [];
  for (const d of top) if (!d.startsWith('.') && (await stat(join(root, d))).isDirectory()) classes.push(d);
  classes.sort(naturalCompare);
  check(classes.length > 0, () => `imageFolder: '${root}' has no class folders (expected <root>/<class>/<image>)`);
  const samples: { path: string; label: number }[] = [];
  const walk = async (dir: string, label: number) => {
    const found: string[] = [];
    const rec = async (d: string) => {
      for (const f of await readdir(d)) {
        if (f.startsWith('.')) continue;
        const p = join(d, f);
        if ((await stat(p)).isDirectory()) await rec(p);
        else if (exts.includes(extname(f).toLowerCase())) found.push(p);
      }
    };
    await rec(dir);
    found.sort(naturalCompare);
    for (const p of found) samples.push({ path: p, label });
  };
  for (let i = 0; i < classes.length; i++) await walk(join(root, classes[i]), i);
  check(samples.length > 0, () => `imageFolder: no images (${exts.join(', ')}) under '${root}'`);
  return { root, classNames: classes, samples };
}

/** Options of {@link decodeImageFolder}. */
export interface DecodeOptions {
  /** Throw on the first file that cannot be decoded (default false: skip it and report it). */
  strict?: boolean;
  /** Called for each skipped file. */
  onError?: (path: string, error: Error) => void;
}

/** Decoded samples held as uint8 (no tensors): what a synchronous training data source draws from. */
export interface DecodedSamples {
  classNames: string[];
  images: U8Image[];
  labels: number[];
  paths: string[];
  skipped: { path: string; error: string }[];
}

/** Decode every image of a folder dataset into memory (uint8), skipping (or, `strict`, failing on) undecodable files. */
export async function decodeImageFolder(ds: ImageFolder, opts: DecodeOptions = {}): Promise<DecodedSamples> {
  const out: DecodedSamples = { classNames: ds.classNames, images: [], labels: [], paths: [], skipped: [] };
  for (const s of ds.samples) {
    let t: tf.Tensor3D;
    try {
      t = await readImage(s.path);
    } catch (e) {
      if (opts.strict) throw e;
      out.skipped.push({ path: s.path, error: (e as Error).message });
      opts.onError?.(s.path, e as Error);
      continue;
    }
    const [h, w] = t.shape;
    out.images.push({ data: Uint8Array.from(t.dataSync()), height: h, width: w, channels: 3 });
    t.dispose();
    out.labels.push(s.label);
    out.paths.push(s.path);
  }
  return out;
}

/** Options of {@link imageLoader}. */
export interface LoaderOptions extends DecodeOptions {
  /**
   * Per image, or batched (`createTransform(cfg, { isTraining: true, batched: true })`): then the batch's
   * images, zero-padded to the largest, go through it at once on the active backend, with the same outputs.
   * (On cpu and wasm a batched transform runs the per-image JavaScript loops over the batch: about as fast.)
   */
  transform: ImageTransform | BatchImageTransform;
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  /** Keep a last, smaller batch (default true). */
  keepLast?: boolean;
  /**
   * Decode in these worker threads ({@link createDecodePool}; Node): files are read and decoded off the
   * main thread, ahead of the batch being trained on. Default: decode on this thread with {@link readImage}.
   */
  pool?: DecodePool;
  /** Files being decoded ahead of the one consumed (default: two batches with a pool, else 1). */
  prefetch?: number;
}

type Decoded = { ok: true; img: U8Image; index: number } | { ok: false; error: Error; index: number };

/**
 * Stream batches from a folder dataset: each image is read, transformed and stacked on demand (at
 * most `prefetch` decoded images and one batch in memory). With a `pool` the decoding runs in worker
 * threads while the caller trains; the transform runs here. Yields `{ x: [B, h, w, 3], y: [B] int32,
 * paths }`; the consumer disposes `x` and `y`. Undecodable files are skipped and reported through
 * `onError` with their path (without one: `console.warn`; `strict`: the first one is fatal).
 */
export async function* imageLoader(
  ds: ImageFolder,
  opts: LoaderOptions,
): AsyncGenerator<{ x: tf.Tensor4D; y: tf.Tensor1D; paths: string[] }> {
  check(
    Number.isInteger(opts.batchSize) && opts.batchSize > 0,
    () => `imageLoader: batchSize must be a positive integer, got ${opts.batchSize}`,
  );
  const order = opts.shuffle ? new DataRng(opts.seed).permutation(ds.samples.length) : ds.samples.map((_, i) => i);
  const pool = opts.pool;
  const ahead = Math.max(1, opts.prefetch ?? (pool ? 2 * opts.batchSize : 1));
  check(Number.isInteger(ahead), () => `imageLoader: prefetch must be a positive integer, got ${opts.prefetch}`);
  const decode = async (path: string): Promise<U8Image> => {
    if (pool) return pool.decode(path);
    const t = await readImage(path);
    try {
      return { data: Uint8Array.from(t.dataSync()), height: t.shape[0], width: t.shape[1], channels: 3 };
    } finally {
      t.dispose();
    }
  };
  const queue: Promise<Decoded>[] = [];
  let next = 0;
  const fill = () => {
    while (queue.length < ahead && next < order.length) {
      const index = order[next++];
      queue.push(
        decode(ds.samples[index].path).then(
          (img): Decoded => ({ ok: true, img, index }),
          (error: Error): Decoded => ({ ok: false, error, index }),
        ),
      );
    }
  };
  const batched = (opts.transform as Partial<BatchImageTransform>).batched === true;
  let xs: tf.Tensor3D[] = [];
  let raw: U8Image[] = [];
  let ys: number[] = [];
  let paths: string[] = [];
  const flush = () => {
    const x = batched ? transformBatch(opts.transform as BatchImageTransform, raw) : (tf.stack(xs) as tf.Tensor4D);
    const batch = { x, y: tf.tensor1d(ys, 'int32'), paths };
    tf.dispose(xs);
    xs = [];
    raw = [];
    ys = [];
    paths = [];
    return batch;
  };
  try {
    fill();
    while (queue.length) {
      const r = await queue.shift()!;
      fill();
      const s = ds.samples[r.index];
      if (!r.ok) {
        if (opts.strict) throw r.error;
        // never silently: without an onError the skip is a console warning
        if (opts.onError) opts.onError(s.path, r.error);
        else console.warn(`imageLoader: skipped ${s.path}: ${r.error.message}`);
        continue;
      }
      if (batched) raw.push(r.img);
      else {
        const img = tf.tensor3d(Int32Array.from(r.img.data), [r.img.height, r.img.width, 3], 'int32');
        try {
          xs.push((opts.transform as ImageTransform)(img));
        } finally {
          img.dispose();
        }
      }
      ys.push(s.label);
      paths.push(s.path);
      if (ys.length === opts.batchSize) yield flush();
    }
    if (ys.length && (opts.keepLast ?? true)) yield flush();
  } finally {
    tf.dispose(xs);
    // let decodes still in flight settle (their results are dropped)
    await Promise.all(queue);
  }
}

/** Zero-pad decoded images to the largest of them (top-left aligned) and run a batched transform on them. */
function transformBatch(transform: BatchImageTransform, images: U8Image[]): tf.Tensor4D {
  const h = Math.max(...images.map((im) => im.height));
  const w = Math.max(...images.map((im) => im.width));
  const buf = new Int32Array(images.length * h * w * 3);
  images.forEach((im, i) => {
    for (let y = 0; y < im.height; y++) buf.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), (i * h + y) * w * 3);
  });
  const x = tf.tensor4d(buf, [images.length, h, w, 3], 'int32');
  try {
    return transform(
      x,
      images.map((im) => [im.height, im.width]),
    );
  } finally {
    x.dispose();
  }
}

/**
 * The {@link imageLoader} as a `tf.data.Dataset` of `{ xs: [B, h, w, 3], ys: [B] int32 }` batches (for
 * `tf.data` pipelines and `LayersModel.fitDataset`). Each iteration starts a new pass with the same options.
 */
export function imageDataset(ds: ImageFolder, opts: LoaderOptions): tf.data.Dataset<{ xs: tf.Tensor4D; ys: tf.Tensor1D }> {
  return tf.data.generator(async function* () {
    for await (const b of imageLoader(ds, opts)) yield { xs: b.x, ys: b.y };
  } as unknown as () => Generator<{ xs: tf.Tensor4D; ys: tf.Tensor1D }>);
}
