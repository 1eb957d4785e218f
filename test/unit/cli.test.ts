/** The CLI's pure parts: argument parsing, the pair's port layout, and matching a CHP echo. */
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { decodeBase64, parseCommandLine, parseSeconds, UsageError } from '../../src/cli/args.js';
import { awaitEcho, matches } from '../../src/cli/confirm.js';
import { nodeArgs, pairLayout, PairUsageError } from '../../src/cli/pair-layout.js';
import type { Update } from '../../src/client/index.js';
import { ConfigError } from '../../src/errors.js';
import { bindError } from '../../src/server.js';

const SPEC = {
  ttl: { type: 'string', takes: 'a number of seconds' },
  base64: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function usage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('CLI argument parsing', () => {
  it('an option that takes a value takes the next word, even one starting with -', () => {
    expect(parseCommandLine(['/k', 'v', '--ttl', '-5'], SPEC)).to.deep.equal({
      values: { ttl: '-5' },
      positionals: ['/k', 'v'],
    });
    expect(parseCommandLine(['--ttl=30', '/k'], SPEC).values.ttl).to.equal('30');
  });

  it("'-' alone is a positional, and everything after -- is too", () => {
    expect(parseCommandLine(['/k', '-'], SPEC).positionals).to.deep.equal(['/k', '-']);
    expect(parseCommandLine(['/k', '--', '-5', '--ttl'], SPEC).positionals).to.deep.equal([
      '/k',
      '-5',
      '--ttl',
    ]);
  });

  it('short flags, booleans, and one-line messages for every mistake', () => {
    expect(parseCommandLine(['-h'], SPEC).values.help).to.equal(true);
    expect(usage(() => parseCommandLine(['--bogus'], SPEC))).to.equal('unknown option --bogus');
    expect(usage(() => parseCommandLine(['/k', '-5'], SPEC))).to.match(/^unknown option -5 .*-- -5/);
    expect(usage(() => parseCommandLine(['--ttl'], SPEC))).to.equal(
      '--ttl needs a value: a number of seconds',
    );
    expect(usage(() => parseCommandLine(['--base64=yes'], SPEC))).to.equal('--base64 takes no value');
  });

  it('--ttl takes a number of seconds >= 0 and says so otherwise', () => {
    expect(parseSeconds('--ttl', '30')).to.equal(30);
    expect(parseSeconds('--ttl', '0.5')).to.equal(0.5);
    for (const bad of ['-5', '', 'abc', '1e3', ' 3'])
      expect(usage(() => parseSeconds('--ttl', bad))).to.equal(
        `--ttl takes a number of seconds >= 0, not ${JSON.stringify(bad)}`,
      );
  });

  it('base64 is decoded strictly', () => {
    expect(decodeBase64('VALUE', 'AP8KgA==').toString('hex')).to.equal('00ff0a80');
    expect(decodeBase64('VALUE', 'AP8KgA\n').toString('hex')).to.equal('00ff0a80');
    for (const bad of ['not base64!', 'AP8Kg', '@@@@'])
      expect(usage(() => decodeBase64('VALUE', bad))).to.equal('VALUE is not valid base64');
  });
});

describe('pair port layout', () => {
  it('without flags: the well-known defaults', () => {
    const l = pairLayout([]);
    expect(l.primary).to.deep.equal({ port: 5556, heartbeatPort: 5003, httpPort: 9556 });
    expect(l.backup).to.deep.equal({ port: 5566, heartbeatPort: 5004, httpPort: 9566 });
  });

  it('--port N: the block N..N+15, peers pointing at each other', () => {
    const l = pairLayout(['--port', '6000', '--log-level', 'warn']);
    expect(l.primary).to.deep.equal({ port: 6000, heartbeatPort: 6004, httpPort: 6005 });
    expect(l.backup).to.deep.equal({ port: 6010, heartbeatPort: 6014, httpPort: 6015 });
    expect(nodeArgs(l, 'backup')).to.deep.equal([
      '--role',
      'backup',
      '--port',
      '6010',
      '--heartbeat-port',
      '6014',
      '--http-port',
      '6015',
      '--peer',
      '127.0.0.1:6000',
      '--peer-heartbeat',
      '127.0.0.1:6004',
      '--log-level',
      'warn',
    ]);
  });

  it('explicit heartbeat and HTTP ports win; the environment counts; 0 is a free port for each', () => {
    const l = pairLayout(['--port=7000', '--heartbeat-port', '7100', '--http-port=0']);
    expect(l.primary).to.deep.equal({ port: 7000, heartbeatPort: 7100, httpPort: 0 });
    expect(l.backup).to.deep.equal({ port: 7010, heartbeatPort: 7101, httpPort: 0 });
    const e = pairLayout([], { TWINSTAR_PORT: '8000', TWINSTAR_HTTP_PORT: '8500' });
    expect(e.primary).to.deep.equal({ port: 8000, heartbeatPort: 8004, httpPort: 8500 });
    expect(e.backup).to.deep.equal({ port: 8010, heartbeatPort: 8014, httpPort: 8510 });
  });

  it('a wildcard host binds everywhere but peers over loopback', () => {
    const l = pairLayout(['--host', '0.0.0.0']);
    expect(l.host).to.equal('0.0.0.0');
    expect(nodeArgs(l, 'primary')).to.include.members(['--host', '0.0.0.0', '127.0.0.1:5566']);
  });

  it('refuses bad ports, collisions and the per-node flags with one line', () => {
    const refuse = (args: string[]) => {
      try {
        pairLayout(args);
      } catch (error) {
        expect(error).to.be.instanceOf(PairUsageError);
        return (error as Error).message;
      }
      throw new Error('expected a PairUsageError');
    };
    expect(refuse(['--port', 'abc'])).to.equal('--port takes a port number (1-65535), not "abc"');
    expect(refuse(['--port', '65530'])).to.match(/above 65535/);
    expect(refuse(['--port', '6000', '--heartbeat-port', '6011'])).to.match(/port 6011 would be both/);
    // the update stream (P+3) counts: the backup's is 6013
    expect(refuse(['--port', '6000', '--heartbeat-port', '6013'])).to.match(/port 6013 would be both/);
    expect(refuse(['--peer', '10.0.0.1:5556'])).to.match(/^--peer is set by pair/);
    expect(refuse(['--port'])).to.equal('--port needs a value');
  });
});

describe('CHP write confirmation', () => {
  const update = (u: Partial<Update>): Update => ({
    key: '/k',
    value: Buffer.from('v'),
    seq: 10,
    deleted: false,
    resync: false,
    ...u,
  });

  it('matches the same key and value (or a delete) after the sequence it started from', () => {
    expect(matches(update({}), '/k', Buffer.from('v'), 9)).to.equal(true);
    expect(matches(update({ seq: 9 }), '/k', Buffer.from('v'), 9)).to.equal(false);
    expect(matches(update({ key: '/k2' }), '/k', Buffer.from('v'), 9)).to.equal(false);
    expect(matches(update({ value: Buffer.from('w') }), '/k', Buffer.from('v'), 9)).to.equal(false);
    expect(matches(update({ deleted: true, value: undefined }), '/k', Buffer.from('v'), 9)).to.equal(false);
    expect(matches(update({ deleted: true, value: undefined }), '/k', undefined, 9)).to.equal(true);
    expect(matches(update({}), '/k', undefined, 9)).to.equal(false);
  });

  it('resolves with the sequence of the echo, and detaches', async () => {
    const client = new EventEmitter();
    const echo = awaitEcho(client as never, '/k', Buffer.from('v'), 5, 10_000);
    client.emit('update', update({ seq: 4 }));
    client.emit('update', update({ seq: 6, value: Buffer.from('other') }));
    client.emit('update', update({ seq: 7 }));
    expect(await echo.seen).to.equal(7);
    expect(client.listenerCount('update')).to.equal(0);
  });

  it('resolves undefined when nothing matches in time, or when cancelled', async () => {
    const client = new EventEmitter();
    const late = awaitEcho(client as never, '/k', Buffer.from('v'), 5, 20);
    client.emit('update', update({ seq: 3 }));
    expect(await late.seen).to.equal(undefined);
    const cancelled = awaitEcho(client as never, '/k', Buffer.from('v'), 5, 10_000);
    cancelled.cancel();
    expect(await cancelled.seen).to.equal(undefined);
    expect(client.listenerCount('update')).to.equal(0);
  });
});

describe('bind errors at start-up', () => {
  const config = { port: 5556, heartbeatPort: 5003, httpPort: 9556 } as never;

  it('name the endpoint and the setting, for ZeroMQ and HTTP sockets', () => {
    const zmq = Object.assign(new Error('Address already in use'), {
      code: 'EADDRINUSE',
      address: 'tcp://127.0.0.1:5003',
    });
    const hb = bindError(zmq, config)!;
    expect(hb).to.be.instanceOf(ConfigError);
    expect(hb.message).to.equal('cannot bind tcp://127.0.0.1:5003: address already in use');
    expect(hb.setting).to.equal('heartbeatPort');
    const snapshot = bindError({ ...zmq, address: 'tcp://127.0.0.1:5557' }, config)!;
    expect(snapshot.setting).to.equal('port');
    const http = bindError(
      Object.assign(new Error('listen EACCES'), {
        code: 'EACCES',
        address: '0.0.0.0',
        port: 80,
        syscall: 'listen',
      }),
      config,
    )!;
    expect(http.message).to.equal('cannot bind http://0.0.0.0:80: permission denied');
    expect(http.setting).to.equal('httpPort');
  });

  it('leave other errors alone', () => {
    expect(bindError(new Error('boom'), config)).to.equal(undefined);
    expect(bindError(undefined, config)).to.equal(undefined);
  });
});
