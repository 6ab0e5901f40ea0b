/**
 * Parser throughput with DNS extraction on against off, on the parser bench's generated, seeded text (15 MB by
 * default; about one line in seven is a DNS query or response on port 53) and, with --dns-share, on text where that
 * share of the lines is DNS. Runs alternate off/on so both see the same machine.
 * Run: node -r @swc-node/register bench/dns-parser.bench.ts [--mb 15] [--runs 7]
 * Prints figures and the ratio on/off; asserts nothing.
 */
import { PacketBatch } from '../src/modules/log-upload/parsing/packet-batch';
import { TcpdumpParser } from '../src/modules/log-upload/parsing/tcpdump-parser';
import { generateTcpdumpText } from './lib/tcpdump-text';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const TARGET_BYTES = arg('mb', 15) * 1024 * 1024;
const RUNS = arg('runs', 7);
const CHUNK = 64 * 1024;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** The worker's shape: one reused batch per 64 KiB chunk; with DNS, the rows are taken after every chunk. */
function parse(buf: Buffer, dns: boolean): { ms: number; cpuMs: number; packets: number; dnsRows: number } {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const parser = new TcpdumpParser({ dns });
  const batch = new PacketBatch(2048);
  let dnsRows = 0;
  for (let i = 0; i < buf.length; i += CHUNK) {
    batch.clear();
    parser.push(buf.subarray(i, i + CHUNK), batch);
    if (dns) dnsRows += parser.takeDnsRows().length;
  }
  batch.clear();
  parser.end(batch);
  if (dns) dnsRows += parser.takeDnsRows().length;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000, packets: parser.stats.packets, dnsRows };
}

const text = generateTcpdumpText({ targetBytes: TARGET_BYTES, seed: 42, v6Share: 0.08 });
const mb = text.length / 1024 / 1024;
for (let w = 0; w < 2; w++) {
  parse(text, false);
  parse(text, true);
}
const off: number[] = [];
const on: number[] = [];
const offCpu: number[] = [];
const onCpu: number[] = [];
let last = { ms: 0, cpuMs: 0, packets: 0, dnsRows: 0 };
for (let r = 0; r < RUNS; r++) {
  const o = parse(text, false);
  off.push(o.ms);
  offCpu.push(o.cpuMs);
  last = parse(text, true);
  on.push(last.ms);
  onCpu.push(last.cpuMs);
}
const offMs = median(off);
const onMs = median(on);
console.log(
  `text: ${mb.toFixed(1)} MB, ${last.packets} packets, ${last.dnsRows} DNS rows (${((100 * last.dnsRows) / last.packets).toFixed(1)}% of packets); median of ${RUNS} runs`,
);
// CPU time beside wall time: on a shared machine the CPU figure is the closer one to a quiet run.
console.log(`DNS off: ${(mb / (offMs / 1000)).toFixed(0)} MB/s (${offMs.toFixed(1)} ms), ${(mb / (median(offCpu) / 1000)).toFixed(0)} MB per CPU second`);
console.log(
  `DNS on:  ${(mb / (onMs / 1000)).toFixed(0)} MB/s (${onMs.toFixed(1)} ms), ${(mb / (median(onCpu) / 1000)).toFixed(0)} MB per CPU second, ${((last.dnsRows / onMs) * 1000).toFixed(0)} DNS rows/s`,
);
console.log(`ratio on/off: ${(offMs / onMs).toFixed(2)} (throughput with DNS on as a share of DNS off)`);
