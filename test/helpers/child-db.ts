import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createConnection } from 'mysql2/promise';
import { createTestDatabase, Driver, TestDatabase } from './db';
import { gqlHttp } from './child-process';

/** A database for child server processes: a SQLite file in a temp dir, or a throwaway MySQL schema. */
export interface ChildDatabase {
  /** What the child needs in its environment to use it. */
  env: Record<string, string>;
  /** Reads the database directly (the child may be dead). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

export async function createChildDatabase(driver: Driver): Promise<ChildDatabase> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcd-child-'));
  let db: TestDatabase | null = null;
  let env: Record<string, string>;
  if (driver === 'mysql') {
    db = await createTestDatabase('mysql');
    env = { DATABASE_URL: (db.config as { url: string }).url };
  } else {
    env = { DATA_DIR: dir };
  }
  return {
    env,
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      if (driver === 'sqlite') {
        const conn = new Database(path.join(dir, 'pcap-defense.sqlite'), { readonly: true, fileMustExist: true });
        try {
          return conn.prepare(sql).all(...params) as T[];
        } finally {
          conn.close();
        }
      }
      const conn = await createConnection({ uri: env.DATABASE_URL });
      try {
        return (await conn.query(sql, params))[0] as T[];
      } finally {
        await conn.end();
      }
    },
    async drop() {
      await db?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A policy with one BLOCK list of `badAddresses`, and STATIC devices using it. */
export async function seedAccount(url: string, key: string, badAddresses: string[], devices: Array<{ nickname: string; ip: string }>): Promise<void> {
  const q = (query: string, v: Record<string, unknown> = {}) => gqlHttp(url, key, query, v);
  const policy = (await q(`mutation { policyCreate(input: { name: "p" }) { policy { id } } }`)).policyCreate.policy.id;
  const list = (await q(`mutation { iocListCreate(input: { name: "bad", kind: BLOCK, severity: 5, category: C2_BOTNET }) { iocList { id } } }`)).iocListCreate
    .iocList.id;
  await q(`mutation($i: IocAddInput!) { iocAdd(input: $i) { added } }`, { i: { list, entries: badAddresses.map((value) => ({ value })) } });
  await q(`mutation($i: PolicyIocListsInput!) { policyAttachIocLists(input: $i) { userErrors { message } } }`, { i: { policy, iocLists: [list] } });
  for (const d of devices) {
    const r = await q(`mutation($i: DeviceCreateInput!) { deviceCreate(input: $i) { device { id } userErrors { message } } }`, {
      i: { nickname: d.nickname, ipType: 'STATIC', ipAddress: d.ip, policy },
    });
    if (r.deviceCreate.userErrors.length) throw new Error(JSON.stringify(r.deviceCreate.userErrors));
  }
}
