import { Direction } from '../../flow-hit/flow-hit.enums';
import { CategoryRow, DeviceRow, DirectionRow, DomainRow, HitTotals, InternalHostRow, IocListRow, IocRow, KindRow, SeverityRow } from '../report.types';
import { Grouping, grouping } from './grouping';

/**
 * Every hitReport grouping but threats and timeline (hand-written, threats.*.ts and timeline.*.ts), declared
 * once. Each executor computes any of them with the same numbers, order and ties (the property test
 * report-executors.property.test.ts compares them).
 */

const groupMeasures = { hits: 'hits', packets: 'packets', internalHosts: 'distinctHosts', firstSeenAt: 'firstSeen', lastSeenAt: 'lastSeen' } as const;

export type Totals = HitTotals & { inbound: number; outbound: number };

/** One row: the totals, with the hits of each direction (the dashboard shows those beside them). */
export const TOTALS = grouping<Totals>({
  name: 'totals',
  key: {},
  measures: {
    hits: 'hits',
    packets: 'packets',
    bytes: 'bytes',
    internalHosts: 'distinctHosts',
    externalAddresses: 'distinctExternals',
    devices: 'distinctDevices',
    inbound: 'inboundHits',
    outbound: 'outboundHits',
  },
  order: [],
  top: false,
  always: [{}],
});

/** TOTALS's measures other than its hits: skipped where the hit count alone is wanted (the dashboard's openHits). */
export const TOTALS_BUT_HITS: readonly string[] = Object.keys(TOTALS.measures).filter((field) => field !== 'hits');

/** One row: a kind's totals for byKind (the kind is the filter's; an instant is null without hits). */
export const KIND_TOTALS = grouping<Omit<KindRow, 'kind'>>({
  name: 'kindTotals',
  key: {},
  measures: { hits: 'hits', packets: 'packets', internalHosts: 'distinctHosts', devices: 'distinctDevices', firstSeenAt: 'firstSeen', lastSeenAt: 'lastSeen' },
  order: [],
  top: false,
  always: [{}],
});

export const BY_DIRECTION = grouping<DirectionRow>({
  name: 'byDirection',
  key: { direction: 'direction' },
  measures: { hits: 'hits', packets: 'packets', bytes: 'bytes' },
  order: [{ by: 'direction' }],
  top: false,
  // Both always present, so charts need no special case.
  always: [{ direction: Direction.INBOUND }, { direction: Direction.OUTBOUND }],
});

/** A matched entry as its hits recorded it: an entry whose list changed severity since has two rows. */
export const BY_IOC = grouping<IocRow>({
  name: 'byIoc',
  key: { iocId: 'iocId', iocListId: 'iocListId', matchedCidr: 'matchedCidr', severity: 'severity', category: 'category' },
  measures: groupMeasures,
  order: [{ by: 'hits', desc: true }, { by: 'iocId' }, { by: 'iocListId' }, { by: 'matchedCidr' }, { by: 'severity', desc: true }, { by: 'category' }],
  top: true,
});

export const BY_IOC_LIST = grouping<IocListRow>({
  name: 'byIocList',
  key: { iocListId: 'iocListId' },
  measures: { ...groupMeasures, iocs: 'distinctEntries' },
  order: [{ by: 'hits', desc: true }, { by: 'iocListId' }],
  top: true,
});

export const BY_CATEGORY = grouping<CategoryRow>({
  name: 'byCategory',
  key: { category: 'category' },
  measures: groupMeasures,
  order: [{ by: 'hits', desc: true }, { by: 'category' }],
  top: false,
});

export const BY_SEVERITY = grouping<SeverityRow>({
  name: 'bySeverity',
  key: { severity: 'severity' },
  measures: groupMeasures,
  order: [{ by: 'severity', desc: true }],
  top: false,
});

export const BY_DEVICE = grouping<DeviceRow>({
  name: 'byDevice',
  key: { deviceId: 'deviceId' },
  measures: { ...groupMeasures, iocs: 'distinctEntries' },
  order: [{ by: 'hits', desc: true }, { by: 'deviceId' }],
  top: true,
});

export const BY_INTERNAL_HOST = grouping<InternalHostRow>({
  name: 'byInternalHost',
  key: { deviceId: 'deviceId', internalIp: 'internalIp' },
  measures: { hits: 'hits', packets: 'packets', iocs: 'distinctEntries', worstSeverity: 'worstSeverity', firstSeenAt: 'firstSeen', lastSeenAt: 'lastSeen' },
  order: [{ by: 'hits', desc: true }, { by: 'deviceId' }, { by: 'internalIp' }],
  top: true,
});

/** DNS hits by queried name (the DNS executor alone: only DNS hits have a name). */
export const BY_DOMAIN = grouping<DomainRow>({
  name: 'byDomain',
  key: { name: 'qname' },
  measures: {
    hits: 'hits',
    queries: 'packets',
    internalHosts: 'distinctHosts',
    devices: 'distinctDevices',
    iocs: 'distinctEntries',
    worstSeverity: 'worstSeverity',
    firstSeenAt: 'firstSeen',
    lastSeenAt: 'lastSeen',
  },
  order: [{ by: 'hits', desc: true }, { by: 'name' }],
  top: true,
});

/** Every declared grouping over flow hits: the property test runs each on every executor. */
export const GROUPINGS: ReadonlyArray<Grouping<unknown>> = [
  TOTALS,
  KIND_TOTALS,
  BY_DIRECTION,
  BY_IOC,
  BY_IOC_LIST,
  BY_CATEGORY,
  BY_SEVERITY,
  BY_DEVICE,
  BY_INTERNAL_HOST,
] as ReadonlyArray<Grouping<unknown>>;
