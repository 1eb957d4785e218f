/**
 * The acknowledgement rule of durable storage (issue 15), on a real single node (sockets on
 * 127.0.0.1) over a storage whose `flush()` the test controls: a write is acknowledged only once
 * its change is flushed; a storage that failed gets TERROR 'storage' (ERR_STORAGE) for every
 * write, up front, while reads are still served.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { loadConfig } from '../../../src/config/index.js';
import { createLogger } from '../../../src/log/index.js';
import { newUuid } from '../../../src/core/index.js';
import { StorageError } from '../../../src/errors.js';
import { Node } from '../../../src/pair/index.js';
import { createMetrics } from '../../../src/metrics/index.js';
import { decodeRequestId, encodeRequestId, packBatch } from '../../../src/wire/index.js';
import { freePorts, within } from '../../support/index.js';
import { GatedStorage } from './gated-storage.js';

const STORE = { replayLogSize: 1000, dedupeSize: 1000, dedupeMs: 60_000 };

describe('acknowledged writes over durable storage (a real single node)', function () {
  this.timeout(20_000);
  let node: Node;
  let storage: GatedStorage;
  let dealer: zmq.Dealer;
  let reqId = 0;

  beforeEach(async () => {
    const port = await freePorts(5);
    const config = loadConfig({
      args: [
        '--role',
        'single',
        '--port',
        String(port),
        '--http-port',
        '0',
        '--heartbeat-port',
        String(port + 4),
      ],
      env: {},
    });
    storage = new GatedStorage(STORE);
    const log = createLogger({ node: 'single', role: 'single', level: 'silent' });
    node = new Node({ config, log, openStorage: () => storage });
    await node.start();
    dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(`tcp://127.0.0.1:${port}`);
  });

  afterEach(async () => {
    dealer.close();
    await node.close();
  });

  function sendWrite(key: string): number {
    const id = ++reqId;
    const batch = packBatch([
      { key, sequence: 0, uuid: newUuid(), properties: '', body: Buffer.from('v'), expiresAt: 0 },
    ]);
    void dealer.send(['TSET', encodeRequestId(id), batch]);
    return id;
  }

  function sendPing(): number {
    const id = ++reqId;
    void dealer.send(['TPING', encodeRequestId(id)]);
    return id;
  }

  async function reply(): Promise<{ command: string; reqId: number; frames: Buffer[] }> {
    const frames = await within(dealer.receive(), 5000, 'a reply');
    return { command: frames[0]!.toString(), reqId: decodeRequestId(frames[1]!) ?? -1, frames };
  }

  it('a write is acknowledged only once its change is flushed', async () => {
    const healthy = await createMetrics(node).getSingleMetric('twinstar_storage_failed')!.get();
    expect(healthy.values[0]!.value, 'twinstar_storage_failed while healthy').to.equal(0);
    storage.hold();
    const write = sendWrite('/a');
    const ping = sendPing();
    // The ping, sent after the write, is answered: the channel works and the write was
    // sequenced, but no TACK came before it because the flush has not resolved.
    const first = await reply();
    expect(first).to.deep.include({ command: 'TPONG', reqId: ping });
    // A ping sent only now is handled in a later turn than the write: a TACK not held back by
    // the flush would have gone out before its answer.
    const later = sendPing();
    expect(await reply()).to.deep.include({ command: 'TPONG', reqId: later });
    expect(node.store.sequence, 'sequenced, not yet durable').to.equal(1);
    storage.release();
    const second = await reply();
    expect(second).to.deep.include({ command: 'TACK', reqId: write });
  });

  it('a failed storage write: TERROR storage (ERR_STORAGE) for that write and every later one, reads still served', async () => {
    storage.hold();
    const write = sendWrite('/a');
    const ping = sendPing();
    expect(await reply()).to.deep.include({ command: 'TPONG', reqId: ping });
    storage.reject(new StorageError('write', '/data/data.mdb', 'write failed: ENOSPC'));
    const refused = await reply();
    expect(refused).to.deep.include({ command: 'TERROR', reqId: write });
    expect(refused.frames[2]!.toString()).to.equal('storage');
    expect(refused.frames[3]!.toString()).to.match(/^ERR_STORAGE: \/data\/data\.mdb: write failed: ENOSPC$/);
    expect(node.storageFailure()).to.be.instanceOf(StorageError);
    const gauge = await createMetrics(node).getSingleMetric('twinstar_storage_failed')!.get();
    expect(gauge.values[0]!.value, 'twinstar_storage_failed').to.equal(1);
    const sequence = node.store.sequence;
    // A later write is refused up front: it is never sequenced.
    const later = sendWrite('/b');
    const again = await reply();
    expect(again).to.deep.include({ command: 'TERROR', reqId: later });
    expect(again.frames[2]!.toString()).to.equal('storage');
    expect(node.store.sequence, 'nothing more sequenced').to.equal(sequence);
    // Reads are still served.
    const read = sendPing();
    expect(await reply()).to.deep.include({ command: 'TPONG', reqId: read });
    expect(node.state).to.equal('ACTIVE');
  });
});
