import dns from 'node:dns';
import { DataSource, EntityManager } from 'typeorm';
import { transactionWithUniqueCheck } from '../../common/errors/db-errors';
import { failure, Outcome, success, userError, UserErrorCode } from '../../common/errors/user-error';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { canonicalIp } from '../../common/net/device-address';
import { foldKey, LIKE_ESCAPE, likeContains } from '../../common/text';
import { IndexChanges, NO_INDEX_CHANGES } from '../ioc/ioc-index.warmer';
import { Policy } from '../policy/policy.entity';
import { requestRetroHunt } from '../retro-hunt/retro-hunt.request';
import { HitWriter } from '../flow-hit/hit-writer';
import { Device } from './device.entity';
import { dropDeviceOnlyAllows } from '../ioc/ioc.service';
import { DeviceFields, validateDeviceFields } from './device.validation';
import { findByIds } from '../../db/find-by-ids';
import { execute } from '../../db/bulk';
import { nextTurn } from '../../common/async/next-turn';

/** Uploads (and their stored captures) deleted per statement when a device is deleted. */
const UPLOAD_DELETE_BATCH = 20;

export interface DeviceFilterData {
  nicknameContains?: string | null;
  ipAddress?: string | null;
  policyIds?: (number | null)[] | null;
}

/** Resolves a DNS name to its current addresses (A and AAAA). Injected so tests need no DNS. */
export type HostResolver = (name: string) => Promise<string[]>;

export const systemResolver: HostResolver = async (name) => {
  const found = await dns.promises.lookup(name, { all: true, verbatim: true });
  return found.map((a) => a.address);
};

const DNS_CACHE_MS = 60_000;

export class DeviceService {
  private readonly dnsCache = new Map<string, { at: number; addresses: string[] }>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly resolveHost: HostResolver = systemResolver,
    /** Told when a device is given a policy: its index is warmed before the device's first upload. */
    private readonly changes: IndexChanges = NO_INDEX_CHANGES,
    /** The writer of its hits (to ClickHouse with ANALYTICS_URL), which deletes them with the device. */
    private readonly hits: HitWriter = new HitWriter(),
  ) {}

  async find(accountId: number, id: number | null): Promise<Device | null> {
    if (id == null) return null;
    return this.dataSource.getRepository(Device).findOneBy({ id, accountId });
  }

  async findMany(accountId: number, ids: readonly number[]): Promise<(Device | null)[]> {
    return findByIds(this.dataSource, Device, accountId, ids);
  }

  async findByNickname(accountId: number, nickname: string): Promise<Device | null> {
    return this.dataSource.getRepository(Device).findOneBy({ accountId, nicknameKey: foldKey(nickname) });
  }

  /**
   * The devices an address identifies: STATIC devices whose address it is, and DYNAMIC devices whose DNS name
   * currently resolves to it (resolutions cached for a minute). `accountId` null searches every account,
   * which only the legacy form upload does when a device opted in to being identified by address.
   */
  async findByIp(accountId: number | null, address: string, options: { identifiableOnly?: boolean } = {}): Promise<Device[]> {
    const ip = canonicalIp(address);
    if (!ip) return [];
    const repo = this.dataSource.getRepository(Device);
    const scope = (qb: ReturnType<typeof repo.createQueryBuilder>) => {
      if (accountId != null) qb.andWhere('d.accountId = :accountId', { accountId });
      if (options.identifiableOnly) qb.andWhere('d.identifyByUploaderIp = :yes', { yes: true });
      return qb.orderBy('d.id');
    };
    const found = await scope(repo.createQueryBuilder('d').where('d.ipAddress = :ip', { ip })).getMany();
    const dynQb = scope(repo.createQueryBuilder('d').where('d.domainName IS NOT NULL'));
    for (const device of await dynQb.getMany()) {
      const addresses = await this.resolveCached(device.domainName as string);
      if (addresses.includes(ip)) found.push(device);
    }
    return found;
  }

  async list(accountId: number, filter: DeviceFilterData | null | undefined, page: KeysetPage): Promise<ConnectionData<Device>> {
    const qb = this.dataSource.getRepository(Device).createQueryBuilder('d').where('d.accountId = :accountId', { accountId });
    if (filter?.nicknameContains) qb.andWhere(`d.nicknameKey LIKE :nick ${LIKE_ESCAPE}`, { nick: likeContains(filter.nicknameContains) });
    if (filter?.ipAddress != null) qb.andWhere('d.ipAddress = :ip', { ip: canonicalIp(filter.ipAddress) ?? filter.ipAddress });
    if (filter?.policyIds) {
      const ids = filter.policyIds.filter((id): id is number => id != null);
      // Unknown or foreign policy IDs match nothing rather than being ignored.
      qb.andWhere(ids.length ? 'd.policyId IN (:...policyIds)' : '1 = 0', { policyIds: ids });
    }
    return keysetPaginate(qb, 'device', [{ expression: 'd.id', direction: 'ASC', value: (d) => d.id }], page);
  }

  async countByPolicy(accountId: number, policyId: number): Promise<number> {
    return this.dataSource.getRepository(Device).countBy({ accountId, policyId });
  }

  async create(accountId: number, input: DeviceFields): Promise<Outcome<Device>> {
    const outcome = await this.write(async (em) => {
      const checked = validateDeviceFields(input, null);
      if (!checked.ok) return failure(...checked.errors);
      const v = checked.value;
      const ref = await this.checkReferences(em, accountId, v.nickname, v.policyId, null);
      if (ref) return failure(ref);
      const now = new Date();
      const repo = em.getRepository(Device);
      const device = repo.create({ accountId, ...v, nicknameKey: foldKey(v.nickname), createdAt: now, updatedAt: now });
      return success(await repo.save(device));
    });
    if (outcome.ok) this.changes.policiesChanged([outcome.value.policyId]);
    return outcome;
  }

  async update(accountId: number, id: number | null, input: DeviceFields): Promise<Outcome<Device>> {
    let policyBefore: number | null = null;
    const outcome = await this.write(async (em) => {
      const repo = em.getRepository(Device);
      const device = id == null ? null : await repo.findOneBy({ id, accountId });
      if (!device) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No device with this ID.'));
      policyBefore = device.policyId;
      const sidesBefore = JSON.stringify([device.internalNetworks, device.ipAddress]);
      const checked = validateDeviceFields(input, device);
      if (!checked.ok) return failure(...checked.errors);
      const v = checked.value;
      const ref = await this.checkReferences(em, accountId, v.nickname, v.policyId, device.id);
      if (ref) return failure(ref);
      Object.assign(device, v, { nicknameKey: foldKey(v.nickname), updatedAt: new Date() });
      const saved = await repo.save(device);
      // Another policy, or other internal networks, judge its stored uploads differently: all of them (#17).
      const moved = saved.policyId !== policyBefore;
      if (moved || JSON.stringify([saved.internalNetworks, saved.ipAddress]) !== sidesBefore) {
        const cause = moved
          ? `Device ${saved.id} moved from policy ${policyBefore} to policy ${saved.policyId}.`
          : `Device ${saved.id}'s internal networks changed.`;
        await requestRetroHunt(em, accountId, { target: { devices: [saved.id], anyAddress: true }, cause });
      }
      return success(saved);
    });
    if (outcome.ok && outcome.value.policyId !== policyBefore) this.changes.policiesChanged([outcome.value.policyId]);
    return outcome;
  }

  async delete(accountId: number, id: number | null): Promise<Outcome<Device>> {
    return this.write(async (em) => {
      const repo = em.getRepository(Device);
      const device = id == null ? null : await repo.findOneBy({ id, accountId });
      if (!device) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No device with this ID.'));
      const removed = Object.assign(new Device(), device);
      // Its hits and roll-ups first, with the change that tells in-memory report stores to drop them; then the
      // device, whose cascade to its uploads finds none of them left.
      await this.hits.deleteDevice(em, accountId, device.id);
      // ALLOW entries limited to this device alone go too (a scope-less ALLOW entry would allow in the whole policy).
      await dropDeviceOnlyAllows(em, accountId, device.id);
      // Its uploads (with their stored captures) a few at a time, with turns between: the device row's cascade did
      // them in one statement.
      const uploads: Array<{ id: number | string }> = await em.query(`SELECT id FROM log_upload WHERE device_id = ? ORDER BY id`, [device.id]);
      for (let i = 0; i < uploads.length; i += UPLOAD_DELETE_BATCH) {
        const ids = uploads.slice(i, i + UPLOAD_DELETE_BATCH).map((u) => u.id);
        await execute(em, `DELETE FROM log_upload WHERE id IN (${ids.map(() => '?').join(',')})`, ids);
        await nextTurn();
      }
      await repo.delete({ id: device.id, accountId });
      return success(removed);
    });
  }

  private async checkReferences(em: EntityManager, accountId: number, nickname: string, policyId: number, selfId: number | null) {
    const clash = await em.getRepository(Device).findOneBy({ accountId, nicknameKey: foldKey(nickname) });
    if (clash && clash.id !== selfId) {
      return userError(UserErrorCode.TAKEN, ['input', 'nickname'], `A device nicknamed "${clash.nickname}" already exists.`);
    }
    const policy = await em.getRepository(Policy).findOneBy({ id: policyId, accountId });
    if (!policy) return userError(UserErrorCode.NOT_FOUND, ['input', 'policy'], 'No policy with this ID.');
    return null;
  }

  private write(work: (em: EntityManager) => Promise<Outcome<Device>>): Promise<Outcome<Device>> {
    return transactionWithUniqueCheck(this.dataSource, work, ['input', 'nickname'], 'A device with this nickname already exists.');
  }

  private async resolveCached(name: string): Promise<string[]> {
    const hit = this.dnsCache.get(name);
    if (hit && Date.now() - hit.at < DNS_CACHE_MS) return hit.addresses;
    let addresses: string[] = [];
    try {
      addresses = (await this.resolveHost(name)).map((a) => canonicalIp(a)).filter((a): a is string => a != null);
    } catch {
      // An unresolvable name identifies nothing; it is retried after the cache period.
    }
    this.dnsCache.set(name, { at: Date.now(), addresses });
    return addresses;
  }
}
