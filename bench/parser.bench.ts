/**
 * Parser + fold throughput on a generated, seeded 15 MB `tcpdump -tt -n` file (the default upload limit).
 * Run: node -r @swc-node/register bench/parser.bench.ts [--mb 15] [--runs 7] [--v6 0.08]
 * Prints figures and ratios to baselines measured in the same run; asserts nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PacketBatch } from '../src/modules/log-upload/parsing/packet-batch';
import { TcpdumpParser } from '../src/modules/log-upload/parsing/tcpdump-parser';
import { createDirectionClassifier, DirectionClassifier } from '../src/modules/log-upload/flows/direction';
import { ConnectionFolder } from '../src/modules/log-upload/flows/fold';
import { generateTcpdumpText } from './lib/tcpdump-text';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const TARGET_BYTES = arg('mb', 15) * 1024 * 1024;
const RUNS = arg('runs', 7);
/** Share of connections over IPv6. */
const V6_SHARE = arg('v6', 0.08);
const CHUNK = 64 * 1024; // what a Node stream hands the worker

/** The generator lives in lib/ so other benchmarks share it (same seed, same bytes). */
const generate = (targetBytes: number, seed: number): Buffer => generateTcpdumpText({ targetBytes, seed, v6Share: V6_SHARE });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function parseAll(buf: Buffer, chunk: number): { batches: PacketBatch[]; parser: TcpdumpParser } {
  const parser = new TcpdumpParser();
  const batches: PacketBatch[] = [];
  for (let i = 0; i < buf.length; i += chunk) batches.push(parser.push(buf.subarray(i, i + chunk)));
  batches.push(parser.end());
  return { batches, parser };
}

/** The worker's shape: one reused batch, folded after every 64 KiB chunk. */
function parseAndFold(buf: Buffer, classifier: DirectionClassifier): number {
  const parser = new TcpdumpParser();
  const folder = new ConnectionFolder(classifier);
  const batch = new PacketBatch(2048);
  for (let i = 0; i < buf.length; i += CHUNK) {
    batch.clear();
    folder.add(parser.push(buf.subarray(i, i + CHUNK), batch));
  }
  batch.clear();
  folder.add(parser.end(batch));
  return folder.finish().length;
}

/** The obvious implementation the typed-array fold is measured against: string keys in a Map. */
function foldWithStringKeys(batches: PacketBatch[]): number {
  const map = new Map<string, { packets: number; bytes: number; first: number; last: number }>();
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      const o = b.v6Slot[i] * 8;
      const w = b.v6Words;
      const s = o < 0 ? String(b.srcV4[i]) : `${w[o]}:${w[o + 1]}:${w[o + 2]}:${w[o + 3]}`;
      const d = o < 0 ? String(b.dstV4[i]) : `${w[o + 4]}:${w[o + 5]}:${w[o + 6]}:${w[o + 7]}`;
      const a = `${s}:${b.srcPort[i]}`;
      const z = `${d}:${b.dstPort[i]}`;
      const key = a < z ? `${b.protocol[i]}|${a}|${z}` : `${b.protocol[i]}|${z}|${a}`;
      const c = map.get(key);
      if (c === undefined) map.set(key, { packets: 1, bytes: b.printedLength[i], first: b.tsMicros[i], last: b.tsMicros[i] });
      else {
        c.packets++;
        c.bytes += b.printedLength[i];
        c.last = b.tsMicros[i];
      }
    }
  }
  return map.size;
}

function main(): void {
  const file = path.join(os.tmpdir(), `pcap-defense-bench-${process.pid}.txt`);
  const data = generate(TARGET_BYTES, 42);
  fs.writeFileSync(file, data);
  const mb = data.length / (1024 * 1024);
  const classifier = createDirectionClassifier([]);
  const { batches, parser } = parseAll(data, CHUNK);
  const lines = parser.stats.lines;

  const cases: Record<string, () => unknown> = {
    baseline: () => {
      const buf = fs.readFileSync(file);
      let n = 0;
      for (let p = buf.indexOf(10); p >= 0; p = buf.indexOf(10, p + 1)) n++;
      if (n !== lines) throw new Error(`newline count ${n} != ${lines}`);
    },
    parseChunks: () => parseAll(data, CHUNK),
    parseWhole: () => parseAll(data, data.length),
    fold: () => {
      const folder = new ConnectionFolder(classifier);
      for (const b of batches) folder.add(b);
      return folder.finish().length;
    },
    foldMap: () => foldWithStringKeys(batches),
    parseAndFold: () => parseAndFold(data, classifier),
  };
  const times: Record<string, number[]> = {};
  for (const name of Object.keys(cases)) cases[name](); // JIT warm-up of every path
  // Interleaved runs, so a noisy neighbour on the machine hits every case alike.
  for (let run = 0; run < RUNS; run++) for (const [name, fn] of Object.entries(cases)) (times[name] ??= []).push(time(fn));
  const t = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const connections = cases.fold() as number;
  const mapKeys = cases.foldMap() as number;

  const fmt = (x: number) => x.toFixed(1);
  const rate = (ms: number) => `${fmt(mb / (ms / 1000))} MB/s, ${Math.round(lines / (ms / 1000)).toLocaleString('en')} lines/s`;
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, load ${os.loadavg()[0].toFixed(2)}; median of ${RUNS} runs`);
  const v6Rows = batches.reduce((n, b) => n + b.v6Count, 0);
  console.log(
    `input: ${fmt(mb)} MB, ${lines} lines, ${parser.stats.packets} packets (${((100 * v6Rows) / parser.stats.packets).toFixed(0)}% IPv6), ` +
      `skipped ${JSON.stringify(parser.stats.skipped)}`,
  );
  console.log(`baseline (read file + find every newline): ${fmt(t.baseline)} ms = ${rate(t.baseline)}`);
  console.log(`parse, 64 KiB chunks:  ${fmt(t.parseChunks)} ms = ${rate(t.parseChunks)}; ${(t.parseChunks / t.baseline).toFixed(1)}x baseline`);
  console.log(`parse, one 15 MB push: ${fmt(t.parseWhole)} ms = ${rate(t.parseWhole)}; ${(t.parseWhole / t.baseline).toFixed(1)}x baseline`);
  console.log(
    `fold ${parser.stats.packets} packets -> ${connections} connections: ${fmt(t.fold)} ms; ` +
      `string-keyed Map baseline (${mapKeys} keys): ${fmt(t.foldMap)} ms; Map / typed = ${(t.foldMap / t.fold).toFixed(1)}x`,
  );
  console.log(`parse + fold, reused batch per 64 KiB chunk (the worker's loop): ${fmt(t.parseAndFold)} ms = ${rate(t.parseAndFold)}`);
  fs.rmSync(file, { force: true });
}

main();
