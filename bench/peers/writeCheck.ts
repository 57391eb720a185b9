/**
 * `npx tsx bench/peers/writeCheck.ts DIR [model ...]`: for each model (default: the peers suite's three),
 * our randomly initialised weights, each moved by N(0, 0.05) noise, as timm-keyed safetensors (`DIR/<model>.safetensors`), a seeded input
 * (`DIR/<model>.input.f32`, NCHW float32, batch 2) and our logits for it (`DIR/<model>.logits.f32`), on
 * the cpu backend. `export_onnx.py --check DIR` loads the weights into the timm model (or its stand-in)
 * strictly, compares its logits with ours and exports that model to `DIR/<model>.onnx`, so the two sides
 * of the peers suite run the same network with the same weights.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import '../../src/index.js';
import { createModel } from '../../src/models/registry.js';
import { saveSafetensors } from '../../src/weights/saveSafetensors.js';
import { mulberry32 } from '../../src/utils/random.js';

export const PEER_MODELS: Record<string, number> = { vit_small_patch16_224: 224, convnextv2_atto: 224, swinv2_tiny_window8_256: 256 };

async function main(): Promise<void> {
  const [dir, ...names] = process.argv.slice(2);
  if (!dir) throw new Error('usage: tsx bench/peers/writeCheck.ts DIR [model ...]');
  mkdirSync(dir, { recursive: true });
  await tf.setBackend('cpu');
  for (const name of names.length ? names : Object.keys(PEER_MODELS)) {
    const size = PEER_MODELS[name];
    if (!size) throw new Error(`writeCheck: unknown model ${name} (one of ${Object.keys(PEER_MODELS).join(', ')})`);
    const model = createModel(name);
    // timm's init leaves some paths silent (SwinV2's zeroed res-post-norms, ConvNeXt V2's zero GRN): move every
    // parameter off its init so the check exercises each of them
    model.namedParameters().forEach(([, p], i) => {
      const moved = tf.tidy(() => tf.add(p.variable, tf.randomNormal(p.variable.shape, 0, 0.05, 'float32', 100 + i)));
      p.variable.assign(moved);
      moved.dispose();
    });
    writeFileSync(join(dir, `${name}.safetensors`), saveSafetensors(model));
    const rand = mulberry32(5);
    const n = 2 * 3 * size * size;
    const nchw = Float32Array.from({ length: n }, () => rand() * 2 - 1);
    const x = tf.tidy(() => tf.transpose(tf.tensor4d(nchw, [2, 3, size, size]), [0, 2, 3, 1]));
    const logits = model.forwardLogits(x);
    writeFileSync(join(dir, `${name}.input.f32`), Buffer.from(nchw.buffer));
    writeFileSync(join(dir, `${name}.logits.f32`), Buffer.from((logits.dataSync() as Float32Array).buffer));
    console.log(`${name}: weights, input [2, 3, ${size}, ${size}] and logits [${logits.shape.join(', ')}] written to ${dir}`);
    tf.dispose([x, logits]);
    model.dispose();
  }
}

if (process.argv[1]?.endsWith('writeCheck.ts')) await main();
