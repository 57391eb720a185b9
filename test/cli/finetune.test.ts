import * as tf from '@tensorflow/tfjs';
import { deflateSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepProgress } from '../../src/cli/finetune.js';
import { runCli } from '../../src/cli/main.js';
import { imageFolder, imageLoader } from '../../src/data/imageFolder.js';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { readImage } from '../../src/data/readImage.js';
import { DataRng } from '../../src/data/rng.js';
import { createTransform } from '../../src/data/transforms.js';
import { createPretrainedModel } from '../../src/hub/createPretrained.js';
import { lineChart, niceTicks } from '../../src/viz/lineChart.js';
import { encodePng } from '../../src/viz/png.js';
import { useBackend } from '../helpers/backends.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

const CLASSES = ['blue', 'green', 'red'];
const TINY_VIT = JSON.stringify({ patchSize: 8, embedDim: 16, depth: 1, numHeads: 2 });

/** A 40x40 PNG of class `c`: a noisy texture whose dominant channel is the class, random brightness and blotches. */
function classImage(c: number, rng: DataRng): Uint8Array {
  const w = 40;
  const px = new Uint8Array(w * w * 3);
  const ch = [2, 1, 0][c];
  const bright = rng.uniform(0.5, 1);
  const bx = rng.randint(0, w - 1);
  const by = rng.randint(0, w - 1);
  for (let y = 0; y < w; y++)
    for (let x = 0; x < w; x++) {
      const blotch = (x - bx) ** 2 + (y - by) ** 2 < 64 ? 0.5 : 1;
      for (let k = 0; k < 3; k++) {
        const base = k === ch ? 200 * bright * blotch : 60 * rng.random();
        px[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(base + 30 * (rng.random() - 0.5))));
      }
    }
  return encodePng(px, w, w, { channels: 3, deflate: (b) => deflateSync(b) });
}

function writeClasses(dir: string, perClass: number, seed: number): void {
  const rng = new DataRng(seed);
  CLASSES.forEach((name, c) => {
    mkdirSync(join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) writeFileSync(join(dir, name, `img${i + 1}.png`), classImage(c, rng));
  });
}

const finetuneArgs = (data: string, out: string, ...more: string[]) => [
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
  TINY_VIT,
  '--batch-size',
  '8',
  '--val-split',
  '0.25',
  '--lr',
  '3e-3',
  ...more,
];

describe('image folders and visbackbones finetune / pretrain', () => {
  let tmp: string;
  let data: string;
  const broken = () => join(data, 'green', 'broken.jpg');
  beforeAll(async () => {
    await useBackend('wasm');
    tmp = mkdtempSync(join(tmpdir(), 'vb-ft-'));
    data = join(tmp, 'data');
    writeClasses(data, 16, 1); // 48 images in 3 classes
    writeFileSync(broken(), 'not an image');
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the progress line shows steps, rate and ETA', () => {
    expect(stepProgress('epoch 2/10', 6, 24, 3, 12)).toBe('epoch 2/10 [==>         ]  6/24  2.00 steps/s  ETA 9s');
    expect(stepProgress('epoch 1/1', 0, 5, 0, 4)).toBe('epoch 1/1 [    ] 0/5  0.00 steps/s  ETA ?');
  });

  it('curve axes use 1-2-5 ticks; a chart draws its series colour', () => {
    expect(niceTicks(0, 1, 5).map((v) => Number(v.toFixed(9)))).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 30, 6)).toEqual([5, 10, 15, 20, 25, 30]);
    const c = lineChart(
      [
        {
          name: 'a',
          points: [
            [0, 0],
            [1, 1],
          ],
          color: [1, 0, 0],
        },
      ],
      { width: 200, height: 100 },
    );
    expect([c.width, c.height]).toEqual([200, 100]);
    let red = 0;
    for (let i = 0; i < c.data.length; i += 3) if (c.data[i] === 1 && c.data[i + 1] === 0 && c.data[i + 2] === 0) red++;
    expect(red).toBeGreaterThan(100); // the line, the markers and the legend swatch
    expect(() => lineChart([{ name: 'a', points: [[0, NaN]] }])).toThrow(/not finite/);
  });

  it('imageFolder lists classes and files in natural order; the loader streams batches', async () => {
    const ds = await imageFolder(data);
    expect(ds.classNames).toEqual(CLASSES);
    expect(ds.samples.length).toBe(49);
    expect(ds.samples[0].path.endsWith(join('blue', 'img1.png'))).toBe(true);
    expect(ds.samples[1].path.endsWith(join('blue', 'img2.png'))).toBe(true); // natural order: img2 before img10
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
    expect(n).toBe(48);
    expect(skipped).toEqual([broken()]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('fine-tunes well above chance, reports the corrupt file by path, writes a checkpoint that predict uses', async () => {
    const out = join(tmp, 'out');
    const r = await cli(...finetuneArgs(data, out, '--epochs', '4'));
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.err.filter((l) => l.startsWith(`skipped ${broken()}: readImage: cannot decode`))).toHaveLength(1);
    expect(r.out[0]).toBe('49 images in 3 classes (blue, green, red): 37 train, 12 val');
    const epochs = r.out.filter((l) => /^epoch \d\/4: train loss/.test(l));
    expect(epochs, r.out.join('\n')).toHaveLength(4);
    const accs = epochs.map((l) => Number(/val accuracy ([\d.]+)%/.exec(l)![1]));
    // chance is 33%: the last epoch classifies the held-out images well above it
    expect(accs[3], r.out.join('\n')).toBeGreaterThanOrEqual(80);
    const state = JSON.parse(readFileSync(join(out, 'trainer.json'), 'utf8'));
    expect(state.epoch).toBe(4);
    expect(state.history.map((h: { valAccuracy: number }) => Math.round(h.valAccuracy * 1000) / 10)).toEqual(accs);
    expect(state.history[3].trainLoss).toBeLessThan(state.history[0].trainLoss);
    expect(state.skipped).toEqual([broken()]);
    const curve = await readImage(join(out, 'curve.png'));
    expect(curve.shape[0]).toBeGreaterThan(200);
    curve.dispose();
    const info = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(info).toMatchObject({ format: 'visbackbones-checkpoint', family: 'vit', numClasses: 3, classNames: CLASSES });
    expect(info.dataConfig.inputSize).toEqual([3, 32, 32]);
    // predict with the checkpoint on new images of each class (not seen in training)
    const fresh = join(tmp, 'fresh');
    writeClasses(fresh, 3, 99);
    const files = CLASSES.flatMap((c) => [1, 2, 3].map((i) => join(fresh, c, `img${i}.png`)));
    const p = await cli('predict', out, ...files, '--topk', '2', '--json');
    expect(p.code, p.err.join('\n')).toBe(0);
    expect(p.out).toHaveLength(9);
    const top1 = p.out.map((l) => JSON.parse(l) as { image: string; top: { label: string; probability: number }[] });
    for (const t of top1) expect(CLASSES).toContain(t.top[0].label);
    const correct = top1.filter((t) => t.image.split('/').at(-2) === t.top[0].label).length;
    expect(correct, p.out.join('\n')).toBeGreaterThanOrEqual(7);
    const plain = await cli('predict', out, files[0], '--topk', '2');
    expect(plain.out[0]).toMatch(/img1\.png \| (blue|green|red) [01]\.\d{4} \| (blue|green|red) [01]\.\d{4}$/);
    // the same folder through createPretrainedModel (what createModel(dir, { pretrained: true }) dispatches to)
    const m = await createPretrainedModel(out);
    expect(m.numClasses).toBe(3);
    expect((m as unknown as { pretrainedCfg: { labelNames: string[] } }).pretrainedCfg.labelNames).toEqual(CLASSES);
    m.dispose();
    // --strict makes the broken file fatal, naming it
    const s = await cli(...finetuneArgs(data, join(tmp, 'o2'), '--strict', '--epochs', '1'));
    expect(s.code).toBe(1);
    expect(s.err.join('\n')).toMatch(/broken\.jpg/);
  }, 120_000);

  it('--resume continues from the last epoch: the same weights as an uninterrupted run', async () => {
    const full = join(tmp, 'full');
    const part = join(tmp, 'part');
    const a = await cli(...finetuneArgs(data, full, '--epochs', '3'));
    expect(a.code, a.err.join('\n')).toBe(0);
    // interrupted after 2 of 3 epochs (4 steps per epoch), then resumed
    const b1 = await cli(...finetuneArgs(data, part, '--epochs', '3', '--max-steps', '8'));
    expect(b1.code, b1.err.join('\n')).toBe(0);
    expect(JSON.parse(readFileSync(join(part, 'trainer.json'), 'utf8')).epoch).toBe(2);
    const b2 = await cli(...finetuneArgs(data, part, '--epochs', '3', '--resume'));
    expect(b2.code, b2.err.join('\n')).toBe(0);
    expect(b2.out).toContain(`resumed from ${part} after epoch 2 (step 8)`);
    expect(b2.out.filter((l) => /^epoch \d\/\d: /.test(l))).toEqual([expect.stringMatching(/^epoch 3\/3: train loss/)]);
    expect(b2.err).toEqual([]); // the broken file was reported in the first part, not again
    const sa = JSON.parse(readFileSync(join(full, 'trainer.json'), 'utf8'));
    const sb = JSON.parse(readFileSync(join(part, 'trainer.json'), 'utf8'));
    expect(sb.history).toEqual(sa.history);
    expect(Buffer.compare(readFileSync(join(full, 'model.safetensors')), readFileSync(join(part, 'model.safetensors')))).toBe(0);
    // a mismatching resume is refused with the reason
    const bad = await cli(...finetuneArgs(data, part, '--epochs', '4', '--resume', '--seed', '5'));
    expect(bad.code).toBe(1);
    expect(bad.err.join('\n')).toMatch(/--resume: .*seed 0, this run has 5/);
  }, 120_000);

  it('pretrain: SimMIM / FCMAE / MixMIM log and plot the validation loss and write reconstructions every N steps', async () => {
    for (const [method, model, config, methodConfig] of [
      ['simmim', 'swin_tiny_patch4_window7_224', { embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2 }, {}],
      ['fcmae', 'convnextv2_atto', { dims: [8, 16, 16, 16], depths: [1, 1, 1, 1] }, { decoderDim: 16 }],
      [
        'mixmim',
        'swin_tiny_patch4_window7_224',
        { embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2 },
        { decoderDim: 16, decoderDepth: 1, decoderNumHeads: 1 },
      ],
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
        '--method-config',
        JSON.stringify(methodConfig),
        '--steps',
        '4',
        '--eval-every',
        '2',
        '--batch-size',
        '4',
        '--val-split',
        '0.2',
        '--lr',
        '1e-3',
      );
      expect(r.code, r.err.join('\n')).toBe(0);
      expect(r.out.at(-1)).toMatch(new RegExp(`^${method}: 4 steps, loss \\d.*, val loss \\d`));
      expect(r.out.filter((l) => /^step \d val loss [\d.]+$/.test(l)).map((l) => l.split(' ')[1])).toEqual(['0', '2', '4']);
      const losses = JSON.parse(readFileSync(join(out, 'losses.json'), 'utf8'));
      expect(losses.train.map((p: number[]) => p[0])).toEqual([1, 2, 3, 4]);
      expect(losses.val.map((p: number[]) => p[0])).toEqual([0, 2, 4]);
      for (const [, v] of losses.val) expect(Number.isFinite(v) && v > 0).toBe(true);
      expect(readdirSync(join(out, 'recon')).sort()).toEqual(['step_000000.png', 'step_000002.png', 'step_000004.png']);
      // 4 rows (validation images) x 3 columns (original, masked, reconstruction), 64 px cells drawn at x2
      const rec = await readImage(join(out, 'recon', 'step_000004.png'));
      expect(rec.shape).toEqual([2 + 4 * (128 + 2), 2 + 3 * (128 + 2), 3]);
      rec.dispose();
      const plot = await readImage(join(out, 'loss.png'));
      expect(plot.shape[1]).toBeGreaterThan(400);
      plot.dispose();
      expect(readFileSync(join(out, 'model.safetensors')).length).toBeGreaterThan(1000);
    }
    const bad = await cli('pretrain', '--method', 'mae', '--model', 'vit_tiny_patch16_224', '--data', data, '--out', tmp);
    expect(bad.code).toBe(2);
  }, 180_000);

  it('pretrain: the reconstruction is the input where visible and the prediction where masked', async () => {
    // checked on SimMIM directly: the composite keeps visible pixels exactly
    const { maskedReconstruction } = await import('../../src/cli/pretrainViz.js');
    const { simmim } = await import('../../src/pretrain/simmim.js');
    const { createModel } = await import('../../src/models/registry.js');
    const m = simmim(
      createModel('swin_tiny_patch4_window7_224', {
        imgSize: 32,
        embedDim: 8,
        depths: [1, 1],
        numHeads: [1, 2],
        windowSize: 2,
        numClasses: 0,
      }),
      { maskPatchSize: 8 },
    );
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1) as tf.Tensor4D;
    const mask = m.generateMask(2, 32, 3);
    const full = m.forward(x, { mask }); // (the first forward builds the model's cached buffers)
    const before = tf.memory().numTensors;
    const r = maskedReconstruction('simmim', m, x, mask)!;
    expect(tf.memory().numTensors).toBe(before + 2);
    const pm = tf.image.resizeNearestNeighbor(mask.toFloat().expandDims(-1) as tf.Tensor4D, [32, 32]);
    const expectRec = tf.tidy(() => tf.where(pm.cast('bool').tile([1, 1, 1, 3]), full, x));
    expect(tf.max(tf.abs(tf.sub(r.reconstruction, expectRec))).dataSync()[0]).toBe(0);
    expect(tf.max(tf.abs(tf.mul(r.masked, pm))).dataSync()[0]).toBe(0);
    // the masked view keeps the visible pixels
    expect(tf.max(tf.abs(tf.sub(tf.mul(x, tf.sub(1, pm)), r.masked))).dataSync()[0]).toBe(0);
    expect(maskedReconstruction('fastmim', m, x, mask)).toBeNull();
    tf.dispose([x, mask, r.masked, r.reconstruction, full, pm, expectRec]);
    m.dispose();
    // FCMAE and MixMIM (per-patch normalised targets mapped back): visible pixels are the input's
    const { fcmae } = await import('../../src/pretrain/fcmae.js');
    const { mixmim } = await import('../../src/pretrain/mixmim.js');
    const { disposeMixMIMMask } = await import('../../src/pretrain/mixmimMask.js');
    const x64 = tf.randomUniform([2, 64, 64, 3], -1, 1) as tf.Tensor4D;
    const fc = fcmae(createModel('convnextv2_atto', { dims: [8, 16, 16, 16], depths: [1, 1, 1, 1], featuresOnly: true }) as never, {
      decoderDim: 16,
    });
    const fm = fc.generateMask(2, 64, 1);
    const rf = maskedReconstruction('fcmae', fc, x64, fm)!;
    const keepF = tf.sub(1, tf.image.resizeNearestNeighbor(fm.toFloat().expandDims(-1) as tf.Tensor4D, [64, 64]));
    expect(tf.max(tf.abs(tf.mul(tf.sub(rf.reconstruction, x64), keepF))).dataSync()[0]).toBeLessThan(1e-6);
    expect(tf.max(tf.abs(tf.sub(rf.reconstruction, x64))).dataSync()[0]).toBeGreaterThan(0.1); // masked: predicted
    const mx = mixmim(
      createModel('swin_tiny_patch4_window7_224', {
        imgSize: 64,
        embedDim: 8,
        depths: [1, 1, 1, 1],
        numHeads: [1, 1, 2, 2],
        windowSize: 2,
        numClasses: 0,
      }) as never,
      { decoderDim: 16, decoderDepth: 1, decoderNumHeads: 1 },
    );
    const mm = mx.generateMask(2);
    const rm = maskedReconstruction('mixmim', mx, x64, mm)!;
    const pmM = tf.image.resizeNearestNeighbor(mm.mask.toFloat().expandDims(0).expandDims(-1) as tf.Tensor4D, [64, 64]);
    expect(tf.max(tf.abs(tf.mul(tf.sub(rm.reconstruction, x64), tf.sub(1, pmM)))).dataSync()[0]).toBeLessThan(1e-6);
    // the masked view is the mixed image: the partner (image B-1-i) where the mask is 1
    const partner = tf.reverse(x64, 0);
    expect(tf.max(tf.abs(tf.mul(tf.sub(rm.masked, partner), pmM))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([x64, fm, rf.masked, rf.reconstruction, keepF, rm.masked, rm.reconstruction, pmM, partner]);
    disposeMixMIMMask(mm);
    fc.dispose();
    mx.dispose();
  });
});
