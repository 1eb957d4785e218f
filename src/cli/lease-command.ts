/**
 * `twinstar lease grant|keep-alive|revoke|ls`, as etcdctl's `lease` (issue 17): leases by id, for
 * scripts and people; a program holds its leases with `client.lease()`, which keeps them alive.
 * TTLs are in seconds on the command line, as in etcdctl. `formatLeases` is pure.
 */
import { RESERVED_PREFIX } from '../events/index.js';
import { LeaseNotFoundError } from '../errors.js';
import type { LeaseInfo } from '../client/index.js';
import { parseCommandLine, parseSeconds, UsageError } from './args.js';
import { COMMON, CONNECTION_OPTIONS, EXIT, guarded, say, withClient } from './client-commands.js';
import { parseWhole } from './kv-options.js';
import { renderTable, writeOutOf, type WriteOut } from './table.js';

export const LEASE_HELP = `Usage: twinstar lease grant TTL           grant a lease of TTL seconds (>= 1); prints its id
       twinstar lease keep-alive ID [--once]  keep lease ID alive until Ctrl-C, printing its TTL
       twinstar lease revoke ID          delete lease ID and every key attached to it
       twinstar lease ls [-w simple|table|json]
                                         the leases the pair holds: id, TTL, time left, keys

Attach keys with twinstar set KEY VALUE --lease ID: they are deleted when the lease expires (no
keep-alive for its TTL) or is revoked. A lease survives a failover of the pair.
  --once             one keep-alive, then exit
  -w, --write-out F  for ls: simple (default), table or json
${COMMON.replace('1 failed (no such key', '1 failed (no such lease')}\n`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  once: { type: 'boolean' },
  'write-out': { type: 'string', short: 'w', takes: 'simple, table or json' },
} as const;

const seconds = (ms: number) => Math.ceil(ms / 1000);

/** `lease ls` output. Pure. */
export function formatLeases(leases: readonly LeaseInfo[], w: WriteOut): string {
  const sorted = [...leases].sort((a, b) => a.id - b.id);
  if (w === 'json') return `${JSON.stringify({ count: sorted.length, leases: sorted })}\n`;
  if (w === 'table')
    return renderTable(
      ['ID', 'TTL', 'REMAINING', 'KEYS'],
      sorted.map((l) => [String(l.id), `${seconds(l.ttlMs)}s`, `${seconds(l.remainingMs)}s`, String(l.keys)]),
      ['TTL', 'REMAINING', 'KEYS'],
    );
  return `found ${sorted.length} leases\n${sorted.map((l) => `${l.id}\n`).join('')}`;
}

/** Resolves after `ms`, or at once when `stop` fires. */
function pause(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      stop.removeEventListener('abort', done);
      resolve();
    }
    stop.addEventListener('abort', done);
  });
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help) {
    process.stdout.write(LEASE_HELP);
    return EXIT.OK;
  }
  const [sub, ...rest] = positionals;
  const one = (what: string) => {
    if (rest.length !== 1) throw new UsageError(`lease ${sub} takes one ${what}`);
    return rest[0]!;
  };
  if (values.once !== undefined && sub !== 'keep-alive') throw new UsageError('--once goes with keep-alive');
  if (values['write-out'] !== undefined && sub !== 'ls' && sub !== 'list')
    throw new UsageError('-w goes with ls');
  if (values.mode === 'chp') throw new UsageError('leases need a twinstar server: --mode auto or native');
  // Leases are native requests; the commands read no keys (a subtree in the bus's namespace).
  const connect = <T>(body: Parameters<typeof withClient<T>>[2]) =>
    withClient({ ...values, mode: 'native' }, RESERVED_PREFIX, body);
  switch (sub) {
    case 'grant': {
      const ttl = parseSeconds('TTL', one('TTL'));
      if (ttl < 1) throw new UsageError(`TTL takes a number of seconds >= 1, not ${rest[0]}`);
      return connect(async ({ client }) => {
        const lease = await client.lease({ ttlMs: Math.round(ttl * 1000) });
        lease.close(); // no keep-alive from this process: the lease lives its TTL unless kept alive
        process.stdout.write(`${lease.id}\n`);
        say('lease', `lease ${lease.id} granted with TTL(${ttl}s)`);
        return EXIT.OK;
      });
    }
    case 'keep-alive': {
      const id = parseWhole('ID', one('ID'), 1, 'a lease id');
      return connect(async ({ client }) => {
        const stop = new AbortController();
        const interrupt = () => stop.abort();
        process.once('SIGINT', interrupt);
        process.once('SIGTERM', interrupt);
        try {
          while (!stop.signal.aborted) {
            const { ttlMs, remainingMs } = await client.leases.keepAliveOnce(id);
            process.stdout.write(`lease ${id} keepalived with TTL(${seconds(remainingMs)})\n`);
            if (values.once === true) break;
            await pause(Math.max(500, ttlMs / 3), stop.signal);
          }
          return EXIT.OK;
        } catch (error) {
          if (!(error instanceof LeaseNotFoundError)) throw error;
          say('lease', `lease ${id} expired or revoked`);
          return EXIT.FAILED;
        } finally {
          process.off('SIGINT', interrupt);
          process.off('SIGTERM', interrupt);
        }
      });
    }
    case 'revoke': {
      const id = parseWhole('ID', one('ID'), 1, 'a lease id');
      return connect(async ({ client }) => {
        try {
          await client.leases.revoke(id);
        } catch (error) {
          if (!(error instanceof LeaseNotFoundError)) throw error;
          say('lease', `lease ${id} not found (expired or revoked)`);
          return EXIT.FAILED;
        }
        process.stdout.write(`lease ${id} revoked\n`);
        return EXIT.OK;
      });
    }
    case 'ls':
    case 'list': {
      if (rest.length > 0) throw new UsageError(`lease ${sub} takes no arguments`);
      const w = writeOutOf(values['write-out'], 'simple');
      return connect(async ({ client }) => {
        process.stdout.write(formatLeases(await client.leases.list(), w));
        return EXIT.OK;
      });
    }
    default:
      throw new UsageError(
        sub === undefined ? 'lease takes grant, keep-alive, revoke or ls' : `unknown lease command ${sub}`,
      );
  }
}

export const leaseCommand = guarded('lease', run);
