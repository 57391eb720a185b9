import type * as TF from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BenchSuite } from '../harness.js';

/**
 * Memory: the largest training batch that fits the wasm heap (4 GiB, wasm32) for
 * swinv2_tiny_window8_256 (256 px) and convnextv2_tiny (224 px), with and without gradient
 * checkpointing. One training step (the package's Trainer: AdamW, softmax cross-entropy, one pass, no
 * micro-batches) per probe, each probe in a fresh Node process: a step that does not fit ends in
 * `WasmOutOfMemoryError` (or, should the guard miss one, a crash of the probe), after which the
 * backend is not reused, and a fresh process starts from an empty heap so its size afterwards is the
 * high-water mark of model creation plus that step. The search doubles the batch from 1 until a step fails or
 * `--memory-max-batch` (default 32) is reached, then bisects; it stops early, saying so, once
 * `--memory-budget-s` (default 1800) seconds are spent on a configuration. Each fitting probe reports
 * the step's peaks (`StepInfo.memory`: `tf.memory()` bytes, which count views again, and the distinct
 * buffers), the heap's size and the step's CPU-seconds.
 *
 * `--memory-models swinv2_tiny_window8_256,convnextv2_tiny` and `--memory-ckpt both|on|off` narrow it;
 * `--memory-min-batch N` starts the doubling at N. No PyTorch peak is in bench/results yet; issue 21
 * quotes 2.5 GB for a SwinV2-T step at batch 8 in PyTorch 1.13 eager.
 */

const MODELS: Record<string, number> = { swinv2_tiny_window8_256: 256, convnextv2_tiny: 224 };

interface Probe {
  ok: boolean;
  batch: number;
  peakTensorBytes?: number;
  peakDataBytes?: number;
  wasmHeapBytes?: number | null;
  cpuSeconds?: number;
  error?: string;
}

const GiB = 2 ** 30;
const gib = (n: number | null | undefined) => (n == null ? '-' : `${(n / GiB).toFixed(2)} GiB`);

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Run one probe in a child process. */
function probe(model: string, batch: number, ckpt: boolean, threads: number): Probe {
  const file = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, '--memory-probe', JSON.stringify({ model, batch, ckpt, threads })], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = (r.stdout ?? '')
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"probe"'));
  if (line) return (JSON.parse(line) as { probe: Probe }).probe;
  const why = r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  const tail = (r.stderr ?? '').trim().split('\n').slice(-1)[0] ?? '';
  return { ok: false, batch, error: `the probe process died (${why}): ${tail.slice(0, 200)}` };
}

const suite: BenchSuite = {
  name: 'memory',
  async run(ctx) {
    if (ctx.backend !== 'wasm') return;
    const args = ctx.args;
    const maxBatch = Number(flag(args, 'memory-max-batch') ?? 32);
    const minBatch = Number(flag(args, 'memory-min-batch') ?? 1);
    const budget = Number(flag(args, 'memory-budget-s') ?? 1800);
    const models = (flag(args, 'memory-models') ?? Object.keys(MODELS).join(',')).split(',');
    const ck = flag(args, 'memory-ckpt') ?? 'both';
    const ckpts = ck === 'on' ? [true] : ck === 'off' ? [false] : [false, true];
    const threads = Number(/(\d+) thread/.exec(ctx.config)?.[1] ?? 1);
    console.log('memory | model | checkpointing | batch | fits | peak tf.memory() | peak buffers | wasm heap | CPU-s/step | note');
    for (const model of models) {
      if (!(model in MODELS)) throw new Error(`memory suite: unknown model ${model} (one of ${Object.keys(MODELS).join(', ')})`);
      for (const ckpt of ckpts) {
        const t0 = performance.now();
        const seen = new Map<number, Probe>();
        const run = (b: number): Probe => {
          const p = seen.get(b) ?? probe(model, b, ckpt, threads);
          seen.set(b, p);
          const note = p.ok ? '' : (p.error ?? '');
          console.log(
            `memory | ${model} | ${ckpt ? 'on' : 'off'} | ${b} | ${p.ok ? 'yes' : 'no'} | ${gib(p.peakTensorBytes)} | ${gib(p.peakDataBytes)} | ${gib(p.wasmHeapBytes)} | ${
              p.cpuSeconds?.toFixed(1) ?? '-'
            } | ${note}`,
          );
          return p;
        };
        const over = () => (performance.now() - t0) / 1000 > budget;
        let lo = 0; // largest batch known to fit
        let hi = Infinity; // smallest batch known not to fit
        let b = minBatch;
        let stopped = '';
        for (;;) {
          if (run(b).ok) lo = b;
          else {
            hi = b;
            break;
          }
          if (b >= maxBatch) break;
          if (over()) {
            stopped = 'time budget';
            break;
          }
          b = Math.min(maxBatch, 2 * b);
        }
        while (!stopped && lo > 0 && hi !== Infinity && hi - lo > 1) {
          if (over()) {
            stopped = 'time budget';
            break;
          }
          const mid = Math.floor((lo + hi) / 2);
          if (run(mid).ok) lo = mid;
          else hi = mid;
        }
        const best = seen.get(lo);
        const verdict =
          lo === 0
            ? `no batch >= ${minBatch} fits`
            : hi === Infinity
              ? `largest batch that fits >= ${lo} (the search stopped at ${stopped || `--memory-max-batch ${maxBatch}`})`
              : `largest batch that fits: ${lo}${stopped ? ` (< ${hi}; stopped by the ${stopped})` : ''}`;
        console.log(
          `memory | ${model} | checkpointing ${ckpt ? 'on' : 'off'} | ${verdict}; there: peak tf.memory() ${gib(best?.peakTensorBytes)}, peak buffers ${gib(best?.peakDataBytes)}, ` +
            `wasm heap ${gib(best?.wasmHeapBytes)}, ${((performance.now() - t0) / 1000).toFixed(0)} s searching`,
        );
      }
    }
  },
};

export default suite;

/** The child side: one training step at the given batch, its memory and CPU time as a JSON line. */
async function probeMain(spec: { model: string; batch: number; ckpt: boolean; threads: number }): Promise<void> {
  const out = (p: Probe) => console.log(JSON.stringify({ probe: p }));
  try {
    const tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-wasm');
    await import('../../src/backends/wasmKernels.js');
    const { useWasm } = await import('../../src/backends/wasmThreads.js');
    const { createModel } = await import('../../src/models/registry.js');
    await import('../../src/models/swin/index.js');
    await import('../../src/models/convnextV2/index.js');
    const { Trainer } = await import('../../src/train/trainer.js');
    await useWasm({ threads: spec.threads });
    const size = MODELS[spec.model];
    const model = createModel(spec.model);
    const numClasses = 1000;
    const x = tf.randomNormal([spec.batch, size, size, 3]);
    const y = tf.oneHot(
      tf.tensor1d(
        Array.from({ length: spec.batch }, (_, j) => (j * 37) % numClasses),
        'int32',
      ),
      numClasses,
    );
    const trainer = new Trainer<{ x: TF.Tensor; y: TF.Tensor }>({
      model,
      lr: 1e-4,
      constantLr: true,
      gradCheckpointing: spec.ckpt,
      loss: (b) => tf.losses.softmaxCrossEntropy(b.y, model.forwardLogits(b.x, { training: true })) as TF.Scalar,
    });
    const c0 = process.cpuUsage();
    const info = trainer.trainStep({ x, y }, { step: 0, epoch: 0, totalSteps: 1, batchSize: spec.batch });
    const c = process.cpuUsage(c0);
    if (!Number.isFinite(info.loss)) throw new Error(`loss ${info.loss}`);
    out({
      ok: true,
      batch: spec.batch,
      peakTensorBytes: info.memory.peakTensorBytes,
      peakDataBytes: info.memory.peakDataBytes,
      wasmHeapBytes: info.memory.wasmHeapBytes,
      cpuSeconds: (c.user + c.system) / 1e6,
    });
  } catch (e) {
    const err = e as Error;
    out({ ok: false, batch: spec.batch, error: `${err.name}: ${err.message.slice(0, 300)}` });
  }
  process.exit(0);
}

const i = process.argv.indexOf('--memory-probe');
if (i >= 0 && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) void probeMain(JSON.parse(process.argv[i + 1]));
