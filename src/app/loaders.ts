import DataLoader from 'dataloader';
import { Device } from '../modules/device/device.entity';
import { Policy } from '../modules/policy/policy.entity';
import { IocList } from '../modules/ioc/ioc-list.entity';
import { Ioc } from '../modules/ioc/ioc.entity';
import { LogUpload } from '../modules/log-upload/log-upload.entity';
import { FlowHit } from '../modules/flow-hit/flow-hit.entity';
import { DnsHit } from '../modules/dns-hit/dns-hit.entity';
import { DomainHitStats } from '../modules/dns-hit/dns-hit.service';
import { IocDomain } from '../modules/ioc/ioc-domain.entity';
import { ResolvedHitFilter } from '../modules/flow-hit/hit-filter';
import { Totals, TOTALS, TOTALS_BUT_HITS } from '../modules/report/groupings/groupings';
import { Caller } from '../modules/auth/auth.types';
import { HitTriage } from '../modules/flow-hit/hit-triage.entity';
import { RetroHunt } from '../modules/retro-hunt/retro-hunt.entity';
import { Services } from './services';
import { IocScope } from '../modules/ioc/ioc-scope.entity';

/** Per-request DataLoaders, scoped to the caller's account: a foreign ID loads as null, exactly like a missing one. */
export interface Loaders {
  policy: DataLoader<number, Policy | null>;
  device: DataLoader<number, Device | null>;
  deviceCountByPolicy: DataLoader<number, number>;
  iocList: DataLoader<number, IocList | null>;
  ioc: DataLoader<number, Ioc | null>;
  /** An ALLOW entry's scopes (devices, hosts) by entry id; empty: the whole policy. */
  iocScopes: DataLoader<number, IocScope[]>;
  iocListsByPolicy: DataLoader<number, IocList[]>;
  logUpload: DataLoader<number, LogUpload | null>;
  flowHit: DataLoader<number, FlowHit | null>;
  retroHunt: DataLoader<number, RetroHunt | null>;
  /** By triageKey (upload + stable identity). */
  hitTriage: DataLoader<string, HitTriage | null>;
  dnsHit: DataLoader<number, DnsHit | null>;
  /** DNS hits per upload id. */
  dnsHitCount: DataLoader<number, number>;
  iocDomain: DataLoader<number, IocDomain | null>;
  /** The DNS hit a flow hit followed (its external address was in the answers), by flow hit. */
  followedDnsHit: DataLoader<FlowHit, DnsHit | null>;
  /** iocLookup of a domain: queries for the name or a name under it. */
  domainStats: DataLoader<string, DomainHitStats>;
  /** Dashboard fields that share one query per filter (hits per direction come with the totals). */
  totals: DataLoader<ResolvedHitFilter, Totals>;
  /** The dashboard's openHits: a filter's hit count alone. */
  hitCount: DataLoader<ResolvedHitFilter, number>;
  addressStats: DataLoader<string, { hits: number; firstSeenAt: Date | null; lastSeenAt: Date | null }>;
}

export function createLoaders(services: Services, caller: Caller | null): Loaders {
  const accountId = caller?.accountId ?? -1;
  return {
    policy: new DataLoader((ids) => services.policies.findMany(accountId, ids)),
    device: new DataLoader((ids) => services.devices.findMany(accountId, ids)),
    deviceCountByPolicy: new DataLoader((ids) => services.policies.deviceCounts(accountId, ids)),
    iocList: new DataLoader((ids) => services.iocLists.findMany(accountId, ids)),
    ioc: new DataLoader((ids) => services.iocs.findMany(accountId, ids)),
    iocScopes: new DataLoader((ids) => services.iocs.scopesOf(accountId, ids)),
    iocListsByPolicy: new DataLoader((ids) => services.iocLists.listsOfPolicies(accountId, ids)),
    logUpload: new DataLoader((ids) => services.logUploads.findMany(accountId, ids)),
    flowHit: new DataLoader((ids) => services.flowHits.findMany(accountId, ids)),
    retroHunt: new DataLoader((ids) => services.retroHunts.findMany(accountId, ids)),
    hitTriage: new DataLoader((keys) => services.hitTriage.ofHits(accountId, keys)),
    dnsHit: new DataLoader((ids) => services.dnsHits.findMany(accountId, ids)),
    dnsHitCount: new DataLoader((ids) => services.dnsHits.countsOfUploads(accountId, ids)),
    iocDomain: new DataLoader((ids) => services.dnsHits.domainEntries(accountId, ids)),
    followedDnsHit: new DataLoader((hits) => services.dnsHits.followedBy(accountId, hits)),
    domainStats: new DataLoader((names) => Promise.all(names.map((n) => services.dnsHits.nameStats(accountId, n)))),
    addressStats: new DataLoader((addresses) => Promise.all(addresses.map((a) => services.reports.addressStats(accountId, a)))),
    // The dashboard's devices and hosts: distinct external addresses are not shown there, so not counted.
    totals: new DataLoader((filters) => Promise.all(filters.map(async (f) => (await services.reports.group(f, TOTALS, { skip: ['externalAddresses'] }))[0])), {
      cache: true,
    }),
    // Its own query, with no distinct counts: the totals of the open hits' filter counted hosts and devices that
    // nothing shows (on chDB at 10M hits, a 30-day window of 2.5M: 114-124 ms for the count alone, 238-257 with them).
    hitCount: new DataLoader((filters) => Promise.all(filters.map(async (f) => (await services.reports.group(f, TOTALS, { skip: TOTALS_BUT_HITS }))[0].hits)), {
      cache: true,
    }),
  };
}
