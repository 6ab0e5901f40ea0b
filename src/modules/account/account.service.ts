import { DataSource, EntityManager, IsNull } from 'typeorm';
import { failure, Outcome, success, userError, UserErrorCode } from '../../common/errors/user-error';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { Account } from './account.entity';
import { Role } from './account.enums';
import { ApiKey } from './api-key.entity';
import { generateSecret, hashSecret, looksLikeSecret, secretPrefix } from './api-key.secret';
import { Caller } from '../auth/auth.types';
import { Device } from '../device/device.entity';

export interface CreatedKey {
  apiKey: ApiKey;
  /** Shown once; only its hash is stored. */
  secret: string;
}

const LAST_USED_RESOLUTION_MS = 60_000;

export class AccountService {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * First start: when no account exists, create the default one with an ADMIN key and return the secret.
   * The unique account name makes two processes starting at once agree on a single winner.
   */
  async bootstrap(name: string): Promise<CreatedKey | null> {
    if ((await this.dataSource.getRepository(Account).count()) > 0) return null;
    try {
      return await this.dataSource.transaction(async (em) => {
        const account = await em.getRepository(Account).save(em.getRepository(Account).create({ name, createdAt: new Date() }));
        return this.insertKey(em, account.id, 'Initial admin key', Role.ADMIN);
      });
    } catch (err) {
      if ((await this.dataSource.getRepository(Account).count()) > 0) return null;
      throw err;
    }
  }

  async findAccount(id: number): Promise<Account | null> {
    return this.dataSource.getRepository(Account).findOneBy({ id });
  }

  async findAccountByName(name: string): Promise<Account | null> {
    return this.dataSource.getRepository(Account).findOneBy({ name });
  }

  /** Accounts by name (the CLI names them when asked for one that does not exist). */
  async listAccounts(limit: number): Promise<{ accounts: Account[]; total: number }> {
    const repo = this.dataSource.getRepository(Account);
    return { accounts: await repo.find({ order: { name: 'ASC' }, take: limit }), total: await repo.count() };
  }

  async createAccount(name: string): Promise<Outcome<Account>> {
    const trimmed = name.trim();
    if (trimmed.length < 1 || trimmed.length > 64) {
      return failure(userError(UserErrorCode.INVALID, ['name'], 'Account name must be 1-64 characters.'));
    }
    if (await this.findAccountByName(trimmed)) {
      return failure(userError(UserErrorCode.TAKEN, ['name'], `An account named "${trimmed}" already exists.`));
    }
    // Inside a transaction: a bare save() opens one of its own, which SQLite's shared connection cannot overlap.
    return success(
      await this.dataSource.transaction((em) => em.getRepository(Account).save(em.getRepository(Account).create({ name: trimmed, createdAt: new Date() }))),
    );
  }

  /** The key behind a bearer secret (for the form upload, which needs its device binding), or null. */
  async keyForSecret(secret: string): Promise<ApiKey | null> {
    if (!looksLikeSecret(secret)) return null;
    return this.dataSource.getRepository(ApiKey).findOneBy({ tokenHash: hashSecret(secret), revokedAt: IsNull() });
  }

  /** The caller behind a bearer secret, or null when it is unknown or revoked. */
  async authenticate(secret: string): Promise<Caller | null> {
    if (!looksLikeSecret(secret)) return null;
    // Every request runs this: plain SQL, not an entity query (TypeORM's query building and hydration cost the
    // event loop more than the lookup itself).
    const [key]: Array<{
      id: number | string;
      account_id: number | string;
      device_id: number | string | null;
      role: Role;
      last_used_at: number | string | null;
    }> = await this.dataSource.query('SELECT id, account_id, device_id, role, last_used_at FROM api_key WHERE token_hash = ? AND revoked_at IS NULL', [
      hashSecret(secret),
    ]);
    if (!key) return null;
    const id = Number(key.id);
    const now = Date.now();
    if (key.last_used_at == null || now - Number(key.last_used_at) > LAST_USED_RESOLUTION_MS) {
      // Throttled so that busy keys cost one write a minute, not one per request.
      await this.dataSource.getRepository(ApiKey).update({ id }, { lastUsedAt: new Date(now) });
    }
    return { accountId: Number(key.account_id), apiKeyId: id, role: key.role, deviceId: key.device_id == null ? null : Number(key.device_id) };
  }

  /** `deviceId`: bind an UPLOADER key to one device (undefined: not bound; null: an ID that did not decode). */
  async createApiKey(accountId: number, input: { name: string; role: Role; deviceId?: number | null }): Promise<Outcome<CreatedKey>> {
    const name = input.name.trim();
    if (name.length < 1 || name.length > 100) {
      return failure(userError(UserErrorCode.INVALID, ['input', 'name'], 'Key name must be 1-100 characters.'));
    }
    if (!Object.values(Role).includes(input.role)) {
      return failure(userError(UserErrorCode.INVALID, ['input', 'role'], `Role must be one of ${Object.values(Role).join(', ')}.`));
    }
    if (input.deviceId !== undefined) {
      if (input.role !== Role.UPLOADER) return failure(userError(UserErrorCode.INVALID, ['input', 'device'], 'Only UPLOADER keys are bound to a device.'));
      const device = input.deviceId == null ? null : await this.dataSource.getRepository(Device).findOneBy({ id: input.deviceId, accountId });
      if (!device) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'device'], 'No device with this ID.'));
    }
    return success(await this.dataSource.transaction((em) => this.insertKey(em, accountId, name, input.role, input.deviceId ?? null)));
  }

  async revokeApiKey(accountId: number, id: number | null): Promise<Outcome<ApiKey>> {
    const repo = this.dataSource.getRepository(ApiKey);
    const key = id == null ? null : await repo.findOneBy({ id, accountId });
    if (!key) return failure(userError(UserErrorCode.NOT_FOUND, ['input', 'id'], 'No API key with this ID.'));
    if (!key.revokedAt) {
      key.revokedAt = new Date();
      await repo.update({ id: key.id }, { revokedAt: key.revokedAt });
      for (const l of this.revokedListeners) l(key.id);
    }
    return success(key);
  }

  private readonly revokedListeners = new Set<(apiKeyId: number) => void>();

  /**
   * Hears each key revoked by this process, once its revocation is written (open subscriptions of the key are closed
   * at once; other processes find it revoked at their next lookup). Returns the unsubscribe.
   */
  onKeyRevoked(listener: (apiKeyId: number) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  async findApiKey(accountId: number, id: number): Promise<ApiKey | null> {
    return this.dataSource.getRepository(ApiKey).findOneBy({ id, accountId });
  }

  async listApiKeys(accountId: number, page: KeysetPage): Promise<ConnectionData<ApiKey>> {
    const qb = this.dataSource.getRepository(ApiKey).createQueryBuilder('k').where('k.accountId = :accountId', { accountId });
    return keysetPaginate(qb, 'apikey', [{ expression: 'k.id', direction: 'ASC', value: (k) => k.id }], page);
  }

  private async insertKey(em: EntityManager, accountId: number, name: string, role: Role, deviceId: number | null = null): Promise<CreatedKey> {
    const secret = generateSecret();
    const repo = em.getRepository(ApiKey);
    const apiKey = await repo.save(
      repo.create({
        accountId,
        deviceId,
        name,
        role,
        prefix: secretPrefix(secret),
        tokenHash: hashSecret(secret),
        createdAt: new Date(),
        lastUsedAt: null,
        revokedAt: null,
      }),
    );
    return { apiKey, secret };
  }
}
