/**
 * Which end of a connection is ours (the internal host of its hits), and so its direction. One rule for the
 * fold, before anything is matched, and for the hits, once the processor knows which ends matched an IOC:
 *
 * 1. An end that is inside (RFC 1918, fc00::/7, the device's static address or internal networks; see
 *    direction.ts) is ours when the other end is not.
 * 2. When neither end is inside, the end that did not match an IOC is ours: a listed address (a C2 server) is
 *    never reported as one of our hosts, e.g. when the capture host has a public address of its own.
 * 3. Otherwise (both inside; or neither inside and both or neither matched) the initiator decides as the
 *    product always did: the contacted end, the responder, is the one we answer for.
 *
 * The direction follows the side: OUTBOUND when our end opened the connection, INBOUND when it was contacted.
 * An end of local scope (a multicast group, a link-local or broadcast address) names no host of ours: a
 * connection whose internal end is one gives no hit (hasHostOfOurs).
 */
import type { Connection, ConnectionEndpoint } from './fold';
import { Direction } from './direction';

export enum Side {
  INITIATOR = 'INITIATOR',
  RESPONDER = 'RESPONDER',
}

export interface EndFacts {
  /** Inside the network: ConnectionEndpoint.internal. */
  inside: boolean;
  /** Its address matched a BLOCK entry of the device's policy. */
  matched: boolean;
}

/** The end that is ours, by the rules in the header. */
export function internalSide(initiator: EndFacts, responder: EndFacts): Side {
  if (initiator.inside !== responder.inside) return initiator.inside ? Side.INITIATOR : Side.RESPONDER;
  if (!initiator.inside && initiator.matched !== responder.matched) return initiator.matched ? Side.RESPONDER : Side.INITIATOR;
  return Side.RESPONDER;
}

export interface Sides {
  direction: Direction;
  internal: ConnectionEndpoint;
  external: ConnectionEndpoint;
}

/** Direction, internal and external end of a connection between `initiator` and `responder`. */
export function sidesOf(initiator: ConnectionEndpoint, responder: ConnectionEndpoint, matched: { initiator: boolean; responder: boolean }): Sides {
  const ours = internalSide({ inside: initiator.internal, matched: matched.initiator }, { inside: responder.internal, matched: matched.responder });
  return ours === Side.INITIATOR
    ? { direction: Direction.OUTBOUND, internal: initiator, external: responder }
    : { direction: Direction.INBOUND, internal: responder, external: initiator };
}

/** The connection with its sides chosen again now that the matched ends are known. */
export function withMatchedSides(c: Connection, initiatorMatched: boolean, responderMatched: boolean): Connection {
  return { ...c, ...sidesOf(c.initiator, c.responder, { initiator: initiatorMatched, responder: responderMatched }) };
}

/** False when the end picked as ours is of local scope: such a connection gives no hit. */
export function hasHostOfOurs(c: Connection): boolean {
  return !c.internal.localScope;
}
