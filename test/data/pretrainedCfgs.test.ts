import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { imagenetLabels, imagenetSubsetFor, labelsFor } from '../../src/data/labels.js';
import { getPretrainedCfg, listPretrained, pretrainedArchitectures } from '../../src/data/pretrainedCfgs.js';
import { expectError } from '../helpers/errors.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';

const DIR = join(FIXTURES_DIR, 'dataprep');
const REF = JSON.parse(readFileSync(join(DIR, 'pretrained_cfgs.json'), 'utf8'));
const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const FIELDS = [
  'name',
  'hf_hub_id',
  'hf_hub_filename',
  'url',
  'has_weights',
  'num_classes',
  'label_offset',
  'label_names',
  'label_source',
  'input_size',
  'test_input_size',
  'min_input_size',
  'interpolation',
  'crop_pct',
  'test_crop_pct',
  'mean',
  'std',
  'first_conv',
  'classifier',
  'license',
];
const dc = (d: Record<string, unknown>) => Object.fromEntries(Object.entries(d).map(([k, v]) => [camel(k), v]));

describe('pretrained cfgs (timm get_pretrained_cfg)', () => {
  it('covers every library architecture and tag', () => {
    expect(pretrainedArchitectures()).toEqual([...REF.library_models].sort());
    let n = 0;
    for (const [arch, e] of Object.entries<any>(REF.models)) {
      for (const [tag, ref] of Object.entries<any>(e.pretrained)) {
        n++;
        const cfg = getPretrainedCfg(tag ? `${arch}.${tag}` : arch);
        for (const f of FIELDS) expect(cfg[camel(f)], `${ref.name} ${f}`).toEqual(ref[f]);
        expect(cfg.architecture).toBe(arch);
        expect(cfg.tag).toBe(tag === '' ? null : tag);
        expect(cfg.cropMode).toBe(ref.crop_mode ?? 'center');
        expect(cfg.fixedInputSize).toBe(ref.fixed_input_size ?? false);
        // timm's resolve_data_config, with and without the test size
        expect(resolveDataConfig(cfg), ref.name).toEqual(dc(ref.data_config));
        if (ref.data_config_test) expect(resolveDataConfig(cfg, { useTestSize: true }), ref.name).toEqual(dc(ref.data_config_test));
        else expect(resolveDataConfig(cfg, { useTestSize: true })).toEqual(dc(ref.data_config));
        expect(resolveDataConfig(ref.name)).toEqual(dc(ref.data_config));
      }
      // the bare architecture is its default tag
      expect(getPretrainedCfg(arch).name).toBe(e.pretrained[e.default_tag].name);
    }
    expect(n).toBe(114);
  });

  it('lists tags with weights, natural-sorted', () => {
    const all = listPretrained();
    const withWeights = Object.values<any>(REF.models).flatMap((e) =>
      Object.values<any>(e.pretrained)
        .filter((c) => c.has_weights)
        .map((c) => c.name),
    );
    expect([...all].sort()).toEqual([...withWeights].sort());
    expect(all).not.toContain('convnextv2_small.untrained');
    expect(listPretrained('swinv2_tiny*')).toEqual(['swinv2_tiny_window8_256.ms_in1k', 'swinv2_tiny_window16_256.ms_in1k']);
    expect(listPretrained('cswin_tiny')).toEqual(['cswin_tiny_224']);
  });

  it('names the tags in its errors', () => {
    expectError(() => getPretrainedCfg('swinv2_tiny_window8_256.in22k'), /no pretrained tag 'in22k'.*swinv2_tiny_window8_256\.ms_in1k/);
    expectError(() => getPretrainedCfg('cswin_tiny_224.x'), /takes no tag/);
    expectError(() => getPretrainedCfg('swinv3_tiny'), /no pretrained cfg for model 'swinv3_tiny'/);
  });

  it('resolveDataConfig: overrides and defaults as timm', () => {
    expect(resolveDataConfig({})).toEqual({
      inputSize: [3, 224, 224],
      interpolation: 'bicubic',
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      cropPct: 0.875,
      cropMode: 'center',
    });
    const c = resolveDataConfig('convnextv2_atto', {
      imgSize: 160,
      cropPct: 1,
      interpolation: 'bilinear',
      mean: [0.5],
      std: [0.5, 0.5, 0.5],
    });
    expect(c).toEqual({
      inputSize: [3, 160, 160],
      interpolation: 'bilinear',
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
      cropPct: 1,
      cropMode: 'center',
    });
    // an explicit input size wins over useTestSize
    expect(resolveDataConfig('convnextv2_atto', { useTestSize: true, inputSize: [3, 256, 256] }).inputSize).toEqual([3, 256, 256]);
    // a model carries its cfg
    expect(resolveDataConfig({ pretrainedCfg: getPretrainedCfg('vit_small_patch16_224.augreg_in21k') }).mean).toEqual([0.5, 0.5, 0.5]);
    expectError(() => resolveDataConfig({}, { cropMode: 'fill' as 'center' }), /cropMode/);
  });
});

describe('ImageNet labels (timm ImageNetInfo)', () => {
  const ref1k = JSON.parse(readFileSync(join(DIR, 'imagenet1k_labels.json'), 'utf8'));
  const samples = JSON.parse(readFileSync(join(DIR, 'imagenet_label_samples.json'), 'utf8'));
  it('1k: synsets, descriptions, detailed', () => {
    expect(imagenetLabels()).toEqual(ref1k.lemmas);
    expect(imagenetLabels('imagenet-1k', 'name')).toEqual(ref1k.synsets);
    expect(imagenetLabels('imagenet-1k', 'detailed')).toEqual(ref1k.detailed);
  });
  it('22k / 21k-goog / 12k load lazily and match the samples', async () => {
    for (const subset of ['imagenet-22k', 'imagenet-21k-goog', 'imagenet-12k'] as const) {
      const s = samples[subset];
      const desc = await imagenetLabels(subset);
      const names = await imagenetLabels(subset, 'name');
      expect(desc.length).toBe(s.num_classes);
      expect(imagenetSubsetFor(s.num_classes)).toBe(subset);
      for (const [i, [syn, lemma]] of Object.entries<[string, string]>(s.samples)) {
        expect(names[Number(i)]).toBe(syn);
        expect(desc[Number(i)]).toBe(lemma);
      }
    }
    await expect(Promise.resolve().then(() => imagenetLabels('imagenet-22k', 'detailed'))).rejects.toThrow(/for 'imagenet-1k' only/);
  });
  it('labelsFor a cfg: by class count, null without a head', async () => {
    expect((await labelsFor(getPretrainedCfg('swin_tiny_patch4_window7_224')))?.[0]).toBe('tench, Tinca tinca');
    expect((await labelsFor(getPretrainedCfg('swinv2_base_window12_192.ms_in22k')))?.length).toBe(21841);
    expect(await labelsFor(getPretrainedCfg('convnextv2_atto.fcmae'))).toBeNull();
    expect(await labelsFor({ numClasses: 19168 })).toBeNull();
    expect(await labelsFor({ numClasses: 2, labelNames: ['cat', 'dog'] })).toEqual(['cat', 'dog']);
  });
});

describe('createModel with a pretrained tag (sync, random init)', () => {
  it('sets model.pretrainedCfg to the tag (default tag without one) and numClasses to its class count', async () => {
    await import('../../src/models/swin/index.js');
    const { createModel } = await import('../../src/models/registry.js');
    const over = { depths: [1, 1, 1, 1], embedDim: 8, numHeads: [1, 1, 1, 1] };
    const ref = REF.models.swin_base_patch4_window7_224;
    const a = createModel('swin_base_patch4_window7_224.ms_in22k', over, { init: false });
    expect(a.pretrainedCfg?.name).toBe('swin_base_patch4_window7_224.ms_in22k');
    expect(a.numClasses).toBe(ref.pretrained.ms_in22k.num_classes);
    expect(a.pretrainedCfg?.numClasses).toBe(ref.pretrained.ms_in22k.num_classes);
    expect(a.pretrainedCfg?.hfHubId).toBe(ref.pretrained.ms_in22k.hf_hub_id);
    a.dispose();
    const b = createModel('swin_base_patch4_window7_224', over, { init: false });
    expect(b.pretrainedCfg?.name).toBe(`swin_base_patch4_window7_224.${ref.default_tag}`);
    expect(b.numClasses).toBe(ref.pretrained[ref.default_tag].num_classes);
    b.dispose();
    const c = createModel('swin_base_patch4_window7_224.ms_in22k', { ...over, numClasses: 7 }, { init: false });
    expect([c.numClasses, c.pretrainedCfg?.numClasses]).toEqual([7, 7]);
    c.dispose();
    expectError(() => createModel('swin_base_patch4_window7_224.no_such_tag', over), /no pretrained tag 'no_such_tag'.*ms_in1k/);
    expectError(() => createModel('swin_base_patch4_window7_224', { ...over, pretrained: 'yes' }), /pretrained must be true or false/);
  });
});
