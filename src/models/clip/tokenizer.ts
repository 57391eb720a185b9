import * as tf from '@tensorflow/tfjs';
import { Tokenizer } from '@huggingface/tokenizers';
import { check } from '../../errors.js';
import { gunzip } from './gunzip.js';
import { HTML5_ENTITIES, INVALID_CHARREFS, INVALID_CODEPOINT_RANGES, PYTHON_WHITESPACE } from './htmlEntities.js';

/** Options of {@link clipTokenizer}. */
export interface ClipTokenizerOptions {
  /** The bytes of `bpe_simple_vocab_16e6.txt.gz` (gzip) or its gunzipped text. */
  bpe: Uint8Array | string;
  /** Default row length of {@link ClipTokenizer.tokenize}. Default 77. */
  contextLength?: number;
}

/** Number of merges of the CLIP vocabulary (file lines 1..48894; the header line 0 and later lines are unused). */
const NUM_MERGES = 49152 - 256 - 2;
const SOT = '<start_of_text>';
const EOT = '<end_of_text>';

/** GPT-2's reversible byte -> printable character map (`bytes_to_unicode`), in its vocabulary order. */
function bytesToUnicode(): [number, string][] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  return bs.map((b, i) => [b, String.fromCodePoint(cs[i])]);
}

const PY_SPACE = new Set(PYTHON_WHITESPACE);
const isPySpace = (ch: string) => PY_SPACE.has(ch.codePointAt(0)!);

/** Python's `str.split()` joined by single spaces (also strips): splits on every `str.isspace()` character. */
export function pythonWhitespaceClean(text: string): string {
  const words: string[] = [];
  let cur = '';
  for (const ch of text) {
    if (isPySpace(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) words.push(cur);
  return words.join(' ');
}

const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function replaceCharref(s: string): string {
  if (s[0] === '#') {
    const hex = s[1] === 'x' || s[1] === 'X';
    const digits = s.slice(hex ? 2 : 1).replace(/;$/, '');
    const num = parseInt(digits, hex ? 16 : 10);
    if (num in INVALID_CHARREFS) return INVALID_CHARREFS[num];
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
    if (INVALID_CODEPOINT_RANGES.some(([a, b]) => num >= a && num <= b)) return '';
    return String.fromCodePoint(num);
  }
  if (Object.prototype.hasOwnProperty.call(HTML5_ENTITIES, s)) return HTML5_ENTITIES[s];
  const cps = Array.from(s);
  for (let x = cps.length - 1; x > 1; x--) {
    const head = cps.slice(0, x).join('');
    if (Object.prototype.hasOwnProperty.call(HTML5_ENTITIES, head)) return HTML5_ENTITIES[head] + cps.slice(x).join('');
  }
  return `&${s}`;
}

/** Python's `html.unescape`: numeric and HTML5 named character references, incl. the legacy names without `;`. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, (_m, s: string) => replaceCharref(s));
}

/**
 * open_clip's default text cleaning (`clean='lower'`): `html.unescape` twice, whitespace collapsed as Python's
 * `str.split()`, lowercased. (ftfy's `fix_text`, which open_clip runs first, is not applied: it only changes
 * mojibake, curly quotes, width variants and control characters.)
 */
export function clipCleanText(text: string): string {
  return pythonWhitespaceClean(htmlUnescape(htmlUnescape(text))).toLowerCase();
}

/** open_clip's pre-tokenisation pattern (`regex` with `re.IGNORECASE`). */
const PIECES = /<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+/giu;

/**
 * The CLIP byte-level BPE tokenizer (Radford et al. 2021; open_clip's `SimpleTokenizer` + `tokenize`),
 * reproducing open_clip's ids. The BPE merges run in `@huggingface/tokenizers`; cleaning, pre-tokenisation,
 * special tokens and row assembly are open_clip's.
 */
export class ClipTokenizer {
  readonly sotTokenId: number;
  readonly eotTokenId: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  private readonly bpe: Tokenizer;
  private readonly vocab: string[];
  private readonly byteDecoder = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();

  constructor(opts: ClipTokenizerOptions) {
    check(
      opts && (typeof opts.bpe === 'string' || opts.bpe instanceof Uint8Array),
      () => 'clipTokenizer needs { bpe }: the bytes of bpe_simple_vocab_16e6.txt.gz or its text',
    );
    const text = typeof opts.bpe === 'string' ? opts.bpe : decodeVocabFile(opts.bpe);
    const lines = text.split('\n');
    check(
      lines.length > NUM_MERGES,
      () => `the BPE file has ${lines.length} lines; the CLIP vocabulary needs a header and ${NUM_MERGES} merges`,
    );
    const merges = lines.slice(1, NUM_MERGES + 1).map((l, i) => {
      const parts = l.split(/\s+/u).filter((p) => p);
      check(parts.length === 2, () => `BPE merge line ${i + 1} is not two symbols: ${JSON.stringify(l)}`);
      return parts as [string, string];
    });
    const bytes = bytesToUnicode();
    for (const [b, ch] of bytes) this.byteDecoder.set(ch, b);
    this.vocab = [...bytes.map(([, ch]) => ch), ...bytes.map(([, ch]) => `${ch}</w>`), ...merges.map(([a, b]) => a + b), SOT, EOT];
    this.vocabSize = this.vocab.length;
    this.sotTokenId = this.vocabSize - 2;
    this.eotTokenId = this.vocabSize - 1;
    this.contextLength = opts.contextLength ?? 77;
    check(
      Number.isInteger(this.contextLength) && this.contextLength > 1,
      () => `contextLength must be an integer > 1, got ${this.contextLength}`,
    );
    const vocab: Record<string, number> = {};
    this.vocab.forEach((t, i) => {
      vocab[t] = i;
    });
    this.bpe = new Tokenizer(
      {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: [],
        normalizer: null,
        post_processor: null,
        decoder: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        model: {
          type: 'BPE',
          dropout: null,
          unk_token: null,
          continuing_subword_prefix: null,
          end_of_word_suffix: '</w>',
          fuse_unk: false,
          byte_fallback: false,
          vocab,
          merges,
        },
      },
      {},
    );
  }

  /** Ids of one cleaned piece (the BPE of its UTF-8 bytes, `</w>` on the last symbol). */
  private encodePiece(piece: string): number[] {
    if (piece === SOT) return [this.sotTokenId];
    if (piece === EOT) return [this.eotTokenId];
    let ids = this.cache.get(piece);
    if (!ids) {
      ids = this.bpe.encode(piece, { add_special_tokens: false }).ids;
      if (this.cache.size < 100_000) this.cache.set(piece, ids);
    }
    return ids;
  }

  /** open_clip's `SimpleTokenizer.encode`: cleaned, pre-tokenised and BPE-encoded ids, without SOT/EOT or truncation. */
  encode(text: string): number[] {
    check(typeof text === 'string', () => `encode expects a string, got ${typeof text}`);
    const out: number[] = [];
    for (const m of clipCleanText(text).matchAll(PIECES)) out.push(...this.encodePiece(m[0]));
    return out;
  }

  /** open_clip's `SimpleTokenizer.decode`: token strings joined, bytes decoded as UTF-8 (with replacement), `</w>` -> space. */
  decode(ids: number[] | ArrayLike<number>): string {
    const chars: number[] = [];
    for (const id of Array.from(ids)) {
      check(
        Number.isInteger(id) && id >= 0 && id < this.vocabSize,
        () => `token id ${id} is outside the vocabulary [0, ${this.vocabSize - 1}]`,
      );
      for (const ch of this.vocab[id]) chars.push(this.byteDecoder.get(ch)!);
    }
    return new TextDecoder('utf-8').decode(new Uint8Array(chars)).replaceAll('</w>', ' ');
  }

  /** Token id rows as JS arrays: `[SOT] + ids + [EOT]`, cut to `contextLength` with the last id EOT, zero padded. */
  tokenizeToArrays(texts: string | string[], contextLength = this.contextLength): number[][] {
    const list = typeof texts === 'string' ? [texts] : texts;
    check(Array.isArray(list) && list.every((t) => typeof t === 'string'), () => 'tokenize expects a string or an array of strings');
    check(Number.isInteger(contextLength) && contextLength > 0, () => `contextLength must be a positive integer, got ${contextLength}`);
    return list.map((t) => {
      let ids = [this.sotTokenId, ...this.encode(t), this.eotTokenId];
      if (ids.length > contextLength) {
        ids = ids.slice(0, contextLength);
        ids[contextLength - 1] = this.eotTokenId;
      }
      return [...ids, ...new Array(contextLength - ids.length).fill(0)];
    });
  }

  /** open_clip's `tokenize`: int32 `[N, contextLength]` (see {@link tokenizeToArrays}). */
  tokenize(texts: string | string[], contextLength = this.contextLength): tf.Tensor2D {
    const rows = this.tokenizeToArrays(texts, contextLength);
    return tf.tensor2d(rows.flat(), [rows.length, contextLength], 'int32');
  }
}

/** The vocabulary file as text: gunzipped when it starts with the gzip magic bytes, else read as UTF-8. */
function decodeVocabFile(bytes: Uint8Array): string {
  const raw = bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzip(bytes) : bytes;
  return new TextDecoder('utf-8').decode(raw);
}

/** Build the CLIP tokenizer from the user's `bpe_simple_vocab_16e6.txt.gz` (bytes) or its text. */
export function clipTokenizer(opts: ClipTokenizerOptions): ClipTokenizer {
  return new ClipTokenizer(opts);
}
