// The onnxruntime-web side of the peers suite (bench/suites/18-peers.ts), in a worker thread of its own:
// onnxruntime-web fixes its thread count when its wasm module starts, so each thread count gets a worker.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-web';

ort.env.wasm.numThreads = workerData.threads;
ort.env.logLevel = 'error';
const sessions = new Map();

parentPort.on('message', async (msg) => {
  try {
    if (msg.cmd === 'load') {
      const s = await ort.InferenceSession.create(msg.path, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      sessions.set(msg.path, s);
      parentPort.postMessage({ ok: true, inputs: s.inputNames, outputs: s.outputNames });
    } else if (msg.cmd === 'run') {
      const s = sessions.get(msg.path);
      const x = new ort.Tensor('float32', msg.input, msg.shape);
      const t0 = performance.now();
      const r = await s.run({ [s.inputNames[0]]: x });
      const ms = performance.now() - t0;
      const out = r[s.outputNames[0]];
      parentPort.postMessage({ ok: true, ms, output: msg.keep ? out.data : null });
    } else if (msg.cmd === 'close') {
      for (const s of sessions.values()) await s.release();
      parentPort.postMessage({ ok: true });
    }
  } catch (e) {
    parentPort.postMessage({ ok: false, error: String(e?.message ?? e) });
  }
});
