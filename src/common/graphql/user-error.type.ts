import { ClassType, Field, ObjectType, registerEnumType } from 'type-graphql';
import { Outcome, UserErrorCode, UserErrorData } from '../errors/user-error';

registerEnumType(UserErrorCode, {
  name: 'UserErrorCode',
  description: 'Why a mutation could not do what was asked.',
  valuesConfig: {
    INVALID: { description: 'A value is malformed or out of range.' },
    REQUIRED: { description: 'A required value is missing.' },
    NOT_FOUND: { description: 'The referenced object does not exist in your account.' },
    TAKEN: { description: 'A value that must be unique is already used.' },
    IN_USE: { description: 'The object is still referenced and cannot be removed.' },
    TOO_LONG: { description: 'The value is longer than allowed.' },
    TOO_BROAD: { description: 'The network is broader than allowed.' },
    NOT_PUBLIC: { description: 'The address is not a public address.' },
    INVALID_STATE: { description: 'The operation does not apply to the object in its current state.' },
    UNSUPPORTED_FORMAT: { description: 'The file is a binary capture (pcap/pcapng); upload the text output of `tcpdump -tt -n -r FILE`.' },
    NOT_TEXT: { description: 'The file is not text.' },
    EMPTY: { description: 'The file is empty.' },
    CHECKSUM_MISMATCH: { description: 'The MD5 the client sent does not match the bytes that arrived.' },
    SIZE_MISMATCH: { description: 'The size the client sent does not match the bytes that arrived.' },
    RATE_LIMITED: { description: 'Asked again too soon; the message says when to retry.' },
  },
});

@ObjectType('UserError', { description: 'An expected failure of a mutation, returned as data: nothing was changed.' })
export class UserError implements UserErrorData {
  @Field(() => UserErrorCode, { description: 'Machine-readable reason.' })
  code: UserErrorCode;

  @Field(() => [String], { nullable: true, description: 'Path of the input field at fault, e.g. ["input", "nickname"].' })
  field: string[] | null;

  @Field({ description: 'What is wrong, for people.' })
  message: string;
}

export interface PayloadData {
  userErrors: UserErrorData[];
}

/**
 * `<Name>Payload { <field>: <Type>, userErrors: [UserError!]! }`: the object on success, userErrors otherwise.
 * Built with the decorators applied by hand because the object field's name varies per payload.
 */
export function createPayload<T extends object>(name: string, field: string, type: () => ClassType<T>, objectDescription: string) {
  class Payload {
    userErrors: UserErrorData[];
  }
  Field(type, { nullable: true, description: `${objectDescription} Null when userErrors is not empty.` })(Payload.prototype, field);
  Field(() => [UserError], { description: 'Why the mutation did nothing; empty on success.' })(Payload.prototype, 'userErrors');
  ObjectType(name, { description: `Result of \`${name.replace(/Payload$/, '').replace(/^./, (c) => c.toLowerCase())}\`.` })(Payload);
  return Payload as ClassType<PayloadData & Record<string, unknown>>;
}

/** Turns a service outcome into a payload object. */
export function toPayload<T>(outcome: Outcome<T>, field: string): PayloadData & Record<string, unknown> {
  return outcome.ok ? { [field]: outcome.value, userErrors: [] } : { [field]: null, userErrors: outcome.errors };
}
