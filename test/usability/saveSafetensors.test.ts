import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import { getFamily } from '../../src/models/registry.js';
import { saveSafetensors, saveSafetensorsFile } from '../../src/weights/saveSafetensors.js';
import { readSafetensorsWithMetadata, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

for (const backend of BACKENDS) {
  describe(`saveSafetensors on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it('gives the bytes of writeSafetensors(model.stateDict()) without leaving a copy of the weights', async () => {
      const m = getFamily('swin').tiny(32, { numClasses: 3 });
      const sd = m.stateDict();
      const ref = writeSafetensors(sd, { format: 'pt' });
      tf.dispose(Object.values(sd));
      const before = tf.memory().numTensors;
      const bytes = saveSafetensors(m, { format: 'pt' });
      expect(tf.memory().numTensors).toBe(before);
      expect(Buffer.from(bytes).equals(Buffer.from(ref))).toBe(true);
      const dir = mkdtempSync(join(tmpdir(), 'vb-save-'));
      try {
        await saveSafetensorsFile(m, join(dir, 'm.safetensors'), { format: 'pt' });
        expect(tf.memory().numTensors).toBe(before);
        const file = new Uint8Array(readFileSync(join(dir, 'm.safetensors')));
        expect(Buffer.from(file).equals(Buffer.from(ref))).toBe(true);
        const back = readSafetensorsWithMetadata(file);
        expect(back.metadata).toEqual({ format: 'pt' });
        tf.dispose(Object.values(back.tensors));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      m.dispose();
    });
  });
}
