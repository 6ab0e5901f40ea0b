import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ProgressBar } from '../common/progress/progress-bar';
import { DEFAULT_URL, isFinished, postFileGraphql, STATUS_FIELDS, UploadView, waitForUpload } from './client';
import { Command, Io, UsageError } from './shared';

const WAIT_TIMEOUT_S = 120;

export const upload: Command = {
  summary: 'Upload a tcpdump text file (plain or gzip) to a server by the logUploadCreate mutation; --wait until it is processed.',
  usage: 'upload FILE (--device ID | --nickname NAME | --ip ADDR) [--url URL] [--key KEY] [--wait [--timeout SECONDS]] [--json]',
  flags: [
    ['FILE', 'A `tcpdump -tt -n` text file, plain or gzip.'],
    ['--device ID', 'The device the capture belongs to, by its ID (or one of the next two).'],
    ['--nickname NAME', 'The device by its nickname.'],
    ['--ip ADDR', 'The device by its address.'],
    ['--url URL', `The server's GraphQL endpoint (or set PCAP_DEFENSE_URL; default ${DEFAULT_URL}).`],
    ['--key KEY', 'An UPLOADER or ADMIN API key (or set PCAP_DEFENSE_KEY).'],
    ['--wait', 'Follow the upload until the server has processed it, and print its counts.'],
    ['--timeout SECONDS', `With --wait: give up after this long (default ${WAIT_TIMEOUT_S}).`],
    ['--json', 'Print the result as one JSON object.'],
  ],
  examples: [
    'pcap-defense upload capture.txt --nickname "HQ sensor" --url http://host:4000/graphql --key "$KEY" --wait',
    'pcap-defense upload tspcap.1700000000.gz --ip 10.0.2.15 --json',
  ],
  async run(argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        device: { type: 'string' },
        nickname: { type: 'string' },
        ip: { type: 'string' },
        url: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean' },
        wait: { type: 'boolean' },
        timeout: { type: 'string' },
      },
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one FILE');
    return uploadCommand(positionals[0], values, io);
  },
};

const UPLOAD_MUTATION = `mutation LogUploadCreate($input: LogUploadCreateInput!) {
  logUploadCreate(input: $input) {
    logUpload { ${STATUS_FIELDS} fileName size md5 receivedAt device { id nickname } }
    duplicate
    warnings { code message }
    userErrors { code field message }
  }
}`;

interface CreatePayload {
  logUpload: UploadView | null;
  duplicate: boolean;
  warnings?: Array<{ code: string; message: string }>;
  userErrors: Array<{ code: string; field: string[] | null; message: string }>;
}

interface UploadOptions {
  device?: string;
  nickname?: string;
  ip?: string;
  url?: string;
  key?: string;
  json?: boolean;
  wait?: boolean;
  timeout?: string;
}

async function uploadCommand(file: string, values: UploadOptions, io: Io): Promise<number> {
  const selectors = [values.device, values.nickname, values.ip].filter((v) => v !== undefined);
  if (selectors.length !== 1) throw new UsageError('name the device by exactly one of --device ID, --nickname NAME or --ip ADDR');
  const key = values.key ?? io.env.PCAP_DEFENSE_KEY;
  if (!key) throw new UsageError('give --key KEY or set PCAP_DEFENSE_KEY (an UPLOADER or ADMIN API key)');
  const url = values.url ?? io.env.PCAP_DEFENSE_URL ?? DEFAULT_URL;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'http:' && protocol !== 'https:') throw new UsageError(`--url must be an http(s) URL such as ${DEFAULT_URL}`);
  const timeoutS = values.timeout === undefined ? WAIT_TIMEOUT_S : Number(values.timeout);
  if (!(timeoutS > 0)) throw new UsageError('--timeout must be a number of seconds');

  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (e) {
    throw new UsageError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // The server checks both against what arrived: a proxy that cut or altered the file is caught.
  const input = {
    device: values.device,
    deviceNickname: values.nickname,
    deviceIp: values.ip,
    file: null,
    md5: crypto.createHash('md5').update(bytes).digest('hex'),
    size: bytes.length,
  };
  const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const operations = JSON.stringify({ query: UPLOAD_MUTATION, variables: { input } });
  const map = JSON.stringify({ 0: ['variables.input.file'] });
  const type = gzipped ? 'application/gzip' : 'text/plain';
  const target = { url, key };
  const send = (progress: ProgressBar) =>
    postFileGraphql<{ logUploadCreate: CreatePayload }>(target, operations, map, { name: path.basename(file), type, bytes }, progress);
  const { logUploadCreate: payload } = await send(new ProgressBar(io.stderr, { label: path.basename(file), total: null }));

  if (payload.userErrors.length || !payload.logUpload) {
    if (values.json) io.out(JSON.stringify(payload));
    for (const e of payload.userErrors) io.err(`pcap-defense upload: ${e.code}${e.field ? ` (${e.field.join('.')})` : ''}: ${e.message}`);
    return 1;
  }
  const created = payload.logUpload;
  if (!values.json) for (const w of payload.warnings ?? []) io.err(`pcap-defense upload: warning: ${w.code}: ${w.message}`);
  if (!values.wait) {
    if (values.json) io.out(JSON.stringify(payload));
    else io.out(`id: ${created.id}\nstatus: ${created.status}\nduplicate: ${payload.duplicate}`);
    return 0;
  }
  if (!values.json) io.out(`id: ${created.id}\nduplicate: ${payload.duplicate}`);
  const processing = new ProgressBar(io.stderr, { label: 'processing', total: 100, unit: 'percent' });
  // A duplicate is a success: the file is there already. Its status is the earlier upload's, which this key
  // may not be allowed to query (another UPLOADER key sent it): then it asks by sending the file again.
  const again = payload.duplicate
    ? async () => (await send(new ProgressBar({ write: () => true }, { label: '', total: null }))).logUploadCreate.logUpload
    : undefined;
  let done: UploadView;
  try {
    done = isFinished(created) ? created : await waitForUpload(url, key, created.id, timeoutS, processing, again);
  } finally {
    processing.finish();
  }
  if (values.json) {
    io.out(JSON.stringify({ ...payload, logUpload: { ...created, ...done } }));
  } else {
    io.out(
      `status: ${done.status}\n` +
        `lines: ${done.lineCount} (packets ${done.packetLines}, skipped ${done.skippedLines})\n` +
        `connections: ${done.connections} (inbound ${done.inboundConnections}, outbound ${done.outboundConnections})\n` +
        `hits: ${done.hits}`,
    );
  }
  if (done.status === 'FAILED') {
    io.err(`pcap-defense upload: processing failed: ${done.error ?? 'no reason given'}`);
    return 1;
  }
  return 0;
}
