/**
 * The storage settings (issue 15): --data-dir, --memory, --fsync, --pair-id, and the data folder
 * each node of `twinstar pair` gets.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { nodeArgs, pairLayout } from '../../src/cli/pair-layout.js';

function refused(args: string[], env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    loadConfig({ args, env });
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).message, 'one line').to.not.include('\n');
    return error as ConfigError;
  }
  return expect.fail(`${args.join(' ')} was accepted`);
}

describe('storage settings', () => {
  it('by default a node keeps its data in data/NAME, fsync batch', () => {
    const c = loadConfig({ args: ['--role', 'backup'], env: {} });
    expect(c).to.deep.include({ dataDir: join('data', 'backup'), memory: false, fsync: 'batch', pairId: '' });
    expect(loadConfig({ args: ['--name', 'n7'], env: {} }).dataDir).to.equal(join('data', 'n7'));
  });

  it('--data-dir, --fsync and --pair-id are taken from flags and the environment', () => {
    const c = loadConfig({ args: ['--data-dir', '/tmp/x', '--fsync', 'always', '--pair-id', 'p1'], env: {} });
    expect(c).to.deep.include({ dataDir: '/tmp/x', fsync: 'always', pairId: 'p1' });
    const e = loadConfig({ env: { TWINSTAR_DATA_DIR: '/tmp/y', TWINSTAR_FSYNC: 'off' } });
    expect(e).to.deep.include({ dataDir: '/tmp/y', fsync: 'off' });
  });

  it("--memory keeps today's behaviour: no data directory", () => {
    expect(loadConfig({ args: ['--memory'], env: {} })).to.deep.include({ memory: true, dataDir: '' });
    expect(loadConfig({ env: { TWINSTAR_MEMORY: 'true' } })).to.deep.include({ memory: true, dataDir: '' });
    // it wins over a data dir from the environment (the image sets TWINSTAR_DATA_DIR=/data)
    const both = loadConfig({ args: ['--memory'], env: { TWINSTAR_DATA_DIR: '/data' } });
    expect(both).to.deep.include({ memory: true, dataDir: '' });
  });

  it('bad values stop start-up with one line naming the setting', () => {
    // TWINSTAR_MEMORY=0 must not mean "in memory" (convict's Boolean would take it as true)
    expect(loadConfig({ env: { TWINSTAR_MEMORY: '0' } }).memory).to.equal(false);
    expect(loadConfig({ env: { TWINSTAR_MEMORY: 'false' } }).memory).to.equal(false);
    for (const value of ['', 'yes']) {
      const memory = refused([], { TWINSTAR_MEMORY: value });
      expect(memory.setting).to.equal('memory');
    }
    for (const options of [{ args: ['--fsync', 'sometimes'] }, { env: { TWINSTAR_FSYNC: 'yes' } }]) {
      const fsync = refused(options.args ?? [], options.env);
      expect(fsync.setting).to.equal('fsync');
      expect(fsync.message).to.match(/\bfsync\b/);
    }
  });

  it('twinstar pair gives each node a folder of its own', () => {
    const plain = pairLayout([]);
    expect(nodeArgs(plain, 'primary')).to.not.include('--data-dir'); // the server default: data/primary
    const given = pairLayout(['--data-dir', '/srv/ts']);
    const primary = nodeArgs(given, 'primary');
    const backup = nodeArgs(given, 'backup');
    expect(primary[primary.indexOf('--data-dir') + 1]).to.equal(join('/srv/ts', 'primary'));
    expect(backup[backup.indexOf('--data-dir') + 1]).to.equal(join('/srv/ts', 'backup'));
    expect(primary.filter((a) => a === '--data-dir')).to.have.length(1);
    const fromEnv = pairLayout([], { TWINSTAR_DATA_DIR: '/srv/e' });
    expect(nodeArgs(fromEnv, 'backup')).to.include(join('/srv/e', 'backup'));
  });
});
