#!/usr/bin/python3
"""A minimal, STRICT Clustered Hashmap Protocol (ZeroMQ RFC 12) server, run as a Binary Star pair.

It plays the ZeroMQ guide's Model Six server (clonesrv6 + bstar) in the integration tests, written
independently from the RFCs with pyzmq (Debian's python3-zmq). It knows ICANHAZ? and nothing else:
any other request on its snapshot socket (twinstar's TSNAP, TPING, TVOTE...) kills it, as it kills
the guide's server, with "E: bad request, aborting" on stderr and exit status 3. Stricter than the
guide in one way: the guide asks its FSM first and drops what the FSM refuses, so a bad request to
a passive only aborts once the passive would take it as a vote; here it aborts at once, every time.

Ports: P snapshot (the peer's is Q), H Binary Star state (the peer's is K).
  P    ROUTER  ICANHAZ? subtree -> KVSYNC* KTHXBAI (sequence, empty properties). A vote.
  P+1  PUB     KVPUB for every change, HUGZ every --hugz-ms (in every state, as the guide does)
  P+2  SUB     KVSET: the active applies it with the next sequence; the passive keeps it on its
               pending list until the active's KVPUB with the same uuid arrives
  H/K  PUB/SUB this node's / the peer's state (one ASCII digit) every --heartbeat-ms; two silent
               heartbeats mean the peer is gone
  Q+1  SUB     the passive follows the active's publisher; its first message fetches a snapshot
The primary turns active when it hears the backup (or on a vote once the backup is gone); the
backup turns passive when it hears an active peer. A passive turns active on a vote (ICANHAZ?) only
once the peer is gone, then applies its pending list with fresh sequence numbers (and publishes
them) before it answers. Two actives or two passives: fatal. stdout has JSON lines for tests:
"ready", "state" on every change, "dump" (state, sequence, entries) on SIGUSR1. SIGTERM exits.
"""

import argparse
import json
import os
import signal
import struct
import sys
import time
from collections import deque, namedtuple

import zmq

PRIMARY, BACKUP, ACTIVE, PASSIVE = 1, 2, 3, 4  # states; the peer's state is also the event
NAMES = {PRIMARY: "PRIMARY", BACKUP: "BACKUP", ACTIVE: "ACTIVE", PASSIVE: "PASSIVE"}
EXIT_BAD_REQUEST, EXIT_DUAL_ACTIVE = 3, 4


def log(text):
    print("%s.%03d" % (time.strftime("%H:%M:%S"), time.time() % 1 * 1000), text, file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def fatal(text, frames, code):
    log(text)
    for frame in frames:
        log("  [%03d] %r" % (len(frame), frame[:60]))
    sys.exit(code)


def kvmsg(key, sequence, uuid, props, body):
    return [key, struct.pack(">q", sequence), uuid, props, body]


def deadline(ttl):
    return time.monotonic() + ttl if ttl > 0 else 0


def stored(props, ttl):
    """As the guide does, a stored entry (so a KVSYNC) names its expiry time (epoch) as its ttl."""
    kept = b"".join(line + b"\n" for line in props.split(b"\n") if line and not line.startswith(b"ttl="))
    return kept + (b"ttl=%f\n" % (time.time() + ttl) if ttl > 0 else b"")


def ttl_of(props, frames):
    """Seconds from a 'ttl=' property line (0 when absent); a bad one is a protocol violation."""
    values = [line[4:] for line in props.split(b"\n") if line.startswith(b"ttl=")]
    try:
        return float(values[0]) if values else 0.0
    except ValueError:
        fatal("E: bad ttl property, aborting", frames, EXIT_BAD_REQUEST)


Entry = namedtuple("Entry", "key sequence uuid props body expires")  # expires: monotonic seconds, 0 never


class Server(object):
    def __init__(self, args):
        self.args = args
        self.state = PRIMARY if args.role == "primary" else BACKUP
        self.beat = args.heartbeat_ms / 1000.0
        self.peer_expiry = time.monotonic() + 2 * self.beat
        self.sequence = 0
        self.kvmap = {} if self.state == PRIMARY else None  # None: a passive without a snapshot yet
        self.pending = []  # KVSETs a passive holds until the active publishes them
        self.published = deque(maxlen=10000)  # uuids the active published before their KVSET came
        self.dump_requested = False
        at = lambda port: "tcp://%s:%d" % (args.host, port)  # noqa: E731
        self.ctx = zmq.Context()
        self.router = self.socket(zmq.ROUTER, bind=at(args.port))
        self.publisher = self.socket(zmq.PUB, bind=at(args.port + 1))
        self.collector = self.socket(zmq.SUB, bind=at(args.port + 2))
        self.statepub = self.socket(zmq.PUB, bind=at(args.bstar_port))
        self.statesub = self.socket(zmq.SUB, connect=at(args.peer_bstar_port))
        self.peer_updates = self.socket(zmq.SUB, connect=at(args.peer_port + 1))  # read while passive
        self.peer_snapshot = at(args.peer_port)

    def socket(self, kind, bind=None, connect=None):
        sock = self.ctx.socket(kind)
        sock.linger = 0
        if kind == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        (sock.bind if bind else sock.connect)(bind or connect)
        return sock

    # -- Binary Star ------------------------------------------------------------------------------

    def set_state(self, state, why):
        log("I: %s -> %s (%s)" % (NAMES[self.state], NAMES[state], why))
        self.state = state
        emit({"event": "state", "state": NAMES[state], "sequence": self.sequence})
        if state == ACTIVE:
            self.become_active()
        elif state == PASSIVE:
            self.kvmap = None  # the passive takes a fresh snapshot from the active

    def on_peer_state(self, peer):
        self.peer_expiry = time.monotonic() + 2 * self.beat
        if self.state == PRIMARY and peer == BACKUP:
            self.set_state(ACTIVE, "connected to the backup")
        elif self.state in (PRIMARY, BACKUP) and peer == ACTIVE:
            self.set_state(PASSIVE, "connected to an active peer")
        elif self.state == ACTIVE and peer == ACTIVE:
            fatal("E: fatal error - dual actives, aborting", [], EXIT_DUAL_ACTIVE)
        elif self.state == PASSIVE and peer in (PRIMARY, BACKUP):
            self.set_state(ACTIVE, "the peer is restarting")
        elif self.state == PASSIVE and peer == PASSIVE:
            fatal("E: fatal error - dual passives, aborting", [], EXIT_DUAL_ACTIVE)

    def on_vote(self):
        """A client request: True if this node serves it (possibly after promoting itself)."""
        if self.state == ACTIVE:
            return True
        if self.state in (PRIMARY, PASSIVE) and time.monotonic() >= self.peer_expiry:
            self.set_state(ACTIVE, "client vote, peer silent")
            return True
        return False

    def become_active(self):
        self.kvmap = {} if self.kvmap is None else self.kvmap
        for frames in self.pending:
            self.apply(frames)
        self.pending = []

    # -- Clone ------------------------------------------------------------------------------------

    def on_request(self, frames):
        identity, request = frames[0], frames[1:]
        if len(request) != 2 or request[0] != b"ICANHAZ?":
            fatal("E: bad request, aborting", request, EXIT_BAD_REQUEST)
        if not self.on_vote():
            log("I: ignored ICANHAZ? while %s" % NAMES[self.state])
            return
        subtree = request[1]
        for entry in sorted(self.kvmap.values(), key=lambda e: e.sequence):
            if entry.key.startswith(subtree):
                self.router.send_multipart([identity] + kvmsg(entry.key, entry.sequence, entry.uuid, entry.props, entry.body))
        # KTHXBAI: the sequence, a fresh uuid as the guide's has, no properties, the subtree
        self.router.send_multipart([identity] + kvmsg(b"KTHXBAI", self.sequence, os.urandom(16), b"", subtree))
        log("I: snapshot %r at sequence %d" % (subtree, self.sequence))

    def on_kvset(self, frames):
        if len(frames) != 5 or len(frames[1]) != 8 or frames[0] == b"":
            fatal("E: bad update, aborting", frames, EXIT_BAD_REQUEST)
        ttl_of(frames[3], frames)
        if self.state == ACTIVE:
            self.apply(frames)
        elif frames[2] in self.published:
            self.published.remove(frames[2])  # the active's KVPUB came first
        else:
            self.pending.append(frames)

    def apply(self, frames):
        """The active applies a client's KVSET: next sequence, publish, store (TTL as a deadline)."""
        key, _, uuid, props, body = frames
        self.sequence += 1
        self.publisher.send_multipart(kvmsg(key, self.sequence, uuid, props, body))
        ttl = ttl_of(props, frames)
        self.store(Entry(key, self.sequence, uuid, stored(props, ttl), body, deadline(ttl)))
        log("I: applied %r at sequence %d%s" % (key, self.sequence, " (delete)" if not body else ""))

    def store(self, entry):
        self.kvmap.pop(entry.key, None)
        if entry.body:
            self.kvmap[entry.key] = entry

    def expire(self):
        now = time.monotonic()
        for entry in sorted(self.kvmap.values(), key=lambda e: e.sequence):
            if entry.expires and entry.expires <= now:
                self.sequence += 1
                # like the guide: the delete keeps the write's uuid and its stored properties
                self.publisher.send_multipart(kvmsg(entry.key, self.sequence, entry.uuid, entry.props, b""))
                del self.kvmap[entry.key]
                log("I: expired %r at sequence %d" % (entry.key, self.sequence))

    def on_peer_update(self, frames):
        """The passive follows the active: snapshot first, then every newer KVPUB."""
        if self.state != PASSIVE or len(frames) != 5:
            return
        if self.kvmap is None and not self.fetch_snapshot():
            return
        key, seq_frame, uuid, props, body = frames
        if key == b"HUGZ":
            return
        held = [frames for frames in self.pending if frames[2] == uuid]
        if held:  # the client's KVSET came first: done with it
            self.pending.remove(held[0])
        elif uuid not in self.published:  # it came first: drop the KVSET when it comes
            self.published.append(uuid)
        (sequence,) = struct.unpack(">q", seq_frame)
        if sequence > self.sequence:
            self.sequence = sequence
            ttl = ttl_of(props, frames) if body else 0
            self.store(Entry(key, sequence, uuid, stored(props, ttl), body, deadline(ttl)))

    def fetch_snapshot(self):
        dealer = self.socket(zmq.DEALER, connect=self.peer_snapshot)
        dealer.send_multipart([b"ICANHAZ?", b""])
        kvmap, until = {}, time.monotonic() + 2 * self.beat
        try:
            while dealer.poll(max(1, int((until - time.monotonic()) * 1000))):
                key, seq_frame, uuid, props, body = dealer.recv_multipart()
                (sequence,) = struct.unpack(">q", seq_frame)
                if key == b"KTHXBAI":
                    self.kvmap, self.sequence = kvmap, sequence
                    log("I: passive took a snapshot at sequence %d" % sequence)
                    return True
                epoch = ttl_of(props, [key])  # a KVSYNC names its expiry time (see stored)
                kvmap[key] = Entry(key, sequence, uuid, props, body, deadline(max(epoch - time.time(), 1e-3)) if epoch else 0)
            log("I: no snapshot from the active yet")
            return False
        finally:
            dealer.close()

    def dump(self):
        text = lambda b: b.decode("utf-8", "replace")  # noqa: E731
        entries = {text(e.key): {"seq": e.sequence, "value": text(e.body), "props": text(e.props)} for e in (self.kvmap or {}).values()}
        emit({"event": "dump", "state": NAMES[self.state], "sequence": self.sequence, "pending": len(self.pending), "entries": entries})

    # -- the loop ---------------------------------------------------------------------------------

    def run(self):
        poller = zmq.Poller()
        for sock in (self.router, self.collector, self.statesub, self.peer_updates):
            poller.register(sock, zmq.POLLIN)
        next_beat = next_hugz = next_expiry = time.monotonic()
        emit({"event": "ready", "role": self.args.role, "state": NAMES[self.state]})
        while True:
            now = time.monotonic()
            if now >= next_beat:
                self.statepub.send(b"%d" % self.state)
                next_beat = now + self.beat
            if now >= next_hugz:
                self.publisher.send_multipart(kvmsg(b"HUGZ", self.sequence, os.urandom(16), b"", b""))
                next_hugz = now + self.args.hugz_ms / 1000.0
            if now >= next_expiry:
                if self.state == ACTIVE:
                    self.expire()
                next_expiry = now + 0.1
            if self.dump_requested:
                self.dump_requested = False
                self.dump()
            wait = min(next_beat, next_hugz, next_expiry) - time.monotonic()
            ready = dict(poller.poll(max(0, int(wait * 1000))))
            if self.statesub in ready:
                message = self.statesub.recv()
                if message.isdigit() and int(message) in NAMES:
                    self.on_peer_state(int(message))
            if self.router in ready:
                self.on_request(self.router.recv_multipart())
            if self.collector in ready:
                self.on_kvset(self.collector.recv_multipart())
            if self.peer_updates in ready:
                self.on_peer_update(self.peer_updates.recv_multipart())


def main(argv):
    parser = argparse.ArgumentParser(prog="strict_chp_server.py", description="strict RFC 12 clone server, Binary Star")
    parser.add_argument("--role", choices=("primary", "backup"), required=True)
    for name in ("port", "peer-port", "bstar-port", "peer-bstar-port"):  # P, Q, H, K above
        parser.add_argument("--" + name, type=int, required=True)
    parser.add_argument("--hugz-ms", type=int, default=1000)
    parser.add_argument("--heartbeat-ms", type=int, default=1000, help="Binary Star state interval; peer gone after 2")
    parser.add_argument("--host", default="127.0.0.1")
    server = Server(parser.parse_args(argv))
    signal.signal(signal.SIGUSR1, lambda *_: setattr(server, "dump_requested", True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
