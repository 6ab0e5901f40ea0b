/**
 * The upload's parse step (parseStoredFile: inflate, parse, fold connections) with DNS questions grouped for DNS
 * hits (a policy with a DOMAIN list) against without (the baseline, measured in the same run, alternating), on the
 * parser bench's generated, seeded text (15 MB by default, about one line in seven on port 53).
 * Run: node -r @swc-node/register bench/dns-hits.bench.ts [--mb 15] [--runs 5]
 * Also prints the size of the upload's name set (what a DNS retro-hunt reads instead of the capture) against the
 * stored, compressed capture. Prints figures and the ratio; asserts nothing.
 */
import zlib from 'node:zlib';
import { parseStoredFile, StoredFile } from '../src/modules/log-upload/parse-thread/parse-stored-file';
import { encodeNameSet, nameSetOf } from '../src/modules/log-upload/name-set';
import { generateTcpdumpText } from './lib/tcpdump-text';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const TARGET_BYTES = arg('mb', 15) * 1024 * 1024;
const RUNS = arg('runs', 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function run(blob: Buffer, dns: boolean): Promise<{ ms: number; cpuMs: number; connections: number; groups: number; names: number; nameBytes: number }> {
  const file: StoredFile = { encoding: 'gzip', blobs: [blob], internalNetworks: [], ownAddress: null, dns };
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const out = await parseStoredFile(file, () => true);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  if (out.kind !== 'parsed') throw new Error(out.kind);
  const names = nameSetOf(out.dnsQueries);
  return {
    ms,
    cpuMs: (c.user + c.system) / 1000,
    connections: out.connections.length,
    groups: out.dnsQueries.length,
    names: names.length,
    nameBytes: encodeNameSet(names).length,
  };
}

async function main(): Promise<void> {
  const text = generateTcpdumpText({ targetBytes: TARGET_BYTES, seed: 42, v6Share: 0.08 });
  const mb = text.length / 1024 / 1024;
  const blob = zlib.gzipSync(text);
  await run(blob, false);
  await run(blob, true);
  const off: number[] = [];
  const on: number[] = [];
  const offCpu: number[] = [];
  const onCpu: number[] = [];
  let last = { ms: 0, cpuMs: 0, connections: 0, groups: 0, names: 0, nameBytes: 0 };
  for (let r = 0; r < RUNS; r++) {
    const o = await run(blob, false);
    off.push(o.ms);
    offCpu.push(o.cpuMs);
    last = await run(blob, true);
    on.push(last.ms);
    onCpu.push(last.cpuMs);
  }
  console.log(`text: ${mb.toFixed(1)} MB, ${last.connections} connections, ${last.groups} DNS question groups; median of ${RUNS} runs`);
  console.log(`DNS off: ${(mb / (median(off) / 1000)).toFixed(0)} MB/s wall, ${(mb / (median(offCpu) / 1000)).toFixed(0)} MB per CPU second`);
  console.log(`DNS on:  ${(mb / (median(on) / 1000)).toFixed(0)} MB/s wall, ${(mb / (median(onCpu) / 1000)).toFixed(0)} MB per CPU second`);
  console.log(
    `name set: ${last.names} names, ${last.nameBytes} bytes = ${((100 * last.nameBytes) / blob.length).toFixed(2)}% of the ${(blob.length / 1048576).toFixed(1)} MB compressed capture`,
  );
  console.log(`ratio on/off (CPU): ${(median(offCpu) / median(onCpu)).toFixed(2)}; wall: ${(median(off) / median(on)).toFixed(2)}`);
}

void main();
