import { Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { TimestampColumn } from '../../db/columns';
import { IocList } from '../ioc/ioc-list.entity';
import { Policy } from './policy.entity';

/** Which IOC lists a policy matches uploads against. */
@Entity('policy_ioc_list')
@Index('IDX_policy_ioc_list_list', ['iocListId'])
export class PolicyIocList {
  @PrimaryColumn({ type: 'int' })
  policyId: number;

  @PrimaryColumn({ type: 'int' })
  iocListId: number;

  @ManyToOne(() => Policy, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'policy_id', foreignKeyConstraintName: 'FK_policy_ioc_list_policy' })
  policy?: Policy;

  // RESTRICT: a list is not deleted while a policy uses it (the service says so first, as a user error).
  @ManyToOne(() => IocList, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'ioc_list_id', foreignKeyConstraintName: 'FK_policy_ioc_list_list' })
  iocList?: IocList;

  @TimestampColumn()
  createdAt: Date;
}
