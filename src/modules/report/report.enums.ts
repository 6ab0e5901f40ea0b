import { registerEnumType } from 'type-graphql';

/** Size of a timeline bucket. */
export enum TimeBucket {
  HOUR = 'HOUR',
  DAY = 'DAY',
}

registerEnumType(TimeBucket, {
  name: 'TimeBucket',
  description: 'Size of a timeline bucket, in the requested time zone.',
  valuesConfig: {
    HOUR: { description: 'One bucket per local hour.' },
    DAY: { description: 'One bucket per local calendar day (23 or 25 hours around DST changes).' },
  },
});
