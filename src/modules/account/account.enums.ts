import { registerEnumType } from 'type-graphql';

/** What an API key may do in its account. */
export enum Role {
  ADMIN = 'ADMIN',
  ANALYST = 'ANALYST',
  UPLOADER = 'UPLOADER',
}

registerEnumType(Role, {
  name: 'Role',
  description: 'What an API key may do in its account.',
  valuesConfig: {
    ADMIN: { description: 'Everything in its account: devices, policies, IOC lists, keys, uploads and reports.' },
    ANALYST: { description: 'Reads everything in its account (reports, devices, lists); writes nothing.' },
    UPLOADER: { description: 'Uploads logs and reads the status of uploads; for capture-host scripts.' },
  },
});
