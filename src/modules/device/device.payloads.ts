import { Connection } from '../../common/pagination/connection';
import { createPayload } from '../../common/graphql/user-error.type';
import { Device } from './device.entity';

export const DeviceConnection = Connection(Device, 'Device', 'device', 'devices');
export const DeviceCreatePayload = createPayload('DeviceCreatePayload', 'device', () => Device, 'The new device.');
export const DeviceUpdatePayload = createPayload('DeviceUpdatePayload', 'device', () => Device, 'The device as changed.');
export const DeviceDeletePayload = createPayload('DeviceDeletePayload', 'device', () => Device, 'The deleted device, as it was.');
