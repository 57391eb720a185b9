/** The models (and input sizes) of the WebGPU bench, the same as `npm run bench`'s forward suites. */
export const BENCH_MODELS: ReadonlyArray<{ name: string; size: number }> = [
  { name: 'swinv2_tiny_window8_256', size: 256 },
  { name: 'convnextv2_atto', size: 224 },
  { name: 'vit_small_patch16_224', size: 224 },
];
