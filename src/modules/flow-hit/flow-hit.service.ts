import { DataSource, In } from 'typeorm';
import { ConnectionData } from '../../common/pagination/connection';
import { keysetPaginate, KeysetPage } from '../../common/pagination/keyset';
import { FlowHit } from './flow-hit.entity';

export class FlowHitService {
  constructor(private readonly dataSource: DataSource) {}

  async findMany(accountId: number, ids: readonly number[]): Promise<(FlowHit | null)[]> {
    const rows = ids.length ? await this.dataSource.getRepository(FlowHit).findBy({ accountId, id: In([...ids]) }) : [];
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** The hits of one upload, in capture order. */
  async ofUpload(accountId: number, uploadId: number, page: KeysetPage): Promise<ConnectionData<FlowHit>> {
    const qb = this.dataSource
      .getRepository(FlowHit)
      .createQueryBuilder('h')
      .where('h.accountId = :accountId AND h.uploadId = :uploadId', { accountId, uploadId });
    return keysetPaginate(
      qb,
      'uploadhits',
      [
        { expression: 'h.firstSeenAt', direction: 'ASC', value: (h) => h.firstSeenAt.getTime() },
        { expression: 'h.id', direction: 'ASC', value: (h) => h.id },
      ],
      page,
    );
  }
}
