/**
 * `npx tsx examples/realImages.ts [--epochs 30] [--out out/real-images] [--photos DIR]`
 *
 * The real-image example of docs/guides/real-images.md: builds a small classification set from the
 * sample photographs of scikit-image (Debian: `apt-get install python3-skimage`, files under
 * /usr/lib/python3/dist-packages/skimage/data; or `--photos DIR` / `$SKIMAGE_DATA`), fine-tunes a small
 * ConvNeXt V2 on it from scratch with `visbackbones finetune`, and copies the learning curve and a picture
 * of the data next to the guide (docs/guides/real-images-curve.png, real-images-data.png).
 *
 * The set: one class per photograph; every image is a square crop (22-32% of the shorter side, resized
 * to 96 px, flipped half the time). Training crops come from the left two thirds of each photograph,
 * validation crops from the right third only: the held-out images share no pixel with the training ones.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import { runCli } from '../src/cli/main.js';
import { cropU8, DataRng, encodePng, hflipU8, imageGrid, pilResize, readImage, textImage, U8Image } from 'visbackbones';

/**
 * The photographs (file in scikit-image's data folder, class name), all public domain or CC0 as
 * scikit-image's `skimage.data` docstrings state: astronaut (NASA), brick / grass / gravel (CC0Textures),
 * chelsea and coffee (CC0 by the photographers), hubble_deep_field (NASA), rocket (SpaceX, public domain).
 */
export const PHOTOS: [string, string][] = [
  ['astronaut.png', 'astronaut'],
  ['brick.png', 'brick'],
  ['chelsea.png', 'chelsea'],
  ['coffee.png', 'coffee'],
  ['grass.png', 'grass'],
  ['gravel.png', 'gravel'],
  ['hubble_deep_field.jpg', 'hubble'],
  ['rocket.jpg', 'rocket'],
];

const SEARCH = [process.env.SKIMAGE_DATA, '/usr/lib/python3/dist-packages/skimage/data', '/usr/share/scikit-image/data'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      epochs: { type: 'string', default: '30' },
      out: { type: 'string', default: 'out/real-images' },
      photos: { type: 'string' },
      train: { type: 'string', default: '40' },
      val: { type: 'string', default: '12' },
      seed: { type: 'string', default: '0' },
      'data-only': { type: 'boolean', default: false },
    },
  });
  const dir = [values.photos, ...SEARCH].find((d) => d && existsSync(join(d, PHOTOS[0][0])));
  if (!dir) {
    console.error(`scikit-image's sample photographs not found (looked in ${SEARCH.filter(Boolean).join(', ')}):
  apt-get install python3-skimage   (Debian / Ubuntu), or pass --photos DIR`);
    process.exit(1);
  }
  await tf.setBackend('wasm');
  const out = values.out!;
  const data = join(out, 'data');
  rmSync(out, { recursive: true, force: true });
  const rng = new DataRng(Number(values.seed));
  const nTrain = Number(values.train);
  const nVal = Number(values.val);
  const samples: U8Image[][] = [];
  for (const [file, cls] of PHOTOS) {
    const t = await readImage(join(dir, file));
    const [H, W] = t.shape;
    const photo: U8Image = { data: Uint8Array.from(t.dataSync()), height: H, width: W, channels: 3 };
    t.dispose();
    const split = Math.floor((2 * W) / 3);
    const row: U8Image[] = [];
    for (const [part, count] of [
      ['train', nTrain],
      ['val', nVal],
    ] as const) {
      mkdirSync(join(data, part, cls), { recursive: true });
      for (let i = 0; i < count; i++) {
        const s = Math.round(rng.uniform(0.22, 0.32) * Math.min(H, W));
        const [x0, x1] = part === 'train' ? [0, split - s] : [split, W - s];
        let crop = cropU8(photo, rng.randint(0, H - s), rng.randint(x0, x1), s, s);
        if (rng.random() < 0.5) crop = hflipU8(crop);
        const img: U8Image = { data: pilResize(crop.data, s, s, 3, 96, 96, 'bicubic'), height: 96, width: 96, channels: 3 };
        writeFileSync(join(data, part, cls, `${i + 1}.png`), encodePng(img.data, 96, 96, { channels: 3, deflate: (b) => deflateSync(b) }));
        if ((part === 'train' && i < 3) || (part === 'val' && i < 2))
          row.push({ data: pilResize(img.data, 96, 96, 3, 48, 48, 'bicubic'), height: 48, width: 48, channels: 3 });
      }
    }
    samples.push(row);
  }
  // the data: per class 3 training and 2 validation crops
  const toRgb = (im: U8Image) => ({ width: im.width, height: im.height, data: Float32Array.from(im.data, (v) => v / 255) });
  const grid = imageGrid(
    samples.map((row, c) => [
      textImage(PHOTOS[c][1], { width: 66, height: 48 }),
      ...row.slice(0, 3).map(toRgb),
      textImage('val:', { width: 30, height: 48, align: 'right' }),
      ...row.slice(3).map(toRgb),
    ]),
    { pad: 3 },
  );
  mkdirSync('docs/guides', { recursive: true });
  writeFileSync(
    'docs/guides/real-images-data.png',
    encodePng(grid.pixels, grid.width, grid.height, { channels: 3, deflate: (b) => deflateSync(b) }),
  );
  if (values['data-only']) return;

  const args = [
    'finetune',
    '--model',
    'convnextv2_atto',
    '--config',
    JSON.stringify({ dims: [24, 48, 96, 192], depths: [1, 1, 2, 1] }),
    '--data',
    join(data, 'train'),
    '--val-data',
    join(data, 'val'),
    '--img-size',
    '64',
    '--epochs',
    values.epochs!,
    '--batch-size',
    '32',
    '--lr',
    '2e-3',
    '--seed',
    values.seed!,
    '--out',
    join(out, 'model'),
  ];
  console.log(`visbackbones ${args.map((a) => (a.startsWith('{') ? `'${a}'` : a)).join(' ')}`);
  const t0 = process.cpuUsage();
  const code = await runCli(args, { out: (l) => console.log(l), err: (l) => console.error(l) });
  const cpu = process.cpuUsage(t0);
  if (code) process.exit(code);
  console.log(`CPU time ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s`);
  copyFileSync(join(out, 'model', 'curve.png'), 'docs/guides/real-images-curve.png');
  const state = JSON.parse(readFileSync(join(out, 'model', 'trainer.json'), 'utf8')) as {
    history: { epoch: number; trainLoss: number; valAccuracy: number }[];
  };
  console.log('epoch | train loss | val accuracy');
  for (const h of state.history) console.log(`${h.epoch} | ${h.trainLoss.toFixed(3)} | ${(100 * h.valAccuracy).toFixed(1)}%`);
}

await main();
