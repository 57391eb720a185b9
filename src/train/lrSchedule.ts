import { check } from '../errors.js';

/** Options of {@link cosineLr}. */
export interface CosineScheduleOptions {
  /** Peak learning rate (reached at the end of the warm-up). */
  baseLr: number;
  /** Total optimisation steps. */
  totalSteps: number;
  /** Linear warm-up steps from 0 (default 0). */
  warmupSteps?: number;
  /** Floor of the cosine (default 0). */
  minLr?: number;
}

/**
 * Learning rate at `step` (0-based) of a linear warm-up followed by a half-cycle cosine decay to
 * `minLr` (MAE's `adjust_learning_rate`, He et al. 2022, appendix A.1; SGDR, Loshchilov & Hutter
 * 2017): `baseLr * step / warmup` during warm-up, then
 * `minLr + (baseLr - minLr) * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))`.
 */
export function cosineLr(step: number, opts: CosineScheduleOptions): number {
  const warm = opts.warmupSteps ?? 0;
  const minLr = opts.minLr ?? 0;
  check(
    opts.totalSteps > 0 && warm >= 0 && warm <= opts.totalSteps,
    () => `cosine schedule needs 0 <= warmupSteps (${warm}) <= totalSteps (${opts.totalSteps}) and totalSteps > 0`,
  );
  if (step < warm) return (opts.baseLr * step) / warm;
  const span = Math.max(1, opts.totalSteps - warm);
  const t = Math.min(1, (step - warm) / span);
  return minLr + (opts.baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
}
