import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { imagenetLabels } from '../../src/data/labels.js';
import { getPretrainedCfg } from '../../src/data/pretrainedCfgs.js';
import { readImage } from '../../src/data/readImage.js';
import { saveCheckpointDir } from '../../src/hub/checkpointDir.js';
import { createModel, getFamily } from '../../src/models/registry.js';
import { classify } from '../../src/tasks/classify.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { fakeHub, FakeHub } from '../hub/hubServer.js';
import { useBackend } from '../helpers/backends.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err: err.join('\n') };
}

const IMAGES = [join(FIXTURES_DIR, 'eval_transform_chelsea', 'chelsea.jpg'), join(FIXTURES_DIR, 'eval_transform_coffee', 'coffee.png')];

describe('visbackbones predict', () => {
  let tmp: string;
  let hub: FakeHub;
  const name = 'vit_tiny_patch16_224.augreg_in21k_ft_in1k';
  let expected: { label: string; probability: number }[][];
  const env = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE };
  beforeAll(async () => {
    await useBackend('wasm');
    tmp = mkdtempSync(join(tmpdir(), 'vb-predict-'));
    // a random-weight checkpoint of the tag, served in the hub's layout
    const model = createModel('vit_tiny_patch16_224');
    const sd = model.stateDict();
    const bytes = writeSafetensors(sd);
    tf.dispose(Object.values(sd));
    hub = await fakeHub([{ repo: `timm/${name}`, path: 'model.safetensors', bytes, commit: 'c'.repeat(40), lastCommit: 'd'.repeat(40) }]);
    // what the library computes for the same model: transform + softmax top-5 with ImageNet names
    (model as unknown as { pretrainedCfg: unknown }).pretrainedCfg = getPretrainedCfg(name);
    expected = [];
    for (const p of IMAGES) {
      const img = await readImage(p);
      expected.push(...(await classify(model, [img], { topk: 5, dataConfig: resolveDataConfig(name) })));
      img.dispose();
    }
    model.dispose();
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = join(tmp, 'cache');
  });
  afterAll(async () => {
    await hub?.close();
    for (const [k, v] of Object.entries(env))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    rmSync(tmp, { recursive: true, force: true });
  });

  const parse = (line: string) => {
    const [path, ...rest] = line.split(' | ');
    return {
      path,
      top: rest.map((r) => ({ label: r.slice(0, r.lastIndexOf(' ')), probability: Number(r.slice(r.lastIndexOf(' ') + 1)) })),
    };
  };

  it('prints the top-5 ImageNet labels of each image (weights through the cache)', async () => {
    const r = await cli('predict', name, ...IMAGES, '--no-progress');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(2);
    const names = imagenetLabels();
    r.out.forEach((line, i) => {
      const p = parse(line);
      expect(p.path).toBe(IMAGES[i]);
      expect(p.top.map((t) => t.label)).toEqual(expected[i].map((t) => t.label));
      for (const t of p.top) expect(names).toContain(t.label);
      p.top.forEach((t, k) => expect(Math.abs(t.probability - expected[i][k].probability)).toBeLessThan(1e-4));
    });
    // second run offline: from the cache only
    await hub.close();
    const again = await cli('predict', name, IMAGES[0], '--offline', '--topk', '3', '--json');
    expect(again.code).toBe(0);
    const j = JSON.parse(again.out[0]);
    expect(j.top.map((t: { label: string }) => t.label)).toEqual(expected[0].slice(0, 3).map((t) => t.label));
  });

  it('a checkpoint folder predicts with its class names', async () => {
    const fam = getFamily('vit');
    const model = fam.tiny(32, { numClasses: 3 });
    const dir = join(tmp, 'ckpt');
    saveCheckpointDir(dir, model, { classNames: ['cat', 'coffee', 'other'], dataConfig: resolveDataConfig({}, { imgSize: 32 }) });
    model.dispose();
    const r = await cli('predict', dir, IMAGES[1], '--topk', '2');
    expect(r.code, r.err).toBe(0);
    const p = parse(r.out[0]);
    expect(p.top.length).toBe(2);
    for (const t of p.top) expect(['cat', 'coffee', 'other']).toContain(t.label);
  });

  it('usage errors', async () => {
    expect((await cli('predict')).code).toBe(2);
    expect((await cli('predict', name)).code).toBe(2);
    const r = await cli('predict', 'vit_tiny_patch16_224.nope', IMAGES[0]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/augreg_in21k_ft_in1k/);
    expect((await cli('predict', name, '/no/such.png')).err).toMatch(/image not found: \/no\/such.png/);
  });
});
