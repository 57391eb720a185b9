import * as tf from '@tensorflow/tfjs';
import { deflateSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { imageFolder, imageLoader } from '../../src/data/imageFolder.js';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { createTransform } from '../../src/data/transforms.js';
import { createPretrainedModel } from '../../src/hub/createPretrained.js';
import { encodePng } from '../../src/viz/png.js';
import { useBackend } from '../helpers/backends.js';
import { loadFixture } from '../helpers/fixtures.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('image folders and visbackbones finetune', () => {
  let tmp: string;
  let data: string;
  beforeAll(async () => {
    await useBackend('wasm');
    tmp = mkdtempSync(join(tmpdir(), 'vb-ft-'));
    data = join(tmp, 'data');
    // two classes of 48x48 crops of two photos, one undecodable file
    for (const [cls, fixture, key] of [
      ['cat', 'eval_transform_chelsea', 'image_png'],
      ['cup', 'eval_transform_coffee', 'image_png'],
    ] as const) {
      const fx = loadFixture(fixture);
      const img = fx.io[key] as tf.Tensor3D;
      mkdirSync(join(data, cls), { recursive: true });
      for (let i = 0; i < 6; i++) {
        const crop = tf.tidy(() => img.slice([20 * i, 30 * i, 0], [48, 48, 3]).toInt());
        const rgb = new Uint8Array(crop.dataSync());
        crop.dispose();
        writeFileSync(join(data, cls, `img${i + 1}.png`), encodePng(rgb, 48, 48, { channels: 3, deflate: (b) => deflateSync(b) }));
      }
      fx.dispose();
    }
    writeFileSync(join(data, 'cup', 'broken.jpg'), 'not an image');
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('imageFolder lists classes and files in natural order; the loader streams batches', async () => {
    const ds = await imageFolder(data);
    expect(ds.classNames).toEqual(['cat', 'cup']);
    expect(ds.samples.length).toBe(13);
    expect(ds.samples[0].path.endsWith(join('cat', 'img1.png'))).toBe(true);
    const skipped: string[] = [];
    const before = tf.memory().numTensors;
    const t = createTransform(resolveDataConfig({}, { imgSize: 32 }));
    let n = 0;
    for await (const b of imageLoader(ds, { transform: t, batchSize: 5, onError: (p) => skipped.push(p) })) {
      expect(b.x.shape.slice(1)).toEqual([32, 32, 3]);
      expect(b.y.shape[0]).toBe(b.x.shape[0]);
      n += b.x.shape[0];
      tf.dispose([b.x, b.y]);
    }
    expect(n).toBe(12);
    expect(skipped).toEqual([join(data, 'cup', 'broken.jpg')]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('fine-tunes, writes a checkpoint folder that predict reads', async () => {
    const out = join(tmp, 'out');
    const config = JSON.stringify({ patchSize: 8, embedDim: 16, depth: 1, numHeads: 2 });
    const r = await cli(
      'finetune',
      '--model',
      'vit_tiny_patch16_224',
      '--data',
      data,
      '--out',
      out,
      '--img-size',
      '32',
      '--config',
      config,
      '--epochs',
      '3',
      '--batch-size',
      '4',
      '--val-split',
      '0.2',
      '--lr',
      '1e-3',
    );
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.err.some((l) => l.startsWith(`skipped ${join(data, 'cup', 'broken.jpg')}`))).toBe(true);
    expect(r.out[0]).toMatch(/^12 images in 2 classes \(cat, cup\): 10 train, 2 val, 1 skipped/);
    expect(r.out.some((l) => /^val accuracy/.test(l))).toBe(true);
    expect(
      r.out.some((l) => /^trained 6 steps, last loss \d/.test(l)),
      r.out.join('\n'),
    ).toBe(true);
    const info = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(info).toMatchObject({ format: 'visbackbones-checkpoint', family: 'vit', numClasses: 2, classNames: ['cat', 'cup'] });
    expect(info.dataConfig.inputSize).toEqual([3, 32, 32]);
    const p = await cli('predict', out, join(data, 'cat', 'img1.png'), '--topk', '2');
    expect(p.code, p.err.join('\n')).toBe(0);
    expect(p.out[0]).toMatch(/img1\.png \| (cat|cup) [01]\.\d{4} \| (cat|cup) [01]\.\d{4}$/);
    // the same folder through createPretrainedModel (what createModel(dir, { pretrained: true }) dispatches to)
    const m = await createPretrainedModel(out);
    expect(m.numClasses).toBe(2);
    expect((m as unknown as { pretrainedCfg: { labelNames: string[] } }).pretrainedCfg.labelNames).toEqual(['cat', 'cup']);
    m.dispose();
    // --strict makes the broken file fatal
    const s = await cli(
      'finetune',
      '--model',
      'vit_tiny_patch16_224',
      '--data',
      data,
      '--out',
      join(tmp, 'o2'),
      '--img-size',
      '32',
      '--config',
      config,
      '--strict',
    );
    expect(s.code).toBe(1);
    expect(s.err.join('\n')).toMatch(/broken\.jpg/);
  });

  it('pretrain: SimMIM on Swin and FCMAE on ConvNeXt V2 write the backbone', async () => {
    for (const [method, model, config] of [
      ['simmim', 'swin_tiny_patch4_window7_224', { embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2 }],
      ['fcmae', 'convnextv2_atto', { dims: [8, 16, 16, 16], depths: [1, 1, 1, 1] }],
    ] as const) {
      const out = join(tmp, `pre-${method}`);
      const r = await cli(
        'pretrain',
        '--method',
        method,
        '--model',
        model,
        '--data',
        data,
        '--out',
        out,
        '--img-size',
        '64',
        '--config',
        JSON.stringify(config),
        '--steps',
        '3',
        '--batch-size',
        '4',
      );
      expect(r.code, r.err.join('\n')).toBe(0);
      expect(r.out.at(-1)).toMatch(new RegExp(`^${method}: 3 steps, loss \\d`));
      const bytes = readFileSync(join(out, 'model.safetensors'));
      expect(bytes.length).toBeGreaterThan(1000);
    }
    const bad = await cli('pretrain', '--method', 'mae', '--model', 'vit_tiny_patch16_224', '--data', data, '--out', tmp);
    expect(bad.code).toBe(2);
  });
});
