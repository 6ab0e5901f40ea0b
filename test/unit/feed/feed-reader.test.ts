import { Readable } from 'node:stream';
import { FeedImportTally, FeedNewEntry } from '../../../src/modules/ioc/feed/feed-import-tally';
import { FeedLine, FeedNotTextError, readFeedLines } from '../../../src/modules/ioc/feed/feed-reader';
import { FeedSkipCode } from '../../../src/modules/ioc/feed/feed-line';

async function collect(chunks: Array<Uint8Array | string>, maxLineLength?: number): Promise<FeedLine[]> {
  const out: FeedLine[] = [];
  for await (const line of readFeedLines(chunks, { maxLineLength })) out.push(line);
  return out;
}

/** Splits text into chunks of `size` bytes to exercise lines cut across chunks. */
function chunked(text: string | Buffer, size: number): Buffer[] {
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

describe('readFeedLines', () => {
  test.each<[string, string]>([
    ['\\n', '1.2.3.4\n# c\n\n5.6.7.0/24 ; SBL1\n'],
    ['\\r\\n', '1.2.3.4\r\n# c\r\n\r\n5.6.7.0/24 ; SBL1\r\n'],
    ['no final newline', '1.2.3.4\n# c\n\n5.6.7.0/24 ; SBL1'],
  ])('line endings: %s', async (_name, text) => {
    for (const size of [1, 3, 1000]) {
      const lines = await collect(chunked(text, size));
      expect(lines.map((l) => [l.lineNumber, l.text, l.result.type])).toEqual([
        [1, '1.2.3.4', 'entry'],
        [2, '# c', 'comment'],
        [3, '', 'blank'],
        [4, '5.6.7.0/24 ; SBL1', 'entry'],
      ]);
    }
  });

  test('an empty file has no lines; a lone newline is one blank line', async () => {
    expect(await collect([])).toEqual([]);
    expect((await collect(['\n'])).map((l) => l.result.type)).toEqual(['blank']);
  });

  test('reads a Readable and strings; strips a UTF-8 BOM', async () => {
    const lines: FeedLine[] = [];
    for await (const l of readFeedLines(Readable.from([Buffer.from('\uFEFF1.2.3.4\n'), '2001:db8::1 # v6\n']))) lines.push(l);
    expect(lines.map((l) => l.text)).toEqual(['1.2.3.4', '2001:db8::1 # v6']);
    expect(lines[0].result.type).toBe('entry');
  });

  test('overlong lines are skipped with a reason, not buffered, and reading goes on', async () => {
    const long = `1.2.3.4 #${'x'.repeat(300)}`;
    for (const size of [7, 64, 10_000]) {
      const lines = await collect(chunked(`9.9.9.9\n${long}\n8.8.8.8\n${long}`, size), 100);
      expect(lines.map((l) => [l.lineNumber, l.result.type])).toEqual([
        [1, 'entry'],
        [2, 'skip'],
        [3, 'entry'],
        [4, 'skip'],
      ]);
      expect(lines[1].result).toMatchObject({ code: FeedSkipCode.LINE_TOO_LONG, reason: 'line longer than 100 bytes' });
      expect(lines[1].text.length).toBeLessThanOrEqual(124);
      expect(lines[1].text.startsWith('1.2.3.4 #xxx')).toBe(true);
    }
  });

  test('a line of exactly the limit is fine, with or without \\r', async () => {
    const line = `1.2.3.4 #${'x'.repeat(91)}`; // 100 bytes
    expect((await collect([`${line}\n${line}\r\n${line}`], 100)).map((l) => l.result.type)).toEqual(['entry', 'entry', 'entry']);
    expect((await collect([`${line}x\n`], 100)).map((l) => l.result.type)).toEqual(['skip']);
    expect((await collect([`${line}x`], 100)).map((l) => l.result.type)).toEqual(['skip']);
  });

  test.each<[string, Buffer, string]>([
    ['NUL byte', Buffer.from('1.2.3.4\n\u0000\u0001binary'), 'binary'],
    ['pcap file', Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00]), 'binary'],
    ['gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00]), 'compressed'],
    ['Latin-1 text', Buffer.from('1.2.3.4 # caf\xe9\n', 'latin1'), 'notUtf8'],
  ])('refuses a %s file before yielding any line', async (_name, bytes, reason) => {
    const seen: FeedLine[] = [];
    const read = async () => {
      for await (const l of readFeedLines(chunked(bytes, 3))) seen.push(l);
    };
    await expect(read()).rejects.toThrow(FeedNotTextError);
    await expect(read()).rejects.toMatchObject({ reason });
    expect(seen).toEqual([]);
  });

  test('a multi-byte character cut by the sniff window is not mistaken for bad UTF-8', async () => {
    const head = `# ${'é'.repeat(5000)}\n1.2.3.4\n`; // 'é' is 2 bytes: the 8 KiB window ends mid-character
    const lines = await collect(chunked(head, 8191), 20_000);
    expect(lines.map((l) => l.result.type)).toEqual(['comment', 'entry']);
  });

  test('bad bytes after the sniffed head skip only their line', async () => {
    const body = Buffer.concat([
      Buffer.from(`${'# pad\n'.repeat(2000)}`),
      Buffer.from([0x31, 0x2e, 0x32, 0x2e, 0x33, 0x2e, 0x34, 0x20, 0x23, 0xff, 0x0a]),
      Buffer.from('5.6.7.8\n'),
    ]);
    const lines = await collect(chunked(body, 4096));
    expect(lines.slice(-2).map((l) => [l.lineNumber, l.result.type])).toEqual([
      [2001, 'skip'],
      [2002, 'entry'],
    ]);
    expect(lines[2000].result).toMatchObject({ code: FeedSkipCode.NOT_TEXT });
  });
});

describe('FeedImportTally', () => {
  test('dedupes by canonical CIDR, counts every line kind, samples skips', async () => {
    const text = [
      '# header',
      '1.2.3.4 # first',
      '1.2.3.4/32 # same entry',
      '10.1.2.3/8',
      '10.0.0.0/8 ; dup after normalisation',
      '',
      'C1.2.3.4 # typo',
      '224.0.0.0/3',
      '2001:DB8::1',
      '2001:db8::1/128',
      '192.0.2.0-192.0.2.1',
      '192.0.2.0/31',
    ].join('\n');
    const tally = new FeedImportTally({ maxSkippedSamples: 1 });
    const fresh: FeedNewEntry[] = [];
    for await (const line of readFeedLines([text])) fresh.push(...tally.record(line));
    expect(tally.summary()).toEqual({
      lines: 12,
      blank: 1,
      comments: 1,
      added: 4,
      duplicates: 4,
      skipped: 2,
      normalized: 1,
      skippedLines: [{ lineNumber: 7, text: 'C1.2.3.4 # typo', code: FeedSkipCode.NOT_AN_ADDRESS, reason: "'C1.2.3.4' is not an IP address or CIDR" }],
    });
    expect(fresh.map((e) => `${e.lineNumber}:${e.cidr.text}`)).toEqual(['2:1.2.3.4/32', '4:10.0.0.0/8', '9:2001:db8::1/128', '11:192.0.2.0/31']);
    expect(fresh[0].comment).toBe('first');
  });
});
