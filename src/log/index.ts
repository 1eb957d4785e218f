/**
 * pino JSON lines. Every line carries `node` and `role` (fixed at creation) and `state` (read at
 * each line through a mixin, so it is always the current Binary Star state).
 */
import { pino, type Logger, type Level } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  node: string;
  role: string;
  level: Level | 'silent';
  /** current Binary Star state, read for every line */
  state?: () => string;
  /** where lines go; stderr keeps stdout free for CLI output */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const state = options.state;
  return pino(
    {
      level: options.level,
      base: { node: options.node, role: options.role },
      mixin: state ? () => ({ state: state() }) : undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    (options.destination ?? pino.destination({ fd: 2, sync: false })) as pino.DestinationStream,
  );
}

/** A logger that writes nothing, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Logs at most `perWindow` lines per `windowMs` for one kind of event and folds the rest into a
 * count reported with the next line that gets through. Malformed traffic must never flood logs.
 */
export class RateLimitedLog {
  private windowStart = -Infinity;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perWindow) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
