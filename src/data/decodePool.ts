import { VisBackbonesError } from '../errors.js';
import type { U8Image } from './imageOps.js';
import { readImage } from './readImage.js';
import { samplesToRgb } from './rgbSamples.js';

/**
 * Image decoding off the training path: a pool of Node worker threads that read and decode image
 * files (sharp, with exactly {@link readImage}'s options and RGB conversion) and hand back uint8 RGB
 * buffers (transferred, not copied). While the main thread runs a (synchronous) training step, the
 * workers decode the next batches. Where worker threads or sharp are unavailable (a browser, a
 * bundle without sharp) the pool decodes on the calling thread with {@link readImage}.
 */
export interface DecodePool {
  /** Worker threads decoding (0: decoding on the calling thread). */
  readonly threads: number;
  /** Decode one file to `[H, W, 3]` uint8 RGB; rejects with a {@link VisBackbonesError} naming the path. */
  decode(path: string): Promise<U8Image & { threadId: number }>;
  /** Stop the workers (pending decodes reject). */
  close(): Promise<void>;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

// Plain JavaScript, evaluated in each worker: read + decode with sharp, convert with readImage's own
// samplesToRgb (its source text; grey replicated, alpha dropped, 16-bit: high byte / grey clipped at 255).
const WORKER_SOURCE = `
const { parentPort, workerData, threadId } = require('node:worker_threads');
const { readFile } = require('node:fs/promises');
const sharp = require(workerData.sharpPath);
const toRgb = (${samplesToRgb.toString()});
parentPort.on('message', async ({ id, path }) => {
  let bytes;
  try {
    bytes = await readFile(path);
  } catch (e) {
    parentPort.postMessage({ id, error: 'cannot read ' + JSON.stringify(path) + ': ' + e.message });
    return;
  }
  if (!bytes.length) {
    parentPort.postMessage({ id, error: path + ' is empty' });
    return;
  }
  try {
    const { data, info } = await sharp(bytes, { ignoreIcc: true, autoOrient: false, failOn: 'error', limitInputPixels: false })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rgb = toRgb(data, info.width, info.height, info.channels, info.depth, new Uint8Array(info.width * info.height * 3));
    parentPort.postMessage({ id, data: rgb, width: info.width, height: info.height, threadId }, [rgb.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: 'cannot decode ' + path + ' (' + e.message + ')' });
  }
});
`;

interface WorkerLike {
  postMessage(msg: unknown): void;
  on(ev: 'message', cb: (m: WorkerReply) => void): void;
  on(ev: 'error', cb: (e: Error) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}
interface WorkerReply {
  id: number;
  error?: string;
  data?: Uint8Array;
  width?: number;
  height?: number;
  threadId?: number;
}

function mainThreadPool(): DecodePool {
  return {
    threads: 0,
    async decode(path) {
      const t = await readImage(path);
      try {
        const [height, width] = t.shape;
        return { data: Uint8Array.from(t.dataSync()), height, width, channels: 3, threadId: 0 };
      } finally {
        t.dispose();
      }
    },
    async close() {},
  };
}

/**
 * Start a {@link DecodePool} of `threads` workers (default 2; 0 decodes on the calling thread). Each
 * decode goes to the worker with the fewest pending files. Close it when done.
 */
export async function createDecodePool(opts: { threads?: number } = {}): Promise<DecodePool> {
  const threads = opts.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 0)
    throw new VisBackbonesError(`createDecodePool: threads must be a non-negative integer, got ${threads}`);
  if (threads === 0 || !isNode) return mainThreadPool();
  let sharpPath: string;
  let Worker: new (src: string, o: { eval: true; workerData: unknown }) => WorkerLike;
  try {
    const { createRequire } = await import('node:module');
    // resolve sharp from this package (the workers run eval'd code, without a module location)
    const req = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
    sharpPath = req.resolve('sharp');
    Worker = (await import('node:worker_threads')).Worker as unknown as typeof Worker;
  } catch {
    return mainThreadPool();
  }
  const pending = new Map<number, { resolve: (v: U8Image & { threadId: number }) => void; reject: (e: Error) => void; worker: number }>();
  const load = new Array<number>(threads).fill(0);
  let nextId = 0;
  let closed = false;
  const workers: WorkerLike[] = [];
  for (let i = 0; i < threads; i++) {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { sharpPath } });
    w.unref();
    w.on('message', (m) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      // a worker with work keeps the process alive (an idle one does not)
      if (--load[p.worker] === 0) workers[p.worker].unref();
      if (m.error !== undefined) p.reject(new VisBackbonesError(`readImage: ${m.error}`));
      else p.resolve({ data: m.data!, width: m.width!, height: m.height!, channels: 3, threadId: m.threadId! });
    });
    w.on('error', (e) => {
      for (const [id, p] of pending)
        if (p.worker === i) {
          pending.delete(id);
          p.reject(new VisBackbonesError(`decode worker ${i} failed: ${e.message}`));
        }
      load[i] = 0;
      w.unref();
    });
    workers.push(w);
  }
  return {
    threads,
    decode(path) {
      if (closed) return Promise.reject(new VisBackbonesError('decode pool is closed'));
      let k = 0;
      for (let i = 1; i < threads; i++) if (load[i] < load[k]) k = i;
      const id = nextId++;
      if (load[k]++ === 0) workers[k].ref();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, worker: k });
        workers[k].postMessage({ id, path });
      });
    },
    async close() {
      closed = true;
      for (const [id, p] of pending) {
        pending.delete(id);
        p.reject(new VisBackbonesError('decode pool closed'));
      }
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
