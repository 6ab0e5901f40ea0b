import { Account } from '../modules/account/account.entity';
import { ApiKey } from '../modules/account/api-key.entity';
import { Device } from '../modules/device/device.entity';
import { Policy } from '../modules/policy/policy.entity';
import { PolicyIocList } from '../modules/policy/policy-ioc-list.entity';
import { IocList } from '../modules/ioc/ioc-list.entity';
import { Ioc } from '../modules/ioc/ioc.entity';
import { IocDomain } from '../modules/ioc/ioc-domain.entity';
import { LogUpload } from '../modules/log-upload/log-upload.entity';
import { LogUploadBlob } from '../modules/log-upload/log-upload-blob.entity';
import { FlowHit } from '../modules/flow-hit/flow-hit.entity';
import { DnsHit } from '../modules/dns-hit/dns-hit.entity';
import { HitDayHost, HitHour } from '../modules/report/hit-rollup.entity';
import { HitChange, HitRevision } from '../modules/flow-hit/hit-change';

/** Every entity, in one list shared by the DataSource and the schema-agreement test. */
export const entities = [
  Account,
  ApiKey,
  Policy,
  Device,
  IocList,
  Ioc,
  IocDomain,
  PolicyIocList,
  LogUpload,
  LogUploadBlob,
  FlowHit,
  DnsHit,
  HitHour,
  HitDayHost,
  HitRevision,
  HitChange,
];
