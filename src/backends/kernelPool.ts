import type { KernelName } from './kernelModule.js';

/**
 * Worker threads (Node's `worker_threads`) that run our kernel module on the threaded tfjs-wasm
 * backend's shared memory, so a kernel can split its outer loop across cores as XNNPACK does.
 * Jobs go through a small SharedArrayBuffer: the caller writes each worker's kernel index and
 * arguments, bumps a sequence number and wakes the workers with `Atomics.notify`, runs its own share,
 * then sleeps in `Atomics.wait` until the pending count reaches zero. Node only: a browser's main
 * thread may not block in `Atomics.wait`.
 */

const KERNELS: KernelName[] = ['bmm', 'erf', 'gelu', 'layerNorm', 'depthwiseConv', 'depthwiseFilterGrad', 'depthwiseInputGrad', 'convFilterGrad', 'transpose2d', 'gatherRuns', 'geluGrad', 'reduceSum', 'gatherRows'];
const MAX_ARGS = 32;
/** Int32 control words: job sequence number, jobs pending, a job failed, workers ready, a worker failed to start. */
const SEQ = 0;
const PENDING = 1;
const ERROR = 2;
const READY = 3;
const BROKEN = 4;
/** Polls of a control word before sleeping on it (a few microseconds: kernels come in bursts). */
const SPIN = 2000;
/** How long `run` waits for the workers to start before doing their share itself (ms). */
const START_TIMEOUT_MS = 10_000;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctrl, jobs, index, names } = workerData;
const c = new Int32Array(ctrl);
let fns;
try {
  const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('kernel abort'); } } });
  fns = names.map((n) => inst.exports[n]);
  Atomics.add(c, ${READY}, 1);
} catch (e) {
  Atomics.store(c, ${BROKEN}, 1);
}
Atomics.notify(c, ${READY});
const slot = new Float64Array(jobs, index * ${(MAX_ARGS + 2) * 8}, ${MAX_ARGS + 2});
let seen = 0;
while (fns) {
  for (let i = 0; i < ${SPIN} && Atomics.load(c, ${SEQ}) === seen; i++);
  while (Atomics.load(c, ${SEQ}) === seen) Atomics.wait(c, ${SEQ}, seen);
  seen = Atomics.load(c, ${SEQ});
  if (seen < 0) break;
  const k = slot[0];
  if (k >= 0) {
    try {
      const n = slot[1];
      const a = [];
      for (let i = 0; i < n; i++) a.push(slot[2 + i]);
      fns[k](...a);
    } catch (e) {
      Atomics.store(c, ${ERROR}, 1);
    }
  }
  if (Atomics.sub(c, ${PENDING}, 1) === 1) Atomics.notify(c, ${PENDING});
}
`;

/** A fixed set of workers sharing one memory with the caller. */
export interface KernelPool {
  readonly size: number;
  /**
   * Run kernel `name` once per entry of `jobs`: `jobs[0]` here through `local`, `jobs[i]` on worker
   * `i - 1` (at most `size + 1` entries), returning when all are done. If the workers could not start,
   * every job runs here.
   */
  run(name: KernelName, jobs: number[][], local: (args: number[]) => void): void;
  terminate(): void;
}

/** Node's `worker_threads.Worker` constructor (what the pool needs of it). */
export type NodeWorkerCtor = new (
  code: string,
  opts: { eval: true; workerData: unknown },
) => { unref(): void; terminate(): Promise<number> | void };

/** Start `size` workers running `module` on `memory`. */
export function createKernelPool(module: WebAssembly.Module, memory: WebAssembly.Memory, size: number, Worker: NodeWorkerCtor): KernelPool {
  const ctrlBuf = new SharedArrayBuffer(32);
  const jobsBuf = new SharedArrayBuffer(size * (MAX_ARGS + 2) * 8);
  const ctrl = new Int32Array(ctrlBuf);
  const workers: Array<InstanceType<NodeWorkerCtor>> = [];
  for (let i = 0; i < size; i++) {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, ctrl: ctrlBuf, jobs: jobsBuf, index: i, names: KERNELS } });
    w.unref();
    workers.push(w);
  }
  const slots = workers.map((_, i) => new Float64Array(jobsBuf, i * (MAX_ARGS + 2) * 8, MAX_ARGS + 2));
  let usable: boolean | null = null;
  /** Wait (once) until every worker has instantiated the module; false if one failed or timed out. */
  const ready = (): boolean => {
    if (usable !== null) return usable;
    const t0 = Date.now();
    for (;;) {
      const r = Atomics.load(ctrl, READY);
      if (Atomics.load(ctrl, BROKEN)) break;
      if (r === size) return (usable = true);
      const left = START_TIMEOUT_MS - (Date.now() - t0);
      if (left <= 0) break;
      Atomics.wait(ctrl, READY, r, left);
    }
    return (usable = false);
  };
  return {
    size,
    run(name, jobs, local) {
      if (!ready()) {
        for (const a of jobs) local(a);
        return;
      }
      const k = KERNELS.indexOf(name);
      for (let i = 0; i < size; i++) {
        const a = jobs[i + 1];
        if (!a) {
          slots[i][0] = -1;
          continue;
        }
        if (a.length > MAX_ARGS) throw new Error(`kernel ${name}: too many arguments`);
        slots[i][0] = k;
        slots[i][1] = a.length;
        for (let j = 0; j < a.length; j++) slots[i][2 + j] = a[j];
      }
      Atomics.store(ctrl, PENDING, size);
      Atomics.add(ctrl, SEQ, 1);
      Atomics.notify(ctrl, SEQ);
      let err: unknown = null;
      try {
        local(jobs[0]);
      } catch (e) {
        err = e;
      }
      for (let i = 0; i < SPIN && Atomics.load(ctrl, PENDING) !== 0; i++);
      for (;;) {
        const p = Atomics.load(ctrl, PENDING);
        if (p === 0) break;
        Atomics.wait(ctrl, PENDING, p);
      }
      if (err) throw err;
      if (Atomics.exchange(ctrl, ERROR, 0)) throw new Error(`kernel ${name} failed on a worker thread`);
    },
    terminate() {
      Atomics.store(ctrl, SEQ, -1);
      Atomics.notify(ctrl, SEQ);
      for (const w of workers) void w.terminate();
    },
  };
}
