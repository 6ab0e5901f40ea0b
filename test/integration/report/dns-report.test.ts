import express from 'express';
import request from 'supertest';
import { exportRouter } from '../../../src/app/export-route';
import { createTestApp, ok, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { processQueued, upload } from '../../helpers/ingest';
import { idOfType, toGlobalId } from '../../../src/common/ids/global-id';

/**
 * DNS hits in the reports (#18 item 5): hitReport, the dashboard and the export with kind DNS, byKind and byDomain,
 * compared with the same aggregation done here over dns_hit's rows (which dns-hits.test.ts checks against the
 * captures). Synthetic captures (no name in the real captures is on a real feed): two devices, hosts inside asking
 * names under two BLOCK lists of different severity and category, nested entries, an ALLOW entry, outside hosts
 * asking an inside resolver (INBOUND), over three days, beside flows to a listed address (IP hits).
 */
const START = Date.UTC(2024, 2, 1, 6); // 2024-03-01T06:00Z
const WINDOW = { from: new Date(START - 3600_000).toISOString(), to: new Date(START + 4 * 86400_000).toISOString() };
const NAMES = [
  'evil.example',
  'www.evil.example',
  'cdn.evil.example',
  'x.good.evil.example', // allowed
  'login.phish.test',
  'a.deep.phish.test', // under deep.phish.test and phish.test
  'deep.phish.test',
  'benign.example', // no entry
  'notevil.example', // no entry (label boundary)
];
const QTYPES = ['A', 'AAAA', 'HTTPS'];

/** A seeded generator, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function capture(seed: number, lines: number): string {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const ts = (START + Math.floor(r() * 3 * 86400_000)) / 1000;
    const name = pick(NAMES);
    const id = 1000 + i;
    if (r() < 0.8) {
      const host = `10.0.0.${1 + Math.floor(r() * 5)}`;
      out.push(`${ts.toFixed(6)} IP ${host}.${40000 + i} > 8.8.8.8.53: ${id}+ ${pick(QTYPES)}? ${name}. (40)`);
      if (r() < 0.5) out.push(`${(ts + 0.01).toFixed(6)} IP 8.8.8.8.53 > ${host}.${40000 + i}: ${id} 1/0/0 A 198.51.100.${1 + (i % 9)} (56)`);
    } else {
      out.push(`${ts.toFixed(6)} IP 203.0.113.${1 + Math.floor(r() * 3)}.${5000 + i} > 10.0.0.53.53: ${id}+ A? ${name}. (40)`);
    }
    if (r() < 0.3)
      out.push(`${(ts + 0.02).toFixed(6)} IP 10.0.0.${1 + Math.floor(r() * 5)}.${50000 + i} > 198.51.100.7.443: Flags [S], seq 1, win 64240, length 0`);
  }
  return `${out.join('\n')}\n`;
}

interface Hit {
  id: number;
  device: number;
  ip: string;
  direction: string;
  qname: string;
  queries: number;
  entry: number;
  list: number;
  name: string;
  severity: number;
  category: string;
  first: number;
  last: number;
}

const byBytes = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const iso = (ms: number) => new Date(ms).toISOString();

/** The measures hitReport's groupings give, over some hits. */
function measures(hits: Hit[]) {
  return {
    hits: hits.length,
    packets: hits.reduce((a, h) => a + h.queries, 0),
    internalHosts: new Set(hits.map((h) => `${h.device}/${h.ip}`)).size,
    devices: new Set(hits.map((h) => h.device)).size,
    iocs: new Set(hits.map((h) => h.entry)).size,
    firstSeenAt: hits.length ? iso(Math.min(...hits.map((h) => h.first))) : null,
    lastSeenAt: hits.length ? iso(Math.max(...hits.map((h) => h.last))) : null,
    worstSeverity: Math.max(...hits.map((h) => h.severity)),
  };
}

function groupBy(hits: Hit[], key: (h: Hit) => string): Map<string, Hit[]> {
  const m = new Map<string, Hit[]>();
  for (const h of hits) m.set(key(h), [...(m.get(key(h)) ?? []), h]);
  return m;
}

describe.each(drivers)('DNS hits in reports (%s)', (driver) => {
  let t: TestApp;
  let hits: Hit[];
  const q = async (query: string, v: Record<string, unknown> = {}) => ok(await t.gql(query, v));
  const domainList = async (name: string, kind: string, severity: number, category: string, entries: string[]) => {
    const id = (
      await q(`mutation($i: IocListCreateInput!) { iocListCreate(input: $i) { iocList { id } } }`, {
        i: { name, kind, entryKind: 'DOMAIN', severity, category },
      })
    ).iocListCreate.iocList.id as string;
    expect(
      (
        await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { userErrors { message } } }`, {
          i: { list: id, entries: entries.map((value) => ({ value })) },
        })
      ).iocAdd.userErrors,
    ).toEqual([]);
    return id;
  };
  const report = async (filter: Record<string, unknown>, selection: string) =>
    (await q(`query($f: HitFilter!) { hitReport(filter: $f) { ${selection} } }`, { f: filter })).hitReport;

  beforeAll(async () => {
    t = await createTestApp(driver);
    const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
    const c2 = await domainList('C2 domains', 'BLOCK', 5, 'C2_BOTNET', ['evil.example']);
    const phish = await domainList('Phishing', 'BLOCK', 3, 'PHISHING', ['phish.test', 'deep.phish.test']);
    const allow = await domainList('Allowed', 'ALLOW', 0, 'ALLOWLIST', ['good.evil.example']);
    const ips = (await q(`mutation { iocListCreate(input: { name: "C2 IPs", kind: BLOCK, severity: 4, category: C2_BOTNET }) { iocList { id } } }`))
      .iocListCreate.iocList.id;
    await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list: ips, entries: [{ value: '198.51.100.7' }] } });
    await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, {
      i: { policy, iocLists: [c2, phish, allow, ips] },
    });
    for (const [nickname, ipAddress, seed] of [
      ['edge', '93.184.216.34', 1],
      ['branch', '93.184.216.35', 2],
    ] as const) {
      await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { userErrors { message } } }`, {
        i: { nickname, ipType: 'STATIC', ipAddress, policy },
      });
      expect(ok(await upload(t, capture(seed, 400), { deviceNickname: nickname })).logUploadCreate.userErrors).toEqual([]);
    }
    await processQueued(t.services);
    hits = (
      await t.dataSource.query(
        `SELECT id, device_id, internal_ip, direction, qname, hit_count, ioc_domain_id, ioc_list_id, matched_name, severity, category, first_seen_at, last_seen_at FROM dns_hit`,
      )
    ).map((r: Record<string, string | number>) => ({
      id: Number(r.id),
      device: Number(r.device_id),
      ip: String(r.internal_ip),
      direction: String(r.direction),
      qname: String(r.qname),
      queries: Number(r.hit_count),
      entry: Number(r.ioc_domain_id),
      list: Number(r.ioc_list_id),
      name: String(r.matched_name),
      severity: Number(r.severity),
      category: String(r.category),
      first: Number(r.first_seen_at),
      last: Number(r.last_seen_at),
    }));
  });
  afterAll(() => t.close());

  it('the captures give DNS hits of both lists, both devices and both directions, beside flow hits', () => {
    expect(hits.length).toBeGreaterThan(40);
    expect(new Set(hits.map((h) => h.list)).size).toBe(2);
    expect(new Set(hits.map((h) => h.device)).size).toBe(2);
    expect(new Set(hits.map((h) => h.direction))).toEqual(new Set(['INBOUND', 'OUTBOUND']));
    expect(new Set(hits.map((h) => h.name))).toEqual(new Set(['evil.example', 'phish.test', 'deep.phish.test']));
  });

  it('every hitReport grouping of kind DNS equals the aggregation of the DNS hits', async () => {
    const r = await report(
      { ...WINDOW, kind: 'DNS' },
      `totals { hits packets bytes internalHosts externalAddresses devices }
       byDirection { direction hits packets bytes }
       byIoc(first: 100) { kind matchedCidr severity category hits packets internalHosts firstSeenAt lastSeenAt ioc { id } domain { id name } iocList { id } }
       byIocList(first: 100) { iocList { id } hits packets internalHosts iocs }
       byCategory { category hits packets internalHosts }
       bySeverity { severity hits internalHosts firstSeenAt lastSeenAt }
       byDevice(first: 100) { device { id } hits packets iocs internalHosts }
       byInternalHost(first: 100) { device { id } internalIp hits packets iocs worstSeverity firstSeenAt lastSeenAt }
       timeline(bucket: DAY) { start hits inbound outbound }`,
    );
    const all = measures(hits);
    expect(r.totals).toEqual({ hits: all.hits, packets: all.packets, bytes: 0, internalHosts: all.internalHosts, externalAddresses: 0, devices: all.devices });
    expect(r.byDirection).toEqual(
      ['INBOUND', 'OUTBOUND'].map((direction) => {
        const of = hits.filter((h) => h.direction === direction);
        return { direction, hits: of.length, packets: measures(of).packets, bytes: 0 };
      }),
    );
    const entries = [...groupBy(hits, (h) => `${h.entry}`).values()]
      .map((of) => ({ of, m: measures(of) }))
      .sort((a, b) => b.m.hits - a.m.hits || a.of[0].entry - b.of[0].entry);
    expect(r.byIoc).toEqual(
      entries.map(({ of, m }) => ({
        kind: 'DNS',
        matchedCidr: of[0].name,
        severity: of[0].severity,
        category: of[0].category,
        hits: m.hits,
        packets: m.packets,
        internalHosts: m.internalHosts,
        firstSeenAt: m.firstSeenAt,
        lastSeenAt: m.lastSeenAt,
        ioc: null,
        domain: { id: toGlobalId('IocDomain', of[0].entry), name: of[0].name },
        iocList: { id: toGlobalId('IocList', of[0].list) },
      })),
    );
    const lists = [...groupBy(hits, (h) => `${h.list}`).values()].sort((a, b) => b.length - a.length || a[0].list - b[0].list);
    expect(r.byIocList).toEqual(
      lists.map((of) => {
        const m = measures(of);
        return { iocList: { id: toGlobalId('IocList', of[0].list) }, hits: m.hits, packets: m.packets, internalHosts: m.internalHosts, iocs: m.iocs };
      }),
    );
    const cats = [...groupBy(hits, (h) => h.category).values()].sort((a, b) => b.length - a.length || byBytes(a[0].category, b[0].category));
    expect(r.byCategory).toEqual(
      cats.map((of) => ({ category: of[0].category, hits: of.length, packets: measures(of).packets, internalHosts: measures(of).internalHosts })),
    );
    const sevs = [...groupBy(hits, (h) => `${h.severity}`).values()].sort((a, b) => b[0].severity - a[0].severity);
    expect(r.bySeverity).toEqual(
      sevs.map((of) => {
        const m = measures(of);
        return { severity: of[0].severity, hits: m.hits, internalHosts: m.internalHosts, firstSeenAt: m.firstSeenAt, lastSeenAt: m.lastSeenAt };
      }),
    );
    const devices = [...groupBy(hits, (h) => `${h.device}`).values()].sort((a, b) => b.length - a.length || a[0].device - b[0].device);
    expect(r.byDevice).toEqual(
      devices.map((of) => {
        const m = measures(of);
        return { device: { id: toGlobalId('Device', of[0].device) }, hits: m.hits, packets: m.packets, iocs: m.iocs, internalHosts: m.internalHosts };
      }),
    );
    const hosts = [...groupBy(hits, (h) => `${h.device}/${h.ip}`).values()].sort(
      (a, b) => b.length - a.length || a[0].device - b[0].device || byBytes(a[0].ip, b[0].ip),
    );
    expect(r.byInternalHost).toEqual(
      hosts.map((of) => {
        const m = measures(of);
        return {
          device: { id: toGlobalId('Device', of[0].device) },
          internalIp: of[0].ip,
          hits: m.hits,
          packets: m.packets,
          iocs: m.iocs,
          worstSeverity: m.worstSeverity,
          firstSeenAt: m.firstSeenAt,
          lastSeenAt: m.lastSeenAt,
        };
      }),
    );
    const day = (ms: number) => ms - (ms % 86400_000);
    expect(r.timeline.filter((b: { hits: number }) => b.hits > 0)).toEqual(
      [...groupBy(hits, (h) => `${day(h.first)}`).values()]
        .sort((a, b) => a[0].first - b[0].first)
        .map((of) => ({
          start: iso(day(of[0].first)),
          hits: of.length,
          inbound: of.filter((h) => h.direction === 'INBOUND').length,
          outbound: of.filter((h) => h.direction === 'OUTBOUND').length,
        })),
    );
  });

  it('threats, byDomain and byKind over DNS hits; the dashboard of kind DNS', async () => {
    const r = await report(
      { ...WINDOW, kind: 'DNS' },
      `threats(first: 100) { kind device { id } internalIp matchedCidr severity category hits packets destinationPorts directions firstSeenAt lastSeenAt ioc { id } domain { name } }
       byDomain(first: 100) { name hits queries internalHosts devices iocs worstSeverity firstSeenAt lastSeenAt }
       byKind { kind hits packets internalHosts devices firstSeenAt lastSeenAt }`,
    );
    const pairs = [...groupBy(hits, (h) => `${h.device}/${h.ip}/${h.entry}`).values()].sort(
      (a, b) => b[0].severity - a[0].severity || b.length - a.length || a[0].device - b[0].device || byBytes(a[0].ip, b[0].ip) || a[0].entry - b[0].entry,
    );
    expect(r.threats).toEqual(
      pairs.map((of) => {
        const m = measures(of);
        return {
          kind: 'DNS',
          device: { id: toGlobalId('Device', of[0].device) },
          internalIp: of[0].ip,
          matchedCidr: of[0].name,
          severity: of[0].severity,
          category: of[0].category,
          hits: m.hits,
          packets: m.packets,
          destinationPorts: [],
          directions: [...new Set(of.map((h) => h.direction))].sort(),
          firstSeenAt: m.firstSeenAt,
          lastSeenAt: m.lastSeenAt,
          ioc: null,
          domain: { name: of[0].name },
        };
      }),
    );
    const names = [...groupBy(hits, (h) => h.qname).values()].sort((a, b) => b.length - a.length || byBytes(a[0].qname, b[0].qname));
    expect(r.byDomain).toEqual(
      names.map((of) => {
        const m = measures(of);
        return {
          name: of[0].qname,
          hits: m.hits,
          queries: m.packets,
          internalHosts: m.internalHosts,
          devices: m.devices,
          iocs: m.iocs,
          worstSeverity: m.worstSeverity,
          firstSeenAt: m.firstSeenAt,
          lastSeenAt: m.lastSeenAt,
        };
      }),
    );
    // a.deep.phish.test is under two entries of the Phishing list: each is a hit of its own.
    expect(names.find((of) => of[0].qname === 'a.deep.phish.test')?.length).toBeGreaterThan(0);
    const ip = (await report({ ...WINDOW }, `totals { hits packets internalHosts devices }`)).totals;
    expect(ip.hits).toBeGreaterThan(0);
    const dns = measures(hits);
    // byKind is the same whatever the report's kind.
    const ipReport = (await report({ ...WINDOW }, `byKind { kind hits packets internalHosts devices firstSeenAt lastSeenAt }`)).byKind;
    expect(ipReport).toEqual(r.byKind);
    expect(r.byKind[0]).toMatchObject({ kind: 'IP', ...ip });
    expect(r.byKind[1]).toEqual({
      kind: 'DNS',
      hits: dns.hits,
      packets: dns.packets,
      internalHosts: dns.internalHosts,
      devices: dns.devices,
      firstSeenAt: dns.firstSeenAt,
      lastSeenAt: dns.lastSeenAt,
    });
    // A condition only flow hits have leaves DNS at 0 there, and byDomain empty.
    const onlyIp = await report({ ...WINDOW, destinationPorts: [443] }, `byKind { kind hits firstSeenAt } byDomain { name }`);
    expect(onlyIp.byKind[1]).toEqual({ kind: 'DNS', hits: 0, firstSeenAt: null });
    expect(onlyIp.byKind[0].hits).toBe(ip.hits);
    expect(onlyIp.byDomain).toEqual([]);
    // So does an internalAddress CIDR: DNS hits are filtered on one address only.
    const cidr = await report({ ...WINDOW, internalAddress: '10.0.0.0/24' }, `byKind { kind hits } byDomain { name }`);
    expect(cidr.byKind).toEqual([
      { kind: 'IP', hits: ip.hits },
      { kind: 'DNS', hits: 0 },
    ]);
    expect(cidr.byDomain).toEqual([]);

    const d = (
      await q(
        `query($from: DateTimeISO, $to: DateTimeISO) { dashboard(from: $from, to: $to, kind: DNS) { openHits inboundHits outboundHits devices internalHosts topThreats { matchedCidr hits } } }`,
        WINDOW,
      )
    ).dashboard;
    expect(d).toEqual({
      openHits: dns.hits,
      inboundHits: hits.filter((h) => h.direction === 'INBOUND').length,
      outboundHits: hits.filter((h) => h.direction === 'OUTBOUND').length,
      devices: dns.devices,
      internalHosts: dns.internalHosts,
      topThreats: r.threats.slice(0, 3).map((x: { matchedCidr: string; hits: number }) => ({ matchedCidr: x.matchedCidr, hits: x.hits })),
    });
  });

  it('filters of kind DNS: devices, directions, severities, lists, one internal host, triage; and the drill-down agrees', async () => {
    const edge = hits[0].device;
    const host = hits.find((h) => h.direction === 'OUTBOUND')!;
    const phishList = hits.find((h) => h.severity === 3)!.list;
    const cases: Array<[Record<string, unknown>, (h: Hit) => boolean]> = [
      [{ devices: [toGlobalId('Device', edge)] }, (h) => h.device === edge],
      [{ directions: ['INBOUND'] }, (h) => h.direction === 'INBOUND'],
      [{ minSeverity: 4 }, (h) => h.severity >= 4],
      [{ severities: [3] }, (h) => h.severity === 3],
      [{ iocLists: [toGlobalId('IocList', phishList)] }, (h) => h.list === phishList],
      [{ categories: ['PHISHING'] }, (h) => h.category === 'PHISHING'],
      [{ internalAddress: host.ip, devices: [toGlobalId('Device', host.device)] }, (h) => h.ip === host.ip && h.device === host.device],
      [{ triageStatuses: ['OPEN'] }, () => true],
      [{ triageStatuses: ['ACKNOWLEDGED', 'FALSE_POSITIVE'] }, () => false],
    ];
    for (const [extra, keep] of cases) {
      const expected = hits.filter(keep);
      const r = await report({ ...WINDOW, kind: 'DNS', ...extra }, `totals { hits internalHosts }`);
      expect({ extra, totals: r.totals }).toEqual({ extra, totals: { hits: expected.length, internalHosts: measures(expected).internalHosts } });
      if (extra.triageStatuses) continue;
      // The drill-down of a report row: dnsHits with the same conditions lists exactly those hits.
      const listed = (
        await q(`query($f: DnsHitFilter!) { dnsHits(filter: $f, first: 100) { totalCount edges { node { id } } } }`, { f: { ...WINDOW, ...extra } })
      ).dnsHits;
      expect(listed.edges.map((e: { node: { id: string } }) => Number(idOfType(e.node.id, 'DnsHit'))).sort((a: number, b: number) => a - b)).toEqual(
        expected
          .slice()
          .map((h) => h.id)
          .sort((a, b) => a - b)
          .slice(0, 100),
      );
    }
  });

  it('refuses what DNS hits cannot have, and kind DNS where only flow hits are', async () => {
    const refusals: Array<[Record<string, unknown>, RegExp]> = [
      [{ externalAddress: '198.51.100.0/24' }, /externalAddress applies to IP hits only/],
      [{ destinationPorts: [53] }, /destinationPorts applies to IP hits only/],
      [{ protocols: ['UDP'] }, /protocols applies to IP hits only/],
      [{ foundBy: ['UPLOAD'] }, /foundBy applies to IP hits only/],
      [{ internalAddress: '10.0.0.0/24' }, /with kind: DNS, give one IP address/],
    ];
    for (const [extra, message] of refusals) {
      const r = await t.gql(`query($f: HitFilter!) { hitReport(filter: $f) { totals { hits } } }`, { f: { ...WINDOW, kind: 'DNS', ...extra } });
      expect(r.errors?.[0]).toMatchObject({ message: expect.stringMatching(message), extensions: { code: 'BAD_USER_INPUT' } });
    }
    const drill = await t.gql(`query($f: HitFilter!) { flowHits(filter: $f, first: 5) { totalCount } }`, { f: { ...WINDOW, kind: 'DNS' } });
    expect(drill.errors?.[0]).toMatchObject({ message: expect.stringMatching(/DNS hits are in dnsHits/), extensions: { code: 'BAD_USER_INPUT' } });
    const triage = await t.gql(`mutation($i: FlowHitTriageInput!) { flowHitTriage(input: $i) { userErrors { message } } }`, {
      i: { filter: { ...WINDOW, kind: 'DNS' }, status: 'ACKNOWLEDGED' },
    });
    expect(triage.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    const wrongPath = await request(t.http.app)
      .get('/export/flow-hits.csv')
      .query({ ...WINDOW, kind: 'DNS' })
      .set('authorization', `Bearer ${t.keys.admin}`);
    expect(wrongPath.status).toBe(400);
    expect(wrongPath.body.error).toMatch(/export\/dns-hits/);
    // Another account sees none of these hits.
    const other = await t.gql(
      `query($f: HitFilter!) { hitReport(filter: $f) { totals { hits } byDomain { name } byKind { hits } } }`,
      { f: { ...WINDOW, kind: 'DNS' } },
      t.keys.otherAdmin,
    );
    expect(other.data.hitReport).toEqual({ totals: { hits: 0 }, byDomain: [], byKind: [{ hits: 0 }, { hits: 0 }] });
  });

  it('exports DNS hits as CSV and NDJSON, in capture order, every hit once across batches', async () => {
    const get = (path: string, query: Record<string, unknown>) => request(t.http.app).get(path).query(query).set('authorization', `Bearer ${t.keys.admin}`);
    // Batches of 7 rows: the keyset cursor crosses many batch boundaries, some inside one capture instant.
    const small = express().use(exportRouter(t.services, t.services.logger, 7));
    const csv = await request(small).get('/export/dns-hits.csv').query(WINDOW).set('authorization', `Bearer ${t.keys.admin}`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-disposition']).toBe('attachment; filename="dns-hits.csv"');
    const [header, ...lines] = csv.text.trimEnd().split('\n');
    expect(header).toBe(
      'id,first_seen_at,last_seen_at,device_id,device,upload_id,direction,internal_ip,qname,qtype,queries,answers,matched_name,ioc_domain_id,ioc_list_id,ioc_list,severity,category',
    );
    const ordered = hits.slice().sort((a, b) => a.first - b.first || a.id - b.id);
    expect(lines.map((l) => Number(idOfType(l.split(',')[0], 'DnsHit')))).toEqual(ordered.map((h) => h.id));
    const nd = await get('/export/dns-hits.ndjson', { ...WINDOW, minSeverity: 5 });
    const records = nd.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    const severe = ordered.filter((h) => h.severity >= 5);
    expect(records.map((r) => Number(idOfType(r.id, 'DnsHit')))).toEqual(severe.map((h) => h.id));
    expect(records[0]).toMatchObject({
      first_seen_at: iso(severe[0].first),
      device: expect.any(String),
      internal_ip: severe[0].ip,
      qname: severe[0].qname,
      queries: severe[0].queries,
      answers: expect.any(Array),
      matched_name: 'evil.example',
      ioc_list: 'C2 domains',
      severity: 5,
      category: 'C2_BOTNET',
    });
  });
});
