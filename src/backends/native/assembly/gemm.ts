// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Batched matrix product `C[b] = op(A[b]) op(B[b])` on float32, any transposes, as strides:
 * element (i, k) of A is at `a + i*sam + k*sak` bytes, element (k, j) of B at `b + k*sbk + j*sbn`.
 * B is packed into panels of 8 columns (`[K][8]`, zero-padded), then a 4x8 register tile
 * (8 accumulators) walks K, the layout of XNNPACK's "4x8 splat" wasm micro-kernels.
 */
import { loadLanes, mac, storeLanes } from './simd';

/** Pack `B` (K x N, strided) into `ceil(N/8)` panels `[K][8]` at `dst`. */
export function packB(b: usize, K: i32, N: i32, sbk: usize, sbn: usize, dst: usize): void {
  let panel = dst;
  for (let j = 0; j < N; j += 8) {
    const w = min(8, N - j);
    const bj = b + <usize>j * sbn;
    if (w == 8 && sbn == 4) {
      for (let k = 0; k < K; k++) {
        const src = bj + <usize>k * sbk;
        v128.store(panel, v128.load(src));
        v128.store(panel, v128.load(src, 16), 16);
        panel += 32;
      }
    } else {
      for (let k = 0; k < K; k++) {
        const src = bj + <usize>k * sbk;
        for (let c = 0; c < 8; c++) store<f32>(panel + (<usize>c << 2), c < w ? load<f32>(src + <usize>c * sbn) : <f32>0);
        panel += 32;
      }
    }
  }
}

/** The `cols` (1..8) values at `p` (bias values, or a row of a partial C tile) as two vectors (zero past `cols`). */
@inline
function loadLo(p: usize, cols: i32): v128 {
  return cols >= 4 ? v128.load(p) : loadLanes(p, cols);
}
@inline
function loadHi(p: usize, cols: i32): v128 {
  return cols == 8 ? v128.load(p, 16) : cols > 4 ? loadLanes(p + 16, cols - 4) : f32x4.splat(0);
}

function storeRow8(p: usize, v0: v128, v1: v128, cols: i32): void {
  if (cols == 8) {
    v128.store(p, v0);
    v128.store(p, v1, 16);
  } else if (cols > 4) {
    v128.store(p, v0);
    storeLanes(p + 16, v1, cols - 4);
  } else {
    storeLanes(p, v0, cols);
  }
}

/**
 * 4 rows x 8 columns of C from A rows at `a` (row stride `sam`, k stride `sak`) and a packed B panel:
 * per k, two B vectors and four broadcast A values feed eight multiply-adds into registers. `bias`
 * (0: none) points at this panel's bias values, added to the finished sums.
 */
function tile4x8(a: usize, sam: usize, sak: usize, bp: usize, K: i32, c: usize, ldc: usize, cols: i32, bias: usize, acc: bool): void {
  let c00 = f32x4.splat(0);
  let c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  if (acc) {
    c00 = loadLo(c, cols);
    c01 = loadHi(c, cols);
    c10 = loadLo(c + ldc, cols);
    c11 = loadHi(c + ldc, cols);
    c20 = loadLo(c + 2 * ldc, cols);
    c21 = loadHi(c + 2 * ldc, cols);
    c30 = loadLo(c + 3 * ldc, cols);
    c31 = loadHi(c + 3 * ldc, cols);
  }
  const end = bp + (<usize>K << 5);
  while (bp < end) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let v = v128.load32_splat(a);
    c00 = mac(c00, v, b0);
    c01 = mac(c01, v, b1);
    v = v128.load32_splat(a + sam);
    c10 = mac(c10, v, b0);
    c11 = mac(c11, v, b1);
    v = v128.load32_splat(a + 2 * sam);
    c20 = mac(c20, v, b0);
    c21 = mac(c21, v, b1);
    v = v128.load32_splat(a + 3 * sam);
    c30 = mac(c30, v, b0);
    c31 = mac(c31, v, b1);
    a += sak;
    bp += 32;
  }
  if (bias) {
    const lo = loadLo(bias, cols);
    const hi = loadHi(bias, cols);
    c00 = f32x4.add(c00, lo);
    c01 = f32x4.add(c01, hi);
    c10 = f32x4.add(c10, lo);
    c11 = f32x4.add(c11, hi);
    c20 = f32x4.add(c20, lo);
    c21 = f32x4.add(c21, hi);
    c30 = f32x4.add(c30, lo);
    c31 = f32x4.add(c31, hi);
  }
  storeRow8(c, c00, c01, cols);
  storeRow8(c + ldc, c10, c11, cols);
  storeRow8(c + 2 * ldc, c20, c21, cols);
  storeRow8(c + 3 * ldc, c30, c31, cols);
}

/** 1 row x 8 columns (the rows left over by the 4-row tiles). */
function tile1x8(a: usize, sak: usize, bp: usize, K: i32, c: usize, cols: i32, bias: usize, acc: bool): void {
  let c0 = f32x4.splat(0);
  let c1 = c0;
  if (acc) {
    c0 = loadLo(c, cols);
    c1 = loadHi(c, cols);
  }
  const end = bp + (<usize>K << 5);
  while (bp < end) {
    const v = v128.load32_splat(a);
    c0 = mac(c0, v, v128.load(bp));
    c1 = mac(c1, v, v128.load(bp, 16));
    a += sak;
    bp += 32;
  }
  if (bias) {
    c0 = f32x4.add(c0, loadLo(bias, cols));
    c1 = f32x4.add(c1, loadHi(bias, cols));
  }
  storeRow8(c, c0, c1, cols);
}

/**
 * Depth of one pass over K: B is packed and multiplied `KC` rows at a time, so that a panel (`KC * 32`
 * bytes) stays in L1 and the A rows one 64-row block reads in that pass stay in L2 (a weight gradient's
 * K is every token of the batch, tens of thousands). A later pass starts its accumulators from the C
 * tile the pass before stored, so every element is still one chain of multiply-adds in k order: the
 * same sums, bit for bit, as a single pass; the bias is added once, after the last.
 */
const KC = 512;

/**
 * `C[bi] (M x N, dense) = A[bi] B[bi] (+ bias)` for batches `[b0, b1)` and rows `[m0, m1)` of each; `sab` /
 * `sbb` are the batch strides in bytes (0 broadcasts). `scratch` holds `ceil(N/8) * min(K, KC) * 32` bytes (one
 * per thread). `bias` (0: none) is `N` values added to every row after its sum, as `matMul` then `add`.
 * `ldcN` (0: `N`) is the row stride of C in elements, so that a thread can take a block of columns.
 */
export function bmm(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32,
  sam: usize, sak: usize, sbk: usize, sbn: usize, sab: usize, sbb: usize,
  scratch: usize, b0: i32, b1: i32, m0: i32, m1: i32, bias: usize, ldcN: i32,
): void {
  const ldc = <usize>(ldcN ? ldcN : N) << 2;
  let packed: usize = <usize>-1;
  for (let bi = b0; bi < b1; bi++) {
    const bsrc = b + <usize>bi * sbb;
    const ab = a + <usize>bi * sab;
    const cb = c + <usize>bi * <usize>M * ldc;
    for (let k0 = 0; k0 < K || k0 == 0; k0 += KC) {
      const kc = min(KC, K - k0);
      const panelBytes = <usize>kc << 5;
      const last = k0 + kc >= K;
      // one pass (K <= KC) packs a B shared by the batches once
      const bk = bsrc + <usize>k0 * sbk;
      if (bk != packed) {
        packB(bk, kc, N, sbk, sbn, scratch);
        packed = K <= KC ? bk : <usize>-1;
      }
      const ak = ab + <usize>k0 * sak;
      const acc = k0 > 0;
      for (let i0 = m0; i0 < m1; i0 += 64) {
        const i1 = min(i0 + 64, m1);
        let bp = scratch;
        for (let j = 0; j < N; j += 8) {
          const cols = min(8, N - j);
          const cj = cb + (<usize>j << 2);
          const bj: usize = bias && last ? bias + (<usize>j << 2) : 0;
          let i = i0;
          for (; i + 4 <= i1; i += 4) tile4x8(ak + <usize>i * sam, sam, sak, bp, kc, cj + <usize>i * ldc, ldc, cols, bj, acc);
          for (; i < i1; i++) tile1x8(ak + <usize>i * sam, sak, bp, kc, cj + <usize>i * ldc, cols, bj, acc);
          bp += panelBytes;
        }
      }
    }
  }
}
