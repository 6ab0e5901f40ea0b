import { Account } from '../modules/account/account.entity';
import { ApiKey } from '../modules/account/api-key.entity';
import { Device } from '../modules/device/device.entity';
import { Policy } from '../modules/policy/policy.entity';
import { PolicyIocList } from '../modules/policy/policy-ioc-list.entity';
import { IocList } from '../modules/ioc/ioc-list.entity';
import { Ioc } from '../modules/ioc/ioc.entity';
import { IocDomain } from '../modules/ioc/ioc-domain.entity';
import { IocScope } from '../modules/ioc/ioc-scope.entity';
import { LogUpload } from '../modules/log-upload/log-upload.entity';
import { LogUploadBlob } from '../modules/log-upload/log-upload-blob.entity';
import { FlowHit } from '../modules/flow-hit/flow-hit.entity';
import { DnsHit } from '../modules/dns-hit/dns-hit.entity';
import { HitDayHost, HitHour } from '../modules/report/hit-rollup.entity';
import { HitChange, HitRevision } from '../modules/flow-hit/hit-change';
import { IocSource, IocSourceFetch } from '../modules/ioc-source/ioc-source.entity';
import { AlertDestination } from '../modules/alert/alert-destination.entity';
import { AlertRule } from '../modules/alert/alert-rule.entity';
import { Alert } from '../modules/alert/alert.entity';
import { AlertThrottle } from '../modules/alert/alert-throttle.entity';
import { AlertAttempt, AlertDelivery, AlertDigest } from '../modules/alert/alert-delivery.entity';
import { HitTriage } from '../modules/flow-hit/hit-triage.entity';
import { UploadAddressSet } from '../modules/log-upload/upload-address-set.entity';
import { UploadNameSet } from '../modules/log-upload/upload-name-set.entity';
import { RetroHunt, RetroHuntClock, RetroHuntDomain, RetroHuntRange } from '../modules/retro-hunt/retro-hunt.entity';
import { RetroHuntUpload } from '../modules/retro-hunt/retro-hunt-upload.entity';

/** Every entity, in one list shared by the DataSource and the schema-agreement test. */
export const entities = [
  Account,
  ApiKey,
  Policy,
  Device,
  IocList,
  Ioc,
  IocDomain,
  IocScope,
  PolicyIocList,
  LogUpload,
  LogUploadBlob,
  FlowHit,
  DnsHit,
  HitHour,
  HitDayHost,
  HitRevision,
  HitChange,
  IocSource,
  IocSourceFetch,
  AlertDestination,
  AlertRule,
  Alert,
  AlertThrottle,
  AlertDelivery,
  AlertDigest,
  AlertAttempt,
  UploadAddressSet,
  UploadNameSet,
  RetroHunt,
  RetroHuntRange,
  RetroHuntDomain,
  RetroHuntClock,
  RetroHuntUpload,
  HitTriage,
];
