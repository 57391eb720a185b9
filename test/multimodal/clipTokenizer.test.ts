import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gunzip, gunzipPortable } from '../../src/models/clip/gunzip.js';
import { clipCleanText, clipTokenizer, ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import { expectError } from '../helpers/errors.js';
import { Fixture, FIXTURES_DIR, loadFixture } from '../helpers/fixtures.js';

const FIXTURE = 'clip_tokenizer_ctx77';

describe(`CLIP tokenizer fixture ${FIXTURE}`, () => {
  let fx: Fixture;
  let gz: Uint8Array;
  let tok: ClipTokenizer;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    fx = loadFixture(FIXTURE);
    gz = new Uint8Array(readFileSync(join(FIXTURES_DIR, FIXTURE, 'bpe_simple_vocab_16e6.txt.gz')));
    tok = clipTokenizer({ bpe: gz });
  });
  afterAll(() => fx.dispose());

  it('has open_clip special ids and vocabulary size', () => {
    const v = fx.case.vocab;
    expect(tok.vocabSize).toBe(v.vocab_size);
    expect(tok.sotTokenId).toBe(v.sot_token_id);
    expect(tok.eotTokenId).toBe(v.eot_token_id);
    expect(tok.contextLength).toBe(77);
  });

  it('cleans every string as open_clip does', () => {
    const texts: string[] = fx.case.texts;
    const bad = texts.map((t, i) => [i, clipCleanText(t), fx.case.cleaned[i]]).filter(([, a, b]) => a !== b);
    expect(bad).toEqual([]);
  });

  it('encode gives SimpleTokenizer.encode ids exactly, decode its text', () => {
    const texts: string[] = fx.case.texts;
    texts.forEach((t, i) => {
      expect(tok.encode(t), `encode #${i} ${JSON.stringify(t)}`).toEqual(fx.case.encoded[i]);
      expect(tok.decode(tok.encode(t)), `decode #${i}`).toBe(fx.case.decoded[i]);
    });
  });

  it('tokenize(texts, 77) equals the reference ids and lengths exactly (SOT/EOT, truncation keeping EOT, zero padding)', () => {
    const ids = tok.tokenize(fx.case.texts, 77);
    expect(ids.dtype).toBe('int32');
    expect(ids.shape).toEqual(fx.io.ids.shape);
    expect(Array.from(ids.dataSync())).toEqual(Array.from(fx.io.ids.dataSync()));
    const rows = tok.tokenizeToArrays(fx.case.texts, 77);
    const lengths = rows.map((r) => {
      let n = r.length;
      while (n > 0 && r[n - 1] === 0) n--;
      return n;
    });
    expect(lengths).toEqual(Array.from(fx.io.lengths.dataSync()));
    ids.dispose();
  });

  it('accepts the gunzipped text, a custom context length, and the built-in inflater matches zlib', () => {
    const plain = gunzip(gz);
    expect(Buffer.compare(Buffer.from(gunzipPortable(gz)), Buffer.from(plain))).toBe(0);
    const t2 = clipTokenizer({ bpe: new TextDecoder().decode(plain), contextLength: 8 });
    const row = t2.tokenizeToArrays('a photo of a cat on a mat, sitting')[0];
    expect(row.length).toBe(8);
    expect(row[0]).toBe(49406);
    expect(row[7]).toBe(49407);
    expect(row.slice(1, 6)).toEqual(fx.case.encoded[0]);
  });

  it('reads special-token text as the special ids, as open_clip', () => {
    expect(tok.encode('<start_of_text>a photo<end_of_text>')).toEqual([49406, 320, 1125, 49407]);
  });

  it('rejects bad input with a clear error', () => {
    expectError(() => clipTokenizer({ bpe: 'just one line' }), /BPE file has 1 lines/);
    expectError(() => tok.decode([49408]), /outside the vocabulary/);
    expectError(() => tok.tokenize('x', 0), /contextLength must be a positive integer/);
  });
});
