import { getFamily, getModelEntry } from '../models/registry.js';

/**
 * Split `--img-size` out of the model overrides: it always sets the data size, and the model's
 * `imgSize` only for families whose config has one (ConvNeXt has none: any size works).
 */
export function splitImgSize(arch: string, overrides: Record<string, unknown>): { model: Record<string, unknown>; imgSize?: number } {
  const { imgSize, ...rest } = overrides;
  if (imgSize === undefined) return { model: rest };
  const entry = getModelEntry(arch);
  const takes = 'imgSize' in entry.config || 'imgSize' in getFamily(entry.family).tinyConfig(64);
  return { model: takes ? { ...rest, imgSize } : rest, imgSize: Number(imgSize) };
}
