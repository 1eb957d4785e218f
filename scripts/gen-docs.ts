/**
 * Regenerates the parts of docs/ that are derived from code, so they cannot drift:
 *   docs/configuration.md   from the convict schema (src/config)
 *   docs/binary-star.md     the state diagram between the GENERATED markers, from the FSM table
 * Run: npm run docs. test/unit/docs.test.ts fails when the committed docs are stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeSettings } from '../src/config/index.js';
import { EVENT_KINDS, STATES, mermaid, ruleName } from '../src/fsm/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export function configurationDoc(): string {
  const rows = describeSettings().map(
    (s) =>
      `| \`${s.flag}\` | \`${s.env}\` | ${s.default === null ? 'by role' : `\`${JSON.stringify(s.default)}\``} | ${s.doc} |`,
  );
  return [
    '# Configuration',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs`; edit the schema, not this file. -->',
    '',
    'Every setting can be given as a command-line flag of `twinstar server`, as an environment',
    'variable, or in a JSON file named by `--config FILE` or `TWINSTAR_CONFIG` (keys as in the',
    'schema, e.g. `{"heartbeatMs": 100}`). Flags win over the environment, which wins over the file.',
    'A bad value stops start-up with one line naming the setting and exit code 2; so does a port',
    'that cannot be bound (`twinstar: cannot bind tcp://127.0.0.1:5556: address already in use`).',
    '',
    '"By role" defaults let a primary and a backup pair on one host with no flags: the primary uses',
    'snapshot port 5556, heartbeat port 5003 and HTTP port 9556 and looks for its peer at',
    '127.0.0.1:5566 / 127.0.0.1:5004; the backup is the mirror image (5566, 5004, 9566).',
    '`twinstar pair --port N` moves both nodes of a local pair to ports N..N+14 (README, Command line).',
    '`heartbeatMs` and `failoverMs` must be equal on both nodes: a node refuses to pair otherwise.',
    '',
    '| flag | environment | default | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    ...MEMORY_BOUNDS,
  ].join('\n');
}

/** What bounds the memory of a node, and what is not bounded by bytes (issue 13 B4). */
const MEMORY_BOUNDS = [
  '## Memory bounds',
  '',
  'Every structure a client or a peer can grow is bounded in bytes, not only in count:',
  '',
  '- **Requests**: a subtree (`ICANHAZ?`, `TSNAP`, `TRESUME`) or follow prefix longer than',
  '  `max-subtree-bytes`, or a `TFOLLOW` with more than `max-follow-prefixes` prefixes, is dropped',
  '  before anything is kept for it and counted in `twinstar_dropped_messages_total` (reason',
  '  `subtree-too-long` or `too-many-prefixes`); a native request gets `TERROR` with that reason.',
  "- **Frames**: every socket sets ZeroMQ's `maxMessageSize` (per frame; a larger frame disconnects",
  "  its sender before it is read), derived from the limits: the collector and a client's SUB",
  '  accept the largest kvmsg frame (`max-value-bytes` and the key/properties limits, plus 4 KiB),',
  '  the publisher and the peer PUB only a subscription (`max-subtree-bytes` + 4 KiB), the peer SUB',
  "  and a client's DEALER one packed chunk (snapshot chunks and replication batches are split at",
  '  twice the largest entry, about 2 MiB by default), and the snapshot ROUTER a native write',
  '  batch of twice `max-batch-bytes` (32 MiB by default): a `TSET` above `max-batch-bytes` or',
  '  `max-batch-entries` is read, refused with `TERROR` `batch-too-large` naming both limits and',
  '  counted, so that a client with larger limits learns them; a larger frame disconnects.',
  '- **Replay log**: at most `replay-log-size` changes and `replay-log-bytes` bytes; the oldest go',
  '  first (`twinstar_replay_log_evicted_total`), and a passive or client resuming from before them',
  '  gets a snapshot. Held: `twinstar_replay_log_bytes`, `twinstar_replay_log_entries`.',
  '- **Pending list** (passive, Model Six): at most `pending-max` updates and `pending-max-bytes`',
  '  bytes, none older than `pending-max-age-ms`; the oldest go first, counted in',
  '  `twinstar_pending_dropped_total{reason="count|bytes|age"}`. Held: `twinstar_pending_bytes`.',
  '- **Snapshot streams** (`ICANHAZ?`, `TSNAP`, `TRESUME`): a stream walks a point-in-time array of',
  '  references to the entries (8 bytes each; entries replaced since stay alive until it ends) and',
  "  encodes each message only when it sends it; the client's pipe holds up to `client-queue`",
  '  messages more. At most `max-snapshot-streams` are in progress (waiting for durability',
  '  included): beyond it a native request gets `TERROR` `busy` (the client backs off a few hundred',
  '  ms and asks again) and an `ICANHAZ?` no answer, both counted in',
  '  `twinstar_snapshot_refused_total{reason="server-busy"}` and as dropped (`busy`). One client',
  '  connection has at most `max-snapshot-streams-per-client`: a request beyond it stops its oldest',
  '  (`reason="superseded"`). A stream stops at once when its client is gone (a send to it finds no',
  '  route), and when the client has taken nothing for `snapshot-idle-ms`. In progress:',
  '  `twinstar_snapshot_streams`. Measured (100k keys of 100 bytes, one connection asking 20',
  '  snapshots a second for 5 s without reading, 5 more asking and leaving): peak RSS +82 MB, was',
  '  +984 MB.',
  '  Bytes: a stream in progress can hold at most min(all its bytes, `client-queue` x its largest',
  '  message) in its pipe; the streams in progress together hold at most `max-snapshot-bytes` of',
  '  that, one stream at most `max-snapshot-bytes-per-client` (when full-size native chunks would not fit it, they are cut to',
  '  `max-snapshot-bytes-per-client` / `client-queue`, at least 4 KiB, so a full pipe fits). A stream',
  '  that does not fit is refused like one beyond the stream cap (`reason="bytes-busy"`), unless',
  '  no other stream holds bytes: an oversize snapshot is still served, alone. Held:',
  '  `twinstar_snapshot_stream_bytes`. Once its last message is in the pipe a stream has ended;',
  "  what its client has not read yet is bounded by that connection's pipe like any reply.",
  '',
  'Sizes count an entry as its key, properties, uuid and value plus about 160 bytes of overhead.',
  '',
  '**Subscribers** are not capped: ZeroMQ gives no way to refuse one connection on a PUB. Each',
  'subscriber that stops reading can make the publisher queue up to `publisher-queue` updates for',
  'it; libzmq keeps a 64-byte message per frame, 5 per update, so about 32 MB per such subscriber at',
  'the default of 100,000 (measured: 33 MB each for 4 idle subscribers over 120,000 updates). The',
  'values themselves are shared by all subscribers, but those of the last `publisher-queue` updates',
  'stay in memory while any subscriber lags that far. `twinstar_connected_clients` counts',
  'subscribers and `twinstar_subscriber_queue_bound_bytes` gives that bound for them; lower',
  '`publisher-queue` where many untrusted subscribers may connect (a subscriber that falls further',
  'behind misses updates and resyncs), and use `--curve` to admit only listed clients. The update',
  "stream (P+3, twinstar's own clients) bounds each subscriber in bytes too: past its socket's",
  'buffer it is queued at most `publisher-queue` messages and `publisher-queue-bytes` bytes (64 MiB',
  "by default, NATS's `max_pending`), each message a reference to a batch all its subscribers",
  'share; one that falls further behind is disconnected and resumes on reconnecting',
  '(`twinstar_slow_subscribers_total`). So a stalled native client pins at most 64 MiB of updates.',
  '',
  'RSS may stay near its peak after a burst even when the data is freed: glibc keeps large freed',
  'blocks for reuse. `MALLOC_MMAP_THRESHOLD_=65536` in the environment returns them at once.',
  '',
];

export function fsmTable(): string {
  const header = `| state | ${EVENT_KINDS.map((k) => (k === 'CLIENT_REQUEST' ? 'client request' : `peer ${k}`)).join(' | ')} |`;
  const sep = `| --- | ${EVENT_KINDS.map(() => '---').join(' | ')} |`;
  const rows = STATES.map((s) => `| ${s} | ${EVENT_KINDS.map((k) => ruleName(s, k)).join(' | ')} |`);
  return [header, sep, ...rows].join('\n');
}

export function binaryStarGenerated(): string {
  return [
    '```mermaid',
    mermaid(),
    '```',
    '',
    'The rule in each cell (from `TABLE` in src/fsm/binary-star.ts):',
    '',
    fsmTable(),
  ].join('\n');
}

const BEGIN = '<!-- BEGIN GENERATED: npm run docs -->';
const END = '<!-- END GENERATED -->';

export function withGenerated(doc: string, generated: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start === -1 || end === -1) throw new Error('docs/binary-star.md lacks the GENERATED markers');
  return `${doc.slice(0, start + BEGIN.length)}\n${generated}\n${doc.slice(end)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(`${root}docs/configuration.md`, configurationDoc());
  const star = `${root}docs/binary-star.md`;
  writeFileSync(star, withGenerated(readFileSync(star, 'utf8'), binaryStarGenerated()));
  console.log('docs/configuration.md and docs/binary-star.md regenerated');
}
