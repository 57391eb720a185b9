import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { registerFastKernels } from '../../src/backends/fastKernels.js';
import { fusedGelu, fusedLayerNorm } from '../../src/backends/fusedOps.js';
import { kernelModuleFor, kernelSimd, relaxedSimdSupported, setKernelSimd } from '../../src/backends/kernelModule.js';
import {
  KERNELS_RELAXED_SHARED_WASM,
  KERNELS_RELAXED_WASM,
  KERNELS_SHARED_WASM,
  KERNELS_WASM,
} from '../../src/backends/native/kernelsWasm.js';
import { gelu } from '../../src/layers/activations.js';
import { useBackend } from '../helpers/backends.js';
import { diff, on, randn } from './kernelTestUtils.js';

/**
 * The relaxed-SIMD build of our kernels (fused multiply-adds in the GEMM, convolution and
 * elementwise inner loops), its selection by feature detection, and its results against the cpu
 * backend. Node 20 has relaxed SIMD only with `--experimental-wasm-relaxed-simd`: `npm test` runs this
 * file once without (SIMD128 chosen; the relaxed build is checked in a child process started with
 * the flag) and once with it (test/backends/vitest.relaxed.config.ts, together with the kernel
 * parity suites), where every kernel of ours runs the relaxed build.
 */

const bin = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
const builds = {
  plain: bin(KERNELS_WASM),
  shared: bin(KERNELS_SHARED_WASM),
  relaxed: bin(KERNELS_RELAXED_WASM),
  relaxedShared: bin(KERNELS_RELAXED_SHARED_WASM),
};
const FLAG = '--experimental-wasm-relaxed-simd';

/** `|x - y| <= 2 gamma_K sum_k |a_ik b_kj|` (gamma_K = K u / (1 - K u), u = 2^-24): both are float32 dot products. */
function dotBoundViolations(
  x: Float32Array,
  y: Float32Array,
  a: Float32Array,
  b: Float32Array,
  M: number,
  K: number,
  N: number,
  batch: number,
): { worst: number; maxAbs: number } {
  const u = 2 ** -24;
  const gamma = (K * u) / (1 - K * u);
  let worst = -Infinity;
  let maxAbs = 0;
  for (let p = 0; p < batch; p++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += Math.abs(a[p * M * K + i * K + k] * b[p * K * N + k * N + j]);
        const o = p * M * N + i * N + j;
        const d = Math.abs(x[o] - y[o]);
        maxAbs = Math.max(maxAbs, d);
        worst = Math.max(worst, d - 2 * gamma * s);
      }
  return { worst, maxAbs };
}

describe('relaxed-SIMD build', () => {
  it('has the exports and the single env.memory import of the SIMD128 build, no data or start section', () => {
    const exportsOf = (m: WebAssembly.Module) => WebAssembly.Module.exports(m).map((e) => `${e.name}:${e.kind}`);
    const plain = new WebAssembly.Module(builds.plain);
    for (const name of ['relaxed', 'relaxedShared'] as const) {
      const b = builds[name];
      // a module using relaxed-SIMD instructions validates exactly where the runtime has them
      expect(WebAssembly.validate(b), name).toBe(relaxedSimdSupported());
      expect(b.length, name).toBeGreaterThan(20_000);
    }
    expect(WebAssembly.validate(builds.plain)).toBe(true);
    expect(WebAssembly.validate(builds.shared)).toBe(true);
    if (relaxedSimdSupported()) {
      const relaxed = new WebAssembly.Module(builds.relaxed);
      expect(exportsOf(relaxed)).toEqual(exportsOf(plain));
      expect(WebAssembly.Module.imports(relaxed)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      new WebAssembly.Instance(new WebAssembly.Module(builds.relaxedShared), {
        env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }) },
      });
    }
  });

  it(`in a child process started with ${FLAG}: validates, and its GEMM and GELU are within FMA's bound of the SIMD128 build`, () => {
    // the child instantiates both builds on one memory and compares them directly (no tfjs)
    const dir = mkdtempSync(join(tmpdir(), 'visbackbones-relaxed-'));
    try {
      writeFileSync(join(dir, 'plain.wasm'), builds.plain);
      writeFileSync(join(dir, 'relaxed.wasm'), builds.relaxed);
      const script = `
        const fs = require('node:fs');
        const path = require('node:path');
        const dir = ${JSON.stringify(dir)};
        const memory = new WebAssembly.Memory({ initial: 64 });
        const inst = (f) => new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(path.join(dir, f))), { env: { memory, abort() { throw new Error('abort'); } } }).exports;
        const plain = inst('plain.wasm'), relaxed = inst('relaxed.wasm');
        const M = 13, N = 19, K = 301;
        const A = 1024, B = A + M * K * 4, C1 = B + K * N * 4, C2 = C1 + M * N * 4, S = C2 + M * N * 4, X = S + 65536, Y1 = X + 4096, Y2 = Y1 + 4096;
        const f = new Float32Array(memory.buffer);
        let s = 7;
        const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 31) - 1;
        for (let i = 0; i < M * K; i++) f[A / 4 + i] = rnd();
        for (let i = 0; i < K * N; i++) f[B / 4 + i] = rnd();
        for (let i = 0; i < 1000; i++) f[X / 4 + i] = 8 * rnd();
        const args = (c) => [A, B, c, M, N, K, K * 4, 4, N * 4, 4, 0, 0, S, 0, 1, 0, M, 0, 0];
        plain.bmm(...args(C1));
        relaxed.bmm(...args(C2));
        plain.gelu(X, Y1, 0, 1000);
        relaxed.gelu(X, Y2, 0, 1000);
        const gamma = (K * 2 ** -24) / (1 - K * 2 ** -24);
        let worstMm = -Infinity, differ = 0, worstGelu = 0;
        for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
          let abs = 0;
          for (let k = 0; k < K; k++) abs += Math.abs(f[A / 4 + i * K + k] * f[B / 4 + k * N + j]);
          const d = Math.abs(f[C1 / 4 + i * N + j] - f[C2 / 4 + i * N + j]);
          if (d > 0) differ++;
          worstMm = Math.max(worstMm, d - 2 * gamma * abs);
        }
        for (let i = 0; i < 1000; i++) worstGelu = Math.max(worstGelu, Math.abs(f[Y1 / 4 + i] - f[Y2 / 4 + i]) / Math.max(1, Math.abs(f[Y1 / 4 + i])));
        console.log(JSON.stringify({ validates: WebAssembly.validate(fs.readFileSync(path.join(dir, 'relaxed.wasm'))), worstMm, differ, worstGelu }));
      `;
      const out = JSON.parse(execFileSync(process.execPath, [FLAG, '-e', script], { encoding: 'utf8' }).trim()) as {
        validates: boolean;
        worstMm: number;
        differ: number;
        worstGelu: number;
      };
      expect(out.validates).toBe(true);
      expect(out.worstMm).toBeLessThanOrEqual(0);
      // 3 GELU ulp-scale differences at most (both within 2.6 ulp of erf, see simd.ts)
      expect(out.worstGelu).toBeLessThan(6e-7);
      console.log(
        `relaxed vs SIMD128 (child process): ${out.differ} of 247 GEMM outputs differ, all within 2 gamma_K sum|ab|; GELU max rel diff ${out.worstGelu.toExponential(2)}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('selection at load time', () => {
  beforeAll(async () => {
    await useBackend('wasm');
    await registerFastKernels();
  });
  afterAll(() => setKernelSimd('auto'));

  it('feature detection picks relaxed exactly where the runtime has it (here: the flag or Node >= 22)', () => {
    const major = Number(process.versions.node.split('.')[0]);
    const flagged = process.execArgv.includes(FLAG);
    if (flagged || major >= 22) expect(relaxedSimdSupported()).toBe(true);
    else expect(relaxedSimdSupported()).toBe(false);
    expect(kernelSimd()).toBe(relaxedSimdSupported() ? 'relaxed' : 'simd128');
    expect(kernelModuleFor(tf.backend())?.simd).toBe(kernelSimd());
  });

  it('setKernelSimd re-binds the backend to the asked build; bad requests are clear errors', () => {
    setKernelSimd('simd128');
    expect(kernelSimd()).toBe('simd128');
    expect(kernelModuleFor(tf.backend())?.simd).toBe('simd128');
    expect(() => setKernelSimd('fast' as never)).toThrow(VisBackbonesError);
    if (relaxedSimdSupported()) {
      setKernelSimd('relaxed');
      expect(kernelModuleFor(tf.backend())?.simd).toBe('relaxed');
    } else {
      expect(() => setKernelSimd('relaxed')).toThrow(/no WebAssembly relaxed SIMD.*experimental-wasm-relaxed-simd/);
      expect(kernelSimd()).toBe('simd128');
    }
    setKernelSimd('auto');
    expect(kernelModuleFor(tf.backend())?.simd).toBe(relaxedSimdSupported() ? 'relaxed' : 'simd128');
  });
});

describe.runIf(relaxedSimdSupported())('relaxed build against cpu (runs where the runtime has relaxed SIMD)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
    await registerFastKernels();
    setKernelSimd('relaxed');
  });
  afterAll(() => setKernelSimd('auto'));

  it('batched GEMM within 2 gamma_K sum|ab| of cpu; tensors not leaked', async () => {
    const [batch, M, K, N] = [3, 37, 203, 45];
    const a = randn(batch * M * K, 11);
    const b = randn(batch * K * N, 12);
    const f = () => tf.matMul(tf.tensor(a, [batch, M, K]), tf.tensor(b, [batch, K, N]));
    const [cpu] = await on('cpu', f);
    await useBackend('wasm');
    const before = tf.memory().numTensors;
    const [wasm] = await on('wasm', f);
    expect(tf.memory().numTensors).toBe(before);
    expect(kernelModuleFor(tf.backend())?.simd).toBe('relaxed');
    const d = dotBoundViolations(wasm, cpu, a, b, M, K, N, batch);
    expect(d.worst).toBeLessThanOrEqual(0);
    expect(d.maxAbs).toBeGreaterThan(0); // FMA rounds differently: the relaxed build is the one that ran
  });

  it('depthwise conv, GELU and LayerNorm within the bounds fastKernels.test.ts holds SIMD128 to', async () => {
    const x = randn(2 * 9 * 11 * 12, 21);
    const w = randn(7 * 7 * 12, 22, 0.2);
    const h = randn(5 * 67, 23, 3);
    const g = randn(67, 24);
    const beta = randn(67, 25);
    const eps = 1e-5;
    const run = (geluOf: (t: tf.Tensor) => tf.Tensor, norm: (t: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor) => () => [
      tf.depthwiseConv2d(tf.tensor(x, [2, 9, 11, 12]) as tf.Tensor4D, tf.tensor(w, [7, 7, 12, 1]) as tf.Tensor4D, 1, 'same'),
      geluOf(tf.tensor(h, [5, 67])),
      norm(tf.tensor(h, [5, 67]), tf.tensor(g), tf.tensor(beta)),
    ];
    const refNorm = (t: tf.Tensor, wt: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(t, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(t, mean), tf.rsqrt(tf.add(variance, eps))), wt), b);
    };
    const cpu = await on('cpu', run(gelu, refNorm));
    const wasm = await on(
      'wasm',
      run(
        (t) => fusedGelu(t)!,
        (t, wt, b) => fusedLayerNorm(t, wt, b, eps)!,
      ),
    );
    expect(kernelModuleFor(tf.backend())?.simd).toBe('relaxed');
    expect(diff(wasm[0], cpu[0], 1e-6 * 49, 1e-5).worst, 'depthwise 7x7').toBeLessThanOrEqual(0);
    expect(diff(wasm[1], cpu[1], 1e-6, 1e-6).worst, 'GELU').toBeLessThanOrEqual(0);
    expect(diff(wasm[2], cpu[2], 2e-5, 1e-4).worst, 'LayerNorm').toBeLessThanOrEqual(0);
  });
});
