import { describe, expect, it } from 'vitest';
import '../../src/index.js';
import { withoutInit } from '../../src/layers/init.js';
import type { Backbone } from '../../src/models/backbone.js';
import { getModelEntry, listFamilies } from '../../src/models/registry.js';

function shapes(m: Backbone): Record<string, number[]> {
  return Object.fromEntries(m.namedParameters().map(([k, p]) => [k, p.variable.shape]));
}

describe('resolved configs', () => {
  for (const family of listFamilies()) {
    it(`${family.name}: config holds every field with its default and rebuilds the same model`, () => {
      withoutInit(() => {
        const m = family.create(family.tinyConfig(64));
        const again = family.create(m.config);
        expect(again.config).toEqual(m.config);
        expect(shapes(again)).toEqual(shapes(m));
        expect(Object.keys(again.stateDict())).toEqual(Object.keys(m.stateDict()));
        const common = ['inChans', 'featuresOnly', 'outIndices', 'dropRate', 'dropPathRate'];
        // a family with a classifier takes its classes and (but PVT, whose head reads the class token) its pooling
        if (family.classifier) common.push('numClasses');
        if (family.classifier && family.name !== 'pvt') common.push('globalPool');
        for (const k of common) expect(Object.keys(m.config)).toContain(k);
        const keys = new Set(Object.keys(m.config));
        for (const name of family.variants)
          for (const k of Object.keys(getModelEntry(name).config)) expect(keys, `${name}: ${k}`).toContain(k);
        m.dispose();
        again.dispose();
      });
    });
  }
});
