/**
 * A terminal progress bar: step, loss, steps/s and ETA. On a TTY it redraws one line; elsewhere
 * (CI, pipes, tests) it prints a line at every tenth of the run, so logs stay short.
 */
export interface ProgressOptions {
  /** Where lines go (default process.stdout). */
  write?: (s: string) => void;
  /** Redraw in place (default: whether stdout is a TTY). */
  tty?: boolean;
  /** Bar width in characters (default 24). */
  width?: number;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

/** Progress of one training phase. */
export class ProgressBar {
  private readonly t0 = performance.now();
  private lastPrinted = -1;
  private readonly write: (s: string) => void;
  private readonly tty: boolean;
  private readonly width: number;

  constructor(
    readonly label: string,
    readonly total: number,
    opts: ProgressOptions = {},
  ) {
    this.write = opts.write ?? ((s) => process.stdout.write(s));
    this.tty = opts.tty ?? Boolean(process.stdout.isTTY);
    this.width = opts.width ?? 24;
  }

  /** Seconds since the bar was created. */
  get elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }

  /** Report that `step` (1-based) steps are done, with the current loss and any extra text. */
  update(step: number, loss: number, extra = ''): void {
    const rate = step / this.elapsed;
    const eta = (this.total - step) / rate;
    const filled = Math.round((this.width * step) / this.total);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}`;
    const line = `${this.label.padEnd(10)} [${bar}] ${String(step).padStart(String(this.total).length)}/${this.total}  loss ${loss.toFixed(4)}  ${rate.toFixed(2)} steps/s  ETA ${clock(eta)}${extra ? `  ${extra}` : ''}`;
    if (this.tty) {
      this.write(`\r${line}\x1b[K${step === this.total ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor((10 * step) / this.total); // 10 only at the last step
    if (decile === this.lastPrinted) return;
    this.lastPrinted = decile;
    this.write(`${line}\n`);
  }
}
