import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { samplesToRgb } from './rgbSamples.js';

/** What {@link readImage} accepts: a file path (Node), the encoded bytes, or a Blob. */
export type ImageSource = string | Uint8Array | ArrayBuffer | Blob;

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** A minimal view of the `sharp` module (an optional dependency: libvips with libjpeg-turbo / mozjpeg, libpng). */
type SharpFn = (
  input: Uint8Array,
  opts: Record<string, unknown>,
) => {
  raw(): {
    toBuffer(o: {
      resolveWithObject: true;
    }): Promise<{ data: Uint8Array; info: { width: number; height: number; channels: number; depth?: string } }>;
  };
};

let sharpPromise: Promise<SharpFn> | null = null;

async function loadSharp(): Promise<SharpFn> {
  if (!sharpPromise) {
    const name = 'sharp';
    sharpPromise = import(/* @vite-ignore */ name).then(
      (m) => (m.default ?? m) as SharpFn,
      () => {
        sharpPromise = null;
        throw new VisBackbonesError(
          'readImage in Node decodes with the optional dependency sharp, which is not installed: ' +
            'npm install sharp (prebuilt binaries for Linux, macOS, Windows)',
        );
      },
    );
  }
  return sharpPromise;
}

function sniff(bytes: Uint8Array): string {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && String.fromCharCode(...bytes.subarray(8, 12)) === 'WEBP') return 'webp';
  if (bytes.length >= 6 && String.fromCharCode(...bytes.subarray(0, 3)) === 'GIF') return 'gif';
  return 'unknown';
}

async function bytesOf(source: ImageSource): Promise<{ bytes: Uint8Array; label: string }> {
  if (typeof source === 'string') {
    check(isNode, () => `readImage('${source}'): paths are read in Node only; in a browser pass the bytes or a Blob`);
    const { readFile } = await import('node:fs/promises');
    try {
      return { bytes: new Uint8Array(await readFile(source)), label: source };
    } catch (e) {
      throw new VisBackbonesError(`readImage: cannot read '${source}': ${(e as Error).message}`);
    }
  }
  if (source instanceof Uint8Array) return { bytes: source, label: `${source.length} bytes` };
  if (source instanceof ArrayBuffer) return { bytes: new Uint8Array(source), label: `${source.byteLength} bytes` };
  if (typeof Blob !== 'undefined' && source instanceof Blob)
    return { bytes: new Uint8Array(await source.arrayBuffer()), label: `a ${source.size}-byte Blob` };
  throw new VisBackbonesError(`readImage: expected a path, Uint8Array, ArrayBuffer or Blob, got ${Object.prototype.toString.call(source)}`);
}

async function decodeBrowser(bytes: Uint8Array, label: string): Promise<tf.Tensor3D> {
  check(typeof createImageBitmap === 'function', () => 'readImage: no image decoder here (neither Node with sharp nor createImageBitmap)');
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as BlobPart]), {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      imageOrientation: 'none' as ImageOrientation,
    });
  } catch (e) {
    throw new VisBackbonesError(`readImage: cannot decode ${label} (${(e as Error).message})`);
  }
  try {
    return tf.browser.fromPixels(bitmap, 3);
  } finally {
    bitmap.close();
  }
}

/**
 * Decode an image to `[H, W, 3]` int32 RGB exactly as PIL's `Image.open(f).convert('RGB')` does (how
 * timm reads images): grayscale replicated, alpha dropped (not composited), palettes expanded, ICC
 * profiles and EXIF orientation ignored. Node decodes with `sharp` (libvips: libjpeg-turbo-compatible
 * JPEG, libpng): identical arrays to Pillow 9.4 on every PNG and JPEG of the reference cases. In a
 * browser `createImageBitmap(blob, { colorSpaceConversion: 'none' })` + `tf.browser.fromPixels`: as exact
 * as the browser's decoder (not guaranteed).
 */
export async function readImage(source: ImageSource): Promise<tf.Tensor3D> {
  const { bytes, label } = await bytesOf(source);
  check(bytes.length > 0, () => `readImage: ${label} is empty`);
  if (!isNode) return decodeBrowser(bytes, label);
  const sharp = await loadSharp();
  let decoded: Awaited<ReturnType<ReturnType<ReturnType<SharpFn>['raw']>['toBuffer']>>;
  try {
    decoded = await sharp(bytes, { ignoreIcc: true, autoOrient: false, failOn: 'error', limitInputPixels: false })
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    const kind = sniff(bytes);
    throw new VisBackbonesError(
      `readImage: cannot decode ${label} (${kind === 'unknown' ? 'not a PNG / JPEG / WebP / GIF file' : kind}: ${(e as Error).message})`,
    );
  }
  const { data, info } = decoded;
  const rgb = samplesToRgb(data, info.width, info.height, info.channels, info.depth, new Int32Array(info.width * info.height * 3));
  return tf.tensor3d(rgb, [info.height, info.width, 3], 'int32');
}
