import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import '../../src/index.js';
import { getFamily } from '../../src/models/registry.js';
import { StateDictError } from '../../src/layers/module.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { errorOf } from '../helpers/errors.js';

const tiny = (numClasses: number, o: Record<string, unknown> = {}) => getFamily('swin').tiny(32, { numClasses, ...o });

for (const backend of BACKENDS) {
  describe(`fine-tuning from a checkpoint on ${backend}`, () => {
    beforeAll(() => useBackend(backend));
    afterEach(() => vi.restoreAllMocks());

    it('a 1000-class checkpoint loads into a 10-class model: the classifier is skipped with one notice, the rest loaded', () => {
      const src = tiny(1000);
      const sd = src.stateDict();
      const dst = tiny(10);
      const head0 = dst.stateDict();
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const before = tf.memory().numTensors;
      const res = loadTimmWeights(dst, sd);
      expect(tf.memory().numTensors).toBe(before);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/head\.fc\.weight \[1000, 64\] vs model \[10, 64\]/);
      expect(res.skipped.sort()).toEqual(['head.fc.bias', 'head.fc.weight']);
      expect(res.loaded).not.toContain('head.fc.weight');
      const after = dst.stateDict();
      for (const k of Object.keys(after)) {
        const want = k.startsWith('head.') ? head0[k] : sd[k];
        expect(Array.from(after[k].dataSync()), k).toEqual(Array.from(want.dataSync()));
      }
      tf.dispose([Object.values(sd), Object.values(head0), Object.values(after)]);
      src.dispose();
      dst.dispose();
    });

    it('the notice is suppressed with quiet, and safetensors bytes / an ArrayBuffer work the same', () => {
      const src = tiny(1000);
      const sd = src.stateDict();
      const bytes = writeSafetensors(sd);
      const dst = tiny(10);
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const a = loadTimmWeights(dst, bytes, { quiet: true });
      const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      const b = loadTimmWeights(dst, copy, { quiet: true });
      expect(warn).not.toHaveBeenCalled();
      expect(a.skipped.sort()).toEqual(['head.fc.bias', 'head.fc.weight']);
      expect(b).toEqual(a);
      tf.dispose(Object.values(sd));
      src.dispose();
      dst.dispose();
    });

    it('a checkpoint without a classifier (pretraining) loads into a classifier model, the head as initialised', () => {
      const src = tiny(0);
      const sd = src.stateDict();
      const dst = tiny(10);
      const head0 = dst.stateDict();
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const res = loadTimmWeights(dst, sd);
      expect(String(warn.mock.calls[0][0])).toMatch(/the checkpoint has no classifier \(head\.fc\.weight, head\.fc\.bias\)/);
      expect(res.loaded.sort()).toEqual(Object.keys(sd).sort());
      const after = dst.stateDict();
      expect(Array.from(after['head.fc.weight'].dataSync())).toEqual(Array.from(head0['head.fc.weight'].dataSync()));
      expect(Array.from(after['patch_embed.proj.weight'].dataSync())).toEqual(Array.from(sd['patch_embed.proj.weight'].dataSync()));
      tf.dispose([Object.values(sd), Object.values(head0), Object.values(after)]);
      src.dispose();
      dst.dispose();
    });

    it('every other mismatch stays strict: a wrong embedding width still throws, naming the key', () => {
      const src = tiny(1000, { embedDim: 16 });
      const sd = src.stateDict();
      const dst = tiny(10);
      vi.spyOn(console, 'warn').mockImplementation(() => {});
      const e = errorOf(() => loadTimmWeights(dst, sd));
      expect(e).toBeInstanceOf(StateDictError);
      expect(e.message).toMatch(/shape mismatches .*patch_embed\.proj\.weight: checkpoint \[16, 3, 4, 4\] vs model \[8, 3, 4, 4\]/);
      tf.dispose(Object.values(sd));
      src.dispose();
      dst.dispose();
    });
  });
}
