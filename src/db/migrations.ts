import { Foundation1764288000000 } from '../../migrations/1764288000000-Foundation';
import { ThreatIntel1764291600000 } from '../../migrations/1764291600000-ThreatIntel';
import { Ingestion1764295200000 } from '../../migrations/1764295200000-Ingestion';
import { HitRollups1764298800000 } from '../../migrations/1764298800000-HitRollups';
import { DrillDownIndex1764302400000 } from '../../migrations/1764302400000-DrillDownIndex';
import { ReportIndexes1764306000000 } from '../../migrations/1764306000000-ReportIndexes';
import { HitChanges1764309600000 } from '../../migrations/1764309600000-HitChanges';
import { UploadRetention1764313200000 } from '../../migrations/1764313200000-UploadRetention';
import { RetroHunt1764316800000 } from '../../migrations/1764316800000-RetroHunt';
import { HitTriage1764316801000 } from '../../migrations/1764316801000-HitTriage';
import { DomainIocs1764320400000 } from '../../migrations/1764320400000-DomainIocs';
import { Alerts1764324000000 } from '../../migrations/1764324000000-Alerts';
import { IocSources1764327600000 } from '../../migrations/1764327600000-IocSources';
import { AnalyticsAttempt1764331200000 } from '../../migrations/1764331200000-AnalyticsAttempt';
import { DnsHits1764334800000 } from '../../migrations/1764334800000-DnsHits';
import { DnsRetroHunt1764338400000 } from '../../migrations/1764338400000-DnsRetroHunt';
import { HitChangeKind1764342000000 } from '../../migrations/1764342000000-HitChangeKind';
import { IocAgeing1764400000000 } from '../../migrations/1764400000000-IocAgeing';
import { AlertHitKind1764410000000 } from '../../migrations/1764410000000-AlertHitKind';
import { IocScope1764430000000 } from '../../migrations/1764430000000-IocScope';
import { DeviceUploadsPurged1764620000000 } from '../../migrations/1764620000000-DeviceUploadsPurged';
import { AlertThrottle1764700000000 } from '../../migrations/1764700000000-AlertThrottle';
import { IocDomainAgeing1764710000000 } from '../../migrations/1764710000000-IocDomainAgeing';
import { HuntJudged1764720000000 } from '../../migrations/1764720000000-HuntJudged';
import { EntryExpiryIndex1764730000000 } from '../../migrations/1764730000000-EntryExpiryIndex';
import { HitChangeFound1764740000000 } from '../../migrations/1764740000000-HitChangeFound';
import { RetroHuntUpload1764750000000 } from '../../migrations/1764750000000-RetroHuntUpload';
import { IocAccountIndex1764760000000 } from '../../migrations/1764760000000-IocAccountIndex';

/** Every migration, in order. Listed explicitly so the same set runs from main, the CLI and the tests. */
export const migrations = [
  Foundation1764288000000,
  ThreatIntel1764291600000,
  Ingestion1764295200000,
  HitRollups1764298800000,
  DrillDownIndex1764302400000,
  ReportIndexes1764306000000,
  HitChanges1764309600000,
  UploadRetention1764313200000,
  RetroHunt1764316800000,
  HitTriage1764316801000,
  DomainIocs1764320400000,
  Alerts1764324000000,
  IocSources1764327600000,
  AnalyticsAttempt1764331200000,
  DnsHits1764334800000,
  DnsRetroHunt1764338400000,
  HitChangeKind1764342000000,
  IocAgeing1764400000000,
  AlertHitKind1764410000000,
  IocScope1764430000000,
  DeviceUploadsPurged1764620000000,
  AlertThrottle1764700000000,
  IocDomainAgeing1764710000000,
  HuntJudged1764720000000,
  EntryExpiryIndex1764730000000,
  HitChangeFound1764740000000,
  RetroHuntUpload1764750000000,
  IocAccountIndex1764760000000,
];
