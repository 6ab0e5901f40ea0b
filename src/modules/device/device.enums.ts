import { registerEnumType } from 'type-graphql';

/** How the device's public address is known (the original product's "IP Type"). */
export enum IpType {
  STATIC = 'STATIC',
  DYNAMIC = 'DYNAMIC',
}

registerEnumType(IpType, {
  name: 'IpType',
  description: "How the device's public address is known.",
  valuesConfig: {
    STATIC: { description: 'A fixed public IP address, given in `ipAddress`.' },
    DYNAMIC: { description: "A DNS name (`domainName`, an A/AAAA record) kept pointing at the device's changing address." },
  },
});
