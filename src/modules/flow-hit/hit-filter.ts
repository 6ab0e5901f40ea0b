import { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { badUserInput } from '../../common/errors/graphql-errors';
import { idOfType } from '../../common/ids/global-id';
import { parseCidr } from '../../common/net/cidr';
import { canonicalIp } from '../../common/net/device-address';
import { Direction, HitKind, PRESET_MS, TimeRangePreset, TransportProtocol } from './flow-hit.enums';
import { FlowHit } from './flow-hit.entity';
import { IocCategory } from '../ioc/ioc.enums';
import { cidrRangeKeys } from '../ioc/ioc-range';
import { HitFilter } from './hit-filter.inputs';
import { TriageStatus } from './hit-triage.enums';
import { applyTriageStatuses } from './hit-triage.sql';

/** A validated filter, IDs decoded, ready for SQL. Unknown or foreign IDs decode to -1 and match nothing. */
export interface ResolvedHitFilter {
  accountId: number;
  /** DNS: the filter covers DNS hits (dns_hit); absent: flow hits. */
  kind?: HitKind.DNS;
  /** With kind DNS: the one internal address asked for, canonical (DNS hits have no address keys for a CIDR). */
  internalIp?: string;
  from: number;
  to: number;
  deviceIds?: number[];
  directions?: Direction[];
  minSeverity?: number;
  severities?: number[];
  listIds?: number[];
  categories?: IocCategory[];
  internal?: { start: string; end: string };
  external?: { start: string; end: string };
  ports?: number[];
  excludePorts?: number[];
  protocols?: TransportProtocol[];
  foundBy?: string[];
  /** Epoch ms: hits found at or after it. */
  foundSince?: number;
  /** Triage verdicts (hit-triage.service.ts: OPEN is also "never triaged"). */
  triageStatuses?: TriageStatus[];
}

export type HitFilterInput = Omit<HitFilter, never>;

const MAX_WINDOW_MS = 400 * 24 * 3600_000;

function addressRange(text: string, field: string): { start: string; end: string } {
  const r = parseCidr(text.trim(), { minPrefixV4: 0, minPrefixV6: 0 });
  if (!r.ok) throw badUserInput(`filter.${field}: ${r.message}`);
  return cidrRangeKeys(r.cidr);
}

/**
 * IDs a filter may list (devices, lists), and distinct values of each of its other lists: each is a bound parameter
 * of the statements that read the hits.
 */
export const MAX_FILTER_IDS = 1_000;

/** A list condition's values, each once (SQLite takes at most 32,766 bound parameters a statement). */
function distinct<T>(list: readonly T[] | null | undefined, field: string): T[] | undefined {
  if (list == null) return undefined;
  const values = [...new Set(list)];
  if (values.length > MAX_FILTER_IDS) throw badUserInput(`filter.${field}: at most ${MAX_FILTER_IDS} values.`);
  return values;
}

function ports(list: number[], field: string): number[] {
  for (const p of list) if (!Number.isInteger(p) || p < 0 || p > 65535) throw badUserInput(`filter.${field}: ${p} is not a port (0-65535).`);
  return distinct(list, field)!;
}

/** Validates a HitFilter; errors are BAD_USER_INPUT naming the field. */
export function resolveHitFilter(accountId: number, f: HitFilterInput, now = Date.now()): ResolvedHitFilter {
  let from: number;
  let to: number;
  if (f.preset) {
    if (f.from || f.to) throw badUserInput('filter: give either preset or from/to, not both.');
    to = now;
    from = now - PRESET_MS[f.preset as TimeRangePreset];
  } else {
    if (!f.from || !f.to) throw badUserInput('filter: a time window is required: from and to, or preset.');
    from = f.from.getTime();
    to = f.to.getTime();
    if (!(from < to)) throw badUserInput('filter: from must be before to.');
    if (to - from > MAX_WINDOW_MS) throw badUserInput('filter: the window may span at most 400 days.');
  }
  const dns = f.kind === HitKind.DNS;
  if (dns) {
    const ipOnly: Array<[keyof HitFilterInput, string]> = [
      ['externalAddress', 'a DNS hit has no external address'],
      ['destinationPorts', 'a DNS hit has no destination port'],
      ['excludeDestinationPorts', 'a DNS hit has no destination port'],
      ['protocols', 'a DNS hit has no transport protocol'],
      ['foundBy', 'DNS hits do not record how they were found'],
      ['foundSince', 'DNS hits do not record when they were found'],
    ];
    for (const [field, why] of ipOnly)
      if (f[field] != null) throw badUserInput(`filter.${field} applies to IP hits only (${why}); leave it out with kind: DNS.`);
  }
  let internalIp: string | undefined;
  if (dns && f.internalAddress != null) {
    const ip = canonicalIp(f.internalAddress);
    if (ip === null)
      throw badUserInput(`filter.internalAddress: with kind: DNS, give one IP address (not a CIDR); "${f.internalAddress.slice(0, 64)}" is not one.`);
    internalIp = ip;
  }
  const ids = (list: string[] | null | undefined, type: 'Device' | 'IocList') => {
    if (list && list.length > MAX_FILTER_IDS) throw badUserInput(`filter.${type === 'Device' ? 'devices' : 'iocLists'}: at most ${MAX_FILTER_IDS}.`);
    return list ? list.map((id) => idOfType(id, type) ?? -1) : undefined;
  };
  if (f.minSeverity != null && (f.minSeverity < 0 || f.minSeverity > 5)) throw badUserInput('filter.minSeverity: 0-5.');
  return {
    accountId,
    ...(dns ? { kind: HitKind.DNS as const } : {}),
    ...(internalIp !== undefined ? { internalIp } : {}),
    from,
    to,
    deviceIds: ids(f.devices, 'Device'),
    directions: distinct(f.directions, 'directions'),
    minSeverity: f.minSeverity ?? undefined,
    severities: distinct(f.severities, 'severities'),
    listIds: ids(f.iocLists, 'IocList'),
    categories: distinct(f.categories, 'categories'),
    internal: f.internalAddress && !dns ? addressRange(f.internalAddress, 'internalAddress') : undefined,
    external: f.externalAddress ? addressRange(f.externalAddress, 'externalAddress') : undefined,
    ports: f.destinationPorts ? ports(f.destinationPorts, 'destinationPorts') : undefined,
    excludePorts: f.excludeDestinationPorts ? ports(f.excludeDestinationPorts, 'excludeDestinationPorts') : undefined,
    protocols: distinct(f.protocols, 'protocols'),
    foundBy: distinct(f.foundBy, 'foundBy'),
    foundSince: f.foundSince ? f.foundSince.getTime() : undefined,
    triageStatuses: distinct(f.triageStatuses, 'triageStatuses'),
  };
}

/** `f` for something only flow hits have (the flowHits drill-down, triage, the flow hit export): kind DNS is refused, naming where DNS hits are. */
export function flowHitsOnly(f: ResolvedHitFilter, instead: string): ResolvedHitFilter {
  if (f.kind === HitKind.DNS) throw badUserInput(`filter.kind: this covers flow hits (kind IP) only; DNS hits are in ${instead}.`);
  return f;
}

/** Applies a filter to a query on FlowHit aliased `h`. An empty ID list matches nothing. */
export function applyHitFilter(qb: SelectQueryBuilder<FlowHit>, f: ResolvedHitFilter): SelectQueryBuilder<FlowHit> {
  qb.where('h.accountId = :accountId', { accountId: f.accountId }).andWhere('h.firstSeenAt >= :from AND h.firstSeenAt < :to', { from: f.from, to: f.to });
  return applyHitDimensions(qb, f);
}

/** Filters a roll-up can apply (it has these columns); the others need the raw hits. */
export function rollupCanFilter(f: ResolvedHitFilter, withProtocol: boolean): boolean {
  return (
    !f.internal &&
    !f.external &&
    f.ports === undefined &&
    !f.excludePorts?.length &&
    (withProtocol || f.protocols === undefined) &&
    // How a hit was found is not rolled up.
    f.foundBy === undefined &&
    f.foundSince === undefined &&
    // Nor is triage, which changes without the hits changing.
    f.triageStatuses === undefined
  );
}

/**
 * Every condition of a filter but the account and the time window, on a query aliased `h` over flow hits or a
 * roll-up (which name these columns alike). Address and port conditions only apply to flow hits.
 */
export function applyHitDimensions<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, f: ResolvedHitFilter): SelectQueryBuilder<T> {
  const inList = (column: string, name: string, values: unknown[] | undefined) => {
    if (values === undefined) return;
    if (values.length === 0) qb.andWhere('1 = 0');
    else qb.andWhere(`${column} IN (:...${name})`, { [name]: values });
  };
  inList('h.deviceId', 'fDevices', f.deviceIds);
  inList('h.direction', 'fDirections', f.directions);
  inList('h.severity', 'fSeverities', f.severities);
  inList('h.iocListId', 'fLists', f.listIds);
  inList('h.category', 'fCategories', f.categories);
  inList('h.destinationPort', 'fPorts', f.ports);
  inList('h.protocol', 'fProtocols', f.protocols);
  inList('h.foundBy', 'fFoundBy', f.foundBy);
  if (f.foundSince !== undefined) qb.andWhere('h.foundAt >= :fFoundSince', { fFoundSince: f.foundSince });
  if (f.triageStatuses !== undefined) applyTriageStatuses(qb, f.triageStatuses);
  if (f.minSeverity !== undefined) qb.andWhere('h.severity >= :fMinSeverity', { fMinSeverity: f.minSeverity });
  if (f.internal) qb.andWhere('h.internalKey >= :fInStart AND h.internalKey <= :fInEnd', { fInStart: f.internal.start, fInEnd: f.internal.end });
  if (f.external) qb.andWhere('h.externalKey >= :fExStart AND h.externalKey <= :fExEnd', { fExStart: f.external.start, fExEnd: f.external.end });
  if (f.excludePorts?.length) {
    // Port-less hits (ICMP) have no destination port to exclude: keep them.
    qb.andWhere('(h.destinationPort IS NULL OR h.destinationPort NOT IN (:...fExcl))', { fExcl: f.excludePorts });
  }
  return qb;
}
