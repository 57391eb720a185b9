/** `createModel(name, overrides)` checks the overrides against the family's fields, as timm rejects unknown kwargs. */
import { describe, expect, it } from 'vitest';
import '../../src/index.js';
import { createModel, listFamilies, getFamily } from '../../src/models/registry.js';
import { withoutInit } from '../../src/layers/init.js';
import { errorOf } from '../helpers/errors.js';

describe('createModel overrides', () => {
  it('an unknown key throws, naming the key, the nearest field and the family', () => {
    const msg = errorOf(() => createModel('convnextv2_atto', { numClass: 10 }, { init: false })).message;
    expect(msg).toContain("unexpected config field 'numClass'");
    expect(msg).toContain("did you mean 'numClasses'");
    expect(msg).toContain("'convnextv2'");
  });
  it('a value of the wrong kind throws, naming the key and the value', () => {
    const msg = errorOf(() => createModel('swinv2_tiny_window8_256', { imgSize: 'big' }, { init: false })).message;
    expect(msg).toContain("config field 'imgSize'");
    expect(msg).toContain('"big"');
  });
  it('valid overrides build, and numClasses defaults to the pretrained cfg', () => {
    const m = createModel('convnextv2_atto', { numClasses: 10, dropPathRate: 0.1 }, { init: false });
    expect(m.numClasses).toBe(10);
    m.dispose();
    const m2 = createModel('mvitv2_base_cls', { cfg: { depths: [1, 1, 1, 1], useClsToken: true } }, { init: false });
    expect(m2.numClasses).toBe(19168);
    m2.dispose();
  });
  it('every family accepts its own resolved config (so family + config rebuild the model)', () => {
    for (const f of listFamilies()) {
      const m = withoutInit(() => f.tiny(64));
      const again = withoutInit(() => getFamily(f.name).create(m.config));
      expect(again.config, f.name).toEqual(m.config);
      m.dispose();
      again.dispose();
    }
  });
});
