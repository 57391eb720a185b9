import * as tf from '@tensorflow/tfjs';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { loadLayersModelFromDir } from '../../src/weights/tfjsFormat.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, FIXTURES_DIR, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

const ROOT = join(FIXTURES_DIR, '..', '..');
const FIX = join(FIXTURES_DIR, 'swin_p4w4_64');
const WEIGHTS = join(FIX, 'weights.safetensors');
const CASE = join(FIX, 'case.json');

/** Run the CLI in-process, capturing what it prints. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vb-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('visbackbones list / info / bench', () => {
  it('list prints every registered variant and filters by substring and wildcard', async () => {
    const all = await cli('list');
    expect(all.code).toBe(0);
    expect(all.out).toContain('swinv2_tiny_window8_256');
    expect(all.out).toContain('swin_tiny_patch4_window7_224');
    const v2 = await cli('list', 'swinv2*');
    expect(v2.code).toBe(0);
    const names = v2.out.split('\n').map((l) => l.split(/\s+/)[0]);
    expect(names.length).toBeGreaterThan(3);
    expect(names.every((n) => n.startsWith('swinv2'))).toBe(true);
    const none = await cli('list', 'no_such_family');
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no model matches 'no_such_family'/);
  });

  it('info reports parameters, GFLOPs, channels and strides that match a direct computation', async () => {
    await useBackend('wasm');
    const r = await cli('info', 'swin_tiny_patch4_window7_224', '--config', CASE);
    expect(r.code, r.err).toBe(0);
    // the fixture model, counted independently: parameters from the reference state dict file
    const fx = loadFixture('swin_p4w4_64');
    const numValues = fx.case.weights.num_values as number;
    fx.dispose();
    expect(r.out).toContain(`(${numValues})`);
    // stage widths 16, 32, 64 at strides 4, 8, 16
    expect(r.out).toMatch(/0\s+16\s+4\s+layers\.0/);
    expect(r.out).toMatch(/1\s+32\s+8\s+layers\.1/);
    expect(r.out).toMatch(/2\s+64\s+16\s+layers\.2/);
    const g = Number(/GFLOPs:\s+([0-9.]+)/.exec(r.out)![1]);
    expect(g).toBeGreaterThan(0);
  });

  it('bench times a forward pass on the requested backend and batch', async () => {
    const r = await cli('bench', 'swin_tiny_patch4_window7_224', '--config', CASE, '--backend', 'cpu', '--batch', '2', '--reps', '1');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/on cpu: batch 2 at 64x64/);
    expect(Number(/([0-9.]+) img\/s/.exec(r.out)![1])).toBeGreaterThan(0);
  });
});

for (const backend of BACKENDS) {
  describe(`visbackbones convert on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    it('converts the swin_p4w4_64 checkpoint; the directory reloads and reproduces the reference logits', async () => {
      const out = join(tmp, `swin_${backend}`);
      const r = await cli(
        'convert',
        '--timm',
        WEIGHTS,
        '--model',
        'swin_tiny_patch4_window7_224',
        '--config',
        CASE,
        '--out',
        out,
        '--check',
        '--backend',
        backend,
      );
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/max \|model - reloaded\| = 0\.000e\+0/);
      const info = JSON.parse(readFileSync(join(out, 'visbackbones.json'), 'utf8'));
      expect(info.inputShape).toEqual([64, 64, 3]);
      expect(info.numClasses).toBe(10);

      const fx = loadFixture('swin_p4w4_64');
      const model = await loadLayersModelFromDir(out);
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const y = model.predict(x) as tf.Tensor;
      const res = compare(y, fx.io.logits, fx.case.atol, fx.case.rtol);
      console.log(`convert swin_p4w4_64 [${backend}] reloaded logits max abs err ${res.maxAbsErr}`);
      expect(res.worstExcess, `max abs err ${res.maxAbsErr}`).toBeLessThanOrEqual(0);
      y.dispose();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      model.dispose();
      fx.dispose();
    });
  });
}

describe('visbackbones errors and exit codes', () => {
  it('unknown command, option, model and missing arguments are usage errors (exit 2)', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    const u = await cli('info', 'no_such_model_224');
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/unknown model 'no_such_model_224'/);
    const f = await cli('bench', 'swin_tiny_patch4_window7_224', '--bogus', '1');
    expect(f.code).toBe(2);
    expect(f.err).toMatch(/unknown option '--bogus'/);
    const m = await cli('convert', '--timm', WEIGHTS, '--model', 'swin_tiny_patch4_window7_224');
    expect(m.code).toBe(2);
    expect(m.err).toMatch(/--out DIR/);
    const b = await cli('bench', 'swin_tiny_patch4_window7_224', '--batch', 'zero');
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--batch zero: expected a positive integer/);
  });

  it('a missing file, a corrupt checkpoint and mismatched weights fail with exit 1 and say why', async () => {
    const missing = await cli(
      'convert',
      '--timm',
      join(tmp, 'nope.safetensors'),
      '--model',
      'swin_tiny_patch4_window7_224',
      '--out',
      join(tmp, 'x'),
    );
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/checkpoint not found: .*nope\.safetensors/);

    const bytes = readFileSync(WEIGHTS);
    const truncated = join(tmp, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const t = await cli(
      'convert',
      '--timm',
      truncated,
      '--model',
      'swin_tiny_patch4_window7_224',
      '--config',
      CASE,
      '--out',
      join(tmp, 'y'),
    );
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/safetensors/);

    const garbage = join(tmp, 'garbage.safetensors');
    writeFileSync(garbage, Buffer.from('this is not a checkpoint at all'));
    const g = await cli('convert', '--timm', garbage, '--model', 'swin_tiny_patch4_window7_224', '--out', join(tmp, 'z'));
    expect(g.code).toBe(1);
    expect(g.err).toMatch(/safetensors: header length/);

    // right file, wrong architecture: strict loading lists the problems
    const other = JSON.stringify({ imgSize: 64, windowSize: 4, embedDim: 8, depths: [2, 2], numHeads: [1, 2], numClasses: 10 });
    const w = await cli(
      'convert',
      '--timm',
      WEIGHTS,
      '--model',
      'swin_tiny_patch4_window7_224',
      '--config',
      other,
      '--out',
      join(tmp, 'w'),
    );
    expect(w.code).toBe(1);
    expect(w.err).toMatch(/strict loading/);
    expect(w.err).toMatch(/unexpected keys \(\d+\): .*layers\.2\./);
    expect(w.err).toMatch(/shape mismatches .*patch_embed\.proj\.weight: checkpoint \[16, 3, 4, 4\] vs model \[8, 3, 4, 4\]/);
  });

  it('the bin script runs as a process: exit codes 0, 1 and 2 reach the shell', () => {
    const bin = join(ROOT, 'bin', 'visbackbones.js');
    const ok = execFileSync(process.execPath, [bin, 'list', 'swin_tiny*'], { cwd: ROOT, encoding: 'utf8' });
    expect(ok).toContain('swin_tiny_patch4_window7_224');
    const usage = spawnSync(process.execPath, [bin, 'info', 'no_such_model_224'], { cwd: ROOT, encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/unknown model/);
    const missing = spawnSync(
      process.execPath,
      [bin, 'convert', '--timm', 'missing.safetensors', '--model', 'swin_tiny_patch4_window7_224', '--out', tmp],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/checkpoint not found/);
  });
});
