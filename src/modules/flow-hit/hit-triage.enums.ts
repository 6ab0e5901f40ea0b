import { registerEnumType } from 'type-graphql';

export enum TriageStatus {
  OPEN = 'OPEN',
  ACKNOWLEDGED = 'ACKNOWLEDGED',
  FALSE_POSITIVE = 'FALSE_POSITIVE',
  RESOLVED = 'RESOLVED',
}

registerEnumType(TriageStatus, {
  name: 'TriageStatus',
  description: "An analyst's verdict on a hit.",
  valuesConfig: {
    OPEN: { description: 'Not looked at yet (every hit starts so).' },
    ACKNOWLEDGED: { description: 'Seen; being looked into.' },
    FALSE_POSITIVE: { description: 'Not a threat.' },
    RESOLVED: { description: 'Dealt with.' },
  },
});

/** How far the ALLOW entry a FALSE_POSITIVE verdict creates reaches (#17 item 4). */
export enum FalsePositiveScope {
  POLICY = 'POLICY',
  DEVICE = 'DEVICE',
  HOST = 'HOST',
}

registerEnumType(FalsePositiveScope, {
  name: 'FalsePositiveScope',
  description: "Where a FALSE_POSITIVE verdict's ALLOW entry for the matched entry applies; a retro-hunt then removes the past hits it covers.",
  valuesConfig: {
    POLICY: { description: 'Every device of the policy the hit’s device is in (the entry is allowed in the whole policy).' },
    DEVICE: { description: 'Only the hit’s device, every internal host of it.' },
    HOST: { description: 'Only the hit’s internal host on the hit’s device.' },
  },
});
