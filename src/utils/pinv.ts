import { check } from '../errors.js';

/** Machine epsilon of float32 (`torch.finfo(torch.float32).eps`). */
export const FLOAT32_EPS = 2 ** -23;

/** A thin singular value decomposition `A = U diag(s) V^T` (float64, row-major). */
export interface Svd {
  /** `[m, k]` left singular vectors (k = min(m, n)). */
  u: Float64Array;
  /** `k` singular values (not sorted). */
  s: Float64Array;
  /** `[n, k]` right singular vectors. */
  v: Float64Array;
  m: number;
  n: number;
  k: number;
}

/**
 * Thin SVD of a row-major `[m, n]` matrix with `m >= n` by one-sided Jacobi rotations (Hestenes 1958;
 * Demmel & Veselic 1992): columns of `A V` are orthogonalised pairwise until every pair is orthogonal
 * to working precision; their norms are the singular values.
 */
function jacobiSvdTall(a: ArrayLike<number>, m: number, n: number): Svd {
  // column-major copies: U (m x n) and V (n x n)
  const u = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) u[j * m + i] = a[i * n + j];
  const v = new Float64Array(n * n);
  for (let j = 0; j < n; j++) v[j * n + j] = 1;
  const eps = 1e-15;
  for (let sweep = 0; sweep < 100; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        const op = p * m;
        const oq = q * m;
        for (let i = 0; i < m; i++) {
          const x = u[op + i];
          const y = u[oq + i];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = u[op + i];
          const y = u[oq + i];
          u[op + i] = c * x - s * y;
          u[oq + i] = s * x + c * y;
        }
        const vp = p * n;
        const vq = q * n;
        for (let i = 0; i < n; i++) {
          const x = v[vp + i];
          const y = v[vq + i];
          v[vp + i] = c * x - s * y;
          v[vq + i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const sv = new Float64Array(n);
  const uo = new Float64Array(m * n);
  const vo = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let nrm = 0;
    for (let i = 0; i < m; i++) nrm += u[j * m + i] ** 2;
    nrm = Math.sqrt(nrm);
    sv[j] = nrm;
    for (let i = 0; i < m; i++) uo[i * n + j] = nrm > 0 ? u[j * m + i] / nrm : 0;
    for (let i = 0; i < n; i++) vo[i * n + j] = v[j * n + i];
  }
  return { u: uo, s: sv, v: vo, m, n, k: n };
}

/** Thin SVD of a row-major `[m, n]` matrix (any shape). */
export function svd(a: ArrayLike<number>, m: number, n: number): Svd {
  check(a.length === m * n, () => `svd: expected ${m}x${n} = ${m * n} values, got ${a.length}`);
  if (m >= n) return jacobiSvdTall(a, m, n);
  const at = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) at[j * m + i] = a[i * n + j];
  const r = jacobiSvdTall(at, n, m);
  return { u: r.v, s: r.s, v: r.u, m, n, k: m };
}

/**
 * Moore-Penrose pseudo-inverse of a row-major `[m, n]` matrix, returned as row-major `[n, m]`
 * (float64). Singular values at or below `rtol * max(s)` are treated as zero, as
 * `torch.linalg.pinv` does; the default `rtol` is torch's for float32, `max(m, n) * eps(float32)`.
 */
export function pinv(a: ArrayLike<number>, m: number, n: number, rtol = Math.max(m, n) * FLOAT32_EPS): Float64Array {
  const { u, s, v, k } = svd(a, m, n);
  let smax = 0;
  for (let j = 0; j < k; j++) smax = Math.max(smax, s[j]);
  const cut = rtol * smax;
  const inv = Array.from(s, (x) => (x > cut && x > 0 ? 1 / x : 0));
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < m; r++) {
      let acc = 0;
      for (let j = 0; j < k; j++) if (inv[j] !== 0) acc += v[i * k + j] * inv[j] * u[r * k + j];
      out[i * m + r] = acc;
    }
  }
  return out;
}
