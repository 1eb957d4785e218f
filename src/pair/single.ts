/**
 * A single server: always active, always the whole history, nobody to replicate to. Writes are
 * acknowledged 'single'. It still watches for stalls, for the metric and /healthz.
 */
import type { Admission } from '../server/index.js';
import type { Durability } from '../wire/index.js';
import type { ForceResult, Mode, ModeStatus, NodeParts } from './mode.js';
import { StallClock } from './stalls.js';

export class SingleMode implements Mode {
  readonly state = 'ACTIVE' as const;
  readonly promotions = 0;
  private readonly stalls: StallClock;
  private epoch = 0;

  constructor(private readonly parts: NodeParts) {
    const { heartbeatMs, failoverMs } = parts.config;
    this.stalls = new StallClock(heartbeatMs, failoverMs, parts.now(), parts.log);
  }

  async start(): Promise<void> {
    // a restarted single server continues its stored history with a new epoch (1 on a fresh start)
    this.epoch = this.parts.timeline.epoch + 1;
    this.parts.openTerm(this.epoch, 'single');
    this.parts.server.setActive(true);
  }

  async close(): Promise<void> {}

  tick(): void {
    const now = this.parts.now();
    this.stalls.notice(now, (ms) => this.parts.emit('stall', ms));
    this.stalls.ticked(now);
  }

  admit(): Admission {
    return { accepted: true };
  }

  serving(): boolean {
    return true;
  }

  hasHistory(): boolean {
    return true;
  }

  durable(): Promise<Durability> {
    return Promise.resolve('single');
  }

  publishableUpTo(): number {
    return Infinity;
  }

  forcePromote(): ForceResult {
    return { ok: false, reason: 'a single server is always active' };
  }

  isDegraded(): boolean {
    return false;
  }

  peerUp(): boolean {
    return false;
  }

  peerSilenceMs(): number {
    return Infinity;
  }

  reactorHealthy(): boolean {
    return this.stalls.healthy(this.parts.now());
  }

  status(): ModeStatus {
    return {
      state: 'ACTIVE',
      epoch: this.epoch,
      degraded: false,
      replicationLag: 0,
      peer: null,
      peerRefused: null,
      history: 'complete',
      fenced: false,
      unavailable: null,
    };
  }
}
