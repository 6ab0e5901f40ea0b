import { DataSource } from 'typeorm';
import { AppConfig } from '../config/config';
import { AccountService } from '../modules/account/account.service';
import { DeviceService, HostResolver, systemResolver } from '../modules/device/device.service';
import { PolicyService } from '../modules/policy/policy.service';
import { IocListService } from '../modules/ioc/ioc-list.service';
import { IocService } from '../modules/ioc/ioc.service';
import { FeedImportService } from '../modules/ioc/feed-import.service';
import { IocIndexCache } from '../modules/ioc/ioc-index.cache';

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
}

export interface ServiceOptions {
  resolveHost?: HostResolver;
}

export function createServices(dataSource: DataSource, config: AppConfig, options: ServiceOptions = {}): Services {
  return {
    config,
    dataSource,
    accounts: new AccountService(dataSource),
    policies: new PolicyService(dataSource),
    devices: new DeviceService(dataSource, options.resolveHost ?? systemResolver),
    iocLists: new IocListService(dataSource),
    iocs: new IocService(dataSource),
    feedImport: new FeedImportService(dataSource),
    iocIndexes: new IocIndexCache(dataSource),
  };
}
