import { Connection } from '../../common/pagination/connection';
import { DnsHit } from './dns-hit.entity';

export const DnsHitConnection = Connection(DnsHit, 'DnsHit', 'DNS hit', 'DNS hits');
