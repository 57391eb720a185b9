/** Drawing helpers shared by the generated datasets (classification shapes and detection scenes). */

export type Rgb = [number, number, number];

/** HSV (each in [0, 1]) to RGB in [0, 1]. */
export function hsv(h: number, s: number, v: number): Rgb {
  const f = (n: number) => {
    const k = (n + h * 6) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

/** `a * (1 - t) + b * t` per channel. */
export function mixRgb(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] * (1 - t) + b[0] * t, a[1] * (1 - t) + b[1] * t, a[2] * (1 - t) + b[2] * t];
}

/** A polygon with `n` points of each radius in turn (a star for two radii), the first one pointing up. */
export function regularPolygon(n: number, radii: number[]): { xs: number[]; ys: number[] } {
  const xs: number[] = [];
  const ys: number[] = [];
  const m = n * radii.length;
  for (let i = 0; i < m; i++) {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / m;
    const r = radii[i % radii.length];
    xs.push(r * Math.cos(a));
    ys.push(r * Math.sin(a));
  }
  return { xs, ys };
}

/** Even-odd point-in-polygon test. */
export function polygonContains(px: number, py: number, p: { xs: number[]; ys: number[] }): boolean {
  const { xs, ys } = p;
  let inside = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
    if (ys[i] > py !== ys[j] > py && px < ((xs[j] - xs[i]) * (py - ys[i])) / (ys[j] - ys[i]) + xs[i]) inside = !inside;
  }
  return inside;
}

/**
 * Smooth value noise at grid coordinates `(gx, gy)`: the `(grid + 1)^2` lattice values in `noise`
 * (row-major) blended with the smoothstep weight.
 */
export function valueNoise(noise: ArrayLike<number>, grid: number, gx: number, gy: number): number {
  const ix = Math.min(grid - 1, Math.floor(gx));
  const iy = Math.min(grid - 1, Math.floor(gy));
  const fx = gx - ix;
  const fy = gy - iy;
  const at = (a: number, b: number) => noise[b * (grid + 1) + a];
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  return (at(ix, iy) * (1 - sx) + at(ix + 1, iy) * sx) * (1 - sy) + (at(ix, iy + 1) * (1 - sx) + at(ix + 1, iy + 1) * sx) * sy;
}
