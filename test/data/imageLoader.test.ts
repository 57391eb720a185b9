import * as tf from '@tensorflow/tfjs';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { createDecodePool, DecodePool } from '../../src/data/decodePool.js';
import { imageDataset, imageFolder, imageLoader } from '../../src/data/imageFolder.js';
import { readImage } from '../../src/data/readImage.js';
import { createTransform } from '../../src/data/transforms.js';
import { VisBackbonesError } from '../../src/errors.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';

// the reference photographs (PNG and JPEG, colour and grey) as a two-class folder, plus a broken file
const FILES = readdirSync(FIXTURES_DIR)
  .filter((d) => d.startsWith('eval_transform_'))
  .flatMap((d) =>
    readdirSync(join(FIXTURES_DIR, d))
      .filter((f) => /\.(png|jpe?g)$/.test(f))
      .map((f) => join(FIXTURES_DIR, d, f)),
  )
  .sort();

describe('decode pool (worker threads) and the streaming loader', () => {
  let tmp: string;
  let pool: DecodePool;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    tmp = mkdtempSync(join(tmpdir(), 'vb-loader-'));
    FILES.forEach((f, i) => {
      const dir = join(tmp, i % 2 ? 'b' : 'a');
      mkdirSync(dir, { recursive: true });
      copyFileSync(f, join(dir, `${i}_${f.split('/').pop()}`));
    });
    writeFileSync(join(tmp, 'b', 'zz_broken.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    pool = await createDecodePool({ threads: 2 });
  });
  afterAll(async () => {
    await pool.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('decodes in worker threads, bit-identical to readImage, and names a bad file', async () => {
    expect(FILES.length).toBeGreaterThanOrEqual(10);
    expect(pool.threads).toBe(2);
    const ds = await imageFolder(tmp);
    for (const s of ds.samples.filter((x) => !x.path.endsWith('broken.png'))) {
      const [a, ref] = await Promise.all([pool.decode(s.path), readImage(s.path)]);
      expect(a.threadId).not.toBe(threadId);
      expect([a.height, a.width, 3]).toEqual(ref.shape);
      const r = ref.dataSync();
      let maxDiff = 0;
      for (let i = 0; i < r.length; i++) maxDiff = Math.max(maxDiff, Math.abs(r[i] - a.data[i]));
      expect(maxDiff, s.path).toBe(0);
      ref.dispose();
    }
    const bad = join(tmp, 'b', 'zz_broken.png');
    await expect(pool.decode(bad)).rejects.toThrow(VisBackbonesError);
    await expect(pool.decode(bad)).rejects.toThrow(bad);
    await expect(pool.decode(join(tmp, 'missing.png'))).rejects.toThrow(/missing\.png/);
  });

  it('workers decode while the main thread is blocked (a training step)', async () => {
    const ds = await imageFolder(tmp);
    const paths = ds.samples.slice(0, 6).map((s) => s.path);
    const done: number[] = [];
    const seen = new Set<number>();
    const t0 = Date.now();
    const all = Promise.all(
      paths.map((p) =>
        pool.decode(p).then((r) => {
          done.push(Date.now());
          seen.add(r.threadId);
        }),
      ),
    );
    // a synchronous 1.5 s "step": nothing on this thread can decode meanwhile
    while (Date.now() - t0 < 1500);
    const tBlockEnd = Date.now();
    await all;
    const tAwait = Date.now() - tBlockEnd;
    // the replies were queued while blocked: they arrive at once, not one decode at a time afterwards
    expect(done.length).toBe(6);
    expect(seen.size).toBe(2); // both workers took files
    const s0 = Date.now();
    for (const p of paths) (await readImage(p)).dispose();
    const serial = Date.now() - s0;
    expect(tAwait).toBeLessThan(Math.max(50, serial / 2));
  }, 30_000);

  it('streams shuffled batches through the pool, same batches as without it, bad file reported by path', async () => {
    const ds = await imageFolder(tmp);
    const transform = () => createTransform(resolveDataConfig({}, { imgSize: 32 }), { isTraining: true, seed: 3 });
    const run = async (usePool: boolean) => {
      const errs: string[] = [];
      const out: { x: number[]; y: number[]; paths: string[] }[] = [];
      for await (const b of imageLoader(ds, {
        transform: transform(),
        batchSize: 4,
        shuffle: true,
        seed: 7,
        pool: usePool ? pool : undefined,
        onError: (p) => errs.push(p),
      })) {
        out.push({ x: Array.from(b.x.dataSync()), y: Array.from(b.y.dataSync()), paths: b.paths });
        tf.dispose([b.x, b.y]);
      }
      return { out, errs };
    };
    const before = tf.memory().numTensors;
    const a = await run(true);
    const b = await run(false);
    expect(tf.memory().numTensors).toBe(before);
    expect(a.errs).toEqual([join(tmp, 'b', 'zz_broken.png')]);
    expect(b.errs).toEqual(a.errs);
    expect(a.out.reduce((n, o) => n + o.y.length, 0)).toBe(FILES.length);
    expect(a.out).toEqual(b.out);
    // shuffled: not the listing order
    expect(a.out.flatMap((o) => o.paths)).not.toEqual(ds.samples.map((s) => s.path).filter((p) => !p.endsWith('broken.png')));
    // strict: the broken file is fatal, with its path
    const strict = async () => {
      for await (const x of imageLoader(ds, { transform: transform(), batchSize: 4, pool, strict: true })) tf.dispose([x.x, x.y]);
    };
    await expect(strict()).rejects.toThrow(/zz_broken\.png/);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it('a batched transform (padded batches of mixed sizes) gives the per-image transform batches', async () => {
    const ds = await imageFolder(tmp);
    const cfg = resolveDataConfig({}, { imgSize: 32 });
    const run = async (batched: boolean) => {
      const out: { x: number[]; y: number[]; paths: string[] }[] = [];
      const opts = { isTraining: true as const, seed: 3, reProb: 0.5 };
      const transform = batched ? createTransform(cfg, { ...opts, batched: true }) : createTransform(cfg, opts);
      for await (const b of imageLoader(ds, { transform, batchSize: 4, shuffle: true, seed: 7, pool, onError: () => {} })) {
        expect(b.x.shape).toEqual([b.paths.length, 32, 32, 3]);
        out.push({ x: Array.from(b.x.dataSync()), y: Array.from(b.y.dataSync()), paths: b.paths });
        tf.dispose([b.x, b.y]);
      }
      return out;
    };
    const before = tf.memory().numTensors;
    const a = await run(true);
    expect(a.reduce((n, o) => n + o.y.length, 0)).toBe(FILES.length);
    expect(a).toEqual(await run(false));
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);

  it('without onError a skipped file is a warning naming it, never silent', async () => {
    const ds = await imageFolder(tmp);
    const warned: string[] = [];
    const warn = console.warn;
    console.warn = (m: string) => warned.push(m);
    try {
      const t = createTransform(resolveDataConfig({}, { imgSize: 16 }));
      for await (const b of imageLoader(ds, { transform: t, batchSize: 8, pool })) tf.dispose([b.x, b.y]);
    } finally {
      console.warn = warn;
    }
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^imageLoader: skipped .*zz_broken\.png: readImage: cannot decode/);
  }, 60_000);

  it('plugs into tf.data', async () => {
    const ds = await imageFolder(tmp);
    const t = createTransform(resolveDataConfig({}, { imgSize: 24 }));
    const data = imageDataset(ds, { transform: t, batchSize: 5, pool, onError: () => {} });
    const sizes: number[] = [];
    await data.forEachAsync((b) => {
      expect(b.xs.shape.slice(1)).toEqual([24, 24, 3]);
      sizes.push(b.ys.shape[0]);
      tf.dispose([b.xs, b.ys]);
    });
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(FILES.length);
    expect(sizes[0]).toBe(5);
  }, 60_000);
});
