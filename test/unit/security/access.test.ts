/** The allow-list, per-prefix rights and the guard's decisions (src/security): pure, no sockets. */
import { expect } from 'chai';
import {
  AccessList,
  AccessListError,
  generateKeyPair,
  Guard,
  sessionToken,
  type AuthFailure,
} from '../../../src/security/index.js';

const ops = generateKeyPair();
const limited = generateKeyPair();
const stranger = generateKeyPair();
const server = generateKeyPair();
const peer = generateKeyPair();

const listText = (clients: unknown[]) => JSON.stringify({ clients });
const standard = () =>
  AccessList.parse(
    listText([
      { name: 'ops', publicKey: ops.publicKey, read: ['*'], write: ['*'] },
      { name: 'limited', publicKey: limited.publicKey, read: ['/a/', '/shared/'], write: ['/a/'] },
    ]),
  );

describe('AccessList', () => {
  it('grants topics by token-aligned prefix for publish and subscribe; a missing list grants nothing', () => {
    const list = AccessList.parse(
      listText([
        {
          name: 'orders',
          publicKey: limited.publicKey,
          read: [],
          write: [],
          publish: ['orders'],
          subscribe: ['orders.eu', 'audit'],
        },
        {
          name: 'ops',
          publicKey: ops.publicKey,
          read: ['*'],
          write: ['*'],
          publish: ['*'],
          subscribe: ['*'],
        },
        { name: 'kv', publicKey: stranger.publicKey, read: ['*'], write: ['*'] },
      ]),
    );
    const o = list.get(limited.publicKey)!;
    expect(o.canPublish('orders')).to.equal(true);
    expect(o.canPublish('orders.created.eu')).to.equal(true);
    expect(o.canPublish('ordersx')).to.equal(false);
    expect(o.canPublish('audit.x')).to.equal(false);
    expect(o.canSubscribe('orders.eu')).to.equal(true); // prefixOf('orders.eu.*')
    expect(o.canSubscribe('orders')).to.equal(false); // prefixOf('orders.>') is wider than orders.eu
    expect(o.canSubscribe('')).to.equal(false); // prefixOf('>')
    expect(o.canSubscribe('audit.login')).to.equal(true);
    expect(list.get(ops.publicKey)!.canSubscribe('')).to.equal(true);
    expect(list.get(ops.publicKey)!.canPublish('anything.at.all')).to.equal(true);
    const kv = list.get(stranger.publicKey)!;
    expect([kv.canPublish('orders'), kv.canSubscribe('orders')]).to.deep.equal([false, false]);
    expect(() =>
      AccessList.parse(
        listText([{ name: 'x', publicKey: ops.publicKey, read: [], write: [], publish: 'orders' }]),
      ),
    ).to.throw(AccessListError, /publish must be a list of topic prefixes/);
    // A change of topic rights is a change of rights: the connections go.
    const fewer = AccessList.parse(
      listText([
        {
          name: 'orders',
          publicKey: limited.publicKey,
          read: [],
          write: [],
          publish: [],
          subscribe: ['orders.eu', 'audit'],
        },
      ]),
    );
    expect(list.revokedIn(fewer)).to.include(limited.publicKey);
  });

  it('grants by key prefix, "*" for everything, nothing for an empty list', () => {
    const list = standard();
    const l = list.get(limited.publicKey)!;
    expect(l.canRead('/a/x')).to.equal(true);
    expect(l.canRead('/shared/y')).to.equal(true);
    expect(l.canRead('/b/x')).to.equal(false);
    expect(l.canRead('/a')).to.equal(false); // "/a/" does not cover "/a"
    expect(l.canWrite('/a/x')).to.equal(true);
    expect(l.canWrite('/shared/y')).to.equal(false);
    expect(l.canReadAll('/a/deeper/')).to.equal(true);
    expect(l.canReadAll('')).to.equal(false);
    expect(l.readsEverything).to.equal(false);
    const o = list.get(ops.publicKey)!;
    expect(o.readsEverything && o.writesEverything && o.canReadAll('')).to.equal(true);
    expect(list.get(stranger.publicKey)).to.equal(undefined);
    const none = AccessList.parse(
      listText([{ name: 'n', publicKey: stranger.publicKey, read: [], write: [] }]),
    );
    expect(none.get(stranger.publicKey)!.canRead('')).to.equal(false);
  });

  it('refuses malformed lists with one line naming the entry', () => {
    const cases: [string, RegExp][] = [
      ['{', /is not JSON/],
      ['{}', /no "clients" array/],
      [listText([{ publicKey: ops.publicKey, read: [], write: [] }]), /clients\[0\] needs a "name"/],
      [listText([{ name: 'x', publicKey: 'nope', read: [], write: [] }]), /clients\[0\] \(x\): "publicKey"/],
      [
        listText([{ name: 'x', publicKey: ops.publicKey, read: '*', write: [] }]),
        /\(x\)\.read must be a list/,
      ],
      [listText([{ name: 'x', publicKey: ops.publicKey, read: [] }]), /\(x\)\.write must be a list/],
      [
        listText([
          { name: 'x', publicKey: ops.publicKey, read: [], write: [] },
          { name: 'y', publicKey: ops.publicKey, read: [], write: [] },
        ]),
        /listed twice/,
      ],
    ];
    for (const [text, message] of cases) {
      expect(() => AccessList.parse(text, 'clients.json'))
        .to.throw(AccessListError, message)
        .with.property('message')
        .that.does.not.include('\n');
    }
  });

  it('names the keys whose rights a reload removes or shrinks', () => {
    const before = standard();
    const after = AccessList.parse(
      listText([
        { name: 'ops', publicKey: ops.publicKey, read: ['*'], write: ['*'] },
        { name: 'limited', publicKey: limited.publicKey, read: ['/a/'], write: ['/a/'] },
        { name: 'new', publicKey: stranger.publicKey, read: ['*'], write: [] },
      ]),
    );
    expect(before.revokedIn(after)).to.deep.equal([limited.publicKey]);
    expect(before.revokedIn(standard())).to.deep.equal([]);
    expect(after.revokedIn(AccessList.empty)).to.have.length(3);
  });
});

describe('Guard', () => {
  function guard() {
    let list = standard();
    const g = new Guard({ keys: server, peerPublicKey: peer.publicKey, access: () => list });
    const failures: [string, AuthFailure][] = [];
    g.on('authFailure', (domain, reason) => failures.push([domain, reason]));
    return { g, failures, setList: (next: AccessList) => (list = next) };
  }

  it('admits each key only to the sockets its rights allow', () => {
    const { g, failures } = guard();
    expect(g.authorize('snapshot', ops.publicKey)).to.deep.equal({ ok: true, userId: 'ops' });
    expect(g.authorize('publisher', ops.publicKey).ok).to.equal(true);
    expect(g.authorize('collector', ops.publicKey).ok).to.equal(true);
    expect(g.authorize('snapshot', limited.publicKey).ok).to.equal(true);
    expect(g.authorize('publisher', limited.publicKey)).to.deep.equal({
      ok: false,
      reason: 'restricted-reader',
    });
    expect(g.authorize('collector', limited.publicKey)).to.deep.equal({
      ok: false,
      reason: 'restricted-writer',
    });
    expect(g.authorize('snapshot', stranger.publicKey)).to.deep.equal({ ok: false, reason: 'unknown-key' });
    expect(g.authorize('peer', ops.publicKey)).to.deep.equal({ ok: false, reason: 'not-the-peer' });
    expect(g.authorize('peer', peer.publicKey).ok).to.equal(true);
    expect(g.authorize('elsewhere', ops.publicKey)).to.deep.equal({ ok: false, reason: 'unknown-domain' });
    expect(failures).to.deep.equal([
      ['publisher', 'restricted-reader'],
      ['collector', 'restricted-writer'],
      ['snapshot', 'unknown-key'],
      ['peer', 'not-the-peer'],
      ['unknown', 'unknown-domain'],
    ]);
  });

  it('knows the principal behind a bound session token, under the list in force now', async () => {
    const { g, failures, setList } = guard();
    const token = Buffer.from(sessionToken(limited, server.publicKey));
    expect(g.principalOf(token), 'a token before its connection was bound').to.equal(undefined);
    expect((await g.admit('snapshot', limited.publicKey)).ok).to.equal(true);
    expect(g.connectionNotice(token)).to.equal(undefined);
    expect(g.principalOf(token)?.name).to.equal('limited');
    expect(g.principalOf(Buffer.from([0, 0, 0, 0, 7]))).to.equal(undefined);
    setList(AccessList.empty);
    expect(g.principalOf(token), 'a removed key keeps no rights').to.equal(undefined);
    expect(failures).to.deep.equal([
      ['snapshot', 'bad-session'],
      ['snapshot', 'bad-session'],
      ['snapshot', 'unknown-key'],
    ]);
  });

  it('refuses a token on a connection another key made, and counts it as bad-session', async () => {
    const { g, failures } = guard();
    expect((await g.admit('snapshot', ops.publicKey)).ok).to.equal(true);
    const stolen = Buffer.from(sessionToken(limited, server.publicKey));
    expect(g.connectionNotice(stolen)).to.equal('wrong-key');
    expect(g.principalOf(stolen)).to.equal(undefined);
    expect(failures).to.deep.equal([
      ['snapshot', 'bad-session'],
      ['snapshot', 'bad-session'],
    ]);
  });
});
