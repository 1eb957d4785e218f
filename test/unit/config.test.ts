/**
 * loadConfig (src/config/load.ts): role-dependent defaults, the precedence file < env < flags,
 * and one-line ConfigErrors naming the bad setting.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type LoadOptions } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

function configError(options: LoadOptions): ConfigError {
  try {
    loadConfig(options);
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.code).to.equal('ERR_CONFIG_INVALID');
    expect(e.message, 'one line').to.not.include('\n');
    return e;
  }
  expect.fail(`loadConfig(${JSON.stringify(options)}) did not throw`);
}

describe('loadConfig', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'twinstar-config-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  describe('defaults by role', () => {
    it('primary: 5556 / 5003 / 9556, peer 127.0.0.1:5566, peer heartbeat 127.0.0.1:5004', () => {
      const c = loadConfig({ args: ['--role', 'primary'], env: {} });
      expect(c).to.deep.include({
        role: 'primary',
        name: 'primary',
        host: '127.0.0.1',
        port: 5556,
        heartbeatPort: 5003,
        httpPort: 9556,
        peer: '127.0.0.1:5566',
        peerHeartbeat: '127.0.0.1:5004',
        heartbeatHost: '127.0.0.1',
        httpHost: '127.0.0.1',
        heartbeatMs: 100,
        failoverMs: 500,
      });
    });

    it('backup: 5566 / 5004 / 9566, peer 127.0.0.1:5556, peer heartbeat 127.0.0.1:5003', () => {
      const c = loadConfig({ args: ['--role', 'backup'], env: {} });
      expect(c).to.deep.include({
        role: 'backup',
        name: 'backup',
        port: 5566,
        heartbeatPort: 5004,
        httpPort: 9566,
        peer: '127.0.0.1:5556',
        peerHeartbeat: '127.0.0.1:5003',
      });
    });

    it('single is the default role, with the primary ports', () => {
      const c = loadConfig({ env: {} });
      expect(c).to.deep.include({ role: 'single', port: 5556, heartbeatPort: 5003, httpPort: 9556 });
    });

    it("the peer heartbeat defaults to the peer's host", () => {
      const c = loadConfig({ args: ['--role', 'backup', '--peer', 'primary.internal:5556'], env: {} });
      expect(c.peerHeartbeat).to.equal('primary.internal:5003');
    });
  });

  describe('sources', () => {
    it('TWINSTAR_* environment variables override defaults', () => {
      const c = loadConfig({
        env: {
          TWINSTAR_ROLE: 'backup',
          TWINSTAR_NAME: 'b1',
          TWINSTAR_HEARTBEAT_MS: '50',
          TWINSTAR_FAILOVER_MS: '300',
          TWINSTAR_PEER: '10.0.0.1:7000',
          TWINSTAR_LOG_LEVEL: 'debug',
        },
      });
      expect(c).to.deep.include({
        role: 'backup',
        name: 'b1',
        heartbeatMs: 50,
        failoverMs: 300,
        peer: '10.0.0.1:7000',
        logLevel: 'debug',
      });
      expect(c.port).to.equal(5566);
    });

    it('TWINSTAR_PORT, TWINSTAR_HEARTBEAT_PORT and TWINSTAR_HTTP_PORT override the port defaults', () => {
      const c = loadConfig({
        env: {
          TWINSTAR_ROLE: 'primary',
          TWINSTAR_PORT: '6000',
          TWINSTAR_HEARTBEAT_PORT: '6100',
          TWINSTAR_HTTP_PORT: '0',
        },
      });
      expect(c).to.deep.include({ port: 6000, heartbeatPort: 6100, httpPort: 0 });
    });

    it('flags override environment variables', () => {
      const c = loadConfig({
        args: ['--role', 'primary', '--heartbeat-ms', '40', '--failover-ms=400', '--name', 'flagged'],
        env: {
          TWINSTAR_ROLE: 'backup',
          TWINSTAR_HEARTBEAT_MS: '50',
          TWINSTAR_FAILOVER_MS: '300',
          TWINSTAR_NAME: 'env',
        },
      });
      expect(c).to.deep.include({ role: 'primary', heartbeatMs: 40, failoverMs: 400, name: 'flagged' });
    });

    it('a --port flag overrides TWINSTAR_PORT', () => {
      const c = loadConfig({ args: ['--port', '7000'], env: { TWINSTAR_PORT: '6000' } });
      expect(c.port).to.equal(7000);
    });

    it('a JSON file via `file` sets values, and env and flags override it', () => {
      const path = file(
        'node.json',
        JSON.stringify({ role: 'backup', port: 6600, heartbeatMs: 20, failoverMs: 200, name: 'from-file' }),
      );
      const fromFile = loadConfig({ file: path, env: {} });
      expect(fromFile).to.deep.include({
        role: 'backup',
        port: 6600,
        heartbeatMs: 20,
        failoverMs: 200,
        name: 'from-file',
        heartbeatPort: 5004,
      });
      const overridden = loadConfig({
        file: path,
        env: { TWINSTAR_NAME: 'from-env', TWINSTAR_HEARTBEAT_MS: '30' },
        args: ['--failover-ms', '900'],
      });
      expect(overridden).to.deep.include({ name: 'from-env', heartbeatMs: 30, failoverMs: 900, port: 6600 });
    });

    it('TWINSTAR_CONFIG names the file when `file` is not given', () => {
      const path = file('via-env.json', JSON.stringify({ name: 'via-env' }));
      expect(loadConfig({ env: { TWINSTAR_CONFIG: path } }).name).to.equal('via-env');
    });

    it('is isolated from process.env when env is given', () => {
      const saved = process.env.TWINSTAR_ROLE;
      process.env.TWINSTAR_ROLE = 'backup';
      try {
        expect(loadConfig({ env: {} }).role).to.equal('single');
      } finally {
        if (saved === undefined) delete process.env.TWINSTAR_ROLE;
        else process.env.TWINSTAR_ROLE = saved;
      }
    });
  });

  describe('bad values: one line naming the setting', () => {
    it("port 'abc'", () => {
      for (const options of [{ env: { TWINSTAR_PORT: 'abc' } }, { args: ['--port', 'abc'], env: {} }]) {
        const e = configError(options);
        expect(e.setting).to.equal('port');
        expect(e.message).to.match(/\bport\b/);
      }
    });

    it('a port whose update stream (P+3) would pass 65535', () => {
      const e = configError({ file: file('high.json', JSON.stringify({ port: 65533 })), env: {} });
      expect(e.setting).to.equal('port');
      expect(e.message).to.equal('invalid configuration: port: P+3 must be at most 65535');
    });

    it("role 'x'", () => {
      const e = configError({ args: ['--role', 'x'], env: {} });
      expect(e.setting).to.equal('role');
      expect(e.message).to.include('role');
    });

    it('heartbeatMs -1', () => {
      for (const options of [
        { env: { TWINSTAR_HEARTBEAT_MS: '-1' } },
        { args: ['--heartbeat-ms=-1'], env: {} },
      ]) {
        const e = configError(options);
        expect(e.setting).to.equal('heartbeatMs');
        expect(e.message).to.include('heartbeatMs');
      }
    });

    it('failoverMs below twice heartbeatMs', () => {
      const e = configError({ env: { TWINSTAR_HEARTBEAT_MS: '100', TWINSTAR_FAILOVER_MS: '199' } });
      expect(e.setting).to.equal('failoverMs');
      expect(e.message).to.include('failoverMs');
      expect(
        loadConfig({ env: { TWINSTAR_HEARTBEAT_MS: '100', TWINSTAR_FAILOVER_MS: '200' } }).failoverMs,
      ).to.equal(200);
    });

    it('maxBatchBytes below one largest write the other limits allow', () => {
      const e = configError({ args: ['--max-value-bytes', '1000', '--max-batch-bytes', '2000'], env: {} });
      expect(e.setting).to.equal('maxBatchBytes');
      expect(e.message).to.include('maxBatchBytes');
      // 25 fixed bytes + key 1024 + uuid 255 + properties 4096 + value 1000 = 6400
      const fits = loadConfig({ args: ['--max-value-bytes', '1000', '--max-batch-bytes', '6400'], env: {} });
      expect(fits.maxBatchBytes).to.equal(6400);
      const config = loadConfig({ env: { TWINSTAR_MAX_BATCH_ENTRIES: '500' } });
      expect(config.maxBatchEntries).to.equal(500);
      expect(configError({ args: ['--max-batch-entries', '0'], env: {} }).setting).to.equal(
        'maxBatchEntries',
      );
    });

    it('dedupeMs below one second; 1000 and the 30 s default are accepted', () => {
      for (const options of [
        { args: ['--dedupe-ms', '999'], env: {} },
        { env: { TWINSTAR_DEDUPE_MS: '0' } },
        { args: ['--dedupe-ms=1500.5'], env: {} },
      ]) {
        const e = configError(options);
        expect(e.setting).to.equal('dedupeMs');
        expect(e.message).to.match(/^invalid configuration: dedupeMs: must be/);
      }
      expect(loadConfig({ args: ['--dedupe-ms', '1000'], env: {} }).dedupeMs).to.equal(1000);
      expect(loadConfig({ env: {} })).to.deep.include({ dedupeMs: 30_000, dedupeSize: 3_000_000 });
    });

    it('a key or properties limit a packed entry cannot store (over 65535 bytes); 65535 is accepted', () => {
      const keys = configError({ args: ['--max-key-bytes', '65536'], env: {} });
      expect(keys.setting).to.equal('maxKeyBytes');
      expect(keys.message).to.match(/^invalid configuration: maxKeyBytes: must be at most 65535/);
      const props = configError({ env: { TWINSTAR_MAX_PROPERTIES_BYTES: '100000' } });
      expect(props.setting).to.equal('maxPropertiesBytes');
      expect(loadConfig({ args: ['--max-key-bytes', '65535'], env: {} }).maxKeyBytes).to.equal(65535);
    });

    it('unknown flag --bogus', () => {
      for (const args of [['--bogus'], ['--bogus=1'], ['--role', 'primary', '--bogus', 'x']]) {
        const e = configError({ args, env: {} });
        expect(e.setting).to.equal('bogus');
        expect(e.message).to.include('--bogus');
      }
    });

    it("malformed peer 'nohost'", () => {
      for (const options of [{ args: ['--peer', 'nohost'], env: {} }, { env: { TWINSTAR_PEER: 'nohost' } }]) {
        const e = configError(options);
        expect(e.setting).to.equal('peer');
        expect(e.message).to.include('peer');
      }
      expect(configError({ env: { TWINSTAR_PEER_HEARTBEAT: 'host:port' } }).setting).to.equal(
        'peerHeartbeat',
      );
    });

    it('a file that is not JSON, or has an unknown key', () => {
      const bad = configError({ file: file('bad.json', '{ role: '), env: {} });
      expect(bad.message).to.include('bad.json');
      const unknown = configError({
        file: file('unknown.json', JSON.stringify({ colour: 'blue' })),
        env: {},
      });
      expect(unknown.message).to.include('colour');
    });
  });
});
