/** Download progress: bytes so far and the total (0 when unknown). */
export type ProgressCallback = (bytes: number, total: number) => void;

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.ceil(s)}s`;
}

/** One line of a progress bar: `label [=====>    ] 12.3 MB / 98.0 MB  4.1 MB/s  ETA 21s`. */
export function progressLine(label: string, bytes: number, total: number, seconds: number, width = 24): string {
  const rate = seconds > 0 ? bytes / seconds : 0;
  if (!total) return `${label} ${human(bytes)}  ${human(rate)}/s`;
  const f = Math.min(1, bytes / total);
  const fill = Math.round(f * width);
  const bar = `${'='.repeat(Math.max(0, fill - 1))}${fill ? (f >= 1 ? '=' : '>') : ''}${' '.repeat(width - fill)}`;
  const eta = rate > 0 ? (total - bytes) / rate : Infinity;
  return `${label} [${bar}] ${(f * 100).toFixed(0).padStart(3)}% ${human(bytes)} / ${human(total)}  ${human(rate)}/s  ETA ${duration(eta)}`;
}

/**
 * A progress reporter: calls `onProgress` on every chunk and, when `stream` is a terminal (Node
 * `process.stderr` by default), redraws a bar at most every 100 ms. `done()` prints the last line.
 */
export function progressReporter(label: string, onProgress?: ProgressCallback, bar = true): { update: ProgressCallback; done: () => void } {
  const out = typeof process !== 'undefined' ? process.stderr : undefined;
  const tty = bar && !!out?.isTTY;
  const t0 = Date.now();
  let last = 0;
  let lastBytes = 0;
  let lastTotal = 0;
  const draw = (final: boolean) => {
    if (!tty || !out) return;
    out.write(`\r${progressLine(label, lastBytes, lastTotal, (Date.now() - t0) / 1000)}\x1b[K${final ? '\n' : ''}`);
  };
  return {
    update: (bytes, total) => {
      lastBytes = bytes;
      lastTotal = total;
      onProgress?.(bytes, total);
      const now = Date.now();
      if (now - last >= 100) {
        last = now;
        draw(false);
      }
    },
    done: () => draw(true),
  };
}

/** Pass a response's body through a byte counter. */
export function countingResponse(res: Response, total: number, update: ProgressCallback, start = 0): Response {
  if (!res.body) return res;
  let n = start;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      n += chunk.byteLength;
      update(n, total);
      ctl.enqueue(chunk);
    },
  });
  return new Response(res.body.pipeThrough(counter), { status: res.status, statusText: res.statusText, headers: res.headers });
}
