import { Connection } from '../../common/pagination/connection';
import { createPayload } from '../../common/graphql/user-error.type';
import { RetroHunt } from './retro-hunt.entity';

export const RetroHuntConnection = Connection(RetroHunt, 'RetroHunt', 'retro-hunt', 'retro-hunts');
export const RetroHuntStartPayload = createPayload(
  'RetroHuntStartPayload',
  'retroHunt',
  () => RetroHunt,
  'The retro-hunt, planned: its uploads are queued for re-running.',
);
