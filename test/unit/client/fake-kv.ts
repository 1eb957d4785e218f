/**
 * The fake server's KV parity (issue 17; /work/notes/kv-parity-protocol.md), for unit tests of
 * the client: conditions on TSET writes (`if-seq`, `lease`, `delete-prefix`), TLEASE and TWATCH,
 * decoded and encoded with the real codec. Simplified on purpose: leases expire only when a test
 * says so (`expire`), a keep-alive is recorded and answered, a watch replays the fake's log from
 * `historyFrom` on.
 */
import { PackedBatch } from '../../../src/wire/packed.js';
import {
  decodeRequest,
  formatProperties,
  parseProperties,
  WRITE_PROPERTY,
  type NativeReply,
  type NativeRequest,
  type PackedEntry,
} from '../../../src/wire/index.js';
import type { FakeLink, FakeServer } from './fake-server.js';

type Req<C extends string> = Extract<NativeRequest, { command: C }>;
type Write = { key: string; uuid: string; properties: string; body: Buffer };

export interface FakeLease {
  readonly id: number;
  readonly ttlMs: number;
  deadline: number;
}

export function isPublishedDeletePrefix(entry: { properties: string; body: Buffer }): boolean {
  return (
    entry.body.length === 0 && entry.properties.includes(`${WRITE_PROPERTY.PUBLISHED_DELETE_PREFIX}=1\n`)
  );
}

export class FakeKv {
  leases = new Map<number, FakeLease>();
  nextLeaseId = 100;
  /** every TLEASE received: op, id, and when */
  readonly leaseRequests: { op: string; id: number; at: number }[] = [];
  /** a TWATCH from below this sequence is answered history-unavailable */
  historyFrom = 0;

  constructor(private readonly server: FakeServer) {}

  copyFrom(other: FakeKv): void {
    this.leases = new Map([...other.leases].map(([id, l]) => [id, { ...l }]));
    this.nextLeaseId = other.nextLeaseId;
    this.historyFrom = other.historyFrom;
  }

  /** Keep-alives received, in order. */
  get keepAlives(): { id: number; at: number }[] {
    return this.leaseRequests.filter((r) => r.op === 'keepalive');
  }

  /**
   * A TSET's conditions: a TERROR if any fails (nothing applied), else undefined. A write whose
   * uuid was already applied is a retry: it gets its original sequence, whatever its condition.
   */
  refusal(reqId: number, writes: readonly Write[]): NativeReply | undefined {
    const refused: number[] = [];
    const current: number[] = [];
    const noLease: number[] = [];
    writes.forEach((w, i) => {
      if (this.server.applied.has(w.uuid)) return;
      const props = parseProperties(w.properties);
      const ifSeq = props.get(WRITE_PROPERTY.IF_SEQUENCE);
      const now = this.server.map.get(w.key)?.sequence ?? 0;
      if (ifSeq !== undefined && Number(ifSeq) !== now) {
        refused.push(i);
        current.push(now);
      }
      const lease = props.get(WRITE_PROPERTY.LEASE);
      if (lease !== undefined && !this.leases.has(Number(lease))) noLease.push(i);
    });
    if (refused.length > 0)
      return { command: 'TERROR', reqId, reason: 'conflict', message: 'condition failed', refused, current };
    if (noLease.length > 0)
      return {
        command: 'TERROR',
        reqId,
        reason: 'lease-not-found',
        message: 'no such lease',
        refused: noLease,
      };
    return undefined;
  }

  /** The change a write stores: if-seq stripped, a delete by prefix published as such. */
  stored(w: Write): Write {
    const props = parseProperties(w.properties);
    if (props.get(WRITE_PROPERTY.DELETE_PREFIX) === '1')
      return { ...w, properties: formatProperties({ [WRITE_PROPERTY.PUBLISHED_DELETE_PREFIX]: '1' }) };
    props.delete(WRITE_PROPERTY.IF_SEQUENCE);
    return { ...w, properties: formatProperties(props) };
  }

  /** After a change is committed: a delete by prefix removes every key under it from the map. */
  applied(entry: PackedEntry): void {
    if (!isPublishedDeletePrefix(entry)) return;
    for (const key of [...this.server.map.keys()]) if (key.startsWith(entry.key)) this.server.map.delete(key);
  }

  /** The lease ends as an expiry would: its keys deleted (sequenced), then the lease. */
  expire(id: number): void {
    for (const entry of [...this.server.map.values()])
      if (parseProperties(entry.properties).get(WRITE_PROPERTY.LEASE) === String(id))
        this.server.delete(entry.key);
    this.leases.delete(id);
  }

  handle(link: FakeLink, frames: Buffer[]): void {
    const request = decodeRequest(frames) as Req<'TLEASE' | 'TWATCH'>;
    const { reqId } = request;
    if (!this.server.isActive)
      return this.server.reply(link, {
        command: 'TNOTACTIVE',
        reqId,
        state: this.server.state,
        reason: 'not-active',
      });
    if (request.command === 'TWATCH') return this.watch(link, request);
    const now = this.server.net.clock.now();
    this.leaseRequests.push({ op: request.op, id: request.id, at: now });
    const ok = (l: FakeLease) => ({
      command: 'TLEASEOK' as const,
      reqId,
      id: l.id,
      ttlMs: l.ttlMs,
      remainingMs: Math.max(0, l.deadline - now),
    });
    const lease = this.leases.get(request.id);
    switch (request.op) {
      case 'grant': {
        if (request.ttlMs < 1000)
          return this.server.reply(link, { command: 'TERROR', reqId, reason: 'invalid-ttl', message: 'ttl' });
        const id = request.id || this.nextLeaseId++;
        const granted = { id, ttlMs: request.ttlMs, deadline: now + request.ttlMs };
        this.leases.set(id, granted);
        return this.server.reply(link, ok(granted));
      }
      case 'list': {
        const leases = [...this.leases.values()].map((l) => ({ ...ok(l), keys: this.keysOf(l.id) }));
        const list = leases.map(({ id, ttlMs, remainingMs, keys }) => ({ id, ttlMs, remainingMs, keys }));
        return this.server.reply(link, {
          command: 'TLEASEOK',
          reqId,
          id: 0,
          ttlMs: 0,
          remainingMs: 0,
          leases: list,
        });
      }
      default:
        if (lease === undefined)
          return this.server.reply(link, {
            command: 'TERROR',
            reqId,
            reason: 'lease-not-found',
            message: `lease ${request.id} not found`,
          });
        if (request.op === 'revoke') {
          this.expire(lease.id);
          return this.server.reply(link, { ...ok(lease), remainingMs: 0 });
        }
        lease.deadline = now + lease.ttlMs;
        return this.server.reply(link, ok(lease));
    }
  }

  private keysOf(id: number): number {
    let n = 0;
    for (const e of this.server.map.values())
      if (parseProperties(e.properties).get(WRITE_PROPERTY.LEASE) === String(id)) n++;
    return n;
  }

  private watch(link: FakeLink, request: Req<'TWATCH'>): void {
    const { reqId, prefix, fromSequence } = request;
    if (fromSequence < this.historyFrom)
      return this.server.reply(link, {
        command: 'TERROR',
        reqId,
        reason: 'history-unavailable',
        message: `sequence ${fromSequence} is no longer available, oldest ${this.historyFrom}`,
      });
    const entries = this.server.log.filter(
      (e) =>
        e.sequence > fromSequence &&
        (e.key.startsWith(prefix) || (isPublishedDeletePrefix(e) && prefix.startsWith(e.key))),
    );
    const { chunk } = this.server;
    for (let i = 0; i < entries.length; i += chunk)
      this.server.reply(link, {
        command: 'TSYNC',
        reqId,
        batch: PackedBatch.of(entries.slice(i, i + chunk)),
      });
    this.server.reply(link, {
      command: 'TSYNCEND',
      reqId,
      sequence: this.server.sequence,
      term: this.server.term,
      kind: 'resume',
    });
  }
}
