/**
 * What the order example's services share: where the pair is and how a service stops.
 *
 * TWINSTAR_SERVERS (comma-separated) names the pair; by default the one `npm start` runs.
 */
import { connect, type Client } from '../../src/index.js';

export const servers = (process.env.TWINSTAR_SERVERS ?? 'tcp://127.0.0.1:5556,tcp://127.0.0.1:5566').split(
  ',',
);

/** The topic the order service publishes to and the other services subscribe to. */
export const ORDER_CREATED = 'orders.created';

export interface Order {
  id: string;
  customer: string;
  total: number;
}

/**
 * A client for a service that only uses the event bus: its subtree is one nothing is written to, so
 * that it does not mirror the key-value map.
 */
export function connectService(): Promise<Client> {
  return connect({ servers, subtree: '/examples/orders/', connectTimeoutMs: 20_000 });
}

/** Runs `stop` once, on SIGINT (Ctrl-C) or SIGTERM, then exits. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      stop().finally(() => process.exit(0));
    });
}
