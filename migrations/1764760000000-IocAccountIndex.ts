import { MigrationInterface, QueryRunner } from 'typeorm';
import { index } from '../src/db/migration-helpers';

/**
 * Drops `ioc`'s `(account_id, range_start)` index. Its one reader, iocLookup's account-wide search, now reads the
 * `(list_id, range_start)` index of each of the account's lists. Every feed import kept it up to date: a million
 * keys interleaved with the account's other lists, the costliest of the table's indexes to write once an account
 * holds entries (SQLite: 153k -> 185k rows/s into an account that holds 1M; on MariaDB its pages also compete for
 * the buffer pool).
 */
export class IocAccountIndex1764760000000 implements MigrationInterface {
  name = 'IocAccountIndex1764760000000';

  async up(q: QueryRunner): Promise<void> {
    await q.dropIndex('ioc', 'IDX_ioc_account_start');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.createIndex('ioc', index('IDX_ioc_account_start', ['account_id', 'range_start']));
  }
}
