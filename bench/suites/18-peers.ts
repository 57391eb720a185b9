import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/vit/index.js';
import '../../src/models/convnextV2/index.js';
import '../../src/models/swin/index.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { mulberry32 } from '../../src/utils/random.js';
import { BenchSuite, cpuSeconds, median } from '../harness.js';
import { PEER_MODELS } from '../peers/writeCheck.js';

/**
 * Peers: onnxruntime-web's wasm backend against ours on the same model, threads and batch, interleaved
 * call by call in one process. `npm run bench -- --peers DIR [--threads 1,2] [--batches 1]` with
 * `DIR/<model>.onnx` for vit_small_patch16_224, convnextv2_atto and swinv2_tiny_window8_256 (NCHW input
 * with a dynamic batch). ONNX files are not in the repository: `bench/peers/export_onnx.py DIR` writes
 * them from timm (or, without timm, from the plain-PyTorch stand-ins in `bench/peers/standins.py`), and
 * `bench/peers/writeCheck.ts DIR` + `export_onnx.py DIR --check` first makes them carry our weights,
 * checked against our logits; with `DIR/<model>.safetensors` present this suite loads those weights on
 * our side too and prints the largest logit difference between the two runtimes.
 *
 * onnxruntime-web (an optional devDependency) runs in a worker thread per thread count (it fixes its
 * thread count when its module starts) with `graphOptimizationLevel: 'all'`. Each side gets two warm-up
 * calls, then `--peers-reps` (default 7) calls each, alternating, each after `--peers-pause-ms` (default 200) idle
 * milliseconds so that neither pool's spinning threads overlap the other's call; medians of wall time and of this
 * process's CPU time per call (all threads). `ours ÷ ort` > 1 means ours is faster. Skips with a reason
 * without `--peers`, without onnxruntime-web, or for a model whose file is missing.
 */

const MODELS = Object.entries(PEER_MODELS);

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const cpuMs = () => cpuSeconds() * 1000;

/** The worker side, one request at a time. */
class OrtWorker {
  private worker: Worker;
  constructor(threads: number) {
    this.worker = new Worker(fileURLToPath(new URL('../peers/ortWorker.mjs', import.meta.url)), { workerData: { threads } });
  }
  request<T>(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (r: { ok: boolean; error?: string } & T) => {
        this.worker.off('error', onError);
        if (r.ok) resolve(r);
        else reject(new Error(`onnxruntime-web: ${r.error}`));
      };
      const onError = (e: Error) => {
        this.worker.off('message', onMessage);
        reject(e);
      };
      this.worker.once('message', onMessage);
      this.worker.once('error', onError);
      this.worker.postMessage(msg, transfer);
    });
  }
  async close(): Promise<void> {
    await this.request({ cmd: 'close' });
    await this.worker.terminate();
  }
}

const suite: BenchSuite = {
  name: 'peers',
  async run(ctx) {
    if (ctx.backend !== 'wasm') return;
    const i = ctx.args.indexOf('--peers');
    if (i < 0) return;
    const dir = ctx.args[i + 1];
    if (!dir || dir.startsWith('--') || !existsSync(dir)) {
      console.log(`peers: skipped, --peers needs a directory of ONNX files (got ${dir ?? 'nothing'}; see bench/peers/export_onnx.py)`);
      return;
    }
    try {
      createRequire(import.meta.url).resolve('onnxruntime-web');
    } catch {
      console.log('peers: skipped, onnxruntime-web is not installed (npm install --no-save onnxruntime-web)');
      return;
    }
    const threads = Number(/(\d+) thread/.exec(ctx.config)?.[1] ?? 1);
    const reps = Number(flag(ctx.args, 'peers-reps') ?? 7);
    const pause = Number(flag(ctx.args, 'peers-pause-ms') ?? 200);
    const ort = new OrtWorker(threads);
    console.log(
      `peers (${ctx.config}; onnxruntime-web wasm, ${threads} thread${threads > 1 ? 's' : ''}) | model | batch | ours ms (wall / CPU) | ort ms (wall / CPU) | ours ÷ ort by wall | by CPU | max |Δlogits|`,
    );
    try {
      for (const [name, size] of MODELS) {
        const path = join(dir, `${name}.onnx`);
        if (!existsSync(path)) {
          console.log(`peers | ${name} | skipped: ${path} is missing`);
          continue;
        }
        await ort.request({ cmd: 'load', path });
        const model = createModel(name);
        const weights = join(dir, `${name}.safetensors`);
        const sameWeights = existsSync(weights);
        if (sameWeights) {
          const sd = readSafetensors(new Uint8Array(readFileSync(weights)));
          model.loadStateDict(sd);
          tf.dispose(Object.values(sd));
        }
        for (const batch of ctx.batches) {
          const rand = mulberry32(9);
          const nchw = Float32Array.from({ length: batch * 3 * size * size }, () => rand() * 2 - 1);
          const x = tf.tidy(() => tf.transpose(tf.tensor4d(nchw, [batch, 3, size, size]), [0, 2, 3, 1]));
          const ours = () => {
            const y = model.forwardLogits(x);
            const v = y.dataSync() as Float32Array;
            y.dispose();
            return v;
          };
          const theirs = async (keep = false) =>
            ort.request<{ ms: number; output: Float32Array | null }>({
              cmd: 'run',
              path,
              input: nchw,
              shape: [batch, 3, size, size],
              keep,
            });
          const a = ours();
          const b = (await theirs(true)).output!;
          let diff = 0;
          for (let k = 0; k < a.length; k++) diff = Math.max(diff, Math.abs(a[k] - b[k]));
          ours();
          await theirs();
          const w = { ours: [] as number[], ort: [] as number[] };
          const c = { ours: [] as number[], ort: [] as number[] };
          for (let r = 0; r < reps; r++) {
            for (const side of r % 2 ? (['ort', 'ours'] as const) : (['ours', 'ort'] as const)) {
              // let the other runtime's thread pool go idle (onnxruntime's threads spin after a run)
              await new Promise((res) => setTimeout(res, pause));
              const t0 = performance.now();
              const c0 = cpuMs();
              if (side === 'ours') ours();
              else await theirs();
              c[side].push(cpuMs() - c0);
              w[side].push(performance.now() - t0);
            }
          }
          const [wo, wt, co, ct] = [median(w.ours), median(w.ort), median(c.ours), median(c.ort)];
          console.log(
            `peers | ${name} | ${batch} | ${wo.toFixed(1)} / ${co.toFixed(1)} | ${wt.toFixed(1)} / ${ct.toFixed(1)} | ${(wt / wo).toFixed(2)}x | ${(ct / co).toFixed(2)}x | ${
              sameWeights ? diff.toExponential(2) : '- (different weights)'
            }`,
          );
          x.dispose();
        }
        model.dispose();
      }
    } finally {
      await ort.close();
    }
  },
};

export default suite;
