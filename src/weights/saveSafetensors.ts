import * as tf from '@tensorflow/tfjs';
import type { Module } from '../layers/module.js';
import { writeSafetensors } from './safetensors.js';

/**
 * The model's state dict as safetensors bytes, in the reference's keys and layouts (a file timm loads
 * strictly). The temporary state-dict tensors are disposed, unlike `writeSafetensors(model.stateDict())`,
 * which leaves a full copy of the weights on the backend.
 */
export function saveSafetensors(model: Module, metadata?: Record<string, string>): Uint8Array {
  const sd = model.stateDict();
  try {
    return writeSafetensors(sd, metadata);
  } finally {
    tf.dispose(Object.values(sd));
  }
}

/** Node: write {@link saveSafetensors}' bytes to `path`. */
export async function saveSafetensorsFile(model: Module, path: string, metadata?: Record<string, string>): Promise<void> {
  const bytes = saveSafetensors(model, metadata);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, bytes);
}
