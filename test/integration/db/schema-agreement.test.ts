import { drivers, migratedDataSource } from '../../helpers/db';

describe.each(drivers)('migrations and entities agree (%s)', (driver) => {
  it('leaves no pending schema change after migrating, and every migration reverts', async () => {
    const { dataSource, drop } = await migratedDataSource(driver);
    try {
      const pending = await dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((q) => q.query)).toEqual([]);
      // down() of every migration runs cleanly, leaving only TypeORM's own bookkeeping table.
      for (let i = 0; i < dataSource.migrations.length; i++) await dataSource.undoLastMigration({ transaction: 'each' });
      const runner = dataSource.createQueryRunner();
      const left: string[] = [];
      for (const meta of dataSource.entityMetadatas) if (await runner.hasTable(meta.tableName)) left.push(meta.tableName);
      await runner.release();
      expect(left).toEqual([]);
    } finally {
      await drop();
    }
  });
});
