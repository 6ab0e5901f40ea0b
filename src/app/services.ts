import { DataSource } from 'typeorm';
import { AppConfig } from '../config/config';
import { AccountService } from '../modules/account/account.service';
import { DeviceService, HostResolver, systemResolver } from '../modules/device/device.service';
import { PolicyService } from '../modules/policy/policy.service';
import { IocListService } from '../modules/ioc/ioc-list.service';
import { IocService } from '../modules/ioc/ioc.service';
import { FeedImportService } from '../modules/ioc/feed-import.service';
import { IocIndexCache } from '../modules/ioc/ioc-index.cache';
import { LogUploadService } from '../modules/log-upload/log-upload.service';
import { LogUploadQueue } from '../modules/log-upload/log-upload.queue';
import { LogUploadProcessor } from '../modules/log-upload/log-upload.processor';
import { FlowHitService } from '../modules/flow-hit/flow-hit.service';
import { ReportService } from '../modules/report/report.service';

/** Every service, built once per process from the DataSource; resolvers reach them through the context. */
export interface Services {
  config: AppConfig;
  dataSource: DataSource;
  accounts: AccountService;
  policies: PolicyService;
  devices: DeviceService;
  iocLists: IocListService;
  iocs: IocService;
  feedImport: FeedImportService;
  iocIndexes: IocIndexCache;
  logUploads: LogUploadService;
  queue: LogUploadQueue;
  processor: LogUploadProcessor;
  flowHits: FlowHitService;
  reports: ReportService;
}

export interface ServiceOptions {
  resolveHost?: HostResolver;
  /** Called as the worker parses; the crash test uses it to die mid-job. */
  onProgress?: (uploadId: number, bytes: number) => void;
}

export function createServices(dataSource: DataSource, config: AppConfig, options: ServiceOptions = {}): Services {
  const devices = new DeviceService(dataSource, options.resolveHost ?? systemResolver);
  const iocIndexes = new IocIndexCache(dataSource);
  const queue = new LogUploadQueue(dataSource);
  return {
    config,
    dataSource,
    accounts: new AccountService(dataSource),
    policies: new PolicyService(dataSource),
    devices,
    iocLists: new IocListService(dataSource),
    iocs: new IocService(dataSource),
    feedImport: new FeedImportService(dataSource),
    iocIndexes,
    logUploads: new LogUploadService(dataSource, devices, config.maxUploadBytes),
    queue,
    processor: new LogUploadProcessor(dataSource, queue, iocIndexes, { leaseMs: config.worker.leaseMs, onProgress: options.onProgress }),
    flowHits: new FlowHitService(dataSource),
    reports: new ReportService(dataSource),
  };
}
