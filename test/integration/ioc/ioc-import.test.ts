import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import request from 'supertest';
import { drivers } from '../../helpers/db';
import { createTestApp, gqlUpload, ok, TestApp } from '../../helpers/app';
import { expectationsFromSources, FEEDS_DIR, FIXTURE_FEEDS_DIR, hasSharedCorpus } from '../../helpers/corpus';
import { importPages } from '../../../src/modules/ioc/feed-import.service';
import { cidrRangeKeys } from '../../../src/modules/ioc/ioc-range';
import { parseCidr } from '../../../src/common/net/cidr';

const parsedCidr = (text: string) => {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(r.message);
  return r.cidr;
};

const IMPORT = `mutation($input: IocListImportInput!) { iocListImport(input: $input) {
  iocList { id entryCount lastImportedAt }
  summary { mode bytes linesRead added duplicates duplicatesInFile duplicatesInList skipped normalized removed durationMs skippedLines { lineNumber text code reason } }
  userErrors { code field message } } }`;

describe.each(drivers)('feed import (%s)', (driver) => {
  let t: TestApp;
  const newList = async (name: string, key?: string) =>
    ok(
      await t.gql(
        `mutation($n: String!) { iocListCreate(input: { name: $n, kind: BLOCK, severity: 3, category: REPUTATION }) { iocList { id } } }`,
        { n: name },
        key,
      ),
    ).iocListCreate.iocList.id as string;
  const importFile = (list: string, body: Buffer | string, mode = 'APPEND', opts = {}) =>
    gqlUpload(t, IMPORT, { input: { list, mode, file: null } }, 'input.file', body, opts);
  const entries = async (list: string) =>
    ok(await t.gql(`query($l: ID!) { iocs(list: $l, first: 100) { totalCount edges { node { cidr comment } } } }`, { l: list })).iocs;

  beforeAll(async () => {
    t = await createTestApp(driver, { MAX_FEED_BYTES: '4MB' });
  });
  afterAll(() => t.close());

  if (hasSharedCorpus()) {
    const expected = expectationsFromSources();
    it.each([...expected.keys()])('imports %s with the counts SOURCES.md states', async (file) => {
      const want = expected.get(file)!;
      const list = await newList(`corpus ${file}`);
      const r = await importFile(list, fs.readFileSync(path.join(FEEDS_DIR, file)));
      const { summary, iocList, userErrors } = ok(r).iocListImport;
      expect(userErrors).toEqual([]);
      expect({
        lines: summary.linesRead,
        added: summary.added,
        duplicates: summary.duplicates,
        skipped: summary.skipped,
        skippedLineNumbers: summary.skippedLines.map((l: any) => l.lineNumber),
      }).toEqual(want);
      expect(iocList.entryCount).toBe(want.added);
      expect(iocList.lastImportedAt).not.toBeNull();
      // Appending the same file again adds nothing: every entry is already in the list.
      const again = ok(await importFile(list, fs.readFileSync(path.join(FEEDS_DIR, file)))).iocListImport.summary;
      expect(again).toMatchObject({ added: 0, duplicatesInList: want.added, duplicates: want.added + want.duplicates });
    });
  } else {
    it('imports the feed fixtures (shared corpus absent: full-corpus import skipped)', async () => {
      console.log(`shared corpus not found at ${FEEDS_DIR}: importing test/fixtures/feeds only`);
      for (const file of fs.readdirSync(FIXTURE_FEEDS_DIR).filter((f) => !f.endsWith('.md'))) {
        const list = await newList(`fixture ${file}`);
        const summary = ok(await importFile(list, fs.readFileSync(path.join(FIXTURE_FEEDS_DIR, file)))).iocListImport.summary;
        expect(summary.added).toBeGreaterThan(0);
        expect((await entries(list)).totalCount).toBe(summary.added);
      }
    });
  }

  it('reads every format quirk: comments, Spamhaus, ipsum, maltrail, CRLF, tabs, ranges, dirty lines', async () => {
    const list = await newList('quirks');
    const feed = [
      '# header comment',
      '; spamhaus-style comment',
      '1.10.16.0/20 ; SBL256894',
      '2.56.192.0/22',
      '45.33.32.156\t7',
      '71.6.135.131 # scanner.example.net',
      '71.6.146.185\t# tab before hash',
      '2a12:2640::/29 ',
      '   ',
      '',
      'C91.196.152.28 # probe.onyphe.net',
      '/w00tw00t.at.ISC.SANS.DFind:)',
      '10.1.2.3/8',
      '203.0.113.0-203.0.113.9',
      '224.0.0.0/3',
      '45.33.32.156',
      'last-line-no-newline 1.2.3.4',
      '::ffff:0:0/96 # every IPv4 address, IPv4-mapped',
    ].join('\r\n');
    const { summary, userErrors } = ok(await importFile(list, feed)).iocListImport;
    expect(userErrors).toEqual([]);
    expect(summary).toMatchObject({ linesRead: 18, added: 9, duplicates: 1, duplicatesInFile: 1, duplicatesInList: 0, skipped: 5, normalized: 1 });
    expect(summary.skippedLines.map((l: any) => l.lineNumber)).toEqual([11, 12, 15, 17, 18]);
    expect(summary.skippedLines.map((l: any) => l.code)).toEqual(['NOT_AN_ADDRESS', 'NOT_AN_ADDRESS', 'TOO_BROAD', 'INVALID_RANGE', 'TOO_BROAD']);
    expect(summary.skippedLines[4].reason).toMatch(/covers every IPv4 address/);
    expect(summary.skippedLines[2].reason).toMatch(/too broad/);
    const stored = (await entries(list)).edges.map((e: any) => e.node);
    expect(stored.map((e: any) => e.cidr)).toEqual([
      '1.10.16.0/20',
      '2.56.192.0/22',
      '10.0.0.0/8',
      '45.33.32.156/32',
      '71.6.135.131/32',
      '71.6.146.185/32',
      '203.0.113.0/29',
      '203.0.113.8/31',
      '2a12:2640::/29',
    ]);
    expect(stored.find((e: any) => e.cidr === '1.10.16.0/20').comment).toMatch(/SBL256894/);
    expect(stored.find((e: any) => e.cidr === '71.6.135.131/32').comment).toMatch(/scanner\.example\.net/);
  });

  it('REPLACE swaps the entries; a refused file leaves the old ones in place', async () => {
    const list = await newList('replace');
    ok(await importFile(list, '1.1.1.1\n2.2.2.2\n3.3.3.3\n'));
    const kept = (await entries(list)).edges.map((e: any) => e.node.cidr);
    expect(kept).toEqual(['1.1.1.1/32', '2.2.2.2/32', '3.3.3.3/32']);
    const idOf3 = ok(await t.gql(`query($l: ID!) { iocs(list: $l, filter: { address: "3.3.3.3" }) { edges { node { id } } } }`, { l: list })).iocs.edges[0].node
      .id;
    const replaced = ok(await importFile(list, '3.3.3.3\n4.4.4.4\n', 'REPLACE')).iocListImport;
    expect(replaced.summary).toMatchObject({ mode: 'REPLACE', removed: 2, added: 1, duplicatesInList: 1 });
    expect(replaced.iocList.entryCount).toBe(2);
    expect((await entries(list)).edges.map((e: any) => e.node.cidr)).toEqual(['3.3.3.3/32', '4.4.4.4/32']);
    // The entry the file kept is the same entry.
    expect(
      ok(await t.gql(`query($l: ID!) { iocs(list: $l, filter: { address: "3.3.3.3" }) { edges { node { id } } } }`, { l: list })).iocs.edges[0].node.id,
    ).toBe(idOf3);

    for (const bad of [zlib.gzipSync('5.5.5.5\n'), Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0]), Buffer.from('6.6.6.6\n\0\0binary')]) {
      const refused = ok(await importFile(list, bad, 'REPLACE')).iocListImport;
      expect(refused.iocList).toBeNull();
      expect(refused.userErrors).toHaveLength(1);
      expect(refused.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'file'] });
      expect(refused.userErrors[0].message).toMatch(/^Refused: .*Nothing was imported\.$/);
      expect((await entries(list)).edges.map((e: any) => e.node.cidr)).toEqual(['3.3.3.3/32', '4.4.4.4/32']);
    }
    // A file with no entry (what a failed download looks like: an HTML page, an empty file, only comments) would
    // empty the list and re-judge its past hits: refused while the list holds entries, naming what the file held.
    const revision = async () => ok(await t.gql(`query($l: ID!) { node(id: $l) { ... on IocList { lastImportedAt entryCount } } }`, { l: list })).node;
    const before = await revision();
    for (const [file, detail] of [
      ['<html><body>Not found</body></html>\n', /\(1 line read, 1 skipped; line 1: .+\)/],
      ['', /\(0 lines read, 0 skipped\)/],
      ['# nothing today\n; still nothing\n', /\(2 lines read, 0 skipped\)/],
    ] as const) {
      const refused = ok(await importFile(list, file, 'REPLACE')).iocListImport;
      expect(refused.iocList).toBeNull();
      expect(refused.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'file'], message: expect.stringMatching(detail) }]);
      expect(refused.userErrors[0].message).toMatch(/^Refused: the file holds no entry .* would remove all 2 entries of the list\. Nothing was imported\.$/);
      expect((await entries(list)).edges.map((e: any) => e.node.cidr)).toEqual(['3.3.3.3/32', '4.4.4.4/32']);
    }
    expect(await revision()).toEqual(before);
    // The same file appends nothing, and replaces an empty list's nothing, without a refusal.
    expect(ok(await importFile(list, '# none\n', 'APPEND')).iocListImport).toMatchObject({ userErrors: [], summary: { added: 0 } });
    const empty = await newList('replace empty');
    expect(ok(await importFile(empty, '# none\n', 'REPLACE')).iocListImport).toMatchObject({ userErrors: [], summary: { added: 0, removed: 0 } });
  });

  it.each([
    ['the default pages (one page on MySQL)', null],
    ['pages of 7 rows (runs of one start cut by most page ends)', 7],
  ])('REPLACE over many pages keeps every kept entry (and its ID), with networks that share a start: %s', async (_, pageRows) => {
    const pages = { ...importPages };
    if (pageRows) importPages.sqlite = importPages.mysql = pageRows;
    try {
      await replaceOverPages(pageRows ? 'replace small pages' : 'replace pages');
    } finally {
      Object.assign(importPages, pages);
    }
  });

  const replaceOverPages = async (name: string) => {
    const list = await newList(name);
    // 12,000 entries: /32 hosts plus, every 7th, the /24 that starts at the same address (same range_start).
    const first: string[] = [];
    for (let i = 0; i < 10_500; i++) {
      const ip = `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
      first.push(ip);
      if (i % 256 === 0) first.push(`${ip}/24`);
    }
    for (let i = 0; i < 1_450; i++) first.push(`2001:db8::${i.toString(16)}`);
    const a = ok(await importFile(list, `${first.join('\n')}\n`)).iocListImport;
    expect(a.summary).toMatchObject({ added: first.length, duplicates: 0 });
    const idOf = async (address: string) =>
      ok(
        await t.gql(`query($l: ID!, $a: String!) { iocs(list: $l, filter: { address: $a }, first: 5) { edges { node { id cidr } } } }`, {
          l: list,
          a: address,
        }),
      )
        .iocs.edges.map((e: any) => `${e.node.cidr}=${e.node.id}`)
        .sort();
    const before = [await idOf('198.18.0.0'), await idOf('198.18.40.255'), await idOf('2001:db8::5a0')];
    expect(first.indexOf('2001:db8::5a0')).toBe(11982);
    expect(first.indexOf('198.18.40.255')).toBe(10536);
    // Drop every 10th line, add 600 new entries (some sharing a start with kept ones).
    const second = first.filter((_, i) => i % 10 !== 0);
    const dropped = first.length - second.length;
    for (let i = 0; i < 600; i++) second.push(i % 2 ? `203.0.113.${i & 255}/32` : `198.18.${(i * 3) & 255}.0/25`);
    const distinctNew = new Set(second.filter((l) => l.startsWith('203.') || l.endsWith('/25'))).size;
    const r = ok(await importFile(list, `${second.join('\n')}\n`, 'REPLACE')).iocListImport;
    expect(r.summary).toMatchObject({ mode: 'REPLACE', removed: dropped, added: distinctNew, duplicatesInList: second.length - 600 });
    expect(r.iocList.entryCount).toBe(first.length - dropped + distinctNew);
    expect((await entries(list)).totalCount).toBe(first.length - dropped + distinctNew);
    const after = [await idOf('198.18.0.0'), await idOf('198.18.40.255'), await idOf('2001:db8::5a0')];
    // 198.18.0.0 (line 0) and its /24 (line 1) : the /32 was dropped, the /24 kept with its ID, a /25 added.
    expect(after[0].filter((x: string) => x.startsWith('198.18.0.0/24='))).toEqual(before[0].filter((x: string) => x.startsWith('198.18.0.0/24=')));
    expect(after[0].some((x: string) => x.startsWith('198.18.0.0/32='))).toBe(false);
    expect(after[0].some((x: string) => x.startsWith('198.18.0.0/25='))).toBe(true);
    // 2001:db8::5a0 is line 11982 of the first file, 198.18.40.255 line 10536 and its /24 line 10281: all kept.
    expect(first.indexOf('198.18.40.0/24')).toBe(10281);
    expect(before[1]).toHaveLength(2);
    expect(before[2]).toHaveLength(1);
    expect(after[1]).toEqual(before[1]);
    expect(after[2]).toEqual(before[2]);
    // The same file again changes nothing. The /25s it added share a start with older /32s but have higher IDs:
    // the walk reads by (start, ID) and must put each start's rows widest first even where a page ends inside them.
    const again = ok(await importFile(list, `${second.join('\n')}\n`, 'REPLACE')).iocListImport;
    expect(again.summary).toMatchObject({ removed: 0, added: 0, duplicatesInList: r.iocList.entryCount });
    expect([await idOf('198.18.0.0'), await idOf('198.18.40.255'), await idOf('2001:db8::5a0')]).toEqual(after);
  };

  it('a plain REPLACE gives entries added by hand their first sighting in the feed, however far apart their IDs', async () => {
    const list = await newList('first sightings');
    const add = async (value: string) =>
      expect(
        ok(await t.gql(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, { i: { list, entries: [{ value }] } })).iocAdd.userErrors,
      ).toEqual([]);
    const sighting = async (address: string) =>
      ok(
        await t.gql(`query($l: ID!, $a: String!) { iocs(list: $l, filter: { address: $a }, first: 1) { edges { node { cidr firstSeenInSource } } } }`, {
          l: list,
          a: address,
        }),
      ).iocs.edges[0].node;
    // The closing UPDATE runs 50,000 IDs a statement: one entry by hand before the feed's 60,000, one after.
    await add('192.0.2.1');
    const feed: string[] = [];
    for (let i = 0; i < 60_000; i++) feed.push(`100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
    expect(ok(await importFile(list, `${feed.join('\n')}\n`)).iocListImport.summary).toMatchObject({ added: 60_000 });
    await add('192.0.2.2');
    expect(await sighting('192.0.2.1')).toEqual({ cidr: '192.0.2.1/32', firstSeenInSource: null });
    expect(await sighting('192.0.2.2')).toEqual({ cidr: '192.0.2.2/32', firstSeenInSource: null });
    const before = Date.now();
    const r = ok(await importFile(list, `${[...feed, '192.0.2.1', '192.0.2.2'].join('\n')}\n`, 'REPLACE')).iocListImport;
    expect(r.summary).toMatchObject({ added: 0, removed: 0, duplicatesInList: 60_002 });
    for (const a of ['192.0.2.1', '192.0.2.2']) expect(new Date((await sighting(a)).firstSeenInSource).getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it('stores every column of every row of an import that spans several batches and a part-filled statement', async () => {
    // 2,600 entries: a full batch, then full statements and single rows (SQLite writes 256 rows a statement,
    // MySQL 10,000 rows a LOAD DATA); IPv4 and IPv6, with and without comments (a text feed gives no expiries).
    const list = await newList('every column');
    const lines: string[] = [];
    const want = new Map<string, { family: number; prefix: number; comment: string | null }>();
    for (let i = 0; i < 2_600; i++) {
      const v6 = i % 5 === 0;
      const cidr = v6 ? `2001:db8:${(i + 1).toString(16)}::/48` : `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
      const comment = i % 3 === 0 ? `entry ${i}` : null;
      lines.push(comment ? `${cidr} # ${comment}` : cidr);
      want.set(cidr, { family: v6 ? 6 : 4, prefix: v6 ? 48 : 32, comment });
    }
    const before = Date.now();
    expect(ok(await importFile(list, `${lines.join('\n')}\n`)).iocListImport.summary).toMatchObject({ added: 2_600 });
    const rows: Array<Record<string, unknown>> = await t.dataSource.query(
      `SELECT list_id, account_id, cidr, family, prefix, range_start, range_end, comment, expires_at, created_at, first_seen_in_source, last_seen_in_source FROM ioc WHERE list_id = (SELECT id FROM ioc_list WHERE name = ?)`,
      ['every column'],
    );
    expect(rows).toHaveLength(2_600);
    const owner = Number(rows[0].account_id);
    for (const row of rows) {
      const w = want.get(String(row.cidr));
      expect(w).toBeDefined();
      expect(Number(row.family)).toBe(w!.family);
      expect(Number(row.prefix)).toBe(w!.prefix);
      expect(row.comment ?? null).toBe(w!.comment);
      expect(Number(row.account_id)).toBe(owner);
      const keys = cidrRangeKeys(parsedCidr(String(row.cidr)));
      expect([row.range_start, row.range_end]).toEqual([keys.start, keys.end]);
      expect(row.expires_at).toBeNull();
      expect(Number(row.created_at)).toBeGreaterThanOrEqual(before - 1000);
      expect(Number(row.first_seen_in_source)).toBe(Number(row.created_at));
      expect(Number(row.last_seen_in_source)).toBe(Number(row.created_at));
    }
    expect(new Set(rows.map((r) => r.cidr)).size).toBe(2_600);
  });

  it('cuts a long comment at 500 characters without splitting a character, the same on both databases', async () => {
    const list = await newList('long comment');
    // The 500th UTF-16 unit is the first half of an emoji: the emoji is dropped whole, not stored as half of it
    // (invalid UTF-8 on SQLite, U+FFFD on MySQL).
    const r = ok(await importFile(list, `203.0.113.6 # ${'L'.repeat(499)}🦀${'x'.repeat(100)}\n203.0.113.7 # ${'L'.repeat(498)}🦀x\n`)).iocListImport;
    expect(r.summary).toMatchObject({ added: 2 });
    const byCidr = new Map((await entries(list)).edges.map((e: any) => [e.node.cidr, e.node.comment]));
    expect(byCidr.get('203.0.113.6/32')).toBe('L'.repeat(499));
    expect(byCidr.get('203.0.113.7/32')).toBe(`${'L'.repeat(498)}🦀`);
  });

  it('refuses a file over MAX_FEED_BYTES with HTTP 413 and keeps nothing', async () => {
    const list = await newList('too big');
    const line = '198.51.100.1\n';
    const big = Buffer.from(line.repeat(Math.ceil(4_000_001 / line.length)));
    const r = await importFile(list, big);
    expect(r.status).toBe(413);
    expect(r.errors?.[0]).toMatchObject({ extensions: { code: 'PAYLOAD_TOO_LARGE' } });
    expect((await entries(list)).totalCount).toBe(0);
  });

  it('refuses multipart without the preflight header before reading it, and the connection stays usable', async () => {
    const list = await newList('csrf');
    const agent = request.agent(t.http.app);
    const r = await gqlUpload(t, IMPORT, { input: { list, file: null } }, 'input.file', '1.2.3.4\n', { preflight: false });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/Apollo-Require-Preflight/);
    const next = await agent.post('/graphql').set('authorization', `Bearer ${t.keys.admin}`).send({ query: '{ viewer { role } }' });
    expect(next.body.data.viewer.role).toBe('ADMIN');
    expect((await entries(list)).totalCount).toBe(0);
  });

  it("imports only into the caller's own lists, and only as ADMIN", async () => {
    const theirs = await newList('theirs', t.keys.otherAdmin);
    const r = ok(await importFile(theirs, '1.2.3.4\n')).iocListImport;
    expect(r.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'list'], message: 'No IOC list with this ID.' }]);
    const mine = await newList('analyst target');
    const forbidden = await importFile(mine, '1.2.3.4\n', 'APPEND', { key: t.keys.analyst });
    expect(forbidden.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect((await entries(mine)).totalCount).toBe(0);
  });
});
