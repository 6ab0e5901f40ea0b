import { registerEnumType } from 'type-graphql';

/** Common report windows, ending now. */
export enum TimeRangePreset {
  LAST_24_HOURS = 'LAST_24_HOURS',
  LAST_7_DAYS = 'LAST_7_DAYS',
  LAST_30_DAYS = 'LAST_30_DAYS',
}

export const PRESET_MS: Record<TimeRangePreset, number> = {
  LAST_24_HOURS: 24 * 3600_000,
  LAST_7_DAYS: 7 * 24 * 3600_000,
  LAST_30_DAYS: 30 * 24 * 3600_000,
};

/** Size of a timeline bucket. */
export enum TimeBucket {
  HOUR = 'HOUR',
  DAY = 'DAY',
}

/** How drill-down pages are ordered. */
export enum FlowHitOrder {
  FIRST_SEEN_DESC = 'FIRST_SEEN_DESC',
  FIRST_SEEN_ASC = 'FIRST_SEEN_ASC',
  PACKETS_DESC = 'PACKETS_DESC',
  SEVERITY_DESC = 'SEVERITY_DESC',
}

registerEnumType(TimeRangePreset, {
  name: 'TimeRangePreset',
  description: 'A report window ending now.',
  valuesConfig: {
    LAST_24_HOURS: { description: 'The last 24 hours.' },
    LAST_7_DAYS: { description: 'The last 7 days.' },
    LAST_30_DAYS: { description: 'The last 30 days.' },
  },
});

registerEnumType(TimeBucket, {
  name: 'TimeBucket',
  description: 'Size of a timeline bucket, in the requested time zone.',
  valuesConfig: {
    HOUR: { description: 'One bucket per local hour.' },
    DAY: { description: 'One bucket per local calendar day (23 or 25 hours around DST changes).' },
  },
});

registerEnumType(FlowHitOrder, {
  name: 'FlowHitOrder',
  description: 'Order of flow hits in the drill-down.',
  valuesConfig: {
    FIRST_SEEN_DESC: { description: 'Newest capture time first (default).' },
    FIRST_SEEN_ASC: { description: 'Oldest capture time first.' },
    PACKETS_DESC: { description: 'Most packets first.' },
    SEVERITY_DESC: { description: 'Most severe first, then newest.' },
  },
});
