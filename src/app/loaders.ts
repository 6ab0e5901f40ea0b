import DataLoader from 'dataloader';
import { Device } from '../modules/device/device.entity';
import { Policy } from '../modules/policy/policy.entity';
import { Caller } from '../modules/auth/auth.types';
import { Services } from './services';

/** Per-request DataLoaders, scoped to the caller's account: a foreign ID loads as null, exactly like a missing one. */
export interface Loaders {
  policy: DataLoader<number, Policy | null>;
  device: DataLoader<number, Device | null>;
  deviceCountByPolicy: DataLoader<number, number>;
}

export function createLoaders(services: Services, caller: Caller | null): Loaders {
  const accountId = caller?.accountId ?? -1;
  return {
    policy: new DataLoader((ids) => services.policies.findMany(accountId, ids)),
    device: new DataLoader((ids) => services.devices.findMany(accountId, ids)),
    deviceCountByPolicy: new DataLoader((ids) => services.policies.deviceCounts(accountId, ids)),
  };
}
