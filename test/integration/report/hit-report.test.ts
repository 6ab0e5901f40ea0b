import { drivers } from '../../helpers/db';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { processQueued, upload } from '../../helpers/ingest';
import { analyticsAvailable, analyticsEnv, moveHitsToAnalytics, removeAnalyticsDir } from '../analytics/analytics-seed';
import { ClickHouseExecutor } from '../../../src/modules/report/groupings/clickhouse.executor';
import { resolveHitFilter } from '../../../src/modules/flow-hit/hit-filter';

/**
 * A known set of connections, written out as tcpdump text per device, uploaded and processed. Every
 * expectation below is computed from this array (or written by hand), never from the code under test.
 */
interface Flow {
  device: 'hq' | 'branch';
  at: string; // ISO instant of the first packet
  inside: string;
  insidePort: number | null;
  outside: string;
  outsidePort: number | null;
  outbound: boolean;
  proto: 'TCP' | 'UDP' | 'ICMP';
  packets: number; // each way: outbound ones send `packets` and receive `packets`
  length: number;
}

const C2 = ['198.51.100.10', '198.51.100.11'];
const SCAN = ['203.0.113.20', '203.0.113.21', '2001:db8:5ca::1'];
const CLEAN = '192.0.2.99';
const listOf = (ip: string) => (C2.includes(ip) ? 'C2' : SCAN.includes(ip) ? 'Scanners' : null);
const severityOf = (ip: string) => (C2.includes(ip) ? 5 : 2);

const FLOWS: Flow[] = [
  {
    device: 'hq',
    at: '2024-03-01T10:00:00Z',
    inside: '10.0.0.5',
    insidePort: 50001,
    outside: C2[0],
    outsidePort: 443,
    outbound: true,
    proto: 'TCP',
    packets: 3,
    length: 100,
  },
  {
    device: 'hq',
    at: '2024-03-01T10:05:00Z',
    inside: '10.0.0.5',
    insidePort: 50002,
    outside: C2[0],
    outsidePort: 443,
    outbound: true,
    proto: 'TCP',
    packets: 2,
    length: 50,
  },
  {
    device: 'hq',
    at: '2024-03-01T11:00:00Z',
    inside: '10.0.0.6',
    insidePort: 50003,
    outside: C2[1],
    outsidePort: 8080,
    outbound: true,
    proto: 'TCP',
    packets: 1,
    length: 10,
  },
  {
    device: 'hq',
    at: '2024-03-02T09:00:00Z',
    inside: '10.0.0.7',
    insidePort: 22,
    outside: SCAN[0],
    outsidePort: 41000,
    outbound: false,
    proto: 'TCP',
    packets: 1,
    length: 0,
  },
  {
    device: 'hq',
    at: '2024-03-02T09:30:00Z',
    inside: '10.0.0.7',
    insidePort: 23,
    outside: SCAN[0],
    outsidePort: 41001,
    outbound: false,
    proto: 'TCP',
    packets: 1,
    length: 0,
  },
  {
    device: 'hq',
    at: '2024-03-03T12:00:00Z',
    inside: '10.0.0.8',
    insidePort: null,
    outside: SCAN[1],
    outsidePort: null,
    outbound: false,
    proto: 'ICMP',
    packets: 4,
    length: 64,
  },
  {
    device: 'hq',
    at: '2024-03-03T12:10:00Z',
    inside: '10.0.0.5',
    insidePort: 53000,
    outside: CLEAN,
    outsidePort: 53,
    outbound: true,
    proto: 'UDP',
    packets: 1,
    length: 40,
  },
  {
    device: 'branch',
    at: '2024-03-01T10:30:00Z',
    inside: '10.0.0.5',
    insidePort: 50100,
    outside: C2[0],
    outsidePort: 443,
    outbound: true,
    proto: 'TCP',
    packets: 5,
    length: 200,
  },
  {
    device: 'branch',
    at: '2024-03-02T23:59:00Z',
    inside: 'fd00::9',
    insidePort: 5353,
    outside: SCAN[2],
    outsidePort: 53,
    outbound: true,
    proto: 'UDP',
    packets: 1,
    length: 30,
  },
  {
    device: 'branch',
    at: '2024-03-04T00:00:00Z',
    inside: '10.1.0.1',
    insidePort: 40000,
    outside: SCAN[1],
    outsidePort: 8443,
    outbound: true,
    proto: 'TCP',
    packets: 2,
    length: 70,
  },
  // One host's 24 connections to a C2 address, ports 1023 down to 1000, and a ping: its threat row lists the 20
  // lowest ports, ascending, and both directions' hits count.
  ...Array.from({ length: 24 }, (_, i): Flow => ({
    device: 'branch',
    at: `2024-03-03T${String(10 + Math.floor(i / 12)).padStart(2, '0')}:${String((i % 12) * 5).padStart(2, '0')}:00Z`,
    inside: '10.0.0.9',
    insidePort: 45000 + i,
    outside: C2[1],
    outsidePort: 1023 - i,
    outbound: true,
    proto: 'TCP',
    packets: 1,
    length: 0,
  })),
  {
    device: 'branch',
    at: '2024-03-03T13:00:00Z',
    inside: '10.0.0.9',
    insidePort: null,
    outside: C2[1],
    outsidePort: null,
    outbound: false,
    proto: 'ICMP',
    packets: 1,
    length: 64,
  },
];
const WINDOW = { from: '2024-03-01T00:00:00Z', to: '2024-03-05T00:00:00Z' };

function tcpdumpLines(f: Flow): string[] {
  const t0 = Date.parse(f.at) / 1000;
  const v6 = f.inside.includes(':');
  const fam = v6 ? 'IP6' : 'IP';
  const ep = (ip: string, port: number | null) => (port == null ? ip : `${ip}.${port}`);
  const [a, b] = f.outbound ? [ep(f.inside, f.insidePort), ep(f.outside, f.outsidePort)] : [ep(f.outside, f.outsidePort), ep(f.inside, f.insidePort)];
  const tail = (flags: string) =>
    f.proto === 'TCP'
      ? `Flags [${flags}], seq 1, win 512, length ${f.length}`
      : f.proto === 'UDP'
        ? `UDP, length ${f.length}`
        : `ICMP echo request, id 1, seq 1, length ${f.length}`;
  const lines: string[] = [];
  for (let i = 0; i < f.packets; i++) {
    lines.push(`${(t0 + i * 2).toFixed(6)} ${fam} ${a} > ${b}: ${tail(i === 0 ? 'S' : '.')}`);
    lines.push(`${(t0 + i * 2 + 1).toFixed(6)} ${fam} ${b} > ${a}: ${tail(i === 0 ? 'S.' : '.')}`);
  }
  return lines;
}

const hits = FLOWS.filter((f) => listOf(f.outside));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const uniq = <T>(xs: T[]) => [...new Set(xs)];

// Every expectation, answered from the in-memory report store, from SQL (the store off), and from ClickHouse
// (ANALYTICS_URL on chDB, when installed: always under CI).
const paths = drivers.flatMap((driver) => [[driver, 'memory'], [driver, 'SQL'], ...(analyticsAvailable ? [[driver, 'ClickHouse']] : [])]) as Array<
  [(typeof drivers)[number], 'memory' | 'SQL' | 'ClickHouse']
>;

describe.each(paths)('hit reports (%s, %s)', (driver, path) => {
  let t: TestApp;
  let deviceIds: Record<string, string>;
  let listIds: Record<string, string>;
  const report = async (selection: string, filter: Record<string, unknown> = WINDOW, key?: string) =>
    ok(await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { ${selection} } }`, { f: filter }, key)).hitReport;

  const analytics = path === 'ClickHouse' ? analyticsEnv() : null;

  beforeAll(async () => {
    t = await createTestApp(driver, analytics ? analytics.env : path === 'SQL' ? { REPORT_MEMORY_MAX_HITS: '0' } : {});
    // With ANALYTICS_URL the worker writes the hits to ClickHouse: its tables first, as the server makes them at start.
    if (analytics) await t.services.analytics!.migrate();
    const q = async (query: string, v: Record<string, unknown>) => ok(await t.gql(query, v));
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`, {})).policyCreate.policy.id;
    listIds = {};
    for (const [name, severity, category, values] of [
      ['C2', 5, 'C2_BOTNET', C2],
      ['Scanners', 2, 'SCANNER', SCAN],
    ] as const) {
      const id = (
        await q(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, { i: { name, kind: 'BLOCK', severity, category } })
      ).iocListCreate.iocList.id;
      await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: id, entries: values.map((value) => ({ value })) } });
      await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [id] } });
      listIds[name] = id;
    }
    deviceIds = {};
    for (const [nickname, ip] of [
      ['hq', '8.8.8.8'],
      ['branch', '8.8.4.4'],
    ]) {
      deviceIds[nickname] = (
        await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } } }`, { i: { nickname, ipType: 'STATIC', ipAddress: ip, policy } })
      ).deviceCreate.device.id;
      const text = FLOWS.filter((f) => f.device === nickname)
        .flatMap(tcpdumpLines)
        .join('\n');
      expect(ok(await upload(t, `${text}\n`, { deviceNickname: nickname })).logUploadCreate.userErrors).toEqual([]);
    }
    const outcomes = await processQueued(t.services);
    expect(outcomes.map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED']);
    if (analytics) await moveHitsToAnalytics(t);
    // The path under test is the one taken.
    const held = await t.services.reportMemory.view(t.accountId);
    if (path === 'memory') expect(held?.hits).toBe(hits.length);
    else expect(held).toBeNull();
    if (analytics) {
      const f = resolveHitFilter(t.accountId, { from: new Date(WINDOW.from), to: new Date(WINDOW.to) });
      expect(await t.services.reports.executor(f)).toBeInstanceOf(ClickHouseExecutor);
    }
  });
  afterAll(async () => {
    await t.close();
    removeAnalyticsDir(analytics?.dir);
  });

  it('totals', async () => {
    const r = await report(`totals { hits packets bytes internalHosts externalAddresses devices }`);
    expect(r.totals).toEqual({
      hits: hits.length,
      packets: sum(hits.map((f) => f.packets * 2)),
      bytes: sum(hits.map((f) => f.packets * 2 * f.length)),
      internalHosts: uniq(hits.map((f) => `${f.device}/${f.inside}`)).length,
      externalAddresses: uniq(hits.map((f) => f.outside)).length,
      devices: 2,
    });
  });

  it('byDirection, bySeverity and byCategory', async () => {
    const r = await report(`byDirection { direction hits packets } bySeverity { severity hits internalHosts } byCategory { category hits packets }`);
    const dir = (out: boolean) => hits.filter((f) => f.outbound === out);
    expect(r.byDirection).toEqual([
      { direction: 'INBOUND', hits: dir(false).length, packets: sum(dir(false).map((f) => f.packets * 2)) },
      { direction: 'OUTBOUND', hits: dir(true).length, packets: sum(dir(true).map((f) => f.packets * 2)) },
    ]);
    const sev = (s: number) => hits.filter((f) => severityOf(f.outside) === s);
    expect(r.bySeverity).toEqual(
      [5, 2].map((s) => ({ severity: s, hits: sev(s).length, internalHosts: uniq(sev(s).map((f) => `${f.device}/${f.inside}`)).length })),
    );
    const cat = (c: string) => hits.filter((f) => (c === 'C2_BOTNET' ? C2 : SCAN).includes(f.outside));
    expect(r.byCategory).toEqual(
      [
        { category: 'SCANNER', hits: cat('SCANNER').length, packets: sum(cat('SCANNER').map((f) => f.packets * 2)) },
        { category: 'C2_BOTNET', hits: cat('C2_BOTNET').length, packets: sum(cat('C2_BOTNET').map((f) => f.packets * 2)) },
      ].sort((a, b) => b.hits - a.hits || a.category.localeCompare(b.category)),
    );
  });

  it('byIoc and byIocList reference real entries and lists', async () => {
    const r = await report(`byIoc(first: 10) { ioc { cidr } iocList { name } matchedCidr severity category hits packets internalHosts firstSeenAt lastSeenAt }
      byIocList(first: 10) { iocList { name } hits iocs internalHosts }`);
    const expected = uniq(hits.map((f) => f.outside))
      .map((ip) => {
        const hs = hits.filter((f) => f.outside === ip);
        const cidr = ip.includes(':') ? `${ip}/128` : `${ip}/32`;
        return {
          ioc: { cidr },
          iocList: { name: listOf(ip) },
          matchedCidr: cidr,
          severity: severityOf(ip),
          category: C2.includes(ip) ? 'C2_BOTNET' : 'SCANNER',
          hits: hs.length,
          packets: sum(hs.map((f) => f.packets * 2)),
          internalHosts: uniq(hs.map((f) => `${f.device}/${f.inside}`)).length,
          firstSeenAt: new Date(Math.min(...hs.map((f) => Date.parse(f.at)))).toISOString(),
          lastSeenAt: new Date(Math.max(...hs.map((f) => Date.parse(f.at) + (f.packets * 2 - 1) * 1000))).toISOString(),
        };
      })
      .sort((a, b) => b.hits - a.hits);
    expect(r.byIoc.map((x: any) => x.hits)).toEqual(expected.map((x) => x.hits));
    expect([...r.byIoc].sort((a: any, b: any) => a.matchedCidr.localeCompare(b.matchedCidr))).toEqual(
      [...expected].sort((a, b) => a.matchedCidr.localeCompare(b.matchedCidr)),
    );
    expect(r.byIocList).toEqual(
      ['C2', 'Scanners']
        .map((name) => {
          const hs = hits.filter((f) => listOf(f.outside) === name);
          return {
            iocList: { name },
            hits: hs.length,
            iocs: uniq(hs.map((f) => f.outside)).length,
            internalHosts: uniq(hs.map((f) => `${f.device}/${f.inside}`)).length,
          };
        })
        .sort((a, b) => b.hits - a.hits),
    );
  });

  it('byDevice, byInternalHost and threats', async () => {
    const r = await report(`byDevice { device { nickname } hits iocs }
      byInternalHost(first: 100) { device { nickname } internalIp hits iocs worstSeverity }
      threats(first: 100) { device { nickname } internalIp matchedCidr severity hits destinationPorts directions ioc { cidr } iocList { name } }`);
    expect(r.byDevice).toEqual(
      ['hq', 'branch']
        .map((d) => ({
          device: { nickname: d },
          hits: hits.filter((f) => f.device === d).length,
          iocs: uniq(hits.filter((f) => f.device === d).map((f) => f.outside)).length,
        }))
        .sort((a, b) => b.hits - a.hits),
    );
    const hosts = uniq(hits.map((f) => `${f.device}|${f.inside}`)).map((k) => {
      const [device, ip] = k.split('|');
      const hs = hits.filter((f) => f.device === device && f.inside === ip);
      return {
        device: { nickname: device },
        internalIp: ip,
        hits: hs.length,
        iocs: uniq(hs.map((f) => f.outside)).length,
        worstSeverity: Math.max(...hs.map((f) => severityOf(f.outside))),
      };
    });
    const byHits = (a: any, b: any) => b.hits - a.hits || `${a.device.nickname}|${a.internalIp}`.localeCompare(`${b.device.nickname}|${b.internalIp}`);
    expect([...r.byInternalHost].sort(byHits)).toEqual(hosts.sort(byHits));
    expect(r.byInternalHost.map((h: any) => h.hits)).toEqual(hosts.map((h) => h.hits));
    const threats = uniq(hits.map((f) => `${f.device}|${f.inside}|${f.outside}`)).map((k) => {
      const [device, ip, outside] = k.split('|');
      const hs = hits.filter((f) => f.device === device && f.inside === ip && f.outside === outside);
      const cidr = outside.includes(':') ? `${outside}/128` : `${outside}/32`;
      return {
        device: { nickname: device },
        internalIp: ip,
        matchedCidr: cidr,
        severity: severityOf(outside),
        hits: hs.length,
        destinationPorts: uniq(hs.map((f) => (f.outbound ? f.outsidePort : f.insidePort)).filter((p): p is number => p != null))
          .sort((a, b) => a - b)
          .slice(0, 20),
        directions: uniq(hs.map((f) => (f.outbound ? 'OUTBOUND' : 'INBOUND'))).sort(),
        ioc: { cidr },
        iocList: { name: listOf(outside) },
      };
    });
    const key = (x: any) => `${x.device.nickname}|${x.internalIp}|${x.matchedCidr}`;
    expect([...r.threats].sort((a: any, b: any) => key(a).localeCompare(key(b)))).toEqual(threats.sort((a, b) => key(a).localeCompare(key(b))));
    // Most severe first, then most hits.
    const order = r.threats.map((x: any) => [x.severity, x.hits]);
    expect(order).toEqual([...order].sort((a: number[], b: number[]) => b[0] - a[0] || b[1] - a[1]));
  });

  it.each([
    ['devices', (ids: any) => ({ devices: [ids.devices.branch] }), (f: Flow) => f.device === 'branch'],
    ['directions', () => ({ directions: ['INBOUND'] }), (f: Flow) => !f.outbound],
    ['minSeverity', () => ({ minSeverity: 4 }), (f: Flow) => severityOf(f.outside) >= 4],
    ['severities', () => ({ severities: [2] }), (f: Flow) => severityOf(f.outside) === 2],
    ['iocLists', (ids: any) => ({ iocLists: [ids.lists.Scanners] }), (f: Flow) => SCAN.includes(f.outside)],
    ['categories', () => ({ categories: ['C2_BOTNET'] }), (f: Flow) => C2.includes(f.outside)],
    ['internal CIDR', () => ({ internalAddress: '10.0.0.0/29' }), (f: Flow) => /^10\.0\.0\.[0-7]$/.test(f.inside)],
    ['internal address (IPv6)', () => ({ internalAddress: 'fd00::9' }), (f: Flow) => f.inside === 'fd00::9'],
    ['external CIDR', () => ({ externalAddress: '203.0.113.0/24' }), (f: Flow) => f.outside.startsWith('203.0.113.')],
    ['destination ports', () => ({ destinationPorts: [443, 22] }), (f: Flow) => [443, 22].includes((f.outbound ? f.outsidePort : f.insidePort) as number)],
    ['excluded ports', () => ({ excludeDestinationPorts: [443] }), (f: Flow) => (f.outbound ? f.outsidePort : f.insidePort) !== 443],
    ['protocols', () => ({ protocols: ['ICMP', 'UDP'] }), (f: Flow) => f.proto !== 'TCP'],
    [
      'narrower window',
      () => ({ from: '2024-03-02T00:00:00Z', to: '2024-03-03T00:00:00Z' }),
      (f: Flow) => f.at >= '2024-03-02T00:00:00Z' && f.at < '2024-03-03T00:00:00Z',
    ],
  ])('filters by %s', async (_name, build, keep) => {
    const filter = { ...WINDOW, ...build({ devices: deviceIds, lists: listIds }) };
    const r = await report(`totals { hits packets }`, filter);
    const kept = hits.filter(keep as (f: Flow) => boolean);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(hits.length + (_name === 'excluded ports' ? 1 : 0));
    expect(r.totals).toEqual({ hits: kept.length, packets: sum(kept.map((f) => f.packets * 2)) });
    // Every pair the filter keeps, worst severity first, whichever severities it leaves (C2's 5 is gone from some).
    const t = await report(`threats(first: 100) { severity hits }`, filter);
    expect(sum(t.threats.map((x: { hits: number }) => x.hits))).toBe(kept.length);
    const severities = t.threats.map((x: { severity: number }) => x.severity);
    expect(severities).toEqual([...severities].sort((a, b) => b - a));
    expect(new Set(severities)).toEqual(new Set(kept.map((f) => severityOf(f.outside))));
  });

  it('daily and hourly timeline in UTC with empty buckets', async () => {
    const r = await report(`timeline(bucket: DAY) { start end hits inbound outbound }`);
    const days = ['2024-03-01', '2024-03-02', '2024-03-03', '2024-03-04'];
    expect(r.timeline).toEqual(
      days.map((d, i) => {
        const hs = hits.filter((f) => f.at.startsWith(d));
        return {
          start: `${d}T00:00:00.000Z`,
          end: `${days[i + 1] ?? '2024-03-05'}T00:00:00.000Z`,
          hits: hs.length,
          inbound: hs.filter((f) => !f.outbound).length,
          outbound: hs.filter((f) => f.outbound).length,
        };
      }),
    );
    const hourly = (await report(`timeline(bucket: HOUR) { start hits }`, { from: '2024-03-01T09:00:00Z', to: '2024-03-01T12:00:00Z' })).timeline;
    expect(hourly).toEqual([
      { start: '2024-03-01T09:00:00.000Z', hits: 0 },
      { start: '2024-03-01T10:00:00.000Z', hits: 3 },
      { start: '2024-03-01T11:00:00.000Z', hits: 1 },
    ]);
  });

  it('refuses a filter without a window, a bad CIDR, a bad time zone and a page over 100', async () => {
    for (const [filter, sel, message] of [
      [{}, 'totals { hits }', 'a time window is required'],
      [{ ...WINDOW, preset: 'LAST_7_DAYS' }, 'totals { hits }', 'either preset or from/to'],
      [{ from: WINDOW.to, to: WINDOW.from }, 'totals { hits }', 'from must be before to'],
      [{ ...WINDOW, internalAddress: '10.0.0.0/33' }, 'totals { hits }', 'filter.internalAddress'],
      [{ ...WINDOW, destinationPorts: [70000] }, 'totals { hits }', 'is not a port'],
      [WINDOW, 'timeline(bucket: DAY, timeZone: "Mars/Olympus") { hits }', 'is not an IANA time zone'],
      [WINDOW, 'byIoc(first: 101) { hits }', 'between 1 and 100'],
    ] as const) {
      const r = await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { ${sel} } }`, { f: filter });
      expect(r.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0].message).toContain(message);
    }
  });

  it('shows another account nothing, and lets ANALYST read but not UPLOADER', async () => {
    expect((await report(`totals { hits devices }`, WINDOW, t.keys.otherAdmin)).totals).toEqual({ hits: 0, devices: 0 });
    const foreign = await report(`totals { hits }`, { ...WINDOW, devices: [deviceIds.hq] }, t.keys.otherAdmin);
    expect(foreign.totals.hits).toBe(0);
    expect((await report(`totals { hits }`, WINDOW, t.keys.analyst)).totals.hits).toBe(hits.length);
    const up = await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { totals { hits } } }`, { f: WINDOW }, t.keys.uploader);
    expect(up.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });
});
