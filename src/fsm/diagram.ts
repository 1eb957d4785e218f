/** docs/binary-star.md's state diagram, derived from the FSM's table (`npm run docs`). */
import { EVENT_KINDS, STATES, ruleName, type EventKind, type State } from './binary-star.js';

/** A Mermaid state diagram derived from TABLE (used by docs/binary-star.md). */
export function mermaid(): string {
  // Where each rule that can change the state leads, and how to label the arrow.
  const moves: Record<string, { to: State; label: (kind: EventKind) => string }> = {
    activate: {
      to: 'ACTIVE',
      label: (kind) => `peer ${kind} (restarted), unless its stored history is newer`,
    },
    'resolve-start': { to: 'ACTIVE', label: (kind) => `peer ${kind}, this node's history is newer` },
    'resolve-restart': { to: 'ACTIVE', label: () => 'peer PASSIVE, restarted with a newer history' },
    follow: { to: 'PASSIVE', label: (kind) => `peer ${kind}` },
    vote: { to: 'ACTIVE', label: () => 'client vote, peer silent past failoverMs' },
    'resolve-dual-active': {
      to: 'PASSIVE',
      label: () => 'peer ACTIVE, both fenced, peer served more since the fork (dual active lost)',
    },
    'resolve-dual-passive': {
      to: 'ACTIVE',
      label: () => 'peer PASSIVE with an older history (dual passive won)',
    },
  };
  const lines = ['stateDiagram-v2', '  [*] --> PRIMARY', '  [*] --> BACKUP'];
  for (const state of STATES) {
    for (const kind of EVENT_KINDS) {
      const move = moves[ruleName(state, kind)];
      if (move) lines.push(`  ${state} --> ${move.to}: ${move.label(kind)}`);
    }
  }
  return lines.join('\n');
}
