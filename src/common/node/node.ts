import { Field, ID, InterfaceType } from 'type-graphql';

/**
 * Relay's Node: every object with a global ID. Entities keep their integer primary key in `id`;
 * NodeResolver turns it into the opaque, type-tagged global ID for every implementing type at once.
 */
@InterfaceType('Node', { description: 'An object with a globally unique, opaque ID that `node(id)` can fetch.' })
export abstract class Node {
  @Field(() => ID, { description: 'Opaque global ID (type-tagged). Use it with `node(id)` and in inputs.' })
  id: number | string;
}
