import { Connection } from '../../common/pagination/connection';
import { FlowHit } from './flow-hit.entity';

export const FlowHitConnection = Connection(FlowHit, 'FlowHit', 'flow hit', 'flow hits');
