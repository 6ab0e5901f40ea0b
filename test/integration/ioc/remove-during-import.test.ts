import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestApp, TestApp } from '../../helpers/app';
import { drivers } from '../../helpers/db';
import { ImportMode, IocCategory, IocEntryKind, IocListKind } from '../../../src/modules/ioc/ioc.enums';

/**
 * iocRemove deleted its entries first and locked their list after; an import locks the list first and writes its
 * rows after. On MySQL the two deadlocked when they met (a REPLACE import of a list while one of its entries was
 * removed), and one of them was refused as "The database is unavailable" (SERVICE_UNAVAILABLE). Now iocRemove too
 * locks the list before it touches a row: it waits for the import, then removes what is still there.
 */
describe.each(drivers)('removing entries while their list imports (%s)', (driver) => {
  let t: TestApp;
  let dir: string;

  beforeAll(async () => {
    t = await createTestApp(driver);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcap-defense-remove-'));
  });
  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await t.close();
  });

  it.each([IocEntryKind.DOMAIN, IocEntryKind.IP])('a %s list: both complete, and the count is the rows left', async (entryKind) => {
    const created = await t.services.iocLists.create(t.accountId, {
      name: `racing ${entryKind}`,
      kind: IocListKind.BLOCK,
      severity: 3,
      category: IocCategory.SCANNER,
      entryKind,
    });
    if (!created.ok) throw new Error('setup');
    const listId = created.value.id;
    const lines =
      entryKind === IocEntryKind.DOMAIN
        ? Array.from({ length: 5000 }, (_, i) => `n${i}.example`)
        : Array.from({ length: 5000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const added = await t.services.iocs.add(
      t.accountId,
      listId,
      lines.slice(0, 2).map((value) => ({ value })),
    );
    if (!added.ok) throw new Error('setup');
    const ids = entryKind === IocEntryKind.DOMAIN ? (added.value.domains ?? []).map((d) => ({ domain: d.id })) : added.value.entries.map((e) => e.id);
    const file = path.join(dir, `${entryKind}.txt`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const importing = t.services.feedImport.importFile(t.accountId, listId, { path: file, bytes: fs.statSync(file).size }, ImportMode.REPLACE, undefined, {
      // The import holds its list: the removal starts now (from outside the import's call chain) and has every
      // chance to reach its rows first.
      beforeWrite: async () => {
        holding();
        await new Promise((r) => setTimeout(r, 300));
      },
    });
    await held;
    const removing = t.services.iocs.remove(t.accountId, ids);
    const imported = await importing;
    const removed = await removing;
    expect(imported.ok).toBe(true);
    expect(removed.ok).toBe(true);
    const table = entryKind === IocEntryKind.DOMAIN ? 'ioc_domain' : 'ioc';
    const [{ n }] = await t.dataSource.query(`SELECT COUNT(*) AS n FROM ${table} WHERE list_id = ?`, [listId]);
    const [{ entry_count }] = await t.dataSource.query(`SELECT entry_count FROM ioc_list WHERE id = ?`, [listId]);
    expect(Number(n)).toBe(lines.length - 2);
    expect(Number(entry_count)).toBe(lines.length - 2);
  });
});
