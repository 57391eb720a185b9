/**
 * What the lab pretrains on: a pool of normalised NHWC images (the synthetic shapes set, or the
 * user's own pictures) and seeded random batches drawn from it.
 */
import * as tf from '@tensorflow/tfjs';
import { createTransform, DataConfig, SeededRandom, SHAPES_MEAN, SHAPES_STD, syntheticShapes } from '../../src/index.js';

export const MEAN = SHAPES_MEAN;
export const STD = SHAPES_STD;

/** A pool of images `[N, S, S, 3]`, normalised with {@link MEAN} / {@link STD}. */
export interface ImagePool {
  name: string;
  images: tf.Tensor4D;
}

/** `n` images of the synthetic shapes set (its unlabelled use: pretraining). */
export function shapesPool(imgSize: number, n: number, seed: number): ImagePool {
  const ds = syntheticShapes({ imageSize: imgSize, seed });
  const { images, labels } = ds.batch(Array.from({ length: n }, (_, i) => i));
  labels.dispose();
  return { name: `synthetic shapes (${n} images)`, images };
}

/** The eval transform of the lab's geometry: shorter side resized to S, centre crop, normalised. */
export function labTransform(imgSize: number): (image: tf.Tensor3D) => tf.Tensor3D {
  const cfg: DataConfig = {
    inputSize: [3, imgSize, imgSize],
    interpolation: 'bilinear',
    mean: MEAN,
    std: STD,
    cropPct: 1,
    cropMode: 'center',
  };
  return createTransform(cfg);
}

/** Decode image files in the page (createImageBitmap) and bring them to the lab's geometry. */
export async function filesPool(files: File[], imgSize: number): Promise<ImagePool> {
  const transform = labTransform(imgSize);
  const out: tf.Tensor3D[] = [];
  for (const f of files) {
    if (!f.type.startsWith('image/')) continue;
    const full = await createImageBitmap(f);
    // a cheap first reduction of big photos (the exact resize to S follows in the transform)
    const k = Math.min(1, (4 * imgSize) / Math.min(full.width, full.height));
    const bmp =
      k < 1
        ? await createImageBitmap(full, {
            resizeWidth: Math.round(full.width * k),
            resizeHeight: Math.round(full.height * k),
            resizeQuality: 'high',
          })
        : full;
    const px = tf.browser.fromPixels(bmp);
    out.push(transform(px));
    px.dispose();
    bmp.close();
    if (bmp !== full) full.close();
  }
  if (out.length === 0) throw new Error('none of the dropped files is an image');
  const images = tf.stack(out) as tf.Tensor4D;
  tf.dispose(out);
  return { name: `your images (${images.shape[0]})`, images };
}

/** A batch of `size` images drawn at random (without replacement when the pool is big enough, random flips). */
export function drawBatch(pool: ImagePool, size: number, rng: SeededRandom): tf.Tensor4D {
  const n = pool.images.shape[0];
  const idx =
    n >= size ? Array.from(rng.permutation(n).subarray(0, size)) : Array.from({ length: size }, () => Math.floor(rng.uniform() * n));
  const flip = idx.map(() => rng.uniform() < 0.5);
  return tf.tidy(() => {
    const x = tf.gather(pool.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D;
    if (!flip.some(Boolean)) return x;
    const f = tf.tensor1d(flip.map(Number)).reshape([size, 1, 1, 1]);
    return tf.add(tf.mul(tf.reverse(x, 2), f), tf.mul(x, tf.sub(1, f))) as tf.Tensor4D;
  });
}
