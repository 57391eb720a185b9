import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { mulberry32 } from '../../utils/random.js';

/** Options of `CoCa.generate` (open_clip's `CoCa.generate` arguments, camelCase). */
export interface CocaGenerateOptions {
  /** Longest output, SOT included. Default 30. */
  seqLen?: number;
  /** EOS is forbidden while the length (SOT included) is below this. Default 5. */
  minSeqLen?: number;
  /** Default 49406. */
  sotTokenId?: number;
  /** Default 49407. */
  eosTokenId?: number;
  /** Written after a row's EOS. Default 0. */
  padTokenId?: number;
  /** Default 'greedy'. */
  generationType?: 'greedy' | 'beam_search' | 'top_k' | 'top_p';
  /** Candidates kept by 'top_k' sampling. Default 1. */
  topK?: number;
  /** Probability mass kept by 'top_p' (nucleus) sampling. Default 0.1. */
  topP?: number;
  /** Softmax temperature of the sampling types. Default 1. */
  temperature?: number;
  /** Beams of 'beam_search'. Default 6. */
  numBeams?: number;
  /** Exponent of the length normalisation of beam scores (score / length^p). Default 1. */
  lengthPenalty?: number;
  /** Seed of the sampling types' random draws. Default 0. */
  seed?: number;
}

/** What decoding needs of a captioner (CoCa): the image tower's tokens and one decoder pass. */
export interface CaptionModel {
  readonly vocabSize: number;
  /** Longest caption the decoder takes. */
  readonly contextLength: number;
  readonly text: { readonly contextLength: number };
  readonly visual: { forwardTokens(images: tf.Tensor): { pooled: tf.Tensor2D; tokens: tf.Tensor3D } };
  /** Next-token logits `[B, L, vocab]` of captions given the image tokens. */
  decode(imageEmbs: tf.Tensor, text: tf.Tensor): tf.Tensor3D;
}

interface Resolved {
  seqLen: number;
  minSeqLen: number;
  sot: number;
  eos: number;
  pad: number;
}

/** Last-position logits `[n, vocab]` of prefixes `rows` (each a list of ids) for pooler outputs `embs` `[n, M, D]`. */
function lastLogits(model: CaptionModel, embs: tf.Tensor, rows: number[][], ctx: number): Float32Array[] {
  const n = Math.min(rows[0].length, ctx);
  const v = model.vocabSize;
  const ids = tf.tensor2d(rows.map((r) => r.slice(r.length - n)).flat(), [rows.length, n], 'int32');
  const last = tf.tidy(() =>
    model
      .decode(embs, ids)
      .slice([0, n - 1, 0], [rows.length, 1, v])
      .reshape([rows.length, v]),
  );
  const data = last.dataSync() as Float32Array;
  tf.dispose([ids, last]);
  return rows.map((_, i) => data.slice(i * v, (i + 1) * v));
}

function argmax(x: Float32Array): number {
  let j = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[j]) j = i;
  return j;
}

/** HF's top-k / top-p warpers, temperature, then one draw from the softmax (`torch.multinomial`). */
function sample(logits: Float32Array, type: 'top_k' | 'top_p', opts: CocaGenerateOptions, rand: () => number): number {
  const x = Float32Array.from(logits);
  const order = Array.from(x.keys()).sort((a, b) => x[b] - x[a]);
  if (type === 'top_k') {
    const k = Math.max(1, Math.min(opts.topK ?? 1, x.length));
    const kth = x[order[k - 1]];
    for (let i = 0; i < x.length; i++) if (x[i] < kth) x[i] = -Infinity;
  } else {
    const p = opts.topP ?? 0.1;
    const max = x[order[0]];
    const e = order.map((i) => Math.exp(x[i] - max));
    const z = e.reduce((s, u) => s + u, 0);
    // ascending cumulative mass as HF: drop the low tail whose mass is <= 1 - p, keep at least one token
    let cum = 0;
    for (let r = order.length - 1; r >= 1; r--) {
      cum += e[r] / z;
      if (cum <= 1 - p) x[order[r]] = -Infinity;
      else break;
    }
  }
  const t = opts.temperature ?? 1;
  check(t > 0, () => `temperature must be positive, got ${t}`);
  const max = Math.max(...x);
  const w = Array.from(x, (u) => (u === -Infinity ? 0 : Math.exp((u - max) / t)));
  const z = w.reduce((s, u) => s + u, 0);
  let r = rand() * z;
  for (let i = 0; i < w.length; i++) {
    r -= w[i];
    if (r < 0 && w[i] > 0) return i;
  }
  return argmax(x);
}

/** Greedy decoding or sampling, one token per row per step (HF `generate`'s loop that open_clip calls). */
function stepwise(model: CaptionModel, embs: tf.Tensor, b: number, o: Resolved, opts: CocaGenerateOptions, ctx: number): number[][] {
  const type = opts.generationType ?? 'greedy';
  const rand = mulberry32(opts.seed ?? 0);
  const rows = Array.from({ length: b }, () => [o.sot]);
  const done = new Array(b).fill(false);
  while (rows[0].length < o.seqLen) {
    const cur = rows[0].length;
    const logits = lastLogits(model, embs, rows, ctx);
    for (let r = 0; r < b; r++) {
      const lg = logits[r];
      if (cur < o.minSeqLen) lg[o.eos] = -Infinity;
      const next = done[r] ? o.pad : type === 'greedy' ? argmax(lg) : sample(lg, type as 'top_k' | 'top_p', opts, rand);
      rows[r].push(next);
      if (next === o.eos) done[r] = true;
    }
    if (done.every((d) => d)) break;
  }
  return rows;
}

function logSoftmax(x: Float32Array): Float32Array {
  let max = -Infinity;
  for (const u of x) if (u > max) max = u;
  let z = 0;
  for (const u of x) z += Math.exp(u - max);
  const lz = max + Math.log(z);
  return x.map((u) => u - lz);
}

/** Beam search (HF `BeamSearchScorer` with one beam group): hypotheses scored by sum log-prob / length^p. */
function beamSearch(model: CaptionModel, embs: tf.Tensor, b: number, o: Resolved, opts: CocaGenerateOptions, ctx: number): number[][] {
  const k = opts.numBeams ?? 6;
  check(Number.isInteger(k) && k > 0, () => `numBeams must be a positive integer, got ${k}`);
  const lp = opts.lengthPenalty ?? 1;
  type Beam = { ids: number[]; score: number };
  let beams: Beam[][] = Array.from({ length: b }, () => [{ ids: [o.sot], score: 0 }]);
  const hyps: { ids: number[]; score: number }[][] = Array.from({ length: b }, () => []);
  const done = new Array(b).fill(false);
  const worst = (h: { score: number }[]) => Math.min(...h.map((u) => u.score));
  const addHyp = (i: number, ids: number[], sum: number) => {
    const h = hyps[i];
    const score = sum / ids.length ** lp;
    if (h.length < k || score > worst(h)) {
      h.push({ ids, score });
      if (h.length > k)
        h.splice(
          h.findIndex((u) => u.score === worst(h)),
          1,
        );
    }
  };
  for (let cur = 1; cur < o.seqLen && !done.every((d) => d); cur++) {
    const live = beams.flatMap((bs, i) => (done[i] ? [] : bs.map((beam) => ({ i, beam }))));
    const rowEmbs = tf.gather(
      embs,
      live.map((u) => u.i),
    );
    const logits = lastLogits(
      model,
      rowEmbs,
      live.map((u) => u.beam.ids),
      ctx,
    );
    rowEmbs.dispose();
    const next: Beam[][] = beams.map(() => []);
    for (let i = 0; i < b; i++) {
      if (done[i]) continue;
      const cands: { ids: number[]; tok: number; score: number }[] = [];
      live.forEach((u, j) => {
        if (u.i !== i) return;
        const lg = logits[j];
        if (cur < o.minSeqLen) lg[o.eos] = -Infinity;
        const ls = logSoftmax(lg);
        const top = Array.from(ls.keys())
          .sort((a, c) => ls[c] - ls[a])
          .slice(0, 2 * k);
        for (const t of top) cands.push({ ids: u.beam.ids, tok: t, score: u.beam.score + ls[t] });
      });
      cands.sort((a, c) => c.score - a.score);
      for (let r = 0; r < cands.length && next[i].length < k; r++) {
        const c = cands[r];
        if (c.tok === o.eos) {
          if (r < k) addHyp(i, c.ids, c.score);
        } else next[i].push({ ids: [...c.ids, c.tok], score: c.score });
      }
      const best = next[i].length ? next[i][0].score / (cur + 1) ** lp : -Infinity;
      if (hyps[i].length >= k && worst(hyps[i]) >= best) done[i] = true;
    }
    beams = beams.map((bs, i) => (done[i] ? bs : next[i]));
  }
  return beams.map((bs, i) => {
    if (!done[i]) for (const beam of bs) addHyp(i, beam.ids, beam.score);
    const best = hyps[i].reduce((a, c) => (c.score > a.score ? c : a));
    return best.ids.length < o.seqLen ? [...best.ids, o.eos] : best.ids;
  });
}

/** `CoCa.generate`: captions int32 `[B, <= seqLen]`, SOT first, rows after their EOS padded. */
export function generateCaptions(model: CaptionModel, image: tf.Tensor, opts: CocaGenerateOptions = {}): tf.Tensor2D {
  const o: Resolved = {
    seqLen: opts.seqLen ?? 30,
    minSeqLen: opts.minSeqLen ?? 5,
    sot: opts.sotTokenId ?? 49406,
    eos: opts.eosTokenId ?? 49407,
    pad: opts.padTokenId ?? 0,
  };
  const type = opts.generationType ?? 'greedy';
  check(
    ['greedy', 'beam_search', 'top_k', 'top_p'].includes(type),
    () => `generationType '${type}' is not one of greedy, beam_search, top_k, top_p`,
  );
  check(Number.isInteger(o.seqLen) && o.seqLen >= 2, () => `seqLen must be an integer >= 2, got ${o.seqLen}`);
  for (const [n, id] of [
    ['sotTokenId', o.sot],
    ['eosTokenId', o.eos],
    ['padTokenId', o.pad],
  ] as [string, number][]) {
    check(
      Number.isInteger(id) && id >= 0 && id < model.vocabSize,
      () => `${n} ${id} is outside the vocabulary [0, ${model.vocabSize - 1}]`,
    );
  }
  const ctx = Math.min(model.contextLength, model.text.contextLength);
  const embs = tf.tidy(() => model.visual.forwardTokens(image).tokens);
  const b = image.shape[0];
  try {
    const rows = type === 'beam_search' ? beamSearch(model, embs, b, o, opts, ctx) : stepwise(model, embs, b, o, opts, ctx);
    const len = Math.max(...rows.map((r) => r.length));
    return tf.tensor2d(rows.map((r) => [...r, ...new Array(len - r.length).fill(o.pad)]).flat(), [b, len], 'int32');
  } finally {
    embs.dispose();
  }
}
