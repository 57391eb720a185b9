/**
 * WebGPU check: runs every golden case of test/fixtures and a small benchmark on tfjs's `webgpu`
 * backend in plain Node, with WebGPU provided by the `webgpu` npm package (Dawn as `dawn.node`).
 *
 * It is bundled into one file by gpu/build.mjs (tfjs core + cpu + webgpu backends + our src + the
 * test helpers) and meant to be run by gpu/run.sh on a machine that has a GPU but no Node setup:
 *
 *     node .gpu/webgpuCheck.mjs OUT_DIR [--time-limit=S] [--skip-fixtures] [--skip-bench]
 *          [--cases=a,b] [--bench=matmul,profile,fwd,train] [--models=a,b] [--batches=1,8]
 *          [--matmul=1024,4096] [--dawn=flag,flag] [--probe] [--skip-train-smoke]
 *          [--train-model=NAME --train-size=PX --train-batch=N] [--tf-flags=NAME=value,...]
 *          [--profile] [--profile-models=a,b] [--out-name=webgpu-check]
 *
 * Environment: `VB_GPU_OUT` (output folder when no argument), `VB_TIME_LIMIT` (seconds),
 * `WEBGPU_MODULE` (path of the `webgpu` package's index.js; default .gpu-cache/webgpu/index.js of
 * the repo, where gpu/pack.sh unpacks it), `VB_TF_FLAGS` (as `--tf-flags`), `VB_DAWN_FLAGS`
 * (comma-separated `create()` options, e.g. `backend=vulkan`),
 * `VB_REPO_ROOT` (the repo, whose test/fixtures are read; default: the bundle's parent folder).
 *
 * Fixture parity follows test/helpers/fixtureParity.ts and test/pretrain/*.test.ts exactly: every
 * output within the case's own `atol` / `rtol` (never loosened), complete checkpoint loading, no
 * leaked tensors, byte-identical state-dict round trip, featuresOnly levels. A failing case is
 * recorded and the next one runs. Results go to OUT_DIR/webgpu-check.json (rewritten after every
 * step) and OUT_DIR/webgpu-check.log (appended line by line).
 *
 * Exit code: 0 every fixture passed, 1 some fixture failed, 3 no WebGPU adapter / backend, 2 crash.
 */
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Backbone } from '../src/models/backbone.js';
import '../src/index.js';
import { createModel, getFamily, listFamilies } from '../src/models/registry.js';
import { countDispatches } from '../src/backends/webgpu/dispatchCounter.js';
import { registerWebgpuKernels, WEBGPU_KERNEL_NAMES } from '../src/backends/webgpu/kernels.js';
import { fcmaeLoss } from '../src/pretrain/fcmaeLoss.js';
import { evaLoss, milanLoss } from '../src/pretrain/featureLosses.js';
import { hogTargets } from '../src/pretrain/hog.js';
import { repeatMask } from '../src/pretrain/maskUtils.js';
import { mixmimLoss, mixWithPartner } from '../src/pretrain/mixmimLoss.js';
import { simmimLoss } from '../src/pretrain/simmimLoss.js';
import { simmimMask, simmimMaskGeometry } from '../src/pretrain/simmimMask.js';
import { loadTimmWeights } from '../src/weights/loadTimmWeights.js';
import { readSafetensors, writeSafetensors } from '../src/weights/safetensors.js';
import { FAMILIES } from '../test/helpers/families.js';
import { backboneOutputs, expectedOutput, featureLevels } from '../test/helpers/backboneOutputs.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../test/helpers/fixtures.js';
import { BENCH_MODELS } from './benchModels.js';
import flopsFile from './flops.json';

// ---------------------------------------------------------------------------------------------
// options, output

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const a = argv.find((s) => s === `--${name}` || s.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.includes('=') ? a.slice(a.indexOf('=') + 1) : '';
};
const list = (v: string | undefined): string[] | undefined =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;

const OUT = resolve(argv.find((a) => !a.startsWith('--')) ?? process.env.VB_GPU_OUT ?? 'gpu-out');
const TIME_LIMIT_S = Number(flag('time-limit') ?? process.env.VB_TIME_LIMIT ?? 270);
const SKIP_FIXTURES = flag('skip-fixtures') !== undefined;
const SKIP_BENCH = flag('skip-bench') !== undefined;
const PROBE = flag('probe') !== undefined; // only set up WebGPU and print the adapter
const CASES = list(flag('cases'));
const BENCH_PARTS = list(flag('bench')) ?? ['matmul', 'profile', 'fwd', 'train'];
if (flag('profile') !== undefined && !BENCH_PARTS.includes('profile'))
  BENCH_PARTS.splice(BENCH_PARTS.includes('matmul') ? 1 : 0, 0, 'profile');
const PROFILE_MODELS = list(flag('profile-models')) ?? ['swinv2_tiny_window8_256', 'convnextv2_atto'];
/** `--profile-batches=1,8`: the batch sizes of the profile part (default 1). */
const PROFILE_BATCHES = (list(flag('profile-batches')) ?? ['1']).map(Number);
/** `--tf-flags=NAME=value,...`: tfjs environment flags set before the webgpu backend initialises. */
const TF_FLAGS = list(flag('tf-flags') ?? process.env.VB_TF_FLAGS) ?? [];
/** Base name of the two result files (`<name>.json`, `<name>.log`), so a second run can share OUT. */
const OUT_NAME = flag('out-name') || 'webgpu-check';
const SKIP_TRAIN_SMOKE = flag('skip-train-smoke') !== undefined;
/** `--vb-kernels=on`: register our WGSL kernels (src/backends/webgpu) before anything runs; default off (tfjs's kernels only). */
const VB_KERNELS = (flag('vb-kernels') ?? process.env.VB_KERNELS ?? 'off') === 'on';
const TRAIN_MODEL = flag('train-model') ?? 'swinv2_tiny_window8_256';
const TRAIN_SIZE = Number(flag('train-size') ?? 256);
const TRAIN_BATCH = Number(flag('train-batch') ?? 8);
const MODELS = list(flag('models'));
const BATCHES = (list(flag('batches')) ?? ['1', '8']).map(Number);
const MATMUL_SIZES = (list(flag('matmul')) ?? ['1024', '4096']).map(Number);
const DAWN_FLAGS = list(flag('dawn')) ?? list(process.env.VB_DAWN_FLAGS) ?? [];
const BUNDLE_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(process.env.VB_REPO_ROOT ?? join(BUNDLE_DIR, '..'));
const WEBGPU_MODULE = resolve(flag('webgpu-module') ?? process.env.WEBGPU_MODULE ?? join(REPO, '.gpu-cache', 'webgpu', 'index.js'));

const T0 = performance.now();
const elapsed = () => (performance.now() - T0) / 1000;
const remaining = () => TIME_LIMIT_S - elapsed();

mkdirSync(OUT, { recursive: true });
const LOG = join(OUT, `${OUT_NAME}.log`);
const JSON_OUT = join(OUT, `${OUT_NAME}.json`);
writeFileSync(LOG, '');

/** Print a line to stdout and append it to the log file at once (so a killed run keeps it). */
function log(msg: string): void {
  const line = `[${elapsed().toFixed(1).padStart(6)}s] ${msg}`;
  console.log(line);
  appendFileSync(LOG, line + '\n');
}

interface OutputResult {
  maxAbsErr: number;
  worstExcess: number;
  pass: boolean;
  error?: string;
}
interface CaseResult {
  case: string;
  kind: 'backbone' | 'pretrain';
  atol?: number;
  rtol?: number;
  outputs: Record<string, OutputResult>;
  checks: Record<string, { pass: boolean; detail?: string }>;
  gpuErrors: string[];
  seconds: number;
  pass: boolean;
  error?: string;
}
interface BenchResult {
  name: string;
  batch?: number;
  secondsPerCall?: number;
  imgsPerSec?: number;
  gflopPerImg?: number;
  gflops?: number;
  firstCallSeconds?: number;
  reps?: number;
  note?: string;
  error?: string;
  skipped?: string;
}

const results = {
  tool: 'visbackbones gpu/webgpuCheck',
  startedAt: new Date().toISOString(),
  node: process.version,
  argv,
  timeLimitS: TIME_LIMIT_S,
  dawnFlags: DAWN_FLAGS,
  webgpuModule: WEBGPU_MODULE,
  adapter: null as Record<string, unknown> | null,
  backend: null as string | null,
  tfjsFlags: {} as Record<string, unknown>,
  tfFlagsSet: {} as Record<string, unknown>,
  fixtures: [] as CaseResult[],
  fixtureSummary: { passed: 0, failed: 0, failedCases: [] as string[] },
  bench: [] as BenchResult[],
  profile: [] as ProfileResult[],
  vbKernels: [] as string[],
  dispatches: [] as Array<{ model: string; batch: number; dispatches: number; byProgram: Record<string, number> }>,
  flopsSource: flopsFile.counter,
  errors: [] as string[],
  finished: false,
  elapsedS: 0,
};

/** Rewrite the JSON result file (after every step). */
function save(): void {
  results.elapsedS = Number(elapsed().toFixed(2));
  writeFileSync(JSON_OUT, JSON.stringify(results, null, 1));
}

const errText = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message}${e.stack ? '\n' + e.stack.split('\n').slice(1, 6).join('\n') : ''}` : String(e);

// ---------------------------------------------------------------------------------------------
// WebGPU in Node

/** GPU errors (validation, out-of-memory, device lost) reported since the last call. */
const gpuErrors: string[] = [];
function takeGpuErrors(): string[] {
  return gpuErrors.splice(0, gpuErrors.length);
}

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

/** The GPU adapter's description: info fields, features, the limits tfjs asks for. */
function describeAdapter(adapter: GPUAdapter): Record<string, unknown> {
  const info = (adapter as unknown as { info?: GPUAdapterInfo }).info;
  const pick = (o: object | undefined, keys: string[]) =>
    Object.fromEntries(keys.map((k) => [k, (o as Record<string, unknown> | undefined)?.[k]]));
  return {
    ...pick(info, ['vendor', 'architecture', 'device', 'description', 'subgroupMinSize', 'subgroupMaxSize', 'isFallbackAdapter']),
    features: [...adapter.features].sort(),
    limits: pick(adapter.limits, [
      'maxBufferSize',
      'maxStorageBufferBindingSize',
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'maxComputeWorkgroupSizeX',
      'maxComputeWorkgroupsPerDimension',
      'maxStorageBuffersPerShaderStage',
    ]),
  };
}

/**
 * Set the `--tf-flags` (NAME=value; value parsed as the flag's registered type: boolean, number or
 * string). Called after the webgpu backend module registered its flags and before the backend
 * initialises. Throws (exit code 2) on an unknown flag or a value of the wrong type.
 */
function applyTfFlags(): void {
  const env = tf.env() as unknown as { flagRegistry: Record<string, unknown>; get(n: string): unknown; set(n: string, v: unknown): void };
  for (const item of TF_FLAGS) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const text = eq < 0 ? 'true' : item.slice(eq + 1);
    if (!(name in env.flagRegistry)) {
      const known = Object.keys(env.flagRegistry)
        .filter((k) => k.startsWith('WEBGPU'))
        .join(', ');
      throw new Error(`--tf-flags: unknown tfjs flag ${name} (webgpu flags: ${known})`);
    }
    const current = env.get(name);
    let value: boolean | number | string = text;
    if (typeof current === 'boolean') {
      if (text !== 'true' && text !== 'false') throw new Error(`--tf-flags: ${name} is boolean, got "${text}"`);
      value = text === 'true';
    } else if (typeof current === 'number') {
      value = Number(text);
      if (text.trim() === '' || !Number.isFinite(value)) throw new Error(`--tf-flags: ${name} is a number, got "${text}"`);
    }
    env.set(name, value);
    results.tfFlagsSet[name] = value;
    log(`tfjs flag ${name} = ${JSON.stringify(value)} (default ${JSON.stringify(current)})`);
  }
}

/**
 * Load dawn.node, install `navigator.gpu` and the WebGPU globals the way the `webgpu` package
 * documents, print the adapter, then register and select tfjs's webgpu backend. Returns false (after
 * printing what Dawn says) when there is no adapter or the backend does not initialise.
 */
async function setupWebGPU(): Promise<boolean> {
  log(`loading ${WEBGPU_MODULE} (dawn flags: ${JSON.stringify(DAWN_FLAGS)})`);
  const dawn = (await import(pathToFileURL(WEBGPU_MODULE).href)) as DawnModule;
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create(DAWN_FLAGS);
  // Node 20 has no navigator; newer Node has one without `gpu`: replace it by a plain object.
  const nav = { ...((globalThis as { navigator?: object }).navigator ?? {}), gpu, userAgent: `node ${process.version}` };
  Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });

  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    log(`requestAdapter threw: ${errText(e)}`);
  }
  if (!adapter) {
    log('NO WEBGPU ADAPTER. Dawn diagnostics follow.');
    results.errors.push('no WebGPU adapter');
    // Dawn lists the adapters it sees when asked for one that does not exist (package README)
    for (const extra of [['adapter=__list_adapters__'], ['backend=vulkan'], ['backend=__list_backends__']]) {
      try {
        const g = dawn.create([...DAWN_FLAGS, ...extra]);
        const a = await g.requestAdapter();
        log(`create(${JSON.stringify(extra)}): adapter ${a ? JSON.stringify(describeAdapter(a)) : 'null'}`);
      } catch (e) {
        log(`create(${JSON.stringify(extra)}) -> ${errText(e)}`);
      }
    }
    save();
    return false;
  }
  results.adapter = describeAdapter(adapter);
  log(`adapter: ${JSON.stringify(results.adapter)}`);
  save();

  // the backend registers itself only if navigator.gpu exists when its module is evaluated
  await import('@tensorflow/tfjs-backend-webgpu');
  applyTfFlags();
  let ok = false;
  try {
    ok = await tf.setBackend('webgpu');
    await tf.ready();
  } catch (e) {
    log(`setBackend('webgpu') threw: ${errText(e)}`);
  }
  if (!ok || tf.getBackend() !== 'webgpu') {
    log(`tfjs webgpu backend did not initialise (backend now: ${tf.getBackend()})`);
    results.errors.push('tfjs webgpu backend did not initialise');
    save();
    return false;
  }
  const backend = tf.backend() as unknown as { device: GPUDevice; adapterInfo?: unknown };
  const device = backend.device;
  device.addEventListener?.('uncapturederror', (ev: Event) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    const msg = `${e?.constructor?.name ?? 'GPUError'}: ${e?.message ?? String(e)}`;
    if (gpuErrors.length < 50) gpuErrors.push(msg);
    log(`GPU ERROR ${msg.split('\n')[0]}`);
  });
  void device.lost?.then((info) => log(`GPU DEVICE LOST: ${info.reason} ${info.message}`));
  results.backend = tf.getBackend();
  const registry = (tf.env() as unknown as { flagRegistry: Record<string, unknown> }).flagRegistry ?? {};
  results.tfjsFlags = Object.fromEntries(
    Object.keys(registry)
      .filter((k) => k.startsWith('WEBGPU'))
      .map((k) => [k, tf.env().get(k)]),
  );
  log(`tfjs backend: ${tf.getBackend()} (tfjs ${tf.version.tfjs}); flags ${JSON.stringify(results.tfjsFlags)}`);
  save();
  return true;
}

// ---------------------------------------------------------------------------------------------
// fixtures

/** Compare `actual` with `expected` under the case's own tolerances (after reading both back asynchronously). */
async function cmp(res: CaseResult, name: string, actual: tf.Tensor, expected: tf.Tensor, atol: number, rtol: number): Promise<void> {
  try {
    // webgpu's dataSync needs OffscreenCanvas (absent in Node): read back asynchronously first, then
    // the shared `compare` reads the cached values
    await Promise.all([actual.data(), expected.data()]);
    const r = compare(actual, expected, atol, rtol);
    res.outputs[name] = { maxAbsErr: r.maxAbsErr, worstExcess: r.worstExcess, pass: r.worstExcess <= 0 };
  } catch (e) {
    res.outputs[name] = { maxAbsErr: NaN, worstExcess: Infinity, pass: false, error: errText(e) };
  }
}

function checkThat(res: CaseResult, name: string, pass: boolean, detail?: string): void {
  res.checks[name] = detail === undefined ? { pass } : { pass, detail };
}

/** test/helpers/fixtureParity.ts's three tests of a backbone case, on the active backend. */
async function backboneCase(res: CaseResult, fx: Fixture, build: (config: any) => Backbone): Promise<void> {
  const { atol, rtol } = fx.case;
  res.atol = atol;
  res.rtol = rtol;
  const nFeat = featureLevels(fx);
  const model = build(fx.case.config);
  const fo = build({ ...fx.case.config, featuresOnly: true, outIndices: Array.from({ length: nFeat }, (_, i) => i) });
  const x = nchwToNhwc(fx.io.input);
  try {
    const loaded = loadTimmWeights(model, fx.weightsBytes!);
    checkThat(
      res,
      'all tensors loaded',
      loaded.loaded.length === fx.case.weights.num_tensors,
      `${loaded.loaded.length} of ${fx.case.weights.num_tensors}`,
    );
    checkThat(res, 'none skipped', loaded.skipped.length === 0, loaded.skipped.join(','));
    loadTimmWeights(fo, fx.weightsBytes!);

    const before = tf.memory().numTensors;
    const run = backboneOutputs(fx, model, fo, x);
    checkThat(res, 'levels', run.levels[0] === nFeat && run.levels[1] === nFeat, `${run.levels.join(', ')} of ${nFeat}`);
    for (const { name, actual, ref } of run.outputs) {
      const exp = expectedOutput(fx, ref);
      await cmp(res, name, actual, exp, atol, rtol);
      exp.dispose();
    }
    const missing = Object.keys(fx.case.outputs).filter((k) => k !== 'input' && !(k in res.outputs));
    checkThat(res, 'every output compared', missing.length === 0, missing.join(','));
    run.dispose();
    checkThat(res, 'no leaked tensors (forward)', tf.memory().numTensors === before, `${tf.memory().numTensors - before} more`);
  } finally {
    x.dispose();
    fo.dispose();
  }

  // byte-identical state-dict round trip (model already holds the reference weights)
  try {
    const sd = model.stateDict();
    await Promise.all(Object.values(sd).map((t) => t.data()));
    const back = readSafetensors(writeSafetensors(sd));
    const ref = readSafetensors(fx.weightsBytes!);
    await Promise.all([...Object.values(back), ...Object.values(ref)].map((t) => t.data()));
    const keysEqual = Object.keys(back).sort().join('|') === Object.keys(ref).sort().join('|');
    const differing: string[] = [];
    for (const k of Object.keys(ref)) {
      const b = back[k];
      if (!b || b.shape.join(',') !== ref[k].shape.join(',')) {
        differing.push(k);
        continue;
      }
      const ab = Buffer.from(new Uint8Array((b.dataSync() as Float32Array).slice().buffer));
      const rb = Buffer.from(new Uint8Array((ref[k].dataSync() as Float32Array).slice().buffer));
      if (Buffer.compare(ab, rb) !== 0) differing.push(k);
    }
    checkThat(res, 'state dict round trip byte-identical', keysEqual && differing.length === 0, differing.slice(0, 5).join(','));
    tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
  } catch (e) {
    checkThat(res, 'state dict round trip byte-identical', false, errText(e));
  } finally {
    model.dispose();
  }

  {
    const m = build({ ...fx.case.config, featuresOnly: true, outIndices: [1, -1] });
    const full = build(fx.case.config);
    const headKeys = full
      .namedParameters()
      .map(([k]) => k)
      .filter((k) => m.headPrefixes.some((p) => k.startsWith(p)));
    full.dispose();
    const x2 = nchwToNhwc(fx.io.input);
    try {
      const r = loadTimmWeights(m, fx.weightsBytes!);
      checkThat(
        res,
        'featuresOnly skips exactly the head',
        m.numClasses === 0 && [...r.skipped].sort().join(',') === [...headKeys].sort().join(','),
        r.skipped.join(','),
      );
      const outs = m.forward(x2) as tf.Tensor4D[];
      checkThat(res, 'featuresOnly [1, -1] returns 2 levels', outs.length === 2);
      const last = nFeat - 1;
      for (const [i, s] of [1, last].entries()) {
        if (!outs[i]) continue;
        const exp = expectedOutput(fx, `features.${s}`);
        await cmp(res, `featuresOnly[1,-1].${i}`, outs[i], exp, atol, rtol);
        exp.dispose();
      }
      tf.dispose(outs);
    } finally {
      x2.dispose();
      m.dispose();
    }
  }
}

/** Count of ones of a flat 0/1 grid sampled every `scale` (block grid), and whether blocks are constant. */
function blockGrid(m: ArrayLike<number>, size: number, scale: number): { cells: number[]; constant: boolean } {
  const r = size / scale;
  const cells: number[] = [];
  let constant = true;
  for (let a = 0; a < r; a++) {
    for (let b = 0; b < r; b++) {
      const v = m[a * scale * size + b * scale];
      for (let i = 0; i < scale; i++) for (let j = 0; j < scale; j++) constant &&= m[(a * scale + i) * size + b * scale + j] === v;
      cells.push(v);
    }
  }
  return { cells, constant };
}
const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);

/** test/pretrain/fixtures.test.ts and the simmim_mask test of test/pretrain/masks.test.ts, on the active backend. */
async function pretrainCase(res: CaseResult, fx: Fixture): Promise<void> {
  const { atol, rtol } = fx.case;
  res.atol = atol;
  res.rtol = rtol;
  const c = (name: string, a: tf.Tensor, e: tf.Tensor) => cmp(res, name, a, e, atol, rtol);
  const leak = (before: number, made: number) =>
    checkThat(res, 'no leaked tensors', tf.memory().numTensors === before + made, `${tf.memory().numTensors - before - made} more`);
  switch (fx.name) {
    case 'hog_64': {
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const cfg = fx.case.config;
      const hog = hogTargets(x, { nbins: cfg.nbins, pool: cfg.pool, gaussianWindow: cfg.gaussianWindow, normalize: true });
      const raw = hogTargets(x, { nbins: cfg.nbins, pool: cfg.pool, gaussianWindow: cfg.gaussianWindow, normalize: false });
      leak(before, 2);
      const e1 = nchwToNhwc(fx.io.hog);
      const e2 = nchwToNhwc(fx.io.hog_unnormalized);
      await c('hog', hog, e1);
      await c('hog_unnormalized', raw, e2);
      tf.dispose([hog, raw, e1, e2, x]);
      return;
    }
    case 'simmim_loss_64': {
      const x = nchwToNhwc(fx.io.x);
      const rec = nchwToNhwc(fx.io.x_rec);
      const before = tf.memory().numTensors;
      const loss = simmimLoss(x, rec, fx.io.mask, { patchSize: fx.case.config.patchSize });
      leak(before, 1);
      checkThat(res, 'scalar', loss.shape.length === 0);
      const l1 = loss.reshape([1]);
      await c('simmim_loss', l1, fx.io.loss);
      tf.dispose([loss, l1, x, rec]);
      return;
    }
    case 'mixmim_loss_64': {
      const x = nchwToNhwc(fx.io.x);
      const grid = fx.io.mask_grid as tf.Tensor2D;
      const stride = fx.case.config.encoderStride;
      const before = tf.memory().numTensors;
      const loss = mixmimLoss(x, fx.io.x_rec, grid, { patchSize: stride, normPixLoss: true });
      const lossRaw = mixmimLoss(x, fx.io.x_rec, grid, { patchSize: stride, normPixLoss: false });
      leak(before, 2);
      const tmp: tf.Tensor[] = [];
      const keep = <T extends tf.Tensor>(t: T) => (tmp.push(t), t);
      await c('mixmim_loss', keep(loss.reshape([1])), fx.io.loss);
      await c('mixmim_loss_unnormalized_target', keep(lossRaw.reshape([1])), fx.io.loss_unnormalized_target);
      await c('mask', keep(grid.reshape([1, -1, 1])), fx.io.mask);
      for (const [name, f] of [
        ['mask_s1', 8],
        ['mask_s2', 4],
        ['mask_s3', 2],
      ] as const) {
        const up = keep(repeatMask(grid, f));
        await c(name, keep(up.reshape([1, -1, 1])), fx.io[name]);
      }
      const mp = keep(repeatMask(grid, stride));
      const mixed = keep(mixWithPartner(x, mp));
      const em = keep(nchwToNhwc(fx.io.x_mixed));
      await c('x_mixed', mixed, em);
      tf.dispose([loss, lossRaw, x, ...tmp]);
      return;
    }
    case 'fcmae_loss_64': {
      const x = nchwToNhwc(fx.io.imgs);
      const p = fx.case.config.patchSize;
      const predMap = nchwToNhwc(fx.io.pred);
      const before = tf.memory().numTensors;
      const loss = fcmaeLoss(x, fx.io.pred_tokens, fx.io.mask_grid, { patchSize: p, normPixLoss: true });
      const lossMap = fcmaeLoss(x, predMap, fx.io.mask_grid, { patchSize: p, normPixLoss: true });
      const lossRaw = fcmaeLoss(x, fx.io.pred_tokens, fx.io.mask_grid, { patchSize: p, normPixLoss: false });
      leak(before, 3);
      const r = [loss.reshape([1]), lossMap.reshape([1]), lossRaw.reshape([1]), fx.io.mask_grid.reshape([2, -1])];
      await c('fcmae_loss', r[0], fx.io.loss);
      await c('fcmae_loss_from_map', r[1], fx.io.loss);
      await c('fcmae_loss_unnormalized_target', r[2], fx.io.loss_unnormalized_target);
      await c('fcmae_mask', r[3], fx.io.mask);
      tf.dispose([loss, lossMap, lossRaw, predMap, x, ...r]);
      return;
    }
    case 'milan_loss_17x32': {
      const before = tf.memory().numTensors;
      const loss = milanLoss(fx.io.pred, fx.io.teacher);
      leak(before, 1);
      const l1 = loss.reshape([1]);
      await c('milan_loss', l1, fx.io.loss);
      tf.dispose([loss, l1]);
      return;
    }
    case 'eva_loss_4x4': {
      const mask3 = fx.io.mask.reshape([2, 4, 4]);
      const before = tf.memory().numTensors;
      const loss = evaLoss(fx.io.student, fx.io.teacher, fx.io.mask);
      const loss3 = evaLoss(fx.io.student, fx.io.teacher, mask3);
      leak(before, 2);
      const r = [loss.reshape([1]), loss3.reshape([1])];
      await c('eva_loss', r[0], fx.io.loss);
      await c('eva_loss_grid_mask', r[1], fx.io.loss);
      tf.dispose([loss, loss3, mask3, ...r]);
      return;
    }
    case 'simmim_mask_swin192': {
      // structural (the generator is random): geometry, exact masked count, constant 8x8 blocks
      const d = fx.case.derived;
      const g = simmimMaskGeometry(fx.case.config);
      checkThat(
        res,
        'geometry',
        [g.randSize, g.scale, g.tokenCount, g.maskCount].join() === [d.rand_size, d.scale, d.token_count, d.mask_count].join(),
      );
      const before = tf.memory().numTensors;
      let ok = true;
      const bad: string[] = [];
      for (let seed = 0; seed < 8; seed++) {
        const m = simmimMask({ ...fx.case.config, seed });
        const v = await m.data();
        const bg = blockGrid(v, d.mask_shape[0], d.scale);
        const good =
          m.shape.join() === d.mask_shape.join() &&
          Array.from(v).every((t) => t === 0 || t === 1) &&
          sum(v) === d.mask_count * d.scale * d.scale &&
          bg.constant &&
          sum(bg.cells) === d.mask_count;
        if (!good) bad.push(`seed ${seed}`);
        ok &&= good;
        m.dispose();
      }
      checkThat(res, 'masks: shape, 0/1, exact count, constant blocks', ok, bad.join(','));
      leak(before, 0);
      return;
    }
    default:
      throw new Error(`no check for pretraining case ${fx.name}`);
  }
}

/**
 * The backbone golden cases: every case of test/fixtures whose `arch` is a registered family, built by
 * that family's factory; the head keys are the checkpoint's keys under the model's `headPrefixes`.
 */
const FAMILY_NAMES = new Set(listFamilies().map((f) => f.name));
const BACKBONE_CASES: Array<{ name: string; build: (config: any) => Backbone }> = readdirSync(join(REPO, 'test', 'fixtures'))
  .filter((d) => existsSync(join(REPO, 'test', 'fixtures', d, 'case.json')))
  .map((d) => ({ name: d, arch: JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', d, 'case.json'), 'utf8')).arch as string }))
  .filter((c) => FAMILY_NAMES.has(c.arch))
  .map((c) => ({ name: c.name, build: (config: any) => getFamily(c.arch).create(config) }));
const PRETRAIN_CASES = [
  'hog_64',
  'simmim_mask_swin192',
  'simmim_loss_64',
  'mixmim_loss_64',
  'fcmae_loss_64',
  'milan_loss_17x32',
  'eva_loss_4x4',
];

async function runFixtures(): Promise<void> {
  const all = [
    ...BACKBONE_CASES.map((c) => ({ ...c, kind: 'backbone' as const })),
    ...PRETRAIN_CASES.map((name) => ({ name, kind: 'pretrain' as const })),
  ];
  for (const c of all) {
    if (CASES && !CASES.includes(c.name)) continue;
    const res: CaseResult = { case: c.name, kind: c.kind, outputs: {}, checks: {}, gpuErrors: [], seconds: 0, pass: false };
    results.fixtures.push(res);
    if (remaining() < 5) {
      res.error = 'skipped: time limit';
      log(`fixture ${c.name}: SKIPPED (time limit)`);
      save();
      continue;
    }
    const t0 = performance.now();
    log(`fixture ${c.name} ...`);
    let fx: Fixture | null = null;
    const startTensors = tf.memory().numTensors;
    try {
      fx = loadFixture(c.name);
      if (c.kind === 'backbone') await backboneCase(res, fx, (c as (typeof BACKBONE_CASES)[number]).build);
      else await pretrainCase(res, fx);
    } catch (e) {
      res.error = errText(e);
    } finally {
      fx?.dispose();
    }
    res.gpuErrors = takeGpuErrors();
    res.seconds = Number(((performance.now() - t0) / 1000).toFixed(2));
    const outs = Object.values(res.outputs);
    const structural = c.name === 'simmim_mask_swin192'; // compared by structure only, no value outputs
    res.pass =
      !res.error &&
      (structural || outs.length > 0) &&
      outs.every((o) => o.pass) &&
      Object.values(res.checks).every((k) => k.pass) &&
      res.gpuErrors.length === 0;
    const errs = Object.entries(res.outputs)
      .map(([k, o]) => `${k}=${o.maxAbsErr.toExponential(2)}${o.pass ? '' : '(FAIL)'}`)
      .join(' ');
    const badChecks = Object.entries(res.checks)
      .filter(([, k]) => !k.pass)
      .map(([n, k]) => `${n}${k.detail ? ` [${k.detail}]` : ''}`);
    log(
      `fixture ${c.name}: ${res.pass ? 'PASS' : 'FAIL'} in ${res.seconds}s (atol ${res.atol}, rtol ${res.rtol}) max abs err: ${errs}` +
        (badChecks.length ? ` | failed checks: ${badChecks.join('; ')}` : '') +
        (res.error ? ` | error: ${res.error}` : '') +
        (res.gpuErrors.length ? ` | gpu errors: ${res.gpuErrors.length}` : ''),
    );
    for (const [k, o] of Object.entries(res.outputs)) if (o.error) log(`   ${k}: ${o.error}`);
    if (tf.memory().numTensors !== startTensors) log(`   (tensor count ${startTensors} -> ${tf.memory().numTensors} across the case)`);
    if (res.pass) results.fixtureSummary.passed++;
    else {
      results.fixtureSummary.failed++;
      results.fixtureSummary.failedCases.push(c.name);
    }
    save();
  }
  log(
    `fixtures: ${results.fixtureSummary.passed} passed, ${results.fixtureSummary.failed} failed${results.fixtureSummary.failed ? ` (${results.fixtureSummary.failedCases.join(', ')})` : ''}`,
  );
}

// ---------------------------------------------------------------------------------------------
// training smoke: every backward kernel a family needs exists on webgpu and gives finite gradients

interface TrainSmokeResult {
  family: string;
  loss?: number;
  variables?: number;
  gradNorm?: number;
  nonFinite?: string[];
  zeroGrads?: number;
  leaked?: number;
  seconds: number;
  pass: boolean;
  error?: string;
}

/**
 * One SGD step of the tiny configuration of every family (test/helpers/families.ts, 64 px, batch 2,
 * 10 classes): loss and every gradient finite, no leaked tensors. Gradient values are not compared
 * (no reference); the norms are reported.
 */
async function runTrainSmoke(): Promise<void> {
  const out: TrainSmokeResult[] = [];
  (results as unknown as { trainSmoke: TrainSmokeResult[] }).trainSmoke = out;
  for (const fam of FAMILIES) {
    if (remaining() < 20) {
      out.push({ family: fam.name, seconds: 0, pass: false, error: 'skipped: time limit' });
      continue;
    }
    const t0 = performance.now();
    const r: TrainSmokeResult = { family: fam.name, seconds: 0, pass: false };
    out.push(r);
    const before = tf.memory().numTensors;
    let model: Backbone | null = null;
    const opt = tf.train.sgd(1e-3);
    const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 7);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10));
    try {
      model = fam.build(64, { numClasses: 10 });
      const vars = model.trainableVariables();
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(y, model!.forwardLogits(x, { training: true })) as tf.Scalar,
        vars,
      );
      r.loss = (await value.data())[0];
      r.variables = vars.length;
      const names = Object.keys(grads);
      const sqT = names.map((k) => tf.tidy(() => tf.sum(tf.square(grads[k]))));
      const sq = await Promise.all(sqT.map((t) => t.data().then((d) => d[0])));
      tf.dispose(sqT);
      r.nonFinite = names.filter((_, i) => !Number.isFinite(sq[i]));
      r.zeroGrads = sq.filter((v) => v === 0).length;
      r.gradNorm = Math.sqrt(sq.filter(Number.isFinite).reduce((a, b) => a + b, 0));
      opt.applyGradients(grads);
      tf.dispose([value, ...Object.values(grads)]);
      r.pass = Number.isFinite(r.loss) && r.nonFinite.length === 0 && names.length === vars.length && r.gradNorm > 0;
    } catch (e) {
      r.error = errText(e);
    } finally {
      model?.dispose();
      opt.dispose();
      tf.dispose([x, y]);
    }
    const errs = takeGpuErrors();
    if (errs.length) {
      r.pass = false;
      r.error = `${r.error ?? ''} gpu errors: ${errs.join(' | ')}`;
    }
    r.leaked = tf.memory().numTensors - before;
    if (r.leaked !== 0) r.pass = false;
    r.seconds = Number(((performance.now() - t0) / 1000).toFixed(2));
    log(
      `train smoke ${fam.name}: ${r.pass ? 'PASS' : 'FAIL'} in ${r.seconds}s loss ${r.loss?.toFixed(4)} |grad| ${r.gradNorm?.toExponential(3)} over ${r.variables} variables` +
        (r.zeroGrads ? `, ${r.zeroGrads} all-zero` : '') +
        (r.nonFinite?.length ? `, non-finite: ${r.nonFinite.slice(0, 5).join(',')}` : '') +
        (r.leaked ? `, ${r.leaked} tensors left` : '') +
        (r.error ? ` | ${r.error}` : ''),
    );
    save();
  }
}

// ---------------------------------------------------------------------------------------------
// bench

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function addBench(r: BenchResult): void {
  results.bench.push(r);
  const parts = [
    r.batch !== undefined ? `batch ${r.batch}` : '',
    r.imgsPerSec !== undefined ? `${r.imgsPerSec.toFixed(1)} img/s` : '',
    r.secondsPerCall !== undefined ? `${(r.secondsPerCall * 1e3).toFixed(2)} ms/call` : '',
    r.gflops !== undefined ? `${r.gflops.toFixed(1)} GFLOP/s` : '',
    r.firstCallSeconds !== undefined ? `first call ${r.firstCallSeconds.toFixed(2)} s` : '',
    r.reps !== undefined ? `${r.reps} reps` : '',
    r.note ?? '',
    r.skipped ? `SKIPPED: ${r.skipped}` : '',
    r.error ? `ERROR: ${r.error}` : '',
  ].filter(Boolean);
  log(`bench ${r.name}: ${parts.join(', ')}`);
  save();
}

/**
 * Time `fn` (which awaits its own result): the first call (shader compilation) and one more warm-up,
 * then up to `maxReps` calls while the time limit allows and at most ~`budget` s. Median seconds.
 */
async function timeAsync(
  fn: () => Promise<void>,
  budget: number,
  minReps = 3,
  maxReps = 10,
): Promise<{ first: number; median: number; reps: number } | null> {
  let t = performance.now();
  await fn();
  const first = (performance.now() - t) / 1000;
  if (remaining() < first * 2 + 2) return { first, median: NaN, reps: 0 };
  await fn();
  const ts: number[] = [];
  const start = performance.now();
  while (ts.length < maxReps) {
    t = performance.now();
    await fn();
    ts.push((performance.now() - t) / 1000);
    const spent = (performance.now() - start) / 1000;
    if (ts.length >= minReps && spent > budget) break;
    if (remaining() < median(ts) * 2 + 2) break;
  }
  return { first, median: median(ts), reps: ts.length };
}

async function benchMatmul(n: number): Promise<void> {
  const name = `matmul ${n}^3`;
  if (remaining() < 10) return addBench({ name, skipped: 'time limit' });
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  try {
    const flop = 2 * n ** 3;
    // one product, synchronised by reading the result back
    const single = await timeAsync(
      async () => {
        const c = tf.matMul(a, b);
        await c.data();
        c.dispose();
      },
      2,
      3,
      10,
    );
    if (single)
      addBench({
        name: `${name} (each read back)`,
        secondsPerCall: single.median,
        gflops: flop / single.median / 1e9,
        firstCallSeconds: single.first,
        reps: single.reps,
      });
    // k products queued back to back, synchronised once on one element of the last
    const k = n >= 4096 ? 8 : 32;
    const queued = await timeAsync(
      async () => {
        let c: tf.Tensor | null = null;
        for (let i = 0; i < k; i++) {
          const next = tf.matMul(a, b);
          c?.dispose();
          c = next;
        }
        const corner = tf.slice(c!, [0, 0], [1, 1]);
        await corner.data();
        tf.dispose([c!, corner]);
      },
      3,
      3,
      6,
    );
    if (queued)
      addBench({
        name: `${name} (${k} queued, one sync)`,
        secondsPerCall: queued.median / k,
        gflops: (k * flop) / queued.median / 1e9,
        reps: queued.reps,
      });
  } catch (e) {
    addBench({ name, error: errText(e) });
  } finally {
    tf.dispose([a, b]);
  }
}

const FLOPS = flopsFile.models as Record<string, { size: number; gflopPerImg: number }>;
/** Seconds per image of each model's timed forward passes (the fastest batch), for the training-step estimate. */
const fwdSecondsPerImg: Record<string, number> = {};

async function benchForward(name: string, size: number): Promise<void> {
  let model: Backbone | null = null;
  try {
    model = createModel(name) as Backbone;
    const gflopPerImg = FLOPS[name]?.gflopPerImg;
    for (const b of BATCHES) {
      const rname = `${name} fwd`;
      const est = fwdSecondsPerImg[name] !== undefined ? b * fwdSecondsPerImg[name] : 0; // s per call, from a smaller batch
      if (remaining() < 15 || remaining() < 4 * est + 5) {
        addBench({ name: rname, batch: b, skipped: `time limit (${remaining().toFixed(0)} s left)` });
        continue;
      }
      const x = tf.randomNormal([b, size, size, 3]);
      try {
        const r = await timeAsync(
          async () => {
            const y = model!.forwardLogits(x);
            await y.data();
            y.dispose();
          },
          4,
          3,
          10,
        );
        const errs = takeGpuErrors();
        if (r && r.reps > 0) {
          const ips = b / r.median;
          fwdSecondsPerImg[name] = Math.min(fwdSecondsPerImg[name] ?? Infinity, r.median / b);
          addBench({
            name: rname,
            batch: b,
            secondsPerCall: r.median,
            imgsPerSec: ips,
            gflopPerImg,
            gflops: gflopPerImg ? ips * gflopPerImg : undefined,
            firstCallSeconds: r.first,
            reps: r.reps,
            note: errs.length ? `${errs.length} GPU errors` : undefined,
          });
        } else addBench({ name: rname, batch: b, firstCallSeconds: r?.first, skipped: 'time limit after the first call' });
      } catch (e) {
        addBench({ name: rname, batch: b, error: errText(e) });
      } finally {
        x.dispose();
      }
    }
  } catch (e) {
    addBench({ name: `${name} fwd`, error: errText(e) });
  } finally {
    model?.dispose();
  }
}

/** One SGD step (forward in training mode, softmax cross-entropy, all gradients, update) at batch 8, as bench/suites/07-training-step.ts. */
async function benchTrainStep(name: string, size: number, batch = 8): Promise<void> {
  const rname = `${name} train step`;
  // a step costs about 3 forward passes; it needs ~4 steps (first, warm-up, 2 timed)
  const estStep = fwdSecondsPerImg[name] !== undefined ? 3 * batch * fwdSecondsPerImg[name] : 0;
  if (remaining() < 30 || remaining() < 4.5 * estStep + 10) {
    return addBench({
      name: rname,
      batch,
      skipped: `time limit (${remaining().toFixed(0)} s left${estStep ? `, ~${estStep.toFixed(1)} s/step estimated from the forward bench` : ''})`,
    });
  }
  let model: Backbone | null = null;
  const opt = tf.train.sgd(1e-4);
  const xs: tf.Tensor[] = [];
  try {
    model = createModel(name) as Backbone;
    const numClasses = model.numClasses;
    xs.push(tf.randomNormal([batch, size, size, 3]));
    xs.push(
      tf.tidy(() =>
        tf.oneHot(
          tf.tensor1d(
            Array.from({ length: batch }, (_, j) => (j * 37) % numClasses),
            'int32',
          ),
          numClasses,
        ),
      ),
    );
    const vars = model.trainableVariables();
    const losses: number[] = [];
    const step = async () => {
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(xs[1], model!.forwardLogits(xs[0], { training: true })) as tf.Scalar,
        vars,
      );
      opt.applyGradients(grads);
      const v = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
      losses.push(v);
      if (!Number.isFinite(v)) throw new Error(`loss ${v}`);
    };
    const r = await timeAsync(step, 6, 2, 4);
    const gflopPerImg = FLOPS[name] ? 3 * FLOPS[name].gflopPerImg : undefined;
    const errs = takeGpuErrors();
    if (r && r.reps > 0) {
      addBench({
        name: rname,
        batch,
        secondsPerCall: r.median,
        imgsPerSec: batch / r.median,
        gflopPerImg,
        gflops: gflopPerImg ? (batch / r.median) * gflopPerImg : undefined,
        firstCallSeconds: r.first,
        reps: r.reps,
        note: `${r.median.toFixed(3)} s/step, GFLOP counts 3x forward, losses ${losses.map((l) => l.toFixed(4)).join(' ')}${errs.length ? `, ${errs.length} GPU errors` : ''}`,
      });
    } else addBench({ name: rname, batch, firstCallSeconds: r?.first, skipped: 'time limit after the first step' });
  } catch (e) {
    addBench({ name: rname, batch, error: errText(e) });
  } finally {
    tf.dispose(xs);
    opt.dispose();
    model?.dispose();
  }
}

interface ProfileRow {
  name: string;
  count: number;
  dispatches?: number;
  gpuMs: number;
}
interface ProfileResult {
  model: string;
  batch: number;
  /** one plain warm forward (no profiling), synchronised by reading the logits back */
  wallMs?: number;
  /** of which: until forwardLogits returned (JS + encoding + submits), the rest is waiting for the GPU and the read back */
  enqueueMs?: number;
  /** tfjs kernels run by the engine in the profiled forward */
  kernels?: number;
  /** GPU programs dispatched (one per webgpu program run; counted by the backend's timers) */
  dispatches?: number;
  /** kernels that dispatched nothing (reshapes, CPU-forwarded small ops) */
  kernelsWithoutDispatch?: number;
  /** sum of the timestamp-query durations of every program (0 without 'timestamp-query') */
  gpuMs?: number;
  /** wall time of the profiled forward: every program in its own pass + submit + query readback */
  profileWallMs?: number;
  /** tf.time() of the same forward: summed kernel time and wall time */
  timeKernelMs?: number;
  timeWallMs?: number;
  timestampQuery: boolean;
  byKernel: ProfileRow[];
  byProgram: ProfileRow[];
  /** kernels that dispatched no GPU program, by count (top 10) */
  noDispatch: ProfileRow[];
  error?: string;
  skipped?: string;
}

/** Split the webgpu backend's extra profile info ("Program: ms, Program: ms") into (program, ms) pairs. */
function parseProgramTimes(extra: unknown): { name: string; ms: number }[] {
  if (typeof extra !== 'string' || extra === '') return [];
  return extra.split(', ').map((item) => {
    const i = item.lastIndexOf(': ');
    return i < 0 ? { name: item, ms: NaN } : { name: item.slice(0, i), ms: Number(item.slice(i + 2)) };
  });
}

/** Aggregate rows by name, sorted by GPU time (or by count when no GPU time was measured), top `n`. */
function topRows(rows: Map<string, ProfileRow>, byTime: boolean, n = 15): ProfileRow[] {
  const round = (v: number) => Number(v.toFixed(4));
  return [...rows.values()]
    .sort((a, b) => (byTime ? b.gpuMs - a.gpuMs : 0) || b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) // no localeCompare: the packed node may lack ICU data
    .slice(0, n)
    .map((r) => ({ ...r, gpuMs: round(r.gpuMs) }));
}

/**
 * One warm forward of `name` at `batch` under tf.profile (kernels run, GPU programs dispatched, GPU
 * time per kernel / program from the backend's timestamp queries when the adapter has
 * 'timestamp-query'), one under tf.time, and one plain (wall time). Shows whether the GPU is busy for
 * a small part of the wall time (dispatch-bound). Profiled timings are inflated by the timers
 * themselves (a pass, a submit and a query readback per program); the plain forward is the reference.
 */
async function benchProfile(name: string, size: number, batch = 1): Promise<void> {
  const backend = tf.backend() as unknown as { supportTimestampQuery?: boolean };
  const r: ProfileResult = {
    model: name,
    batch,
    timestampQuery: backend.supportTimestampQuery === true,
    byKernel: [],
    byProgram: [],
    noDispatch: [],
  };
  results.profile.push(r);
  if (remaining() < 20) {
    r.skipped = `time limit (${remaining().toFixed(0)} s left)`;
    log(`profile ${name} batch ${batch}: SKIPPED ${r.skipped}`);
    save();
    return;
  }
  let model: Backbone | null = null;
  const before = tf.memory().numTensors;
  const x = tf.randomNormal([batch, size, size, 3]);
  const forward = async () => {
    const y = model!.forwardLogits(x);
    await y.data();
    y.dispose();
  };
  try {
    model = createModel(name) as Backbone;
    await forward(); // shader compilation
    await forward();
    let t = performance.now();
    const y0 = model.forwardLogits(x);
    r.enqueueMs = Number((performance.now() - t).toFixed(2));
    await y0.data();
    r.wallMs = Number((performance.now() - t).toFixed(2));
    y0.dispose();

    t = performance.now();
    const prof = await tf.profile(forward);
    r.profileWallMs = Number((performance.now() - t).toFixed(2));
    const byKernel = new Map<string, ProfileRow>();
    const byProgram = new Map<string, ProfileRow>();
    let dispatches = 0;
    let gpuMs = 0;
    let idle = 0;
    const noDispatch = new Map<string, ProfileRow>();
    for (const k of prof.kernels) {
      const progs = parseProgramTimes(k.extraInfo);
      const ms = Number(k.kernelTimeMs) || 0;
      dispatches += progs.length;
      gpuMs += ms;
      if (progs.length === 0) {
        idle++;
        const nd = noDispatch.get(k.name) ?? { name: k.name, count: 0, gpuMs: 0 };
        nd.count++;
        noDispatch.set(k.name, nd);
      }
      const row = byKernel.get(k.name) ?? { name: k.name, count: 0, dispatches: 0, gpuMs: 0 };
      row.count++;
      row.dispatches! += progs.length;
      row.gpuMs += ms;
      byKernel.set(k.name, row);
      for (const p of progs) {
        const pr = byProgram.get(p.name) ?? { name: p.name, count: 0, gpuMs: 0 };
        pr.count++;
        pr.gpuMs += Number.isFinite(p.ms) ? p.ms : 0;
        byProgram.set(p.name, pr);
      }
    }
    r.kernels = prof.kernels.length;
    r.dispatches = dispatches;
    r.kernelsWithoutDispatch = idle;
    r.gpuMs = Number(gpuMs.toFixed(4));
    const timed = gpuMs > 0;
    r.byKernel = topRows(byKernel, timed);
    r.byProgram = topRows(byProgram, timed);
    r.noDispatch = topRows(noDispatch, false, 10);

    let y: tf.Tensor | null = null;
    const info = await tf.time(() => {
      y = model!.forwardLogits(x);
    });
    await y!.data();
    (y as tf.Tensor | null)?.dispose();
    r.timeKernelMs = typeof info.kernelMs === 'number' ? Number(info.kernelMs.toFixed(4)) : undefined;
    r.timeWallMs = Number(info.wallMs.toFixed(2));
  } catch (e) {
    r.error = errText(e);
  } finally {
    x.dispose();
    model?.dispose();
  }
  const errs = takeGpuErrors();
  if (errs.length) r.error = `${r.error ?? ''} gpu errors: ${errs.join(' | ')}`;
  const leaked = tf.memory().numTensors - before;
  const f = (v: number | undefined, d = 1) => (v === undefined ? '?' : v.toFixed(d));
  log(
    `profile ${name} batch ${batch}: plain forward ${f(r.wallMs)} ms wall (${f(r.enqueueMs)} ms until forwardLogits returned); ${r.kernels ?? '?'} tf kernels, ${r.dispatches ?? '?'} GPU dispatches ` +
      `(${r.kernelsWithoutDispatch ?? '?'} kernels dispatch nothing), ` +
      (r.wallMs && r.dispatches ? `${((r.wallMs * 1e3) / r.dispatches).toFixed(0)} us wall per dispatch; ` : '') +
      (r.timestampQuery
        ? `GPU time ${f(r.gpuMs, 2)} ms` +
          (r.wallMs && r.gpuMs !== undefined ? ` = ${((100 * r.gpuMs) / r.wallMs).toFixed(1)}% of the plain wall time` : '')
        : 'no timestamp-query: no GPU times') +
      `; profiled forward ${f(r.profileWallMs)} ms; tf.time kernelMs ${f(r.timeKernelMs, 2)} wallMs ${f(r.timeWallMs)}` +
      (leaked ? `; ${leaked} tensors left` : '') +
      (r.error ? ` | ERROR: ${r.error}` : ''),
  );
  const rowText = (w: ProfileRow) =>
    `${w.name} x${w.count}${w.dispatches !== undefined ? ` (${w.dispatches} disp)` : ''}${r.timestampQuery ? ` ${w.gpuMs.toFixed(3)} ms` : ''}`;
  if (r.byKernel.length) log(`   top kernels${r.gpuMs ? ' by GPU time' : ' by count'}: ${r.byKernel.map(rowText).join('; ')}`);
  if (r.byProgram.length) log(`   top programs${r.gpuMs ? ' by GPU time' : ' by count'}: ${r.byProgram.map(rowText).join('; ')}`);
  if (r.noDispatch.length) log(`   kernels without a dispatch: ${r.noDispatch.map((w) => `${w.name} x${w.count}`).join('; ')}`);
  save();
}

/** GPU programs dispatched by one warm forward of each bench model at batch 1 (`createModel(name, {}, { init: false })`). */
async function benchDispatches(name: string, size: number): Promise<void> {
  let model: Backbone | null = null;
  const x = tf.randomNormal([1, size, size, 3]);
  try {
    model = createModel(name, {}, { init: false }) as Backbone;
    const warm = model.forwardLogits(x);
    await warm.data();
    warm.dispose();
    const c = countDispatches(() => model!.forwardLogits(x));
    await c.result.data();
    c.result.dispose();
    results.dispatches.push({ model: name, batch: 1, dispatches: c.dispatches, byProgram: c.byProgram });
    const top = Object.entries(c.byProgram)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    log(`dispatches ${name} batch 1 (our kernels ${VB_KERNELS ? 'on' : 'off'}): ${c.dispatches} | ${top}`);
  } catch (e) {
    log(`dispatches ${name}: ERROR ${errText(e)}`);
  } finally {
    x.dispose();
    model?.dispose();
    save();
  }
}

async function runBench(): Promise<void> {
  const models = BENCH_MODELS.filter((m) => !MODELS || MODELS.includes(m.name));
  if (BENCH_PARTS.includes('dispatch')) for (const m of models) await benchDispatches(m.name, m.size);
  if (BENCH_PARTS.includes('matmul')) for (const n of MATMUL_SIZES) await benchMatmul(n);
  if (BENCH_PARTS.includes('profile')) {
    for (const p of PROFILE_MODELS) {
      const m = BENCH_MODELS.find((b) => b.name === p);
      if (m) for (const pb of PROFILE_BATCHES) await benchProfile(m.name, m.size, pb);
      else log(`profile: unknown model ${p} (bench models: ${BENCH_MODELS.map((b) => b.name).join(', ')})`);
    }
  }
  if (BENCH_PARTS.includes('fwd')) for (const m of models) await benchForward(m.name, m.size);
  if (BENCH_PARTS.includes('train')) await benchTrainStep(TRAIN_MODEL, TRAIN_SIZE, TRAIN_BATCH);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  log(`visbackbones WebGPU check: node ${process.version}, out ${OUT}, time limit ${TIME_LIMIT_S}s, repo ${REPO}`);
  save();
  if (!(await setupWebGPU())) return 3;
  if (PROBE) return 0;
  if (VB_KERNELS) {
    registerWebgpuKernels();
    results.vbKernels = [...WEBGPU_KERNEL_NAMES];
  }
  log(`our webgpu kernels: ${VB_KERNELS ? WEBGPU_KERNEL_NAMES.join(', ') : 'off (tfjs kernels only)'}`);
  save();
  if (!SKIP_FIXTURES) await runFixtures();
  if (!SKIP_TRAIN_SMOKE) await runTrainSmoke();
  if (!SKIP_BENCH) await runBench();
  results.finished = true;
  log(`tf.memory(): ${JSON.stringify(tf.memory())}`);
  save();
  const smoke = (results as unknown as { trainSmoke?: TrainSmokeResult[] }).trainSmoke ?? [];
  log(
    `done in ${elapsed().toFixed(1)}s: fixtures ${results.fixtureSummary.passed} passed, ${results.fixtureSummary.failed} failed; ` +
      `train smoke ${smoke.filter((r) => r.pass).length} passed, ${smoke.filter((r) => !r.pass).length} failed`,
  );
  return results.fixtureSummary.failed ? 1 : 0;
}

process.on('unhandledRejection', (e) => {
  log(`unhandled rejection: ${errText(e)}`);
  results.errors.push(`unhandled rejection: ${errText(e)}`);
  save();
});

main()
  .then((code) => process.exit(code))
  .catch((e) => {
    log(`CRASH: ${errText(e)}`);
    results.errors.push(errText(e));
    save();
    process.exit(2);
  });
