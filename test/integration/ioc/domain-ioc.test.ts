import fs from 'node:fs';
import path from 'node:path';
import { drivers } from '../../helpers/db';
import { createTestApp, gqlUpload, ok, TestApp } from '../../helpers/app';

const SHARED = path.resolve(__dirname, '../../../..', 'shared/corpus/domains');
const FIXTURES = path.resolve(__dirname, '../../fixtures/domains');

const IMPORT = `mutation($input: IocListImportInput!) { iocListImport(input: $input) {
  iocList { id entryKind entryCount lastImportedAt }
  summary { mode linesRead added duplicates duplicatesInFile duplicatesInList skipped removed skippedLines { lineNumber text code reason } }
  userErrors { code field message } } }`;
const ADD = `mutation($input: IocAddInput!) { iocAdd(input: $input) {
  iocList { entryCount } added duplicates iocs { cidr } domains { name comment } userErrors { code field message } } }`;

interface Row {
  lines: number;
  added: number;
  duplicates: number;
  skipped: number;
  reasons: Map<string, number>;
  firstSkipped: number[];
}

/** SOURCES.md's "What an import of each file must report" table. */
function sourcesTable(): Map<string, Row> {
  const markdown = fs.readFileSync(path.join(SHARED, 'SOURCES.md'), 'utf8');
  const out = new Map<string, Row>();
  for (const row of markdown.slice(markdown.indexOf('| file | format | lines | ignored |')).split('\n').slice(2)) {
    if (!row.startsWith('|')) break;
    const c = row
      .split('|')
      .slice(1, -1)
      .map((x) => x.trim());
    const reasons = new Map<string, number>();
    for (const part of c[7].split(',').filter((p) => p.trim() !== '')) {
      const [reason, n] = part.trim().split(' ');
      reasons.set(reason.toUpperCase().replace(/-/g, '_'), Number(n));
    }
    out.set(c[0], {
      lines: Number(c[2]),
      added: Number(c[4]),
      duplicates: Number(c[5]),
      skipped: Number(c[6]),
      reasons,
      firstSkipped: (c[8].match(/\d+/g) ?? []).map(Number),
    });
  }
  return out;
}

describe.each(drivers)('domain IOC lists (%s)', (driver) => {
  let t: TestApp;
  const newList = async (name: string, entryKind = 'DOMAIN', kind = 'BLOCK') =>
    ok(
      await t.gql(
        `mutation($n: String!, $e: IocEntryKind, $k: IocListKind!) { iocListCreate(input: { name: $n, kind: $k, entryKind: $e, severity: 4, category: PHISHING }) { iocList { id entryKind } userErrors { message } } }`,
        { n: name, e: entryKind, k: kind },
      ),
    ).iocListCreate.iocList.id as string;
  const importFile = (list: string, body: Buffer | string, mode = 'APPEND') => gqlUpload(t, IMPORT, { input: { list, mode, file: null } }, 'input.file', body);

  beforeAll(async () => {
    t = await createTestApp(driver, { MAX_FEED_BYTES: '4MB' });
  });
  afterAll(() => t.close());

  if (fs.existsSync(path.join(SHARED, 'SOURCES.md'))) {
    const table = sourcesTable();
    it.each([...table.keys()])('imports %s with the counts SOURCES.md states', async (file) => {
      const want = table.get(file) as Row;
      const list = await newList(`corpus ${file}`);
      const body = fs.readFileSync(path.join(SHARED, file));
      const { summary, iocList, userErrors } = ok(await importFile(list, body)).iocListImport;
      expect(userErrors).toEqual([]);
      expect(iocList.entryKind).toBe('DOMAIN');
      expect({ lines: summary.linesRead, added: summary.added, duplicates: summary.duplicatesInFile, skipped: summary.skipped }).toEqual({
        lines: want.lines,
        added: want.added,
        duplicates: want.duplicates,
        skipped: want.skipped,
      });
      const skippedLines = summary.skippedLines as Array<{ lineNumber: number; code: string; reason: string }>;
      expect(skippedLines.slice(0, 20).map((l) => l.lineNumber)).toEqual(want.firstSkipped);
      // Up to 100 skipped lines come back; where that is all of them, their reasons add up to the table's.
      if (want.skipped <= 100) {
        const byCode = new Map<string, number>();
        for (const l of skippedLines) byCode.set(l.code, (byCode.get(l.code) ?? 0) + 1);
        expect(byCode).toEqual(want.reasons);
      } else {
        expect(new Set(skippedLines.map((l) => l.code))).toEqual(new Set(want.reasons.keys()));
      }
      for (const l of skippedLines) expect(l.reason.length).toBeGreaterThan(0);
      expect(iocList.entryCount).toBe(want.added);
      const again = ok(await importFile(list, body)).iocListImport.summary;
      expect(again).toMatchObject({ added: 0, duplicatesInList: want.added });
    });
  } else if (process.env.CI === 'true') {
    it('has the shared domain corpus under CI', () => {
      throw new Error(`CI=true but ${SHARED}/SOURCES.md is missing`);
    });
  } else {
    it.skip(`shared domain corpus not found at ${SHARED}: imports of the nine feeds skipped`, () => undefined);
  }

  it('reads a file that starts with a byte-order mark as without it: the format detected and the first line', async () => {
    const list = await newList('bom');
    const adblock = ok(await importFile(list, '\uFEFF||bom-rule.example^\n')).iocListImport.summary;
    expect(adblock).toMatchObject({ linesRead: 1, added: 1, skipped: 0 });
    const rpz = ok(await importFile(list, '\uFEFF$TTL 300\n')).iocListImport.summary;
    expect(rpz).toMatchObject({ linesRead: 1, added: 0, skipped: 0 });
  });

  it('imports the fixture trails: URLs and IP:port skipped with line numbers, names lowercased', async () => {
    const list = await newList('fixture winnti');
    const { summary } = ok(await importFile(list, fs.readFileSync(path.join(FIXTURES, 'maltrail_winnti.txt')))).iocListImport;
    expect(summary).toMatchObject({ linesRead: 564, added: 284, duplicatesInFile: 5, skipped: 98 });
    expect(summary.skippedLines.slice(0, 3)).toEqual([
      expect.objectContaining({ lineNumber: 13, code: 'URL', text: '/Common/Lib/Common_bsod.php' }),
      expect.objectContaining({ lineNumber: 14, code: 'URL' }),
      expect.objectContaining({ lineNumber: 76, code: 'IP_ADDRESS' }),
    ]);
    const r = ok(await t.gql(ADD, { input: { list, entries: [{ value: '3VnwTuq9s.ithome.house' }] } })).iocAdd;
    expect(r).toMatchObject({ added: 0, duplicates: 1, domains: [{ name: '3vnwtuq9s.ithome.house', comment: null }], userErrors: [] });
  });

  it('REPLACE keeps what the file keeps and removes the rest', async () => {
    const list = await newList('replace');
    ok(await importFile(list, 'a.example\nb.example\n'));
    const { summary, iocList } = ok(await importFile(list, '||b.example^\n||c.example^\n', 'REPLACE')).iocListImport;
    expect(summary).toMatchObject({ added: 1, duplicatesInList: 1, removed: 1 });
    expect(iocList.entryCount).toBe(2);
    // A file with no name in it (an HTML error page, an empty file, an IP feed) is refused: it would empty the list.
    for (const [file, detail] of [
      ['<html><body>Not found</body></html>\n', /\(1 line read, 1 skipped; line 1: .+\)/],
      ['', /\(0 lines read, 0 skipped\)/],
      ['1.2.3.4\n10.0.0.0/8\n', /\(2 lines read, 2 skipped; line 1: .+\)/],
    ] as const) {
      const refused = ok(await importFile(list, file, 'REPLACE')).iocListImport;
      expect(refused.iocList).toBeNull();
      expect(refused.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'file'], message: expect.stringMatching(detail) }]);
      expect(refused.userErrors[0].message).toMatch(/^Refused: the file holds no entry .* would remove all 2 entries of the list\. Nothing was imported\.$/);
    }
    const names = ok(
      await t.gql(`query($l: ID!) { node(id: $l) { ... on IocList { entryCount domains(first: 10) { edges { node { name } } } } } }`, { l: list }),
    ).node;
    expect(names).toEqual({ entryCount: 2, domains: { edges: [{ node: { name: 'b.example' } }, { node: { name: 'c.example' } }] } });
  });

  it('an IP list skips the names of a mixed feed; a DOMAIN list skips its addresses', async () => {
    const mixed = '1.2.3.4\nevil.example\n10.0.0.0/8\nexample.com/assets/index.php\n';
    const ip = ok(await importFile(await newList('mixed ip', 'IP'), mixed)).iocListImport.summary;
    expect(ip).toMatchObject({ added: 2, skipped: 2 });
    // A hosts file into an IP list: its lines name domains; the sink addresses are no entries.
    const hosts = '127.0.0.1 localhost\n::1 localhost\n0.0.0.0 ads.example\n0.0.0.0 tracker.example\n';
    const fromHosts = ok(await importFile(await newList('hosts ip', 'IP'), hosts)).iocListImport;
    expect(fromHosts.summary).toMatchObject({ added: 0, duplicates: 0, skipped: 4 });
    expect(fromHosts.summary.skippedLines.map((l: { code: string }) => l.code)).toEqual(['HOSTS_ENTRY', 'HOSTS_ENTRY', 'HOSTS_ENTRY', 'HOSTS_ENTRY']);
    expect(fromHosts.iocList.entryCount).toBe(0);
    const dom = ok(await importFile(await newList('mixed domain'), mixed)).iocListImport.summary;
    expect(dom).toMatchObject({ added: 1, skipped: 3 });
    expect(dom.skippedLines.map((l: { code: string }) => l.code)).toEqual(['IP_ADDRESS', 'IP_ADDRESS', 'URL']);
    // Address feeds into a DOMAIN list: every line an IP address (where it belongs said), their comments ignored.
    for (const feed of [
      '; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n2a12:2640::/29 ; SBL1\n', // Spamhaus: `;` comments
      '77.90.185.20\t10\n45.33.32.156\t7\n', // ipsum, read as a hosts file: a count is no name
      '129.82.138.12 # pinger1a.netsec.colostate.edu\n80.82.78.27\t# scanner.example\n', // maltrail's mass scanners
      '1.10.16.0/20\n1.19.0.0/16\n', // FireHOL
    ]) {
      const s = ok(await importFile(await newList(`addresses ${feed.slice(0, 12)}`), feed)).iocListImport.summary;
      expect(s).toMatchObject({ added: 0, skipped: 2 });
      expect(s.skippedLines).toEqual([
        expect.objectContaining({ code: 'IP_ADDRESS', reason: expect.stringMatching(/import it into an IP list/) }),
        expect.objectContaining({ code: 'IP_ADDRESS', reason: expect.stringMatching(/import it into an IP list/) }),
      ]);
    }
  });

  it('iocAdd: names normalised (case, trailing dot, *., punycode); an invalid domain is a userError naming it', async () => {
    const list = await newList('manual');
    const r = ok(
      await t.gql(ADD, { input: { list, entries: [{ value: 'Evil.Example.' }, { value: '*.evil.example', comment: 'again' }, { value: 'Bücher.example' }] } }),
    ).iocAdd;
    expect(r.userErrors).toEqual([]);
    expect(r).toMatchObject({ added: 2, duplicates: 1, iocs: [], iocList: { entryCount: 2 } });
    expect(r.domains.map((d: { name: string }) => d.name)).toEqual(['evil.example', 'xn--bcher-kva.example']);
    for (const [value, code] of [
      ['example.com/assets/index.php', 'INVALID'],
      ['1.2.3.4', 'INVALID'],
      ['.xyz', 'INVALID'],
      [`${'a'.repeat(64)}.example`, 'TOO_LONG'],
    ]) {
      const bad = ok(await t.gql(ADD, { input: { list, entries: [{ value: 'fine.example' }, { value }] } })).iocAdd;
      expect(bad.added).toBe(0);
      expect(bad.userErrors).toEqual([{ code, field: ['input', 'entries', '1', 'value'], message: expect.stringContaining(value.slice(0, 40)) }]);
    }
  });

  it('iocLookup takes a domain: the containing entries (name and parents), most specific first, and ALLOW wins', async () => {
    const block = await newList('lookup block');
    const allow = await newList('lookup allow', 'DOMAIN', 'ALLOW');
    ok(await t.gql(ADD, { input: { list: block, entries: [{ value: 'lk-evil.example', comment: 'c2' }, { value: 'cdn.lk-evil.example' }] } }));
    ok(await t.gql(ADD, { input: { list: allow, entries: [{ value: 'good.cdn.lk-evil.example' }] } }));
    const policy = ok(await t.gql(`mutation { policyCreate(input: { name: "Domain lookup" }) { policy { id } } }`)).policyCreate.policy.id;
    ok(
      await t.gql(`mutation($input: PolicyIocListsInput!) { policyAttachIocLists(input: $input) { userErrors { message } } }`, {
        input: { policy, iocLists: [block, allow] },
      }),
    );
    const LOOKUP = `query($a: String!) { iocLookup(address: $a) { address addressScope matchable domain hitCount
      domainMatches { active domain { name comment } iocList { name kind } } matches { ioc { cidr } } policies { verdict policy { name } } } }`;
    const look = async (a: string) => ok(await t.gql(LOOKUP, { a })).iocLookup;
    const www = await look('WWW.CDN.LK-Evil.Example.');
    expect(www).toMatchObject({
      address: 'www.cdn.lk-evil.example',
      addressScope: 'DOMAIN',
      matchable: true,
      domain: 'www.cdn.lk-evil.example',
      hitCount: 0,
      matches: [],
    });
    expect(www.domainMatches.map((m: { domain: { name: string } }) => m.domain.name)).toEqual(['cdn.lk-evil.example', 'lk-evil.example']);
    expect(www.policies).toEqual([{ verdict: 'BLOCKED', policy: { name: 'Domain lookup' } }]);
    const good = await look('x.good.cdn.lk-evil.example');
    expect(good.domainMatches.map((m: { iocList: { kind: string } }) => m.iocList.kind)).toEqual(['ALLOW', 'BLOCK', 'BLOCK']);
    expect(good.policies[0].verdict).toBe('ALLOWED');
    expect((await look('notlk-evil.example')).domainMatches).toEqual([]);
    expect((await look('lk-evil.example.network2')).domainMatches).toEqual([]);
    const bad = await t.gql(LOOKUP, { a: 'evil.example/assets/index.php' });
    expect(bad.errors?.[0].message).toMatch(/not an IPv4 or IPv6 address or a domain name/);
    const ip = await look('192.0.2.1');
    expect(ip).toMatchObject({ domain: null, domainMatches: [], addressScope: 'DOCUMENTATION' });
  });
});
