/**
 * The client-facing sockets of one node, their options, binds, receive loops and outboxes, and
 * the rebind that ends every connection when the allow-list changes. RFC 12's three:
 *
 *   snapshot  ROUTER  P    requests (ICANHAZ? and the native ones) and their replies, TPUB to followers
 *   publisher XPUB    P+1  KVPUB for every change, HUGZ every heartbeat and soon after a subscription
 *   collector SUB     P+2  KVSET from CHP clients, fire-and-forget
 *
 * and, without CURVE, the native update stream (wire/updates.ts), which native clients follow:
 *
 *   updates   PUB     P+3  packed batches per subscribed prefix, and the publisher's HUGZ (the
 *                          active's only to subscribers sent no batch in half a heartbeat):
 *                          ZMTP on Node's sockets (zmq/stream-publisher.ts), not libzmq's
 *             ROUTER   P+3  the request lane: the snapshot ROUTER's work for a DEALER that
 *                          connects here (request-lane.ts), replies through `routerOut` either way
 *
 * Sends never wait (`sendTimeout: 0`): a client whose pipe is full fails its send, which the
 * outbox reports. A frame above what the limits allow disconnects its sender before it is ever
 * buffered (`maxMessageSize`, wire/sizes.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as zmq from 'zeromq';
import type { Logger } from '../log/index.js';
import {
  curveServerOptions,
  notifyConnections,
  watchHandshakes,
  type Domain,
  type Guard,
} from '../security/index.js';
import { chunkBytes, type Limits, socketFrameLimits, updatesPrefix } from '../wire/index.js';
import { UpdateStream } from './update-stream.js';

import { RequestLane, RouterMux } from './request-lane.js';
import { Outbox, receiveLoop, SocketWatch, StreamPublisher, WATCH_QUIET_MS } from '../zmq/index.js';
import type { ServerEndpoints, ServerQuotas } from './types.js';

export interface SocketOptions {
  host: string;
  /** snapshot port; publisher is port + 1, collector port + 2, update stream port + 3 */
  port: number;
  limits: Limits;
  quotas: ServerQuotas;
  log: Logger;
  context?: zmq.Context;
  guard?: Guard;
  /** a reply posted on the snapshot socket failed (its first frame is the client's routing id) */
  onSnapshotSendFailed(error: unknown, frames: Buffer[]): void;
}

/** what one queued update costs each subscriber's pipe: 5 frames of 64-byte zmq_msg_t */
const SUBSCRIBER_BYTES_PER_UPDATE = 5 * 64;

/** What the metrics read of the client sockets. */
export interface ClientSocketStats {
  /** subscribers connected to the publisher and the update stream right now */
  readonly connectedClients: number;
  /** client connections on the request lane right now (request-lane.ts) */
  readonly laneConnections: number;
  /** the most the publisher's queues take for the subscribers connected now (configuration.md) */
  readonly subscriberQueueBoundBytes: number;
  /** update-stream subscribers disconnected because their queue was full (zmq/stream-publisher.ts) */
  readonly slowSubscribers: number;
}

export class ServerSockets implements ClientSocketStats {
  readonly endpoints: ServerEndpoints;
  readonly router: zmq.Router;
  /** an XPUB, so that a new subscriber is noticed (and sent a HUGZ at once, server.ts) */
  readonly publisher: zmq.XPublisher;
  readonly collector: zmq.Subscriber;
  /** every send on the snapshot ROUTER */
  readonly routerOut: Outbox;
  /** every send on the publisher */
  readonly pubOut: Outbox;
  /** the prefixes subscribed to on the publisher right now */
  readonly subscribed = new Set<string>();
  /** the update stream (not bound with CURVE: native clients then follow over the ROUTER) */
  readonly updates: StreamPublisher | undefined;
  /** the request lane on the update stream's port (none with CURVE) */
  readonly lane: RequestLane | undefined;
  /** requests, from the ROUTER and the lane: set by `start` */
  private onRequest: (frames: Buffer[]) => void = () => undefined;
  /** what publishing sends on `updates` */
  readonly updateStream: UpdateStream | undefined;
  /** the prefixes subscribed to on the update stream right now (topics without their NUL) */
  readonly updatePrefixes = new Set<string>();
  /** subscriptions read this turn and not confirmed yet (confirmSoon) */
  private readonly confirming = new Set<string>();
  /** subscribers connected to the publisher and the update stream right now */
  connectedClients = 0;
  private revoking: Promise<void> = Promise.resolve();
  /** when the update stream's refused connections were last logged */
  private updatesRefusedAt = -Infinity;
  /** when a slow subscriber's disconnect was last logged, and how many were not logged since */
  private slowLoggedAt = -Infinity;
  private slowUnlogged = 0;

  constructor(private readonly options: SocketOptions) {
    const { host, port, quotas, guard } = options;
    this.endpoints = {
      snapshot: `tcp://${host}:${port}`,
      publisher: `tcp://${host}:${port + 1}`,
      collector: `tcp://${host}:${port + 2}`,
      ...(guard ? {} : { updates: `tcp://${host}:${port + 3}` }),
    };
    const frames = socketFrameLimits(options.limits, quotas.maxSubtreeBytes);
    const common = (domain: Domain) => ({
      linger: 0,
      ...(options.context ? { context: options.context } : {}),
      ...(guard ? curveServerOptions(guard.keys, domain) : {}),
    });
    this.router = new zmq.Router({
      ...common('snapshot'),
      mandatory: true,
      // A native client names its DEALER itself (the same id on both nodes: handlers/write.ts);
      // reconnecting under it while the old connection lingers takes the id over, not refused.
      // With CURVE the id is a session token, bound to a key: left as it was.
      handover: !guard,
      sendTimeout: 0,
      sendHighWaterMark: quotas.clientQueue,
      maxMessageSize: frames.router,
    });
    this.publisher = new zmq.XPublisher({
      ...common('publisher'),
      sendTimeout: 0,
      sendHighWaterMark: quotas.publisherQueue,
      maxMessageSize: frames.publisher,
    });
    this.publisher.verbosity = 'allSubs'; // every subscription, not only a topic's first
    if (!guard) {
      this.lane = new RequestLane({
        onRequest: (frames) => this.onRequest(frames),
        highWaterMark: quotas.clientQueue,
        maxFrameBytes: frames.router,
        onHandlerError: (error) => options.log.error({ err: error }, 'a request handler threw'),
      });
      const updates = new StreamPublisher({
        lane: this.lane,
        highWaterMark: quotas.publisherQueue,
        maxQueueBytes: quotas.publisherQueueBytes,
        maxFrameBytes: frames.publisher,
        // HUGZ, or anything not ended by a NUL, is no prefix of the stream (updatesPrefix: undefined)
        onSubscribe: (topic) => {
          const prefix = updatesPrefix(topic);
          if (prefix === undefined) return;
          this.updatePrefixes.add(prefix);
          this.confirmSoon(prefix);
        },
        onUnsubscribe: (topic) => {
          const prefix = updatesPrefix(topic);
          if (prefix !== undefined) this.updatePrefixes.delete(prefix);
        },
        onConnection: (connected) =>
          (this.connectedClients = Math.max(0, this.connectedClients + (connected ? 1 : -1))),
        onAcceptFailed: (error) => this.acceptFailed(this.endpoints.updates, error),
        onSlowSubscriber: (remote) => this.slowSubscriber(remote),
      });
      this.updates = updates;
      this.updateStream = new UpdateStream({
        post: (frames) => updates.post(frames),
        heartbeat: (frames, quietMs) => updates.heartbeat(frames, quietMs),
        prefixes: this.updatePrefixes,
        maxBatchBytes: chunkBytes(options.limits),
      });
    }
    this.collector = new zmq.Subscriber({
      ...common('collector'),
      receiveHighWaterMark: quotas.collectorQueue,
      maxMessageSize: frames.collector,
    });
    if (guard) {
      notifyConnections(this.router);
      watchHandshakes(this.router, guard, 'snapshot');
      watchHandshakes(this.publisher, guard, 'publisher');
      watchHandshakes(this.collector, guard, 'collector');
    }
    this.routerOut = new Outbox(new RouterMux(this.lane, this.router), (error, sent) =>
      options.onSnapshotSendFailed(error, sent),
    );
    this.pubOut = new Outbox(this.publisher, (error) => options.log.warn({ err: error }, 'publish failed'));
  }

  get laneConnections(): number {
    return this.lane?.size ?? 0;
  }

  get slowSubscribers(): number {
    return this.updates?.slowDisconnects ?? 0;
  }

  /**
   * The most the publisher's queues can take for the subscribers connected now: each queues up
   * to publisherQueue updates, and libzmq keeps a 64-byte message per frame (5 per update) for
   * every subscriber; the values themselves are shared (docs/configuration.md, Memory bounds).
   */
  get subscriberQueueBoundBytes(): number {
    return this.connectedClients * this.options.quotas.publisherQueue * SUBSCRIBER_BYTES_PER_UPDATE;
  }

  /**
   * Binds the sockets and starts receiving requests, KVSETs and subscriptions (`onSubscribed` is
   * told of each new subscription to the publisher, `onPublisherAccepted` of each connection to it;
   * a subscription to the update stream is confirmed on it).
   */
  async start(
    onRequest: (frames: Buffer[]) => void,
    onCollected: (frames: Buffer[]) => void,
    onSubscribed: () => void = () => undefined,
    onPublisherAccepted: () => void = () => undefined,
  ): Promise<void> {
    this.onRequest = onRequest;
    await this.router.bind(this.endpoints.snapshot);
    await this.publisher.bind(this.endpoints.publisher);
    await this.collector.bind(this.endpoints.collector);
    if (this.updates) await this.updates.listen(this.endpoints.updates!);
    this.collector.subscribe();
    SocketWatch.of(this.publisher).on('accept', onPublisherAccepted);
    const watch = SocketWatch.of(this.publisher);
    watch.on('accept', () => this.connectedClients++);
    watch.on('disconnect', () => (this.connectedClients = Math.max(0, this.connectedClients - 1)));
    this.watchAccepts();
    void receiveLoop(this.router, onRequest);
    void receiveLoop(this.collector, onCollected);
    trackSubscriptions(this.publisher, this.subscribed, (topic) => topic.toString('utf8'), onSubscribed);
  }

  /**
   * A socket that cannot accept (out of file descriptors) posts an event per failed try, read with
   * a time budget (zmq/socket-watch.ts): said once per flood, per socket.
   */
  private watchAccepts(): void {
    const { log } = this.options;
    const { snapshot, publisher, collector } = this.endpoints;
    const watched: [zmq.Socket, string][] = [
      [this.router, snapshot],
      [this.publisher, publisher],
      [this.collector, collector],
    ];
    for (const [socket, endpoint] of watched)
      SocketWatch.of(socket).onAcceptFailed = (error) => refused(log, endpoint, error.code);
  }

  /** The update stream's listener could not accept: said once per WATCH_QUIET_MS, as SocketWatch does. */
  private acceptFailed(endpoint: string | undefined, error: NodeJS.ErrnoException): void {
    const now = performance.now();
    if (now - this.updatesRefusedAt < WATCH_QUIET_MS) return;
    this.updatesRefusedAt = now;
    refused(this.options.log, endpoint, error.code);
  }

  /** A subscriber disconnected for falling behind: said once per WATCH_QUIET_MS, with how many since. */
  private slowSubscriber(remote: string): void {
    this.slowUnlogged++;
    const now = performance.now();
    if (now - this.slowLoggedAt < WATCH_QUIET_MS) return;
    this.slowLoggedAt = now;
    const count = this.slowUnlogged;
    this.slowUnlogged = 0;
    this.options.log.warn(
      {
        remote,
        count,
        publisherQueue: this.options.quotas.publisherQueue,
        publisherQueueBytes: this.options.quotas.publisherQueueBytes,
      },
      'disconnected a slow update-stream subscriber (it resumes on reconnecting): docs/operations.md#twinstarslowsubscribers',
    );
  }

  /**
   * Confirms a subscription to the update stream (update-stream.ts) at the end of this event-loop
   * turn: the subscriptions of a prefix read in one turn share one confirmation (100 watchers
   * starting at once would otherwise get 100 each).
   */
  private confirmSoon(prefix: string): void {
    if (this.confirming.size === 0)
      setImmediate(() => {
        for (const p of this.confirming) if (this.updatePrefixes.has(p)) this.updateStream?.confirm(p);
        this.confirming.clear();
      });
    this.confirming.add(prefix);
  }

  close(): void {
    this.routerOut.close();
    this.pubOut.close();
    this.router.close();
    this.publisher.close();
    this.collector.close();
    this.updates?.close();
    this.lane?.close();
  }

  /**
   * The allow-list changed: rights a client held may be gone, so it must earn them again. A PUB
   * or SUB cannot drop one peer, and ZAP only runs when a connection is made: rebinding ends every
   * connection accepted on the endpoint, and each client's reconnect asks ZAP again. `before`
   * runs first, in turn (reloads can come close together, SIGHUP and the file watch: one rebind
   * at a time).
   */
  revoke(before: () => void): Promise<void> {
    this.revoking = this.revoking
      .catch(() => undefined)
      .then(async () => {
        before();
        for (const [socket, endpoint] of [
          [this.publisher, this.endpoints.publisher],
          [this.collector, this.endpoints.collector],
        ] as const) {
          await rebind(socket, endpoint, this.options.log);
        }
      });
    return this.revoking;
  }
}

function refused(log: Logger, endpoint: string | undefined, code: string | undefined): void {
  log.error(
    { endpoint, code, quietMs: WATCH_QUIET_MS },
    'new connections are refused: out of file descriptors (raise the limit: ulimit -n, LimitNOFILE, --ulimit nofile)',
  );
}

/**
 * Keeps `prefixes` to what is subscribed to on an XPUB, which delivers each subscription as a
 * message: byte 1 (subscribe) or 0, then the topic. With 'allSubs', every subscribe comes through
 * but an unsubscribe only when the topic's last subscriber is gone. `prefixOf` reads a topic
 * (undefined: not one to keep); `subscribed` is told of each subscribe.
 */
function trackSubscriptions(
  socket: zmq.XPublisher,
  prefixes: Set<string>,
  prefixOf: (topic: Buffer) => string | undefined,
  subscribed: (prefix: string) => void,
): void {
  void receiveLoop(socket, (frames) => {
    const message = frames[0];
    if (message === undefined || message.length === 0) return;
    const prefix = prefixOf(message.subarray(1));
    if (prefix === undefined) return;
    if (message[0] === 1) {
      prefixes.add(prefix);
      subscribed(prefix);
    } else if (message[0] === 0) prefixes.delete(prefix);
  });
}

/**
 * Unbinds and binds again. libzmq closes the old listener in its I/O thread, after `unbind`
 * resolves, so the new bind is retried until the port is free (a few milliseconds).
 */
async function rebind(socket: zmq.Socket, endpoint: string, log: Logger): Promise<void> {
  await socket.unbind(endpoint).catch(() => undefined);
  for (let attempt = 0; ; attempt++) {
    try {
      await socket.bind(endpoint);
      return;
    } catch (error) {
      if (socket.closed) return;
      if (attempt === 500) {
        log.error({ err: error, endpoint }, 'cannot bind again after revoking access');
        throw error;
      }
      await sleep(10);
    }
  }
}
