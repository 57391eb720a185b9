// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Batched 2-D transpose of float32 matrices: `dst[b][j][i] = src[b][i][j]` for `[rows, cols]` sources,
 * in 4x4 blocks transposed in registers (unpack-lo/hi shuffles), scalar at the ragged edges.
 */

/** Batches `[b0, b1)`, source rows `[i0, i1)` of each. */
export function transpose2d(src: usize, dst: usize, rows: i32, cols: i32, b0: i32, b1: i32, i0: i32, i1: i32): void {
  const mat = <usize>rows * <usize>cols << 2;
  const sRow = <usize>cols << 2;
  const dRow = <usize>rows << 2;
  for (let b = b0; b < b1; b++) {
    const s = src + <usize>b * mat;
    const d = dst + <usize>b * mat;
    let i = i0;
    for (; i + 4 <= i1; i += 4) {
      const si = s + <usize>i * sRow;
      let j = 0;
      for (; j + 4 <= cols; j += 4) {
        const p = si + (<usize>j << 2);
        const r0 = v128.load(p);
        const r1 = v128.load(p + sRow);
        const r2 = v128.load(p + 2 * sRow);
        const r3 = v128.load(p + 3 * sRow);
        const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);
        const t1 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
        const t2 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
        const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
        const q = d + <usize>j * dRow + (<usize>i << 2);
        v128.store(q, f32x4.shuffle(t0, t1, 0, 1, 4, 5));
        v128.store(q + dRow, f32x4.shuffle(t0, t1, 2, 3, 6, 7));
        v128.store(q + 2 * dRow, f32x4.shuffle(t2, t3, 0, 1, 4, 5));
        v128.store(q + 3 * dRow, f32x4.shuffle(t2, t3, 2, 3, 6, 7));
      }
      for (; j < cols; j++) {
        for (let r = 0; r < 4; r++) store<f32>(d + <usize>j * dRow + (<usize>(i + r) << 2), load<f32>(si + <usize>r * sRow + (<usize>j << 2)));
      }
    }
    for (; i < i1; i++) {
      const si = s + <usize>i * sRow;
      for (let j = 0; j < cols; j++) store<f32>(d + <usize>j * dRow + (<usize>i << 2), load<f32>(si + (<usize>j << 2)));
    }
  }
}
