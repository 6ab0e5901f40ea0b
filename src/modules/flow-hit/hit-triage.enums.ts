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
