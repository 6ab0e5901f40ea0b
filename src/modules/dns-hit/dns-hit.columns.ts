import type { DnsQueryGroup } from '../log-upload/flows/dns-queries';

/** dns_hit's columns as the writer inserts them (hit-writer.ts replaceUploadDns), declared once. */
export const DNS_HIT_COLUMNS = [
  { key: 'accountId', sql: 'account_id' },
  { key: 'deviceId', sql: 'device_id' },
  { key: 'uploadId', sql: 'upload_id' },
  { key: 'firstSeenAt', sql: 'first_seen_at' },
  { key: 'lastSeenAt', sql: 'last_seen_at' },
  { key: 'direction', sql: 'direction' },
  { key: 'internalIp', sql: 'internal_ip' },
  { key: 'qname', sql: 'qname' },
  { key: 'qtype', sql: 'qtype' },
  { key: 'hitCount', sql: 'hit_count' },
  { key: 'answers', sql: 'answers' },
  { key: 'iocDomainId', sql: 'ioc_domain_id' },
  { key: 'iocListId', sql: 'ioc_list_id' },
  { key: 'matchedName', sql: 'matched_name' },
  { key: 'severity', sql: 'severity' },
  { key: 'category', sql: 'category' },
] as const;

export type NewDnsHit = { readonly [C in (typeof DNS_HIT_COLUMNS)[number] as C['key']]: string | number };

/** The matched BLOCK domain entry as it is when the upload is processed (copied into the hit). */
export interface DnsHitMatch {
  entryId: number;
  listId: number;
  name: string;
  severity: number;
  category: string;
}

export function newDnsHit(upload: { accountId: number; deviceId: number; uploadId: number }, q: DnsQueryGroup, match: DnsHitMatch): NewDnsHit {
  return {
    accountId: upload.accountId,
    deviceId: upload.deviceId,
    uploadId: upload.uploadId,
    firstSeenAt: Math.floor(q.firstMicros / 1000),
    lastSeenAt: Math.floor(q.lastMicros / 1000),
    direction: q.direction,
    internalIp: q.clientIp,
    qname: q.qname,
    qtype: q.qtype,
    hitCount: q.count,
    answers: JSON.stringify(q.answers),
    iocDomainId: match.entryId,
    iocListId: match.listId,
    matchedName: match.name,
    severity: match.severity,
    category: match.category,
  };
}
