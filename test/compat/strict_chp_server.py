#!/usr/bin/python3
"""A minimal, STRICT Clustered Hashmap Protocol (ZeroMQ RFC 12) server, run as a Binary Star pair.

It plays the ZeroMQ guide's Model Six server (clonesrv6 + bstar) for the integration tests, written
independently from the RFCs with pyzmq (Debian's python3-zmq). It is deliberately unforgiving: it
knows ICANHAZ? and nothing else, so a client that sends anything else to its snapshot socket (for
example twinstar's native TSNAP, TPING or TVOTE) kills it, as it would kill the guide's server:

    E: bad request, aborting            (on stderr, exit status 3)

It is stricter than the guide in one respect: the guide asks its Binary Star FSM first and drops a
request the FSM refuses, so an unknown request to a passive node is harmless until the passive would
accept it as a vote (then it aborts). Here every unknown request aborts at once, in every state, so
that a test sees the mistake every time rather than only in an unlucky failover.

Sockets, for snapshot port P (the peer's is Q), Binary Star heartbeat port H (the peer's is K):
  P    ROUTER  ICANHAZ? subtree -> KVSYNC* KTHXBAI (sequence, empty properties). A vote.
  P+1  PUB     KVPUB for every change, HUGZ every --hugz-ms (in every state, as the guide does)
  P+2  SUB     KVSET from clients: the active applies it with the next sequence, the passive keeps
               it on its pending list until the active's KVPUB with the same uuid arrives
  H    PUB     this node's Binary Star state (one ASCII digit) every --heartbeat-ms
  K    SUB     the peer's state; silent for two heartbeats means the peer is gone
  Q+1  SUB     the passive follows the active's publisher; its first message fetches a snapshot

Binary Star: the primary becomes active when it hears the backup (or on a vote once the backup has
been silent for two heartbeats); the backup becomes passive when it hears an active primary. A
passive becomes active on a vote (ICANHAZ?) only once the peer is gone, then applies its pending
list with fresh sequence numbers (and publishes them) before it answers. Two actives: fatal.

stdout carries JSON lines for the tests: {"event": "ready"} once bound, {"event": "state", ...} on
every state change, and {"event": "dump", ...} (state, sequence, entries) on SIGUSR1. Human logs go
to stderr. SIGTERM exits cleanly.
"""

import argparse
import json
import os
import signal
import struct
import sys
import time
from collections import deque

import zmq

PRIMARY, BACKUP, ACTIVE, PASSIVE = 1, 2, 3, 4  # states; the peer's state is also the event
NAMES = {PRIMARY: "PRIMARY", BACKUP: "BACKUP", ACTIVE: "ACTIVE", PASSIVE: "PASSIVE"}
EXIT_BAD_REQUEST = 3
EXIT_DUAL_ACTIVE = 4


def log(text):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def fatal(text, frames, code):
    log(text)
    for frame in frames:
        log("  [%03d] %r" % (len(frame), frame[:60]))
    sys.exit(code)


def kvmsg(key, sequence, uuid, props, body):
    return [key, struct.pack(">q", sequence), uuid, props, body]


def ttl_of(props, frames):
    """Seconds from a 'ttl=' property line (0 when absent); a bad one is a protocol violation."""
    for line in props.split(b"\n"):
        name, _, value = line.partition(b"=")
        if name == b"ttl":
            try:
                return float(value)
            except ValueError:
                fatal("E: bad ttl property, aborting", frames, EXIT_BAD_REQUEST)
    return 0.0


class Entry(object):
    def __init__(self, key, sequence, uuid, props, body, expires):
        self.key, self.sequence, self.uuid, self.props, self.body, self.expires = key, sequence, uuid, props, body, expires


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
        host = "tcp://" + args.host
        ctx = self.ctx = zmq.Context()
        self.router = self.bind(zmq.ROUTER, "%s:%d" % (host, args.port))
        self.publisher = self.bind(zmq.PUB, "%s:%d" % (host, args.port + 1))
        self.collector = self.bind(zmq.SUB, "%s:%d" % (host, args.port + 2))
        self.collector.setsockopt(zmq.SUBSCRIBE, b"")
        self.statepub = self.bind(zmq.PUB, "%s:%d" % (host, args.bstar_port))
        self.statesub = ctx.socket(zmq.SUB)
        self.statesub.setsockopt(zmq.SUBSCRIBE, b"")
        self.statesub.connect("%s:%d" % (host, args.peer_bstar_port))
        self.peer_updates = ctx.socket(zmq.SUB)  # the active's publisher, read while passive
        self.peer_updates.setsockopt(zmq.SUBSCRIBE, b"")
        self.peer_updates.connect("%s:%d" % (host, args.peer_port + 1))
        self.peer_snapshot = "%s:%d" % (host, args.peer_port)

    def bind(self, kind, endpoint):
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.bind(endpoint)
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
        if self.kvmap is None:
            self.kvmap = {}
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
        self.store(Entry(key, self.sequence, uuid, props, body, time.monotonic() + ttl if ttl > 0 else 0))
        log("I: applied %r at sequence %d%s" % (key, self.sequence, " (delete)" if not body else ""))

    def store(self, entry):
        if entry.body:
            self.kvmap[entry.key] = entry
        else:
            self.kvmap.pop(entry.key, None)

    def expire(self):
        now = time.monotonic()
        for entry in sorted(self.kvmap.values(), key=lambda e: e.sequence):
            if entry.expires and entry.expires <= now:
                self.sequence += 1
                # like the guide: the delete keeps the write's uuid and names the expiry time
                props = b"ttl=%f\n" % (time.time() - (now - entry.expires))
                self.publisher.send_multipart(kvmsg(entry.key, self.sequence, entry.uuid, props, b""))
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
        if uuid in self.published:
            pass
        elif any(held[2] == uuid for held in self.pending):
            self.pending = [held for held in self.pending if held[2] != uuid]
        else:
            self.published.append(uuid)
        (sequence,) = struct.unpack(">q", seq_frame)
        if sequence > self.sequence:
            self.sequence = sequence
            ttl = ttl_of(props, frames) if body else 0
            self.store(Entry(key, sequence, uuid, props, body, time.monotonic() + ttl if ttl > 0 else 0))

    def fetch_snapshot(self):
        dealer = self.ctx.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.connect(self.peer_snapshot)
        dealer.send_multipart([b"ICANHAZ?", b""])
        kvmap, deadline = {}, time.monotonic() + 2 * self.beat
        try:
            while dealer.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                key, seq_frame, uuid, props, body = dealer.recv_multipart()
                (sequence,) = struct.unpack(">q", seq_frame)
                if key == b"KTHXBAI":
                    self.kvmap, self.sequence = kvmap, sequence
                    log("I: passive took a snapshot at sequence %d" % sequence)
                    return True
                ttl = ttl_of(props, [key])
                kvmap[key] = Entry(key, sequence, uuid, props, body, time.monotonic() + ttl if ttl > 0 else 0)
            log("I: no snapshot from the active yet")
            return False
        finally:
            dealer.close()

    def dump(self):
        entries = {}
        for k, e in (self.kvmap or {}).items():
            entries[k.decode("utf-8", "replace")] = {"seq": e.sequence, "value": e.body.decode("utf-8", "replace"), "props": e.props.decode("utf-8", "replace")}
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
    parser.add_argument("--port", type=int, required=True, help="snapshot port P (publisher P+1, collector P+2)")
    parser.add_argument("--peer-port", type=int, required=True, help="the peer's snapshot port")
    parser.add_argument("--bstar-port", type=int, required=True, help="this node's Binary Star state port")
    parser.add_argument("--peer-bstar-port", type=int, required=True, help="the peer's Binary Star state port")
    parser.add_argument("--hugz-ms", type=int, default=1000)
    parser.add_argument("--heartbeat-ms", type=int, default=1000, help="Binary Star state interval; peer gone after 2")
    parser.add_argument("--host", default="127.0.0.1")
    server = Server(parser.parse_args(argv))

    def request_dump(*_):
        server.dump_requested = True

    signal.signal(signal.SIGUSR1, request_dump)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
