/**
 * Interleaved decoded samples (sharp's raw output) -> `[H, W, 3]` RGB in `out`, as PIL's `convert('RGB')`:
 * grey replicated, alpha dropped without compositing; 16-bit samples keep the high byte (PIL's `RGB;16B`),
 * 16-bit grey is clipped to 255 (PIL's `I;16` -> RGB). Self-contained (no outside names): the decode
 * pool's workers run its source text.
 */
export function samplesToRgb<T extends Uint8Array | Int32Array>(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  depth: string | undefined,
  out: T,
): T {
  const n = width * height;
  const wide = depth === 'ushort';
  const src = wide ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : data;
  const colour = channels >= 3;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      let v = src[i * channels + (colour ? c : 0)];
      if (wide) v = colour ? v >> 8 : Math.min(v, 255);
      out[i * 3 + c] = v;
    }
  }
  return out;
}
