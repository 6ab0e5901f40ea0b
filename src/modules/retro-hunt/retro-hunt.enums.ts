import { registerEnumType } from 'type-graphql';

export enum RetroHuntStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  COMPLETED = 'COMPLETED',
  REFUSED = 'REFUSED',
}

/** How a hit was found. */
export enum FoundBy {
  UPLOAD = 'UPLOAD',
  RETRO_HUNT = 'RETRO_HUNT',
}

registerEnumType(RetroHuntStatus, {
  name: 'RetroHuntStatus',
  description: "A retro-hunt's state.",
  valuesConfig: {
    QUEUED: { description: 'Waiting: changes in quick succession join it until it starts.' },
    RUNNING: { description: 'Its affected uploads are being re-run through the processor.' },
    COMPLETED: { description: 'Every affected upload was re-run; the counts are final.' },
    REFUSED: { description: 'It would re-run more uploads than RETRO_HUNT_MAX_UPLOADS allows; `summary` says how many. Nothing was re-run.' },
  },
});

registerEnumType(FoundBy, {
  name: 'FoundBy',
  description: 'How a hit was found.',
  valuesConfig: {
    UPLOAD: { description: 'When its upload was processed (or reprocessed) against the lists of that time.' },
    RETRO_HUNT: { description: 'By a retro-hunt: a list change made a stored upload match.' },
  },
});
