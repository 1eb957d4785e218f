/**
 * Which of two nodes holds the newer history, and which of two fenced actives keeps serving: the
 * orders the FSM's rules decide by. Each is total over two nodes of distinct roles, and both nodes
 * compute it from the same numbers, so exactly one of them wins.
 */
import type { Role } from './binary-star.js';

/** What the orders compare of a node: its own context, or the view of its peer. */
export interface HistoryView {
  /** changes it sequenced since the two histories forked (0 if they have not) */
  readonly served: number;
  readonly epoch: number;
  readonly sequence: number;
  readonly role: Role;
}

/**
 * Is this node's history newer than the peer's? More changes served since the histories forked
 * (a node that sat idle never beats one that served), then the higher epoch (the later promotion),
 * then the higher sequence, then the primary. A total order over two nodes of distinct roles, and
 * both compute it from the same numbers: exactly one of newer(a, b) and newer(b, a) holds.
 */
export function newer(mine: HistoryView, theirs: HistoryView): boolean {
  if (mine.served !== theirs.served) return mine.served > theirs.served;
  if (mine.epoch !== theirs.epoch) return mine.epoch > theirs.epoch;
  if (mine.sequence !== theirs.sequence) return mine.sequence > theirs.sequence;
  return mine.role === 'primary' && theirs.role !== 'primary';
}

/**
 * Does this node hold the history that should serve? A complete history beats an incomplete one;
 * between two complete ones, `newer` decides. A node without a complete history never does.
 */
export function holdsNewer(
  mine: HistoryView & { readonly history: boolean },
  theirs: HistoryView & { readonly history: boolean },
): boolean {
  return mine.history && (!theirs.history || newer(mine, theirs));
}

/** Does (epoch, role) beat the other? Higher epoch, tie to the primary. */
export function outranks(epoch: number, role: Role, otherEpoch: number, otherRole: Role): boolean {
  if (epoch !== otherEpoch) return epoch > otherEpoch;
  return role === 'primary' && otherRole !== 'primary';
}

/** Does this fenced active keep serving? More changes since the fork, then `outranks`. */
export function wins(ctx: HistoryView, peer: HistoryView): boolean {
  if (ctx.served !== peer.served) return ctx.served > peer.served;
  return outranks(ctx.epoch, ctx.role, peer.epoch, peer.role);
}
