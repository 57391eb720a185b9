/**
 * A family's resolved config: `defaults` with every field of `cfg` that is set (not `undefined`) over
 * it. `Object.keys` of the result lists every field the family accepts, and the result rebuilds the
 * same model.
 */
export function resolveConfig<D extends object>(defaults: D, cfg: object): D {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [k, v] of Object.entries(cfg)) if (v !== undefined) out[k] = v;
  return out as D;
}
