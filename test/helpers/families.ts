/**
 * Every registered backbone family at its tiny test size (small widths, one block per stage), read from
 * the registry: a family registered with `defineFamily` is covered by the generic tests the moment its
 * folder is imported by the package index.
 */
import '../../src/index.js';
import { getFamily, listFamilies } from '../../src/models/registry.js';
import type { Backbone } from '../../src/models/backbone.js';

export interface Family {
  name: string;
  /** Plain (single-stride) backbone: multi-level heads need a simple feature pyramid in front. */
  plain: boolean;
  /** Has an image classifier (`forwardLogits`). */
  classifier: boolean;
  build(size: number, overrides?: Record<string, unknown>): Backbone;
}

export const FAMILIES: Family[] = listFamilies().map((f) => ({
  name: f.name,
  plain: f.plain,
  classifier: f.classifier,
  build: (s, o = {}) => f.tiny(s, o),
}));

/**
 * Put a freshly built model of a family into a state where every variable gets a gradient (the
 * family's `liven` hook: SwinV2's zero-initialised res-post-norms set to unit weight).
 */
export function livened<M extends Backbone>(m: M): M {
  getFamily(m.family).liven(m);
  return m;
}

/** The two input sizes every head x backbone pair runs at. */
export const SIZES = [32, 64];
