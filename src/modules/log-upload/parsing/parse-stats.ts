/** Why a line produced no packet. Every line of an upload is either a packet or counted under one of these. */
export enum SkipReason {
  /** Not a packet line at all: empty, continuation (indented), hex/ASCII dump (`-x`/`-X`). */
  NOT_PACKET = 'NOT_PACKET',
  /** Not indented yet not starting with a `-tt` epoch timestamp (`%u.%06u `): time-of-day output of plain
   * `tcpdump -n`, `[Error converting time]`, a bogus fraction (`1418145370.2147483648`), the inner packet
   * of VXLAN/Geneve printed on its own line, `[Invalid header ...]`. */
  NO_TIMESTAMP = 'NO_TIMESTAMP',
  /** Timestamped, but no IP header in a place we read: ARP, STP, LLDP, IPX, `IP6,` ... */
  NOT_IP = 'NOT_IP',
  /** An IP header starts but its addresses do not parse: `IP bad-len 0`, `IP6 version error: 0 != 6`, or a
   * `-v` IPv4 header whose indented address line does not follow. */
  MALFORMED_ADDRESS = 'MALFORMED_ADDRESS',
  /** Longer than the per-line cap (64 KiB): nothing tcpdump prints per packet is that long without `-X`. */
  TOO_LONG = 'TOO_LONG',
}

export const SKIP_REASONS: readonly SkipReason[] = Object.values(SkipReason);

export interface SkipSample {
  lineNo: number;
  reason: SkipReason;
  /** The line, truncated. */
  text: string;
}

export interface ParseStats {
  /** Lines seen, packet or not (a final line without newline counts). */
  lines: number;
  /** Lines that produced a packet row. */
  packets: number;
  bytes: number;
  skipped: Record<SkipReason, number>;
  /** Lines that start with a wall-clock time (`21:46:16.463334 `, `2019-05-29 21:46:16.463334 `) instead of
   * the epoch seconds of `-tt`: counted under NO_TIMESTAMP too. See `missingEpochTimestamps`. */
  timeOfDayLines: number;
  /** The first few skipped lines of each reason. */
  samples: SkipSample[];
}

export function emptyParseStats(): ParseStats {
  const skipped = {} as Record<SkipReason, number>;
  for (const r of SKIP_REASONS) skipped[r] = 0;
  return { lines: 0, packets: 0, bytes: 0, skipped, timeOfDayLines: 0, samples: [] };
}

/** Raised (or returned as the upload's failure) when a file was captured without `-tt`. */
export class NoEpochTimestampsError extends Error {
  /** `readLines`: the lines read when the file was read only until this was clear (its counts are of those). */
  constructor(
    readonly timeOfDayLines: number,
    readonly readLines: number | null = null,
  ) {
    super(
      (readLines === null
        ? `The file has ${timeOfDayLines} packet line(s) with a time of day but no date. `
        : `The file's first ${readLines} lines have ${timeOfDayLines} packet line(s) with a time of day but no date (it was read no further). `) +
        'Print epoch timestamps: run tcpdump with -tt -n (e.g. `tcpdump -tt -n -r capture.pcap > capture.txt`).',
    );
    this.name = 'NoEpochTimestampsError';
  }
}

/**
 * Decision for the upload: time-of-day lines cannot be placed on a date, so a file made mostly of them
 * (more of them than packets we could read) is refused with a message asking for `-tt`, rather than
 * "succeeding" with zero or a few packets. A few stray ones among epoch lines are only skipped.
 * Works on partial stats too, so a worker can stop after the first chunk (`partial`: the message then says so).
 */
export function missingEpochTimestamps(stats: ParseStats, partial = false): NoEpochTimestampsError | null {
  return stats.timeOfDayLines > 0 && stats.timeOfDayLines > stats.packets
    ? new NoEpochTimestampsError(stats.timeOfDayLines, partial ? stats.lines : null)
    : null;
}
