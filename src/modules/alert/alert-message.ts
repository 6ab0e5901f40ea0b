/**
 * What an alert says, in each destination's form. Pure: no I/O, no GraphQL, no TypeORM. The JSON form is the
 * documented webhook body (README, "Alerts"); the others are derived from the same object.
 */
export interface AlertMessage {
  /** Global ID of the alert. */
  id: string;
  /** Stable for every attempt of every delivery of this alert: receivers drop repeats by it. */
  idempotencyKey: string;
  /** True for alertDestinationTest's sample. */
  test: boolean;
  rule: { id: string; name: string };
  severity: number;
  category: string;
  direction: string;
  foundBy: string;
  /** IP: a flow matched an address entry; DNS: a DNS query matched a domain entry. */
  hitKind: string;
  /** The matched entry: an Ioc (cidr: its network) for IP, an IocDomain (cidr: its domain name) for DNS. */
  ioc: { id: string; cidr: string };
  iocList: { id: string; name: string };
  device: { id: string; nickname: string };
  internalIp: string;
  /** Empty for a DNS alert. */
  externalIp: string;
  /** The name the first DNS hit queried; null for an IP alert. */
  qname: string | null;
  /** Hits this alert stands for in its throttle window (more may be added after it was sent). */
  hitCount: number;
  firstSeenAt: string;
  lastSeenAt: string;
  upload: { id: string } | null;
}

export function alertJson(m: AlertMessage): string {
  return JSON.stringify(m);
}

export function alertSummary(m: AlertMessage): string {
  const hits = m.hitCount === 1 ? '1 hit' : `${m.hitCount} hits`;
  if (m.hitKind === 'DNS') {
    return `${m.test ? '[test] ' : ''}${m.internalIp} queried ${m.qname ?? ''} matched ${m.ioc.cidr} (${m.iocList.name}, severity ${m.severity}, ${m.category}) on ${m.device.nickname}: ${hits}`;
  }
  return `${m.test ? '[test] ' : ''}${m.direction} ${m.internalIp} <-> ${m.externalIp} matched ${m.ioc.cidr} (${m.iocList.name}, severity ${m.severity}, ${m.category}) on ${m.device.nickname}: ${hits}`;
}

/** CEF:0 escaping: `\` and `|` in the header, `\`, `=` and newlines in extension values. */
const cefHeader = (s: string) => s.replace(/[\\|]/g, (c) => `\\${c}`);
const cefValue = (s: string) => s.replace(/[\\=]/g, (c) => `\\${c}`).replace(/\r?\n/g, '\\n');

export function alertCef(m: AlertMessage): string {
  // CEF severity is 0-10; ours is 0-5.
  const ext: Array<[string, string | number]> = [
    ['rt', Date.parse(m.lastSeenAt)],
    ['src', m.internalIp],
    ...(m.hitKind === 'DNS' ? ([['dhost', m.qname ?? '']] as Array<[string, string]>) : ([['dst', m.externalIp]] as Array<[string, string]>)),
    ['cnt', m.hitCount],
    ['cat', m.category],
    ['deviceDirection', m.direction === 'OUTBOUND' ? 1 : 0],
    ['dvchost', m.device.nickname],
    ['cs1Label', 'iocList'],
    ['cs1', m.iocList.name],
    ['cs2Label', 'ioc'],
    ['cs2', m.ioc.cidr],
    ['cs3Label', 'rule'],
    ['cs3', m.rule.name],
    ['externalId', m.idempotencyKey],
  ];
  const head = ['CEF:0', 'pcap-defense', 'pcap-defense', '1', `ioc-hit-${m.severity}`, cefHeader(`IOC hit: ${m.ioc.cidr}`), String(m.severity * 2)];
  return `${head.join('|')}|${ext.map(([k, v]) => `${k}=${cefValue(String(v))}`).join(' ')}`;
}

/**
 * An RFC 5424 message: facility local0 (16), severity from ours (5 -> alert ... 0 -> informational), the alert's
 * idempotency key as MSGID's structured data. `now` is the message's TIMESTAMP.
 */
export function syslogLine(m: { severity: number; idempotencyKey: string }, body: string, hostname: string, now: Date): string {
  const severity = [6, 5, 4, 3, 2, 1][Math.max(0, Math.min(5, m.severity))];
  const pri = 16 * 8 + severity;
  const sd = `[pcd@32473 key="${m.idempotencyKey.replace(/["\\\]]/g, (c) => `\\${c}`)}"]`;
  return `<${pri}>1 ${now.toISOString()} ${hostname || '-'} pcap-defense ${process.pid} ioc-hit ${sd} ${body}`;
}

export function emailSubject(m: AlertMessage): string {
  return `${m.test ? '[test] ' : ''}pcap-defense: ${m.internalIp} matched ${m.ioc.cidr} (severity ${m.severity})`;
}

export function emailText(m: AlertMessage): string {
  return [
    alertSummary(m),
    '',
    `Rule: ${m.rule.name}`,
    `Device: ${m.device.nickname}`,
    `Internal host: ${m.internalIp}`,
    `External address: ${m.externalIp}`,
    `Entry: ${m.ioc.cidr} in ${m.iocList.name}`,
    `Severity: ${m.severity}   Category: ${m.category}   Direction: ${m.direction}   Found by: ${m.foundBy}`,
    `Hits: ${m.hitCount}   First seen: ${m.firstSeenAt}   Last seen: ${m.lastSeenAt}`,
    `Alert: ${m.id} (idempotency key ${m.idempotencyKey})`,
  ].join('\n');
}

/** The sample alertDestinationTest sends. */
export function sampleMessage(destinationId: string, now: Date): AlertMessage {
  const at = now.toISOString();
  return {
    id: 'test',
    idempotencyKey: `test-${destinationId}-${now.getTime()}`,
    test: true,
    rule: { id: 'test', name: 'Test alert' },
    severity: 5,
    category: 'test',
    direction: 'OUTBOUND',
    foundBy: 'UPLOAD',
    hitKind: 'IP',
    ioc: { id: 'test', cidr: '192.0.2.1/32' },
    iocList: { id: 'test', name: 'Test list' },
    device: { id: 'test', nickname: 'test device' },
    internalIp: '10.0.0.1',
    externalIp: '192.0.2.1',
    qname: null,
    hitCount: 1,
    firstSeenAt: at,
    lastSeenAt: at,
    upload: null,
  };
}

/** What a sender sends, in every form it may need: an alert's or a digest's. */
export interface Outgoing {
  idempotencyKey: string;
  /** 0-5: the syslog severity and CEF's. */
  severity: number;
  json: string;
  /** Slack's text and the e-mail's first line. */
  summary: string;
  cef: string;
  subject: string;
  text: string;
}

export function renderAlert(m: AlertMessage): Outgoing {
  return {
    idempotencyKey: m.idempotencyKey,
    severity: m.severity,
    json: alertJson(m),
    summary: `pcap-defense alert (${m.rule.name}): ${alertSummary(m)}`,
    cef: alertCef(m),
    subject: emailSubject(m),
    text: emailText(m),
  };
}

/** A digest: the alerts one rule raised in one period (documented in README, "Alerts"). */
export interface DigestMessage {
  kind: 'digest';
  id: string;
  idempotencyKey: string;
  rule: { id: string; name: string };
  periodStart: string;
  periodEnd: string;
  alertCount: number;
  hitCount: number;
  maxSeverity: number;
  /** The alerts with the most hits, most first (at most 20). */
  top: Array<{ internalIp: string; externalIp: string; ioc: string; iocList: string; severity: number; hitCount: number }>;
}

export function renderDigest(d: DigestMessage): Outgoing {
  const summary = `pcap-defense digest (${d.rule.name}), ${d.periodStart} to ${d.periodEnd}: ${d.alertCount} alerts, ${d.hitCount} hits`;
  const ext = [
    `start=${Date.parse(d.periodStart)}`,
    `end=${Date.parse(d.periodEnd)}`,
    `cnt=${d.hitCount}`,
    `cs1Label=rule cs1=${cefValue(d.rule.name)}`,
    `cn1Label=alerts cn1=${d.alertCount}`,
    `externalId=${cefValue(d.idempotencyKey)}`,
  ];
  return {
    idempotencyKey: d.idempotencyKey,
    severity: d.maxSeverity,
    json: JSON.stringify(d),
    summary,
    cef: `CEF:0|pcap-defense|pcap-defense|1|digest|${cefHeader(`Alert digest: ${d.rule.name}`)}|${d.maxSeverity * 2}|${ext.join(' ')}`,
    subject: `pcap-defense digest: ${d.rule.name}: ${d.alertCount} alerts, ${d.hitCount} hits`,
    text: [
      summary,
      '',
      ...d.top.map((t) => `${t.internalIp} <-> ${t.externalIp} matched ${t.ioc} (${t.iocList}, severity ${t.severity}): ${t.hitCount} hits`),
    ].join('\n'),
  };
}
