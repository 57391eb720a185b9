import * as tf from '@tensorflow/tfjs';

/**
 * Swin's cyclic shift + window partition, and window merge + shift back, each as one copy on a
 * backend where our kernel is registered (webgpu after `registerWebgpuKernels()`), instead of four
 * slices, two concats and a transpose. Elsewhere the functions return null and the caller composes
 * `roll2d` and `windowPartition` / `windowReverse` (src/layers/windows.ts). Each is the other's gradient.
 */
export const WINDOW_PARTITION_KERNEL = 'VisBackbonesWindowPartition';
export const WINDOW_REVERSE_KERNEL = 'VisBackbonesWindowReverse';

function available(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** `windowPartition(roll2d(x, -sh, -sw), wh, ww)`: `[B, H, W, C]` -> `[B * nW, wh * ww, C]`, or null where there is no kernel. */
export function fusedWindowPartition(x: tf.Tensor, wh: number, ww: number, sh: number, sw: number): tf.Tensor3D | null {
  if (x.rank !== 4 || x.dtype !== 'float32' || !available(WINDOW_PARTITION_KERNEL)) return null;
  const [, h, w] = x.shape;
  if (h % wh !== 0 || w % ww !== 0) return null;
  return tf.engine().runKernel(WINDOW_PARTITION_KERNEL, { x }, { wh, ww, sh: mod(sh, h), sw: mod(sw, w) }) as tf.Tensor3D;
}

/** `roll2d(windowReverse(windows, wh, ww, h, w), sh, sw)`: `[B * nW, wh * ww, C]` -> `[B, H, W, C]`, or null where there is no kernel. */
export function fusedWindowReverse(
  windows: tf.Tensor,
  wh: number,
  ww: number,
  h: number,
  w: number,
  sh: number,
  sw: number,
): tf.Tensor4D | null {
  if (windows.rank !== 3 || windows.dtype !== 'float32' || !available(WINDOW_REVERSE_KERNEL)) return null;
  if (h % wh !== 0 || w % ww !== 0 || windows.shape[1] !== wh * ww || (windows.shape[0] * wh * ww) % (h * w) !== 0) return null;
  return tf.engine().runKernel(WINDOW_REVERSE_KERNEL, { x: windows }, { wh, ww, h, w, sh: mod(sh, h), sw: mod(sw, w) }) as tf.Tensor4D;
}

let registered = false;

/** Register the gradients of the two copies (each other's inverse; idempotent). */
export function registerFusedWindowGradients(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({
    kernelName: WINDOW_PARTITION_KERNEL,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { wh, ww, sh, sw } = attrs as unknown as { wh: number; ww: number; sh: number; sw: number };
      return {
        x: () =>
          tf
            .engine()
            .runKernel(
              WINDOW_REVERSE_KERNEL,
              { x: dy as tf.Tensor },
              { wh, ww, h: x.shape[1] as number, w: x.shape[2] as number, sh, sw },
            ) as tf.Tensor,
      };
    },
  });
  tf.registerGradient({
    kernelName: WINDOW_REVERSE_KERNEL,
    gradFunc: (dy, _saved, attrs) => {
      const { wh, ww, sh, sw } = attrs as unknown as { wh: number; ww: number; sh: number; sw: number };
      return { x: () => tf.engine().runKernel(WINDOW_PARTITION_KERNEL, { x: dy as tf.Tensor }, { wh, ww, sh, sw }) as tf.Tensor };
    },
  });
}
