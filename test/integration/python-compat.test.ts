/**
 * Wire compatibility from outside Node: an independent CHP (RFC 12) client written in Python on
 * libzmq (test/compat/chp_client.py, Debian's python3-zmq) talks to a real single twinstar server
 * started through the CLI. It shares no code with twinstar, so these tests catch any drift of the
 * wire contract in DESIGN.md ("The CHP wire contract") that twinstar's own client would not notice.
 *
 * Needs the compiled server: `npx tsc -p tsconfig.build.json` first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  freePorts,
  requireTool,
  startSingle,
  waitFor,
  within,
  type ServerProcess,
} from '../helpers/index.js';

/** The system python: Debian's python3-zmq lives there, not in a pyenv python on PATH. */
const PYTHON = '/usr/bin/python3';
const CLIENT = fileURLToPath(new URL('../compat/chp_client.py', import.meta.url));

interface PyResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface SnapshotEntry {
  seq: number;
  value: string;
  props: string;
  uuid: string;
}

interface Snapshot {
  sequence: number;
  entries: Record<string, SnapshotEntry>;
}

interface SetResult {
  sent: boolean;
  key: string;
  value: string;
  props: string;
  uuid: string;
}

interface FollowLine {
  event: 'ready' | 'update' | 'done';
  sequence?: number;
  keys?: number;
  key?: string;
  seq?: number;
  value?: string;
  props?: string;
  snapshot_sequence?: number;
  applied?: number[];
  hugz?: number;
  entries?: Record<string, SnapshotEntry>;
}

function describeRun(args: string[], result: PyResult): string {
  return `chp_client.py ${args.join(' ')} exited with ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
}

/** Runs the Python client to completion; the child is killed if it outlives `ms`. */
async function runPython(args: string[], ms = 10_000): Promise<PyResult> {
  const child = spawn(PYTHON, [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  try {
    // 'close' (not 'exit') so that stdout and stderr are fully read
    const [code] = (await within(once(child, 'close'), ms, `chp_client.py ${args.join(' ')}`)) as [
      number | null,
    ];
    return { code, stdout, stderr };
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\nstdout: ${stdout}\nstderr: ${stderr}`);
  }
}

/** A long-running `follow`: its JSON lines as they arrive, and its exit. */
class Follower {
  readonly lines: FollowLine[] = [];
  readonly exited: Promise<PyResult>;
  private readonly child: ChildProcess;
  private stdout = '';
  private stderr = '';
  private buffered = '';

  constructor(readonly args: string[]) {
    this.child = spawn(PYTHON, [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) !== -1) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        if (line.trim() !== '') this.lines.push(JSON.parse(line) as FollowLine);
      }
    });
    const closed = once(this.child, 'close') as Promise<[number | null]>;
    this.exited = closed.then(([code]) => ({ code, stdout: this.stdout, stderr: this.stderr }));
    this.exited.catch(() => undefined);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the `ready` line: subscribed (a HUGZ came through) and the snapshot is in. */
  async ready(ms = 10_000): Promise<FollowLine> {
    return waitFor(
      () => {
        const line = this.lines.find((l) => l.event === 'ready');
        if (line) return line;
        if (!this.running) throw new Error(`follow exited before ready: ${this.stderr}`);
        return undefined;
      },
      ms,
      `python follow ${this.args.join(' ')} to be ready`,
    );
  }

  /** Waits for a clean exit and returns the final `done` line. */
  async done(ms = 15_000): Promise<FollowLine> {
    const result = await within(this.exited, ms, `python follow ${this.args.join(' ')}`);
    expect(result.code, describeRun(this.args, result)).to.equal(0);
    const done = this.lines.find((l) => l.event === 'done');
    expect(done, describeRun(this.args, result)).to.not.equal(undefined);
    return done!;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

describe('wire compatibility with an independent Python CHP client (pyzmq)', function () {
  this.timeout(60_000);

  let server: ServerProcess | undefined;
  let endpoint = '';
  const followers: Follower[] = [];

  async function chp(args: string[], ms?: number): Promise<PyResult> {
    const full = ['--endpoint', endpoint, ...args];
    const result = await runPython(full, ms);
    expect(result.code, describeRun(full, result)).to.equal(0);
    return result;
  }

  async function set(key: string, value: string, ttl?: number): Promise<SetResult> {
    const result = await chp(['set', key, value, ...(ttl === undefined ? [] : ['--ttl', String(ttl)])]);
    return JSON.parse(result.stdout) as SetResult;
  }

  async function del(key: string): Promise<SetResult> {
    return JSON.parse((await chp(['del', key])).stdout) as SetResult;
  }

  async function snapshot(subtree = ''): Promise<Snapshot> {
    return JSON.parse((await chp(['snapshot', subtree])).stdout) as Snapshot;
  }

  function follow(subtree: string, count: number): Follower {
    const follower = new Follower([
      '--endpoint',
      endpoint,
      '--timeout',
      '20',
      'follow',
      subtree,
      '--count',
      String(count),
    ]);
    followers.push(follower);
    return follower;
  }

  before(async function () {
    requireTool(
      this,
      PYTHON,
      ['-c', 'import zmq'],
      "install Debian's python3-zmq (apt-get install -y python3-zmq)",
    );
    const port = await freePorts(5); // P..P+2 for CHP, P+3 for the update stream, P+4 for HTTP
    server = startSingle(port, port + 4);
    endpoint = server.endpoint;
    // Fail fast (with the server's own words) if it exits instead of coming up.
    const child = server.child;
    const exited = new Promise<never>((_, reject) =>
      child.once('close', (code, signal) => reject(new Error(`server exited with ${code ?? signal}`))),
    );
    exited.catch(() => undefined);
    try {
      await Promise.race([server.ready('ACTIVE', 15_000), exited]);
    } catch (error) {
      const logs = server.logLines.map((line) => JSON.stringify(line)).join('\n');
      throw new Error(`the twinstar server did not start: ${(error as Error).message}\n${logs}`);
    }
  });

  afterEach(function () {
    for (const follower of followers.splice(0)) follower.kill();
  });

  after(async function () {
    await server?.stop();
  });

  it('stores KVSETs from Python and returns them in a Python snapshot, in order, with properties', async function () {
    const writes = [
      await set('/py-set/a', 'alpha'),
      await set('/py-set/b', 'beta', 300),
      await set('/py-set/c', 'gamma – ünïcode'),
    ];
    expect(writes[1]!.props).to.equal('ttl=300\n');

    const snap = await snapshot('/py-set/');
    expect(Object.keys(snap.entries).sort()).to.deep.equal(['/py-set/a', '/py-set/b', '/py-set/c']);
    const [a, b, c] = ['/py-set/a', '/py-set/b', '/py-set/c'].map((k) => snap.entries[k]!);
    expect(a!.value).to.equal('alpha');
    expect(b!.value).to.equal('beta');
    expect(c!.value).to.equal('gamma – ünïcode');
    expect(a!.seq).to.be.greaterThan(0);
    expect(b!.seq).to.be.greaterThan(a!.seq);
    expect(c!.seq).to.be.greaterThan(b!.seq);
    expect(snap.sequence).to.be.at.least(c!.seq);
    // the stored uuid is the client's and the ttl property is kept
    writes.forEach((w) => expect(snap.entries[w.key]!.uuid).to.equal(w.uuid));
    expect(a!.props).to.equal('');
    expect(b!.props).to.match(/(^|\n)ttl=\d+\n/);
    expect(c!.props).to.equal('');

    // KTHXBAI carries the server's current sequence
    const status = await server!.status();
    expect(snap.sequence).to.equal(status.sequence);
  });

  it('expires a key set from Python with a ttl, as a sequenced delete', async function () {
    await set('/py-ttl/stays', 'here');
    // Watch instead of polling: a one-second key may be gone before a snapshot could look at it.
    const follower = follow('/py-ttl/', 2);
    const ready = await follower.ready();
    const write = await set('/py-ttl/short', 'soon gone', 1);
    expect(write.props).to.equal('ttl=1\n');
    const done = await follower.done();

    const updates = follower.lines.filter((l) => l.event === 'update');
    expect(updates.map((u) => [u.key, u.value])).to.deep.equal([
      ['/py-ttl/short', 'soon gone'],
      ['/py-ttl/short', ''], // the expiry: a delete with the next sequence number
    ]);
    expect(done.applied).to.deep.equal([ready.sequence! + 1, ready.sequence! + 2]);
    expect(Object.keys(done.entries!)).to.deep.equal(['/py-ttl/stays']);
    const snap = await snapshot('/py-ttl/');
    expect(Object.keys(snap.entries)).to.deep.equal(['/py-ttl/stays']);
    expect(snap.sequence).to.be.at.least(ready.sequence! + 2);
  });

  it('delivers updates published after a Python follow started, with no gap and no duplicate', async function () {
    await set('/py-follow/pre', 'before the snapshot');
    const follower = follow('/py-follow/', 3);
    const ready = await follower.ready();
    expect(ready.keys).to.equal(1);

    await set('/py-follow/x', 'one');
    await set('/py-follow/y', 'two');
    await set('/py-follow/x', 'three');
    const done = await follower.done();

    // Only this test writes while it runs: the three updates take the next three sequence numbers.
    const start = ready.sequence!;
    expect(done.snapshot_sequence).to.equal(start);
    expect(done.applied).to.deep.equal([start + 1, start + 2, start + 3]);
    const updates = follower.lines.filter((l) => l.event === 'update');
    expect(updates.map((u) => [u.key, u.value])).to.deep.equal([
      ['/py-follow/x', 'one'],
      ['/py-follow/y', 'two'],
      ['/py-follow/x', 'three'],
    ]);
    expect(done.hugz).to.be.a('number');

    // the follower's replica equals the server's state for the subtree
    const snap = await snapshot('/py-follow/');
    expect(snap.sequence).to.equal(start + 3);
    expect(done.entries).to.deep.equal(snap.entries);
    expect(done.entries!['/py-follow/x']!.value).to.equal('three');
    expect(done.entries!['/py-follow/pre']!.value).to.equal('before the snapshot');
  });

  it('filters by subtree: keys outside it are neither in the snapshot nor delivered', async function () {
    await set('/py-sub/in/pre', 'inside');
    await set('/py-sub/out/pre', 'outside');
    await set('/py-sub/inside-but-no-slash', 'outside too');

    const snap = await snapshot('/py-sub/in/');
    expect(Object.keys(snap.entries)).to.deep.equal(['/py-sub/in/pre']);

    const follower = follow('/py-sub/in/', 2);
    await follower.ready();
    // The writes outside the subtree come first: had they been delivered, the follower would have
    // seen them before its second update (and chp_client.py exits with 4 on a key outside it).
    await set('/py-sub/out/x', 'not for you');
    await set('/py-sub/in/a', 'first');
    await set('/py-sub/inx', 'not for you either');
    await set('/py-sub/in/b', 'second');
    const done = await follower.done();

    const keys = follower.lines.filter((l) => l.event === 'update').map((l) => l.key);
    expect(keys).to.deep.equal(['/py-sub/in/a', '/py-sub/in/b']);
    const all = await snapshot('/py-sub/');
    expect(done.applied).to.deep.equal([all.entries['/py-sub/in/a']!.seq, all.entries['/py-sub/in/b']!.seq]);
    expect(Object.keys(done.entries!).sort()).to.deep.equal([
      '/py-sub/in/a',
      '/py-sub/in/b',
      '/py-sub/in/pre',
    ]);
    // the outside keys do exist on the server: they were filtered, not lost
    expect(all.entries).to.include.keys('/py-sub/out/x', '/py-sub/inx', '/py-sub/out/pre');
  });

  it('deletes a key when Python sends an empty body', async function () {
    await set('/py-del/gone', 'doomed');
    await set('/py-del/kept', 'safe');
    expect((await snapshot('/py-del/')).entries).to.have.property('/py-del/gone');

    const follower = follow('/py-del/', 1);
    await follower.ready();
    const deletion = await del('/py-del/gone');
    expect(deletion.value).to.equal('');
    const done = await follower.done();

    const update = follower.lines.find((l) => l.event === 'update')!;
    expect(update.key).to.equal('/py-del/gone');
    expect(update.value).to.equal('');
    expect(done.entries).to.not.have.property('/py-del/gone');
    expect(done.entries).to.have.property('/py-del/kept');

    const snap = await snapshot('/py-del/');
    expect(snap.entries).to.not.have.property('/py-del/gone');
    expect(snap.entries).to.have.property('/py-del/kept');
    expect(snap.sequence).to.equal(update.seq);
    expect((await snapshot()).entries).to.not.have.property('/py-del/gone');
  });
});
