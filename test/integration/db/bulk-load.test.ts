import { DataSource } from 'typeorm';
import { createTestDatabase, drivers, Driver } from '../../helpers/db';
import { bulkLoad } from '../../../src/db/bulk';
import { createDataSource } from '../../../src/db/data-source';
import { loadConfig } from '../../../src/config/config';
import { createServices } from '../../../src/app/services';
import { Ioc } from '../../../src/modules/ioc/ioc.entity';
import { IocCategory, IocListKind } from '../../../src/modules/ioc/ioc.enums';
import { IOC_COLUMNS, iocRow } from '../../../src/modules/ioc/ioc.service';
import { parseCidr, Cidr } from '../../../src/common/net/cidr';

const cidr = (text: string): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.cidr;
};

/** Comments that LOAD DATA's text format must escape, or that a careless encoding would change. */
const COMMENTS = [
  'tab\there',
  'line\nbreak',
  'carriage\rreturn',
  'back\\slash \\N \\t',
  'nul\0byte',
  '',
  'ünïcödé 🦠 网络',
  '\\',
  'ends with a backslash\\',
  '\t\n',
];

/**
 * bulkLoad (src/db/bulk.ts): the feed import's writer. On MySQL a LOAD DATA LOCAL INFILE, on SQLite multi-row
 * INSERTs; either way every value reads back exactly as given, duplicates of a unique index are skipped and not
 * counted, and the rows are part of the caller's transaction.
 */
describe.each(drivers)('bulkLoad (%s)', (driver: Driver) => {
  let ds: DataSource;
  let drop: () => Promise<void>;
  let accountId: number;
  let listId: number;
  beforeAll(async () => {
    const db = await createTestDatabase(driver);
    ds = createDataSource(db.config);
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    drop = async () => {
      await ds.destroy();
      await db.drop();
    };
    const services = createServices(ds, { ...loadConfig({ NODE_ENV: 'test' }), database: db.config });
    const account = await services.accounts.createAccount('bulk');
    if (!account.ok) throw new Error('account');
    accountId = account.value.id;
    const list = await services.iocLists.create(accountId, { name: 'l', kind: IocListKind.BLOCK, severity: 3, category: IocCategory.OTHER });
    if (!list.ok) throw new Error('list');
    listId = list.value.id;
  });
  afterAll(() => drop());

  const rowsFor = (list: number, first: number, n: number) =>
    Array.from({ length: n }, (_, i) =>
      iocRow(
        accountId,
        list,
        cidr(`10.${(first + i) >> 16}.${((first + i) >> 8) & 255}.${(first + i) & 255}`),
        COMMENTS[i % COMMENTS.length] || null,
        i % 3 === 0 ? 1_900_000_000_000 + i : null,
        1_800_000_000_000,
      ),
    );

  /** Whether this MySQL server takes local loads (MariaDB's default; MySQL 8 has them off, and bulkLoad sends INSERTs). */
  const localInfile = async () => {
    const on = Number((await ds.query(`SELECT @@local_infile AS v`))[0].v) === 1;
    if (!on) console.warn('bulk-load.test: local_infile is off on this server; LOAD DATA is not tested, only the INSERTs it falls back to');
    return on;
  };

  it('writes every value as given (escapes, NULL, empty text, unicode), skipping and not counting duplicates', async () => {
    if (driver === 'mysql') await localInfile();
    const rows = rowsFor(listId, 0, 300);
    // An empty string is not NULL.
    rows[5][7] = '';
    // Repeats within the batch and of rows already stored are skipped.
    const inserted = await ds.transaction((em) => bulkLoad(em, 'ioc', IOC_COLUMNS, rows.slice(0, 100)));
    expect(inserted).toBe(100);
    const again = await ds.transaction((em) => bulkLoad(em, 'ioc', IOC_COLUMNS, [...rows.slice(50), rows[120], rows[0]]));
    expect(again).toBe(200);
    const stored = await ds.getRepository(Ioc).find({ where: { listId }, order: { id: 'ASC' } });
    expect(stored).toHaveLength(300);
    const byCidr = new Map(stored.map((s) => [s.cidr, s]));
    for (const row of rows) {
      const s = byCidr.get(row[2] as string);
      expect(s).toBeDefined();
      expect([
        s!.listId,
        s!.accountId,
        s!.cidr,
        s!.family,
        s!.prefix,
        s!.rangeStart,
        s!.rangeEnd,
        s!.comment,
        s!.expiresAt?.getTime() ?? null,
        s!.createdAt.getTime(),
      ]).toEqual(row);
    }
    expect(byCidr.get(rows[5][2] as string)!.comment).toBe('');
  });

  it('gives the columns of `set` the same value in every row, with the rest as given', async () => {
    if (driver === 'mysql') await localInfile();
    const rows = rowsFor(listId, 40_000, 30);
    // list_id, account_id and created_at from `set`; the rows carry the other seven columns.
    const varying = rows.map((r) => [r[2], r[3], r[4], r[5], r[6], r[7], r[8]]);
    const columns = ['cidr', 'family', 'prefix', 'range_start', 'range_end', 'comment', 'expires_at'];
    const set = { list_id: listId, account_id: accountId, created_at: 1_700_000_000_123 };
    expect(await ds.transaction((em) => bulkLoad(em, 'ioc', columns, varying, set))).toBe(30);
    const stored = await ds.getRepository(Ioc).find({ where: { listId } });
    const byCidr = new Map(stored.map((s) => [s.cidr, s]));
    for (const row of rows) {
      const s = byCidr.get(row[2] as string)!;
      expect([s.listId, s.accountId, s.createdAt.getTime(), s.comment, s.expiresAt?.getTime() ?? null]).toEqual([
        listId,
        accountId,
        1_700_000_000_123,
        row[7],
        row[8],
      ]);
    }
    await expect(ds.transaction((em) => bulkLoad(em, 'ioc', columns, varying, { list_id: 1.5 }))).rejects.toThrow(/not an integer/);
  });

  it('belongs to the caller transaction: a rollback takes the rows back', async () => {
    const list = await ds.query(`SELECT COUNT(*) AS n FROM ioc`);
    await expect(
      ds.transaction(async (em) => {
        expect(await bulkLoad(em, 'ioc', IOC_COLUMNS, rowsFor(listId, 1000, 50))).toBe(50);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM ioc`))[0].n)).toBe(Number(list[0].n));
  });

  it('a value with no column form, met mid-stream, fails the call and leaves nothing; every connection still answers', async () => {
    const before = Number((await ds.query(`SELECT COUNT(*) AS n FROM ioc`))[0].n);
    const rows: unknown[][] = rowsFor(listId, 20_000, 3000);
    rows[2500] = [...rows[2500]];
    rows[2500][7] = { not: 'text' };
    await expect(ds.transaction((em) => bulkLoad(em, 'ioc', IOC_COLUMNS, rows))).rejects.toThrow();
    expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM ioc`))[0].n)).toBe(before);
    // More transactions at once than the pool has connections: none is left mid-protocol.
    const counts = await Promise.all(
      Array.from({ length: 12 }, (_, i) => ds.transaction((em) => bulkLoad(em, 'ioc', IOC_COLUMNS, rowsFor(listId, 30_000 + i * 10, 10)))),
    );
    expect(counts).toEqual(Array(12).fill(10));
  });

  if (driver === 'mysql') {
    it('failed loads leave no listeners on the pooled connection (mysql2 removes its own only on success)', async () => {
      await ds.transaction(async (em) => {
        const socket = ((await em.queryRunner!.connect()) as { stream: NodeJS.EventEmitter }).stream;
        const count = () => socket.listenerCount('pause') + socket.listenerCount('drain') + socket.listenerCount('end');
        const before = count();
        const bad: unknown[][] = rowsFor(listId, 700_000, 50);
        bad[40] = [...bad[40]];
        bad[40][9] = Number.NaN;
        for (let i = 0; i < 3; i++) await expect(bulkLoad(em, 'ioc', IOC_COLUMNS, bad)).rejects.toThrow(/NaN is not a value/);
        expect(count()).toBe(before);
        expect(await bulkLoad(em, 'ioc', IOC_COLUMNS, rowsFor(listId, 700_100, 5))).toBe(5);
        expect(count()).toBe(before);
      });
    });

    // KILL CONNECTION half-closes the socket with rows still queued: mysql2 alone never answered (bulkLoad's 'end' guard).
    it.each(['CONNECTION', 'QUERY'])('KILL %s while the rows stream in: the call fails, nothing is stored, the pool serves on', async (kind) => {
      if (!(await localInfile())) return;
      const before = Number((await ds.query(`SELECT COUNT(*) AS n FROM ioc`))[0].n);
      const offset = kind === 'QUERY' ? 1_000_000 : 0;
      // Enough rows that the load still streams when the kill lands on a busy machine (200,000 once finished first).
      const rows = rowsFor(listId, 100_000 + offset, 600_000);
      let killed = false;
      const run = ds.transaction(async (em) => {
        const [{ id }] = await em.query(`SELECT CONNECTION_ID() AS id`);
        const load = bulkLoad(em, 'ioc', IOC_COLUMNS, rows);
        // Its rejection is awaited below, after the kill.
        load.catch(() => undefined);
        // Once the load is running on the server: it reads from the client.
        for (let i = 0; i < 200 && !killed; i++) {
          await new Promise((r) => setTimeout(r, 10));
          const running: Array<{ n: number | string }> = await ds.query(
            `SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id = ? AND info LIKE 'LOAD DATA%'`,
            [id],
          );
          if (Number(running[0].n) > 0) {
            await ds.query(`KILL ${kind} ${Number(id)}`);
            killed = true;
          }
        }
        return load;
      });
      await expect(run).rejects.toThrow();
      expect(killed).toBe(true);
      expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM ioc`))[0].n)).toBe(before);
      const counts = await Promise.all(
        Array.from({ length: 12 }, (_, i) => ds.transaction((em) => bulkLoad(em, 'ioc', IOC_COLUMNS, rowsFor(listId, 400_000 + offset + i * 10, 10)))),
      );
      expect(counts).toEqual(Array(12).fill(10));
    });

    it('a server or client that refuses local loads gets multi-row INSERTs with the same result', async () => {
      // mysql2 without the LOCAL_FILES capability: the server refuses LOAD DATA LOCAL before it reads a byte.
      const refusing = new DataSource({ ...ds.options, extra: { flags: ['-LOCAL_FILES'] } } as typeof ds.options);
      await refusing.initialize();
      try {
        await expect(refusing.query(`LOAD DATA LOCAL INFILE 'x' INTO TABLE ioc (list_id)`)).rejects.toMatchObject({ errno: expect.any(Number) });
        const rows = rowsFor(listId, 5000, 120);
        for (let round = 0; round < 2; round++) {
          const n = await refusing.transaction((em) => bulkLoad(em, 'ioc', IOC_COLUMNS, round ? [...rows, ...rowsFor(listId, 6000, 10)] : rows));
          expect(n).toBe(round ? 10 : 120);
        }
        const stored = await ds.getRepository(Ioc).find({ where: { listId }, order: { id: 'ASC' } });
        const byCidr = new Map(stored.map((s) => [s.cidr, s]));
        for (const row of rows) expect(byCidr.get(row[2] as string)?.comment).toBe(row[7]);
        // Columns given by `set` are appended to each INSERTed row.
        const extra = rowsFor(listId, 7000, 5);
        const set = { list_id: listId, account_id: accountId, created_at: 1_700_000_000_456 };
        const m = await refusing.transaction((em) =>
          bulkLoad(
            em,
            'ioc',
            ['cidr', 'family', 'prefix', 'range_start', 'range_end', 'comment', 'expires_at'],
            extra.map((r) => r.slice(2, 9)),
            set,
          ),
        );
        expect(m).toBe(5);
        const added = await ds.getRepository(Ioc).find({ where: { listId, createdAt: new Date(1_700_000_000_456) } });
        expect(added.map((a) => a.cidr).sort()).toEqual(extra.map((r) => r[2]).sort());
      } finally {
        await refusing.destroy();
      }
    });
  }
});
