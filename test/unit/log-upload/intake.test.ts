import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { intake, UploadRefusedError } from '../../../src/modules/log-upload/acceptance/intake';
import { sniff } from '../../../src/modules/log-upload/acceptance/sniff';
import { UploadTooLargeError } from '../../../src/common/upload/spool';

const LINE = '1517931955.781702 IP 10.0.2.2.53231 > 192.1.2.3.80: Flags [.], ack 184924, win 65535, length 0\n';
const chunks = (buf: Buffer, size = 7) => Readable.from(Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size)));

async function refusal(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a refusal');
}

describe('sniff', () => {
  it.each([
    [[0xd4, 0xc3, 0xb2, 0xa1], 'pcap'],
    [[0xa1, 0xb2, 0xc3, 0xd4], 'pcap'],
    [[0x4d, 0x3c, 0xb2, 0xa1], 'pcap'],
    [[0xa1, 0xb2, 0x3c, 0x4d], 'pcap'],
    [[0x0a, 0x0d, 0x0d, 0x0a], 'pcapng'],
    [[0x1f, 0x8b, 0x08, 0x00], 'gzip'],
    [[0x31, 0x35, 0x00, 0x31], 'binary'],
    [[0xff, 0xfe, 0x41, 0x42], 'binary'],
  ])('%j is %s', (bytes, kind) => {
    expect(sniff(Buffer.from(bytes))).toBe(kind);
  });

  it('accepts text cut in the middle of a multi-byte character', () => {
    expect(sniff(Buffer.from('1517931955.781702 IP é', 'utf8').subarray(0, -1))).toBe('text');
  });
});

describe('intake', () => {
  it('measures, hashes and compresses text streamed in small chunks', async () => {
    const text = Buffer.from(LINE.repeat(1000));
    const r = await intake(chunks(text), 1_000_000);
    expect(r).toMatchObject({ size: text.length, textBytes: text.length, gzipped: false });
    expect(r.md5).toBe(crypto.createHash('md5').update(text).digest('hex'));
    expect(r.storedEncoding).toBe('br');
    expect(zlib.brotliDecompressSync(r.stored).equals(text)).toBe(true);
    expect(r.stored.length).toBeLessThan(text.length / 10);
  });

  it('accepts gzip input, hashing what was sent and storing the text', async () => {
    const text = Buffer.from(LINE.repeat(50));
    const gz = zlib.gzipSync(text);
    const r = await intake(chunks(gz, 5), 1_000_000);
    expect(r).toMatchObject({ size: gz.length, textBytes: text.length, gzipped: true, storedEncoding: 'gzip' });
    // Kept as the client sent it.
    expect(r.stored.equals(gz)).toBe(true);
  });

  it.each([
    [
      'pcap',
      Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      'UNSUPPORTED_FORMAT',
      /binary pcap capture.*tcpdump -tt -n -r FILE > FILE\.txt/,
    ],
    ['pcapng', Buffer.from([0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0]), 'UNSUPPORTED_FORMAT', /binary pcapng capture/],
    ['gzipped pcap', zlib.gzipSync(Buffer.from([0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4])), 'UNSUPPORTED_FORMAT', /binary pcap capture/],
    ['binary', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0]), 'NOT_TEXT', /not text/],
    ['broken gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 'NOT_TEXT', /does not decompress/],
    ['empty', Buffer.alloc(0), 'EMPTY', /empty/],
    ['empty gzip', zlib.gzipSync(Buffer.alloc(0)), 'EMPTY', /empty/],
  ])('refuses %s', async (_name, body, code, message) => {
    const err = await refusal(intake(chunks(body as Buffer, 3), 1_000_000));
    expect(err).toBeInstanceOf(UploadRefusedError);
    expect((err as UploadRefusedError).code).toBe(code);
    expect(err.message).toMatch(message as RegExp);
  });

  it('refuses text over the limit, and a gzip bomb by its inflated size', async () => {
    expect(await refusal(intake(chunks(Buffer.from(LINE.repeat(20)), 64), LINE.length * 10))).toBeInstanceOf(UploadTooLargeError);
    const bomb = zlib.gzipSync(Buffer.alloc(50_000_000, 0x41));
    expect(bomb.length).toBeLessThan(100_000);
    expect(await refusal(intake(Readable.from([bomb]), 1_000_000))).toBeInstanceOf(UploadTooLargeError);
  });

  it('refuses a stream busboy truncated at its own limit', async () => {
    const s = Object.assign(Readable.from([Buffer.from(LINE)]), { truncated: true });
    expect(await refusal(intake(s, 1_000_000))).toBeInstanceOf(UploadTooLargeError);
  });

  /** A valid gzip of one line whose header carries a comment of `padding` bytes (FCOMMENT: gzip -dc reads it). */
  const padded = (padding: number): Buffer => {
    const gz = zlib.gzipSync(LINE);
    const header = Buffer.from(gz.subarray(0, 10));
    header[3] |= 0x10;
    const comment = Buffer.alloc(padding, 0x41);
    comment[padding - 1] = 0;
    return Buffer.concat([header, comment, gz.subarray(10)]);
  };

  it('refuses a gzip over the limit by its own size, however little it inflates to (it would be held and stored)', async () => {
    const small = padded(1_000);
    expect(zlib.gunzipSync(small).toString()).toBe(LINE);
    expect((await intake(chunks(small, 4096), 2_000)).textBytes).toBe(LINE.length);
    const big = padded(3_000_000);
    expect(zlib.gunzipSync(big).toString()).toBe(LINE);
    expect(await refusal(intake(chunks(big, 65_536), 1_000_000))).toBeInstanceOf(UploadTooLargeError);
  });

  it('refuses a gzip busboy cut at its limit as too large, not as a broken gzip', async () => {
    // The first half of a gzip of random text: gunzip fails on its end, but the cut is the limit's, not the client's.
    const gz = zlib.gzipSync(Buffer.from(Array.from({ length: 200_000 }, (_, i) => LINE.replace('781702', String(100000 + ((i * 7919) % 900000)))).join('')));
    const cut = Object.assign(Readable.from([gz.subarray(0, gz.length >> 1)]), { truncated: true });
    expect(await refusal(intake(cut, 100_000_000))).toBeInstanceOf(UploadTooLargeError);
    const broken = Readable.from([gz.subarray(0, gz.length >> 1)]);
    expect(await refusal(intake(broken, 100_000_000))).toMatchObject({ code: 'NOT_TEXT' });
  });
});
