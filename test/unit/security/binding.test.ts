import { expect } from 'chai';
import {
  generateKeyPair,
  readSessionToken,
  sessionToken,
  SessionBinder,
  sharedSecret,
} from '../../../src/security/index.js';

const server = generateKeyPair();
const alice = generateKeyPair();
const bob = generateKeyPair();
const LIFETIME = 60_000;

function binder(options: { attachTimeoutMs?: number; maxSessions?: number } = {}) {
  const clock = { now: 1_800_000_000_000 };
  const b = new SessionBinder({
    lifetimeMs: LIFETIME,
    read: (id) => readSessionToken(id, server.publicKey, (k) => sharedSecret(server.secretKey, k)),
    now: () => clock.now,
    attachTimeoutMs: options.attachTimeoutMs ?? 10_000,
    ...(options.maxSessions ? { maxSessions: options.maxSessions } : {}),
  });
  const token = (who: typeof alice, mintedAt = clock.now) =>
    Buffer.from(sessionToken(who, server.publicKey, mintedAt));
  return { b, clock, token };
}

/** Whether `promise` has settled after the microtasks queued now have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('SessionBinder', () => {
  it('binds a connection to the key ZAP admitted last, one admission at a time', async () => {
    const { b, token } = binder();
    await b.admit(alice.publicKey);
    const second = b.admit(bob.publicKey);
    expect(await settled(second), 'a second admission went ahead of the first connection').to.equal(false);
    const a = token(alice);
    expect(b.notice(a)).to.equal(undefined);
    expect(b.keyOf(a)).to.equal(alice.publicKey);
    expect(await settled(second), 'the second admission still waits').to.equal(true);
    const bt = token(bob);
    expect(b.notice(bt)).to.equal(undefined);
    expect(b.keyOf(bt)).to.equal(bob.publicKey);
  });

  it("refuses a token that names another key than the connection's", async () => {
    const { b, token } = binder();
    await b.admit(bob.publicKey);
    const stolen = token(alice);
    expect(b.notice(stolen)).to.equal('wrong-key');
    expect(b.keyOf(stolen)).to.equal(undefined);
  });

  it('refuses tokens minted longer ago (or further ahead) than the lifetime', async () => {
    const { b, clock, token } = binder();
    for (const [mintedAt, want] of [
      [clock.now - LIFETIME - 1, 'expired'],
      [clock.now + LIFETIME + 1, 'expired'],
      [clock.now - LIFETIME + 1000, undefined],
    ] as const) {
      await b.admit(alice.publicKey);
      const t = token(alice, mintedAt);
      expect(b.notice(t), `minted ${mintedAt - clock.now} ms from now`).to.equal(want);
      expect(b.keyOf(t)).to.equal(want ? undefined : alice.publicKey);
    }
  });

  it('refuses what is not a token, and a connection nobody admitted', async () => {
    const { b, token } = binder();
    await b.admit(alice.publicKey);
    expect(b.notice(Buffer.from([0, 0, 0, 0, 9]))).to.equal('no-token');
    const unexpected = token(alice);
    expect(b.notice(unexpected)).to.equal('unexpected');
    expect(b.keyOf(unexpected)).to.equal(undefined);
  });

  it('ends a session at its second notice, for good, without using up an admission', async () => {
    const { b, token } = binder();
    await b.admit(alice.publicKey);
    const a = token(alice);
    b.notice(a);
    expect(b.keyOf(a)).to.equal(alice.publicKey);
    expect(b.liveSessions).to.equal(1);
    b.notice(a); // disconnect, or an empty message the peer sent
    expect(b.keyOf(a)).to.equal(undefined);
    expect(b.liveSessions).to.equal(0);
    await b.admit(alice.publicKey);
    b.notice(a); // the same id on a new connection
    expect(b.keyOf(a), 'an ended session came back').to.equal(undefined);
    expect(await settled(b.admit(bob.publicKey)), 'the ended session took the admission').to.equal(false);
  });

  it('gives up an admission whose connection never arrives; a late one is then refused', async () => {
    const { b, token } = binder({ attachTimeoutMs: 20 });
    await b.admit(alice.publicKey);
    await b.admit(bob.publicKey); // resolves once the first admission has timed out
    const late = token(alice);
    expect(b.notice(late)).to.equal('wrong-key');
  });

  it('remembers a bounded number of sessions', async () => {
    const { b, token } = binder({ maxSessions: 50 });
    for (let i = 0; i < 200; i++) {
      await b.admit(alice.publicKey);
      const t = token(alice);
      b.notice(t);
      b.notice(t);
    }
    expect(b.size).to.be.at.most(50);
  });
});
