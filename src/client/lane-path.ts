/**
 * Which way a link's requests go to one server: over the request lane (zmtp-dealer.ts, to P+3)
 * or through the zeromq.js DEALER (to P). The choice is made once per link and kept, so that
 * requests never take two ways at once: two connections could deliver a later request before an
 * earlier one, and a client's writes must reach the server in the order it made them.
 *
 * Both connect as the link opens. The lane is taken as soon as its handshake completes: a
 * twinstar server without CURVE offers it. The DEALER is taken instead once it is connected and
 * the lane plainly is not offered: a peer on P+3 that closed before its handshake (a server from
 * before the lane), nothing listening there twice in a row while P answers (a plain CHP server),
 * or no handshake within DECIDE_MS (a port that drops packets). Until the choice, requests are
 * refused, as a DEALER that is not connected yet refuses them (`immediate`).
 */
import { ZmtpDealer } from './zmtp-dealer.js';

/** how long the lane may take to answer once the DEALER is connected */
const DECIDE_MS = 2000;
/** connections refused on P+3 while P answers, before the DEALER is taken */
const REFUSALS = 2;

export interface LanePathHandlers {
  /** a message from the server over the lane (its frames are copies) */
  message(frames: Buffer[]): void;
  /** the lane was chosen: the DEALER is not needed (the link closes it) */
  chooseLane(): void;
  /** the DEALER was chosen: the lane is closed, and the link goes on as if it never was */
  chooseDealer(): void;
  /** the lane is (again) through its handshake: requests may go */
  connected(): void;
}

export class LanePath {
  private state: 'deciding' | 'lane' | 'dealer' = 'deciding';
  private readonly lane: ZmtpDealer;
  private dealerUp = false;
  /** connections refused on P+3 since the DEALER connected */
  private refusals = 0;
  /** a peer on P+3 closed before its handshake */
  private notOffered = false;
  private timer: NodeJS.Timeout | undefined;
  /** attempts on P+3 that came to no handshake, in all */
  refusedAttempts = 0;

  constructor(
    endpoint: string,
    identity: Buffer,
    maxFrameBytes: number,
    highWaterMark: number,
    private readonly handlers: LanePathHandlers,
  ) {
    this.lane = new ZmtpDealer(endpoint, identity, maxFrameBytes, highWaterMark, {
      message: (frames) => {
        if (this.state === 'lane') handlers.message(frames);
      },
      ready: () => {
        if (this.state === 'deciding') {
          this.state = 'lane';
          clearTimeout(this.timer);
          handlers.chooseLane();
        }
        if (this.state === 'lane') handlers.connected();
      },
      refused: (connected) => {
        this.refusedAttempts++;
        if (this.state !== 'deciding') return;
        if (connected) this.notOffered = true;
        else if (this.dealerUp) this.refusals++;
        this.decide();
      },
      lost: () => undefined, // it reconnects; requests are refused meanwhile
    });
  }

  /** requests take the DEALER (undefined until chosen: they are refused) */
  get onDealer(): boolean {
    return this.state === 'dealer';
  }

  /** Sends a request over the lane: false if it is not chosen, not connected, or full. */
  send(frames: Buffer[]): boolean {
    return this.state === 'lane' && this.lane.send(frames);
  }

  /** The DEALER finished a handshake (true) or lost its connection (false). */
  dealerConnected(up: boolean): void {
    this.dealerUp = up;
    if (this.state !== 'deciding') return;
    if (!up) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.refusals = 0;
      return;
    }
    this.decide();
    if (this.state === 'deciding' && this.timer === undefined) {
      this.timer = setTimeout(() => {
        if (this.state === 'deciding' && this.dealerUp) this.useDealer();
      }, DECIDE_MS);
      this.timer.unref();
    }
  }

  private decide(): void {
    if (this.dealerUp && (this.notOffered || this.refusals >= REFUSALS)) this.useDealer();
  }

  private useDealer(): void {
    this.state = 'dealer';
    clearTimeout(this.timer);
    this.lane.close();
    this.handlers.chooseDealer();
  }

  close(): void {
    clearTimeout(this.timer);
    this.lane.close();
  }
}
