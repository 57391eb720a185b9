/**
 * The pretraining lab: pick a backend, a masked-image-modeling method and a tiny registry backbone,
 * pretrain on the synthetic shapes set (or dropped images) with live pictures, then compare a linear
 * probe of the pretrained backbone with the same probe of its random initialisation; save the run to
 * IndexedDB (resumable after a reload) and download the backbone as timm-keyed safetensors.
 *
 * URL parameters (a run starts at once when `steps`, `method`, `model` or `resume` is given):
 * `method` (simmim | mixmim | fastmim | fcmae), `model` (a family or variant name), `steps`, `batch`,
 * `imgSize`, `seed`, `backend` (auto | webgpu | wasm | webgl | cpu), `probe=0` (skip the probe),
 * `resume=1` (continue the saved run). The page reports in `window.visbackbonesLab`.
 */
import * as tf from '@tensorflow/tfjs';
import { listFamilies, SeededRandom, Trainer, writeSafetensors } from '../../src/index.js';
import { BackendChoice, BackendInfo, startBackend } from './backend.js';
import { drawBatch, filesPool, ImagePool, MEAN, shapesPool, STD } from './data.js';
import { drawLossCurve, drawPreview, GridLayout } from './draw.js';
import { buildMethod, familyOf, LabMethod, METHOD_INFO, MethodName, METHODS, supports, tinyBackbone } from './methods.js';
import { linearProbe, ProbeResult } from './probe.js';
import { fingerprint, loadRun, saveRun, SavedRun } from './store.js';

/** What the page reports to scripts and tests. */
interface LabState {
  status: 'idle' | 'running' | 'done' | 'error';
  paused: boolean;
  step: number;
  totalSteps: number;
  losses: number[];
  error?: string;
  backend?: string;
  /** wasm threads in use (1 unless the page is cross-origin isolated). */
  threads?: number;
  method?: MethodName;
  family?: string;
  imgSize?: number;
  /** Optimisation steps per second (the steps themselves), and wall-clock steps per second of the run (with drawing). */
  stepsPerSec?: number;
  wallStepsPerSec?: number;
  /** Fingerprints (FNV-1a of the safetensors bytes) of the pretraining model's and the backbone's state dicts now. */
  modelFingerprint?: string;
  backboneFingerprint?: string;
  backboneKeys?: string[];
  /** Set when the run was restored from IndexedDB: the step it was saved at and the restored weights' fingerprint. */
  resumedFrom?: number;
  restoredFingerprint?: string;
  /** Set after each save to IndexedDB. */
  savedStep?: number;
  savedFingerprint?: string;
  probe?: { pretrained: ProbeResult; random: ProbeResult };
  grid?: GridLayout;
  previews: number;
}

const state: LabState = { status: 'idle', paused: false, step: 0, totalSteps: 0, losses: [], previews: 0 };
(window as unknown as { visbackbonesLab: LabState }).visbackbonesLab = state;

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  backend: $<HTMLSelectElement>('backend'),
  method: $<HTMLSelectElement>('method'),
  model: $<HTMLSelectElement>('model'),
  steps: $<HTMLInputElement>('steps'),
  batch: $<HTMLInputElement>('batch'),
  seed: $<HTMLInputElement>('seed'),
  start: $<HTMLButtonElement>('start'),
  pause: $<HTMLButtonElement>('pause'),
  stop: $<HTMLButtonElement>('stop'),
  resumeSaved: $<HTMLButtonElement>('resume-saved'),
  download: $<HTMLButtonElement>('download'),
  downloadFull: $<HTMLButtonElement>('download-full'),
  status: $<HTMLSpanElement>('status'),
  stats: $<HTMLDivElement>('stats'),
  loss: $<HTMLCanvasElement>('loss'),
  grid: $<HTMLCanvasElement>('grid'),
  gridCaption: $<HTMLElement>('grid-caption'),
  probe: $<HTMLDivElement>('probe'),
  drop: $<HTMLSpanElement>('drop'),
  dataName: $<HTMLElement>('data-name'),
  useShapes: $<HTMLAnchorElement>('use-shapes'),
  log: $<HTMLPreElement>('log'),
};

const imgSize = Number(params.get('imgSize') ?? '64');
let backend: BackendInfo;
let pool: ImagePool | null = null;
let userFiles: File[] | null = null;
let lab: LabMethod | null = null;
let trainer: Trainer | null = null;
let control = { pause: false, stop: false, wake: () => {} };

function log(line: string): void {
  ui.log.textContent += `${line}\n`;
}

function setStatus(s: LabState['status'], text: string): void {
  state.status = s;
  document.body.dataset.status = s;
  ui.status.dataset.state = s;
  ui.status.textContent = text;
}

function fail(e: unknown): void {
  const err = e as Error;
  state.error = err?.message ?? String(e);
  log(`error: ${err?.stack ?? state.error}`);
  setStatus('error', `error: ${state.error}`);
  setRunning(false);
}

const yieldToPage = () => new Promise<void>((r) => setTimeout(r, 0));

function setRunning(on: boolean): void {
  for (const el of [ui.backend, ui.method, ui.model, ui.steps, ui.batch, ui.seed, ui.start, ui.resumeSaved]) el.disabled = on;
  ui.pause.disabled = !on;
  ui.stop.disabled = !on;
  ui.download.disabled = on || !lab;
  ui.downloadFull.disabled = on || !lab;
  ui.pause.textContent = 'pause';
}

/** Fill the backbone list with the families the chosen method can wrap. */
function fillModels(method: MethodName, want?: string): void {
  const fams = listFamilies()
    .map((f) => f.name)
    .filter((f) => supports(method, f, imgSize));
  ui.model.innerHTML = '';
  for (const f of fams) {
    const o = document.createElement('option');
    o.value = f;
    const variants = listFamilies().find((x) => x.name === f)!.variants;
    o.textContent = `${f} (tiny; ${variants.length} variant${variants.length === 1 ? '' : 's'}${variants[0] ? `, e.g. ${variants[0]}` : ''})`;
    ui.model.append(o);
  }
  if (want && fams.includes(want)) ui.model.value = want;
}

async function getPool(seed: number): Promise<ImagePool> {
  if (pool) return pool;
  pool = userFiles ? await filesPool(userFiles, imgSize) : shapesPool(imgSize, 384, seed);
  ui.dataName.textContent = pool.name;
  return pool;
}

function disposeRun(): void {
  trainer?.dispose();
  lab?.dispose();
  trainer = null;
  lab = null;
}

function updateFingerprints(): void {
  if (!lab) return;
  const sd = lab.model.stateDict();
  const bb = lab.backbone.stateDict();
  state.modelFingerprint = fingerprint(writeSafetensors(sd));
  state.backboneFingerprint = fingerprint(writeSafetensors(bb));
  state.backboneKeys = Object.keys(bb).sort();
  tf.dispose([...Object.values(sd), ...Object.values(bb)]);
}

/** Draw the preview grid: the first images of the pool under fixed masks. */
function preview(): void {
  if (!lab || !pool) return;
  const n = Math.min(4, pool.images.shape[0]);
  const idx = Array.from({ length: 4 }, (_, i) => i % n);
  const x = tf.tidy(() => tf.gather(pool!.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
  const p = lab.preview(x, 12345, MEAN, STD);
  x.dispose();
  state.grid = drawPreview(ui.grid, p, 112);
  state.previews++;
}

function showStats(t0: number, firstStepEnd: number, stepTimes: number[]): void {
  const done = state.step;
  const total = state.totalSteps;
  const times = stepTimes.length > 1 ? stepTimes.slice(1) : stepTimes;
  const perStep = times.reduce((a, b) => a + b, 0) / Math.max(1, times.length);
  state.stepsPerSec = perStep > 0 ? 1000 / perStep : undefined;
  const wallSteps = stepTimes.length - 1;
  const wall = wallSteps > 0 ? (wallSteps * 1000) / (performance.now() - firstStepEnd) : undefined;
  state.wallStepsPerSec = wall;
  const rate = wall ?? state.stepsPerSec ?? 0;
  const eta = rate > 0 ? (total - done) / rate : NaN;
  const last = state.losses.slice(-10);
  const mean = last.reduce((a, b) => a + b, 0) / Math.max(1, last.length);
  ui.stats.textContent =
    `step ${done} / ${total} · loss ${state.losses.length ? state.losses[state.losses.length - 1].toFixed(4) : '–'} (10-step mean ${mean.toFixed(4)}) · ` +
    `${rate.toFixed(2)} steps/s · ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '–'} · elapsed ${((performance.now() - t0) / 1000).toFixed(1)} s · ${backend.label}`;
}

/** Build the method and its trainer for `run` (a new run, or a saved one to restore). */
async function setup(
  opts: { method: MethodName; model: string; seed: number; batchSize: number; totalSteps: number },
  saved?: SavedRun,
): Promise<void> {
  disposeRun();
  lab = buildMethod({ method: opts.method, model: opts.model, imgSize, seed: opts.seed });
  const l = lab;
  trainer = new Trainer({
    model: l.model,
    lr: l.lr,
    warmupSteps: Math.min(10, Math.ceil(opts.totalSteps / 10)),
    totalSteps: opts.totalSteps,
    seed: opts.seed,
    loss: (b: tf.Tensor, ctx) => l.loss(b as tf.Tensor4D, ctx.rng),
  });
  state.method = opts.method;
  state.family = l.family;
  state.imgSize = imgSize;
  state.totalSteps = opts.totalSteps;
  state.losses = [];
  state.step = 0;
  state.probe = undefined;
  ui.probe.innerHTML = '';
  if (saved) {
    trainer.loadCheckpoint(saved.checkpoint);
    state.losses = saved.losses.slice();
    state.step = trainer.step;
    state.resumedFrom = saved.step;
    updateFingerprints();
    state.restoredFingerprint = state.modelFingerprint;
    log(
      `restored the saved run: ${saved.method} on ${saved.family}, step ${saved.step} / ${saved.totalSteps} (saved ${saved.savedAt}), weights ${state.restoredFingerprint}`,
    );
  }
  const info = METHOD_INFO[opts.method];
  ui.gridCaption.textContent = `${info.title}: target ${info.target}; fixed preview images under fixed masks`;
  log(
    `${info.title} on the tiny ${l.family} at ${imgSize} px: ${l.backbone.numParams()} backbone parameters, ${l.model.numParams()} in all; batch ${opts.batchSize}, lr ${l.lr}`,
  );
}

async function save(batchSize: number): Promise<void> {
  if (!lab || !trainer) return;
  const run: SavedRun = {
    method: lab.name,
    family: lab.family,
    imgSize,
    seed: Number(ui.seed.value),
    batchSize,
    totalSteps: state.totalSteps,
    step: trainer.step,
    losses: state.losses.slice(),
    checkpoint: trainer.checkpoint(),
    savedAt: new Date().toISOString(),
  };
  await saveRun(run);
  updateFingerprints();
  state.savedStep = run.step;
  state.savedFingerprint = state.modelFingerprint;
  ui.resumeSaved.disabled = false;
  log(`saved to IndexedDB at step ${run.step} (${(run.checkpoint.byteLength / 1024).toFixed(0)} KiB), weights ${state.savedFingerprint}`);
}

/** Train to `state.totalSteps` (pause / stop between steps), save, then probe. */
async function train(batchSize: number, seed: number, probe: boolean): Promise<void> {
  const l = lab!;
  const tr = trainer!;
  const data = await getPool(seed);
  control = { pause: false, stop: false, wake: () => {} };
  setRunning(true);
  setStatus('running', 'training…');
  const t0 = performance.now();
  let firstStepEnd = t0;
  let lastDraw = 0;
  const stepTimes: number[] = [];
  preview();
  drawLossCurve(ui.loss, state.losses, state.totalSteps);
  while (tr.step < state.totalSteps && !control.stop) {
    if (control.pause) {
      state.paused = true;
      setStatus('running', 'paused');
      await new Promise<void>((r) => (control.wake = r));
      state.paused = false;
      setStatus('running', 'training…');
      continue;
    }
    // the batch of a step depends only on the seed and the step, so a resumed run draws what it would have
    const batch = drawBatch(data, batchSize, new SeededRandom((seed * 1_000_003 + tr.step * 7919 + 17) >>> 0));
    const s0 = performance.now();
    let info;
    try {
      info = tr.trainStep(batch, { step: tr.step, epoch: 0, totalSteps: state.totalSteps, batchSize });
    } finally {
      batch.dispose();
    }
    stepTimes.push(performance.now() - s0);
    if (stepTimes.length === 1) firstStepEnd = performance.now();
    if (!Number.isFinite(info.loss)) throw new Error(`the loss is ${info.loss} at step ${info.step}`);
    state.losses.push(info.loss);
    state.step = tr.step;
    const now = performance.now();
    if (now - lastDraw > 500 || tr.step === state.totalSteps) {
      drawLossCurve(ui.loss, state.losses, state.totalSteps);
      preview();
      lastDraw = performance.now();
    }
    showStats(t0, firstStepEnd, stepTimes);
    await yieldToPage();
  }
  drawLossCurve(ui.loss, state.losses, state.totalSteps);
  preview();
  showStats(t0, firstStepEnd, stepTimes);
  if (stepTimes.length)
    log(
      `trained ${stepTimes.length} steps: ${state.stepsPerSec?.toFixed(2)} steps/s (steps alone), ${state.wallStepsPerSec?.toFixed(2) ?? '–'} steps/s (wall, with drawing) on ${backend.label}`,
    );
  ui.pause.disabled = true;
  ui.stop.disabled = true;
  setStatus('running', 'saving…');
  await save(batchSize);
  if (probe) {
    setStatus('running', 'linear probe…');
    await runProbe(l);
  }
  setRunning(false);
  setStatus('done', control.stop ? `stopped at step ${state.step}` : `done: ${state.step} steps`);
}

async function runProbe(l: LabMethod): Promise<void> {
  const seed = Number(ui.seed.value);
  const pretrained = await linearProbe(l.backbone, { imgSize });
  const random = tinyBackbone(l.family, imgSize, l.name, seed);
  let control: ProbeResult;
  try {
    control = await linearProbe(random, { imgSize });
  } finally {
    random.dispose();
  }
  state.probe = { pretrained, random: control };
  const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
  ui.probe.innerHTML =
    `<table><tr><th>linear probe (${pretrained.classes} shapes, chance ${pct(1 / pretrained.classes)})</th><th>train</th><th>test</th></tr>` +
    `<tr><td>pretrained ${l.family} (${state.step} steps)</td><td>${pct(pretrained.trainAcc)}</td><td><b>${pct(pretrained.testAcc)}</b></td></tr>` +
    `<tr><td>random init (same seed)</td><td>${pct(control.trainAcc)}</td><td><b>${pct(control.testAcc)}</b></td></tr></table>`;
  log(
    `linear probe test accuracy: pretrained ${pct(pretrained.testAcc)}, random init ${pct(control.testAcc)} (${pretrained.features} features)`,
  );
}

function download(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function downloadState(full: boolean): void {
  if (!lab) return;
  const sd = full ? lab.model.stateDict() : lab.backbone.stateDict();
  try {
    const bytes = writeSafetensors(sd);
    download(bytes, `${lab.family}-tiny${imgSize}-${lab.name}-step${state.step}${full ? '-pretrain' : ''}.safetensors`);
    log(
      `downloaded ${full ? 'the pretraining model' : 'the backbone (timm keys)'}: ${Object.keys(sd).length} tensors, ${(bytes.byteLength / 1024).toFixed(0)} KiB, ${fingerprint(bytes)}`,
    );
  } finally {
    tf.dispose(Object.values(sd));
  }
}

async function startNew(): Promise<void> {
  const method = ui.method.value as MethodName;
  const steps = Math.max(1, Math.floor(Number(ui.steps.value)));
  const batchSize = Math.max(2, 2 * Math.round(Number(ui.batch.value) / 2));
  const seed = Math.floor(Number(ui.seed.value));
  await setup({ method, model: ui.model.value, seed, batchSize, totalSteps: steps });
  await train(batchSize, seed, params.get('probe') !== '0');
}

async function resumeSaved(): Promise<void> {
  const saved = await loadRun();
  if (!saved) throw new Error('no saved run in IndexedDB');
  if (saved.imgSize !== imgSize) throw new Error(`the saved run is at ${saved.imgSize} px; open the page with ?imgSize=${saved.imgSize}`);
  ui.method.value = saved.method;
  fillModels(saved.method, saved.family);
  ui.seed.value = String(saved.seed);
  ui.batch.value = String(saved.batchSize);
  const totalSteps = Math.max(saved.totalSteps, Number(params.get('steps') ?? saved.totalSteps));
  ui.steps.value = String(totalSteps);
  pool = null;
  await setup({ method: saved.method, model: saved.family, seed: saved.seed, batchSize: saved.batchSize, totalSteps }, saved);
  await train(saved.batchSize, saved.seed, params.get('probe') !== '0');
}

function wire(): void {
  for (const m of METHODS) {
    const o = document.createElement('option');
    o.value = m;
    o.textContent = METHOD_INFO[m].title;
    ui.method.append(o);
  }
  ui.method.addEventListener('change', () => fillModels(ui.method.value as MethodName));
  ui.backend.addEventListener('change', () => {
    params.set('backend', ui.backend.value);
    location.search = params.toString();
  });
  ui.start.addEventListener('click', () => startNew().catch(fail));
  ui.resumeSaved.addEventListener('click', () => resumeSaved().catch(fail));
  ui.pause.addEventListener('click', () => {
    control.pause = !control.pause;
    ui.pause.textContent = control.pause ? 'resume' : 'pause';
    if (!control.pause) control.wake();
  });
  ui.stop.addEventListener('click', () => {
    control.stop = true;
    control.pause = false;
    control.wake();
  });
  ui.download.addEventListener('click', () => downloadState(false));
  ui.downloadFull.addEventListener('click', () => downloadState(true));
  ui.useShapes.addEventListener('click', (e) => {
    e.preventDefault();
    userFiles = null;
    pool?.images.dispose();
    pool = null;
    ui.dataName.textContent = 'synthetic shapes';
  });
  const over = (on: boolean) => (e: DragEvent) => {
    e.preventDefault();
    ui.drop.classList.toggle('over', on);
  };
  document.addEventListener('dragover', over(true));
  document.addEventListener('dragleave', over(false));
  document.addEventListener('drop', (e) => {
    over(false)(e);
    const files = Array.from(e.dataTransfer?.files ?? []).filter((f) => f.type.startsWith('image/'));
    if (!files.length || state.status === 'running') return;
    userFiles = files;
    pool?.images.dispose();
    pool = null;
    getPool(0)
      .then((p) => log(`data: ${p.name}, ${p.images.shape.slice(1).join('x')} each`))
      .catch(fail);
  });
}

async function main(): Promise<void> {
  wire();
  const choice = (params.get('backend') ?? 'auto') as BackendChoice;
  ui.backend.value = choice;
  backend = await startBackend(choice);
  state.backend = backend.name;
  state.threads = backend.threads;
  log(`backend: ${backend.label}`);
  const method = (params.get('method') ?? 'simmim') as MethodName;
  if (!METHODS.includes(method)) throw new Error(`method '${method}': expected one of ${METHODS.join(', ')}`);
  ui.method.value = method;
  const model = params.get('model');
  fillModels(method, model ? familyOf(model) : undefined);
  if (model && ui.model.value !== familyOf(model))
    throw new Error(
      `${METHOD_INFO[method].title} cannot wrap the ${familyOf(model)} backbone (choose one of: ${Array.from(ui.model.options, (o) => o.value).join(', ')})`,
    );
  for (const k of ['steps', 'batch', 'seed'] as const) if (params.has(k)) ui[k].value = params.get(k)!;
  const saved = await loadRun().catch(() => undefined);
  if (saved) {
    ui.resumeSaved.disabled = false;
    ui.resumeSaved.textContent = `resume saved run (${saved.method}, ${saved.family}, step ${saved.step}/${saved.totalSteps})`;
  }
  drawLossCurve(ui.loss, [], Number(ui.steps.value));
  setRunning(false);
  setStatus('idle', 'ready');
  if (params.get('resume') === '1') await resumeSaved();
  else if (['steps', 'method', 'model'].some((k) => params.has(k))) await startNew();
}

window.addEventListener('unhandledrejection', (e) => fail(e.reason));
main().catch(fail);
