import { KERNEL_NAMES, KernelName } from './kernelAbi.js';

/**
 * Worker threads (Node's `worker_threads`) that run our kernel module on the threaded tfjs-wasm
 * backend's shared memory, so a kernel can split its outer loop across cores as XNNPACK does.
 * Jobs go through a small SharedArrayBuffer: the caller writes each worker's kernel index and
 * arguments, bumps a sequence number and wakes the workers with `Atomics.notify`, runs its own share,
 * then sleeps in `Atomics.wait` until the pending count reaches zero. Node only: a browser's main
 * thread may not block in `Atomics.wait`.
 */

const KERNELS: readonly KernelName[] = KERNEL_NAMES;
const MAX_ARGS = 32;
/**
 * Int32 control words: job sequence number, jobs finished by workers, a job failed, workers ready, a
 * worker failed to start; then one claim word per worker (its job of the current run is
 * {@link UNCLAIMED}, taken by the worker, {@link STOLEN} by the caller, or {@link NO_JOB}).
 */
const SEQ = 0;
const DONE = 1;
const ERROR = 2;
const READY = 3;
const BROKEN = 4;
const CLAIM0 = 8;
const UNCLAIMED = 0;
const TAKEN = 1;
const STOLEN = 2;
const NO_JOB = 3;
/**
 * Polls of a control word before sleeping on it, about 0.1 ms: kernels come in bursts with tens of
 * microseconds of JavaScript between them, and a worker woken from sleep (a futex) often starts after
 * the caller has done its share (SwinV2-T forward with 2 threads: 1.7x the pool-less time with 50000
 * polls, 1.3-1.5x with 2000).
 */
const SPIN = 50000;
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
  // the caller may have run this job itself already (this thread woke late): then nothing to do
  if (Atomics.compareExchange(c, ${CLAIM0} + index, ${UNCLAIMED}, ${TAKEN}) !== ${UNCLAIMED}) continue;
  try {
    const n = slot[1];
    const a = [];
    for (let i = 0; i < n; i++) a.push(slot[2 + i]);
    fns[slot[0]](...a);
  } catch (e) {
    Atomics.store(c, ${ERROR}, 1);
  }
  Atomics.add(c, ${DONE}, 1);
  Atomics.notify(c, ${DONE});
}
`;

/** A fixed set of workers sharing one memory with the caller. */
export interface KernelPool {
  readonly size: number;
  /**
   * Run kernel `name` once per entry of `jobs`: `jobs[0]` here through `local`, `jobs[i]` on worker
   * `i - 1` (at most `size + 1` entries), returning when all are done. A job whose worker has not
   * started it by the time `jobs[0]` is done runs here too (a worker slow to wake, or a busy core,
   * then costs nothing). If the workers could not start, every job runs here.
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
  const ctrlBuf = new SharedArrayBuffer((CLAIM0 + size) * 4);
  const jobsBuf = new SharedArrayBuffer(size * (MAX_ARGS + 2) * 8);
  const ctrl = new Int32Array(ctrlBuf);
  const workers: Array<InstanceType<NodeWorkerCtor>> = [];
  for (let i = 0; i < size; i++) {
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, memory, ctrl: ctrlBuf, jobs: jobsBuf, index: i, names: KERNELS },
    });
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
      for (const a of jobs) if (a.length > MAX_ARGS) throw new Error(`kernel ${name}: too many arguments`);
      // DONE first: a worker still waking from an earlier run may claim a job of this one as soon as its claim word is reset
      Atomics.store(ctrl, DONE, 0);
      for (let i = 0; i < size; i++) {
        const a = jobs[i + 1];
        if (!a) {
          Atomics.store(ctrl, CLAIM0 + i, NO_JOB);
          continue;
        }
        slots[i][0] = k;
        slots[i][1] = a.length;
        for (let j = 0; j < a.length; j++) slots[i][2 + j] = a[j];
        Atomics.store(ctrl, CLAIM0 + i, UNCLAIMED);
      }
      Atomics.add(ctrl, SEQ, 1);
      Atomics.notify(ctrl, SEQ);
      let err: unknown = null;
      try {
        local(jobs[0]);
        // jobs no worker has started yet (it is still waking, or its core is busy): run them here
        for (let i = 0; i < size; i++) {
          if (Atomics.compareExchange(ctrl, CLAIM0 + i, UNCLAIMED, STOLEN) === UNCLAIMED) local(jobs[i + 1]);
        }
      } catch (e) {
        err = e;
        // no worker may start a job of this run after it returns
        for (let i = 0; i < size; i++) Atomics.compareExchange(ctrl, CLAIM0 + i, UNCLAIMED, STOLEN);
      }
      let taken = 0;
      for (let i = 0; i < size; i++) if (Atomics.load(ctrl, CLAIM0 + i) === TAKEN) taken++;
      for (let i = 0; i < SPIN && Atomics.load(ctrl, DONE) !== taken; i++);
      for (;;) {
        const d = Atomics.load(ctrl, DONE);
        if (d === taken) break;
        Atomics.wait(ctrl, DONE, d);
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
