import { parseLines } from '../parsing';

/** Bytes of text kept from each end of an upload to date it before the worker parses it. */
export const SAMPLE_BYTES = 4096;

/** Capture times (epoch ms) of the packet lines sampled from a file's two ends. */
export interface CaptureSample {
  earliest: number;
  latest: number;
}

/**
 * Dates a capture from its first and last lines: all the acknowledgment can know, since the whole file is
 * parsed only by the worker. tcpdump writes packets in capture order, so the two ends are usually its span;
 * a file put together out of order may hold older packets in between (the worker then says so). Lines cut
 * by a sample's edge are dropped: a timestamp's tail read as a whole one would date the file wrongly.
 */
export function sampleCaptureTimes(head: Buffer, tail: Buffer, textBytes: number): CaptureSample | null {
  const whole = textBytes <= head.length;
  const times = [...packetTimes(whole ? head : head.subarray(0, head.lastIndexOf(0x0a) + 1))];
  // The tail starts inside the file: its first line is cut unless it has none whole at all.
  const cut = tail.indexOf(0x0a);
  if (!whole && cut >= 0) times.push(...packetTimes(tail.subarray(cut + 1)));
  if (times.length === 0) return null;
  return { earliest: Math.min(...times), latest: Math.max(...times) };
}

function packetTimes(text: Buffer): number[] {
  if (text.length === 0) return [];
  return parseLines(text).rows.map((r) => Math.floor(r.tsMicros / 1000));
}
