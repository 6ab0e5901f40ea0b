/** Where a bar is drawn: stderr in the CLI. Only a terminal (`isTTY`) gets one. */
export interface ProgressStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  label: string;
  /** Bytes expected (file size); null when unknown (stdin): no percentage, no ETA. */
  total: number | null;
  /** `bytes` shows amounts and a rate; `percent` counts 0..100 (a server-side job). */
  unit?: 'bytes' | 'percent';
  /** Least time between two redraws. */
  intervalMs?: number;
  now?: () => number;
}

export interface ProgressState {
  label: string;
  done: number;
  total: number | null;
  unit: 'bytes' | 'percent';
  elapsedMs: number;
  /** Terminal width. */
  columns: number;
}

/** 1234567 -> "1.2 MB" (powers of 1000, as MAX_UPLOAD_BYTES's "15MB"). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.max(0, Math.round(n))} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Seconds -> "0:07", "12:34", "1:02:03". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** The bar's text, without control codes: label, bar, percent, amounts, rate and ETA, fitted to the width. */
export function renderProgress(p: ProgressState): string {
  const seconds = p.elapsedMs / 1000;
  // The first half second says little about the rate (the first chunk is taken at once): no rate or ETA yet.
  const rate = seconds >= 0.5 ? p.done / seconds : 0;
  const fraction = p.total && p.total > 0 ? Math.min(1, p.done / p.total) : null;
  const parts: string[] = [];
  if (fraction != null) parts.push(`${String(Math.floor(fraction * 100)).padStart(3)}%`);
  if (p.unit === 'bytes') {
    parts.push(p.total != null ? `${formatBytes(p.done)} / ${formatBytes(p.total)}` : formatBytes(p.done));
    parts.push(rate > 0 ? `${formatBytes(rate)}/s` : '-- B/s');
  }
  if (fraction != null && p.total != null) {
    parts.push(rate > 0 && p.done > 0 ? `ETA ${formatDuration((p.total - p.done) / rate)}` : 'ETA --:--');
  } else {
    parts.push(formatDuration(seconds));
  }
  const tail = parts.join('  ');
  const label = p.label.length > 30 ? `…${p.label.slice(-29)}` : p.label;
  const room = p.columns - 1 - label.length - tail.length - 5;
  if (fraction == null || room < 10) return `${label}  ${tail}`.slice(0, Math.max(0, p.columns - 1));
  const width = Math.min(40, room);
  const filled = Math.round(fraction * width);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${tail}`;
}

/**
 * A one-line progress bar redrawn in place (`\r`, erase line) at most every `intervalMs`. On a stream that is
 * not a terminal it writes nothing at all, so logs and pipes get the command's final summary only.
 */
export class ProgressBar {
  readonly active: boolean;
  private readonly started: number;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private lastDraw = -Infinity;
  private drawn = false;
  private done = 0;
  private total: number | null;

  constructor(
    private readonly stream: ProgressStream,
    private readonly options: ProgressOptions,
  ) {
    this.active = stream.isTTY === true;
    this.now = options.now ?? (() => performance.now());
    this.intervalMs = options.intervalMs ?? 100;
    this.started = this.now();
    this.total = options.total;
  }

  /** Records progress; redraws when enough time passed since the last redraw. */
  update(done: number, total: number | null = this.total): void {
    if (!this.active) return;
    this.done = done;
    this.total = total;
    const t = this.now();
    if (t - this.lastDraw < this.intervalMs) return;
    this.lastDraw = t;
    this.draw(t);
  }

  /** Erases the bar so the summary that follows starts on a clean line. */
  finish(): void {
    if (!this.active || !this.drawn) return;
    this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }

  private draw(t: number): void {
    const line = renderProgress({
      label: this.options.label,
      done: this.done,
      total: this.total,
      unit: this.options.unit ?? 'bytes',
      elapsedMs: t - this.started,
      columns: this.stream.columns || 80,
    });
    this.stream.write(`\r\x1b[2K${line}`);
    this.drawn = true;
  }
}
