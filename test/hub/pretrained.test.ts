import * as tf from '@tensorflow/tfjs';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPretrainedCfg, TimmPretrainedCfg } from '../../src/data/pretrainedCfgs.js';
import { VisBackbonesError } from '../../src/errors.js';
import { createPretrainedModel } from '../../src/hub/createPretrained.js';
import { downloadPretrained } from '../../src/hub/download.js';
import { pretrainedSource } from '../../src/hub/pretrainedSource.js';
import { progressLine } from '../../src/hub/progress.js';
import '../../src/models/vit/index.js';
import '../../src/hub/index.js'; // registers the weights loader of createModel(name, { pretrained: true })
import { createModel } from '../../src/models/registry.js';
import type { Backbone } from '../../src/models/backbone.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, loadFixture, nchwToNhwc, type Fixture } from '../helpers/fixtures.js';
import { fakeHub, FakeHub } from './hubServer.js';

const COMMIT = 'a'.repeat(40);
const LAST = 'b'.repeat(40);

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(VisBackbonesError);
  return e as Error;
}

describe('pretrainedSource', () => {
  it('hub URLs, CSWin pickles, no weights', () => {
    expect(pretrainedSource('swinv2_tiny_window8_256', { endpoint: 'https://huggingface.co' })).toEqual({
      url: 'https://huggingface.co/timm/swinv2_tiny_window8_256.ms_in1k/resolve/main/model.safetensors',
      format: 'safetensors',
      hfHubId: 'timm/swinv2_tiny_window8_256.ms_in1k',
      filename: 'model.safetensors',
      revision: 'main',
    });
    const c = { ...getPretrainedCfg('vit_small_patch16_224.augreg_in21k'), hfHubId: 'me/repo@v2' };
    expect(pretrainedSource(c, { endpoint: 'http://h/' })?.url).toBe('http://h/me/repo/resolve/v2/model.safetensors');
    expect(pretrainedSource('cswin_tiny_224')).toEqual({
      url: 'https://github.com/microsoft/CSWin-Transformer/releases/download/v0.1.0/cswin_tiny_224.pth',
      format: 'pytorch',
    });
    expect(pretrainedSource('convnextv2_small')).toBeNull();
  });
  it('refuses pickles and tags without weights', async () => {
    expect((await rejection(downloadPretrained('cswin_tiny_224'))).message).toMatch(/PyTorch pickle.*convert it once/);
    expect((await rejection(createPretrainedModel('convnextv2_small'))).message).toMatch(
      /'convnextv2_small.untrained' has no pretrained weights/,
    );
  });
});

for (const backend of BACKENDS) {
  describe(`createModel(name, { pretrained: true }) from a local hub (${backend})`, () => {
    let fx: Fixture;
    let hub: FakeHub;
    let cache: string;
    let cfg: TimmPretrainedCfg;
    let privateCfg: TimmPretrainedCfg;
    const arch = 'vit_tiny_patch16_224';
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('vit_p8_32');
      cache = mkdtempSync(join(tmpdir(), 'vb-hub-'));
      hub = await fakeHub([
        { repo: 'test/vit_p8_32', path: 'model.safetensors', bytes: fx.weightsBytes!, commit: COMMIT, lastCommit: LAST },
        { repo: 'test/private', path: 'model.safetensors', bytes: fx.weightsBytes!, commit: COMMIT, lastCommit: LAST, token: 'hf_sekrit' },
      ]);
      const base = getPretrainedCfg(`${arch}.augreg_in21k_ft_in1k`);
      cfg = { ...base, name: `${arch}.test`, hfHubId: 'test/vit_p8_32', numClasses: 10 };
      privateCfg = { ...cfg, hfHubId: 'test/private' };
    });
    afterAll(async () => {
      fx.dispose();
      await hub?.close();
      rmSync(cache, { recursive: true, force: true });
    });
    const config = () => ({ ...fx.case.config, numClasses: undefined }) as Record<string, unknown>;

    const logitsOk = (model: { forward(x: tf.Tensor): unknown }, key = 'logits') => {
      const x = nchwToNhwc(fx.io.input);
      const y = model.forward(x) as tf.Tensor;
      const r = compare(y, fx.io[key], fx.case.atol, fx.case.rtol);
      tf.dispose([x, y]);
      expect(r.worstExcess, `${key}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
      return r.maxAbsErr;
    };

    it('downloads into the Hugging Face cache layout and loads the served checkpoint', async () => {
      const dir = join(cache, backend);
      const seen: [number, number][] = [];
      const model: Backbone = await createModel(arch, {
        ...config(),
        pretrained: true,
        pretrainedCfg: cfg,
        endpoint: hub.url,
        cacheDir: dir,
        onProgress: (b, t) => seen.push([b, t]),
        progress: false,
      });
      console.log(`${backend}: logits max abs err ${logitsOk(model).toExponential(2)} (atol ${fx.case.atol})`);
      expect(model.numClasses).toBe(10);
      expect((model as unknown as { pretrainedCfg: TimmPretrainedCfg }).pretrainedCfg.name).toBe(`${arch}.test`);
      model.dispose();
      const repo = join(dir, 'models--test--vit_p8_32');
      expect(readFileSync(join(repo, 'refs', 'main'), 'utf8')).toBe(COMMIT);
      const pointer = join(repo, 'snapshots', COMMIT, 'model.safetensors');
      expect(lstatSync(pointer).isSymbolicLink()).toBe(true);
      expect(readlinkSync(pointer)).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
      expect(readFileSync(pointer).equals(Buffer.from(fx.weightsBytes!))).toBe(true);
      const n = fx.weightsBytes!.length;
      expect(seen.at(-1)).toEqual([n, n]);
      expect(hub.requests.some((r) => r.startsWith('GET /cdn/') && !r.includes('bytes=0-0'))).toBe(true);
    });

    it('loads from the cache with the server unreachable, and offline', async () => {
      const dir = join(cache, backend);
      const noNet = (() => Promise.reject(new Error('network used'))) as typeof fetch;
      const model = await createPretrainedModel(arch, {
        ...config(),
        pretrainedCfg: cfg,
        endpoint: 'http://127.0.0.1:9',
        cacheDir: dir,
        fetch: noNet,
      });
      logitsOk(model);
      model.dispose();
      const again = await createPretrainedModel(arch, { ...config(), pretrainedCfg: cfg, cacheDir: dir, offline: true, fetch: noNet });
      logitsOk(again);
      again.dispose();
    });

    it('offline with an empty cache fails naming the file and the cache path', async () => {
      const dir = join(cache, `${backend}-empty`);
      const prev = process.env.HF_HUB_OFFLINE;
      process.env.HF_HUB_OFFLINE = '1';
      try {
        const e = await rejection(createPretrainedModel(arch, { ...config(), pretrainedCfg: cfg, endpoint: hub.url, cacheDir: dir }));
        expect(e.message).toContain(`'model.safetensors' of test/vit_p8_32`);
        expect(e.message).toContain(join(dir, 'models--test--vit_p8_32'));
      } finally {
        if (prev === undefined) delete process.env.HF_HUB_OFFLINE;
        else process.env.HF_HUB_OFFLINE = prev;
      }
    });

    it('reuses a cache written by Python (refs/main -> snapshots/<commit>)', async () => {
      const dir = join(cache, `${backend}-py`);
      const repo = join(dir, 'models--test--vit_p8_32');
      mkdirSync(join(repo, 'snapshots', LAST), { recursive: true });
      mkdirSync(join(repo, 'refs'), { recursive: true });
      writeFileSync(join(repo, 'refs', 'main'), LAST);
      writeFileSync(join(repo, 'snapshots', LAST, 'model.safetensors'), fx.weightsBytes!);
      const model = await createPretrainedModel(arch, { ...config(), pretrainedCfg: cfg, cacheDir: dir, offline: true });
      logitsOk(model);
      model.dispose();
    });

    it('numClasses 0 drops the head; another count gets a fresh head over the loaded trunk', async () => {
      const dir = join(cache, backend);
      const before = tf.memory().numTensors;
      const trunk = await createPretrainedModel(arch, { ...config(), pretrainedCfg: cfg, cacheDir: dir, offline: true, numClasses: 0 });
      expect(trunk.numClasses).toBe(0);
      logitsOk(trunk, 'pre_logits');
      trunk.dispose();
      const fresh = await createPretrainedModel(arch, { ...config(), pretrainedCfg: cfg, cacheDir: dir, offline: true, numClasses: 3 });
      expect(fresh.numClasses).toBe(3);
      const x = nchwToNhwc(fx.io.input);
      const y = fresh.forward(x) as tf.Tensor;
      expect(y.shape).toEqual([2, 3]);
      tf.dispose([x, y]);
      fresh.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it('a private repository needs the token (HF_TOKEN)', async () => {
      const dir = join(cache, `${backend}-private`);
      const e = await rejection(
        createPretrainedModel(arch, { ...config(), pretrainedCfg: privateCfg, endpoint: hub.url, cacheDir: dir, progress: false }),
      );
      expect(e.message).toMatch(/HTTP 401.*HF_TOKEN/);
      process.env.HF_TOKEN = 'hf_sekrit';
      try {
        const model = await createPretrainedModel(arch, {
          ...config(),
          pretrainedCfg: privateCfg,
          endpoint: hub.url,
          cacheDir: dir,
          progress: false,
        });
        logitsOk(model);
        model.dispose();
      } finally {
        delete process.env.HF_TOKEN;
      }
      expect(existsSync(join(dir, 'models--test--private', 'refs', 'main'))).toBe(true);
    });
  });
}

describe('progress bar', () => {
  it('shows bytes, rate and ETA', () => {
    const line = progressLine('model.safetensors', 25e6, 100e6, 5);
    expect(line).toBe('model.safetensors [=====>                  ]  25% 25.0 MB / 100.0 MB  5.0 MB/s  ETA 15s');
    expect(progressLine('x', 100e6, 100e6, 10)).toContain('[========================] 100%');
    expect(progressLine('x', 3e3, 0, 1)).toBe('x 3.0 kB  3.0 kB/s');
  });
});
