import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import { getFamily } from '../../src/models/registry.js';
import { StateDictError } from '../../src/layers/module.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, SafetensorsError } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { errorOf, expectError } from '../helpers/errors.js';

describe('messages of the weight readers', () => {
  beforeAll(() => useBackend('cpu'));
  it('a PyTorch zip checkpoint given to readSafetensors says what it is and how to convert it', () => {
    // a torch.save file is a zip archive: local file header magic 'PK\x03\x04', then the archive
    const pth = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00]);
    const e = errorOf(() => readSafetensors(pth));
    expect(e).toBeInstanceOf(SafetensorsError);
    expect(e.message).toMatch(/PyTorch checkpoint/);
    expect(e.message).toContain("save_file(torch.load('x.pth', map_location='cpu'), 'x.safetensors')");
  });

  it('loadTimmWeights names what it got when it is neither a state dict nor bytes', () => {
    const m = getFamily('swin').tiny(32);
    expectError(() => loadTimmWeights(m, 'model.safetensors' as unknown as Uint8Array), /expected a state dict .*got model\.safetensors/);
    expectError(
      () => loadTimmWeights(m, { 'patch_embed.proj.weight': [1, 2] } as unknown as Uint8Array),
      /entry 'patch_embed\.proj\.weight' is \[object Array\], expected a tf\.Tensor/,
    );
    m.dispose();
  });
});

for (const backend of BACKENDS) {
  describe(`checkpoint mismatch messages on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it("another family's checkpoint: the error names the family its keys look like, not hundreds of keys", () => {
      const other = getFamily('convnextv2').tiny(32, { numClasses: 10 });
      const sd = other.stateDict();
      const m = getFamily('swin').tiny(32, { numClasses: 10 });
      const e = errorOf(() => loadTimmWeights(m, sd));
      expect(e).toBeInstanceOf(StateDictError);
      expect(e.message).toMatch(/keys look like family 'convnextv2' \(100% key overlap; \d+% with this model\)/);
      expect(e.message).toMatch(/unexpected keys \(\d+\): .*\.\.\. \(\d+ more\)/);
      expect(e.message.length).toBeLessThan(2000);
      tf.dispose(Object.values(sd));
      other.dispose();
      m.dispose();
    });

    it('unexpected keys are named as in the file, before the checkpoint filter renamed them', () => {
      const m = getFamily('swin').tiny(32, { numClasses: 10 });
      const sd = m.stateDict();
      // an old-layout head (head.weight): the filter renames head.* to head.fc.*
      sd['head.weight'] = sd['head.fc.weight'];
      sd['head.bias'] = sd['head.fc.bias'];
      delete sd['head.fc.weight'];
      delete sd['head.fc.bias'];
      sd['head.extra'] = tf.zeros([2]);
      const e = errorOf(() => loadTimmWeights(m, sd));
      expect(e.message).toMatch(/unexpected keys \(1\): head\.extra \(as 'head\.fc\.extra' after the checkpoint filter\)/);
      expect(e.message).not.toMatch(/look like family/);
      tf.dispose(Object.values(sd));
      m.dispose();
    });
  });
}
