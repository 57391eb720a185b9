// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Strided copy into a dense output: for every (i0, i1, i2, i3) in `[r0, r1) x n1 x n2 x n3`, in that
 * order, `run` bytes from `src + i0*s0 + i1*s1 + i2*s2 + i3*s3`. Slice, split and any transpose that
 * keeps the innermost axis reduce to this once their adjacent axes are merged.
 */
export function gatherRuns(
  src: usize, dst: usize, run: usize, n1: i32, n2: i32, n3: i32,
  s0: usize, s1: usize, s2: usize, s3: usize, r0: i32, r1: i32,
): void {
  let d = dst + <usize>r0 * <usize>n1 * <usize>n2 * <usize>n3 * run;
  const vec = run >= 16 && run <= 512 && (run & 15) == 0;
  for (let i0 = r0; i0 < r1; i0++) {
    for (let i1 = 0; i1 < n1; i1++) {
      for (let i2 = 0; i2 < n2; i2++) {
        let s = src + <usize>i0 * s0 + <usize>i1 * s1 + <usize>i2 * s2;
        for (let i3 = 0; i3 < n3; i3++) {
          if (run == 4) {
            store<u32>(d, load<u32>(s));
          } else if (vec) {
            for (let o: usize = 0; o < run; o += 16) v128.store(d + o, v128.load(s + o));
          } else {
            memory.copy(d, s, run);
          }
          d += run;
          s += s3;
        }
      }
    }
  }
}

/**
 * Row gather: `out[o, j] = x[o, idx[j]]` for rows of `run` bytes, `o` in `[o0, o1)`, `x` holding
 * `axis` rows per `o` (tfjs `GatherV2` with batchDims 0; indices are checked by the caller).
 */
export function gatherRows(x: usize, idx: usize, out: usize, run: usize, axis: i32, nIdx: i32, o0: i32, o1: i32): void {
  const vec = run >= 16 && run <= 512 && (run & 15) == 0;
  let d = out + <usize>o0 * <usize>nIdx * run;
  for (let o = o0; o < o1; o++) {
    const xo = x + <usize>o * <usize>axis * run;
    for (let j = 0; j < nIdx; j++) {
      const s = xo + <usize>load<i32>(idx + (<usize>j << 2)) * run;
      if (run == 4) store<u32>(d, load<u32>(s));
      else if (vec) for (let b: usize = 0; b < run; b += 16) v128.store(d + b, v128.load(s + b));
      else memory.copy(d, s, run);
      d += run;
    }
  }
}
