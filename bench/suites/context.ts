/** What every suite gets: the mode, the report to add figures to, and the ceilings once measured. */
import type { Report } from '../lib/report.js';

export interface Ceilings {
  /** raw PUB->SUB messages/s */
  pubSub: number;
  /** raw DEALER->ROUTER->DEALER round trips/s */
  roundTrip: number;
}

export interface Context {
  quick: boolean;
  /** runs per figure: 3 in full mode, 1 in quick mode (or --runs) */
  runs: number;
  report: Report;
  ceilings: Ceilings;
  /** node.js options for server processes (e.g. --cpu-prof) */
  serverNodeArgs: string[];
  /** acknowledged writes in flight for the pipelined writers */
  window: number;
  log(message: string): void;
  /** seconds: the first value in full mode, the second in quick mode */
  secs(full: number, quick: number): number;
}

export const RT = 'round trip';
export const PS = 'PUB→SUB';
