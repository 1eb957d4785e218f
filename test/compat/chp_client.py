#!/usr/bin/python3
"""A minimal, independent Clustered Hashmap Protocol (ZeroMQ RFC 12) client.

Written from the RFC with pyzmq (Debian's python3-zmq, i.e. libzmq underneath), sharing no code
with twinstar, so that the integration tests prove wire compatibility from outside Node.

Sockets (RFC 12 / the Clone pattern, model six):
  snapshot   DEALER -> server ROUTER at P      ICANHAZ? subtree  ->  KVSYNC* KTHXBAI
  publisher  SUB    -> server PUB    at P + 1  KVPUB updates and HUGZ
  collector  PUB    -> server SUB    at P + 2  KVSET (fire and forget)

Every message except ICANHAZ? is five frames: key | sequence (8 bytes, signed, big-endian) |
uuid (16 bytes) | properties ("name=value\\n"*) | body. An empty body means delete.

Usage (prints JSON on stdout; errors go to stderr):
  chp_client.py --endpoint tcp://127.0.0.1:P set KEY VALUE [--ttl SECONDS]
  chp_client.py --endpoint tcp://127.0.0.1:P del KEY
  chp_client.py --endpoint tcp://127.0.0.1:P snapshot [SUBTREE]
  chp_client.py --endpoint tcp://127.0.0.1:P follow SUBTREE --count N

`follow` prints JSON lines: {"event": "ready", ...} once it is subscribed and holds its snapshot,
{"event": "update", ...} per applied update and finally {"event": "done", ...} with the replica.

Exit codes: 0 ok, 2 usage, 3 timeout, 4 protocol violation by the server.
"""

import argparse
import json
import os
import struct
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

ICANHAZ = b"ICANHAZ?"
KTHXBAI = b"KTHXBAI"
HUGZ = b"HUGZ"

EXIT_TIMEOUT = 3
EXIT_PROTOCOL = 4


class Timeout(Exception):
    pass


class ProtocolError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# kvmsg


def encode_kvmsg(key, sequence, uuid, properties, body):
    return [
        key.encode("utf-8"),
        struct.pack(">q", sequence),
        uuid,
        properties.encode("utf-8"),
        body,
    ]


def decode_kvmsg(frames):
    if len(frames) != 5:
        raise ProtocolError("expected 5 frames, got %d: %r" % (len(frames), [f[:40] for f in frames]))
    key, seq, uuid, props, body = frames
    if len(seq) != 8:
        raise ProtocolError("sequence frame of %r is %d bytes, not 8" % (key, len(seq)))
    (sequence,) = struct.unpack(">q", seq)
    return {
        "key": key.decode("utf-8", "replace"),
        "seq": sequence,
        "uuid": uuid.hex(),
        "props": props.decode("utf-8", "replace"),
        "body": body,
    }


def entry_json(msg):
    return {"seq": msg["seq"], "value": msg["body"].decode("utf-8", "replace"), "props": msg["props"], "uuid": msg["uuid"]}


def format_props(props):
    return "".join("%s=%s\n" % (name, value) for name, value in props)


# ------------------------------------------------------------------------------------------------
# helpers


def endpoints(endpoint):
    scheme_host, _, port = endpoint.rpartition(":")
    if not scheme_host.startswith("tcp://") or not port.isdigit():
        raise SystemExit("chp_client: --endpoint must look like tcp://HOST:PORT, got %r" % endpoint)
    p = int(port)
    return {
        "snapshot": "%s:%d" % (scheme_host, p),
        "publisher": "%s:%d" % (scheme_host, p + 1),
        "collector": "%s:%d" % (scheme_host, p + 2),
    }


def recv_multipart(sock, deadline, what):
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not sock.poll(int(remaining * 1000) + 1, zmq.POLLIN):
        raise Timeout("timed out waiting for %s" % what)
    return sock.recv_multipart()


def connect_and_wait(sock, endpoint, deadline):
    """Connects and waits until the ZMTP handshake with the peer completed (the connection is
    usable). The monitor is attached before connecting so that the event cannot be missed."""
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    try:
        sock.connect(endpoint)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not monitor.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                raise Timeout("timed out waiting for the connection to %s" % endpoint)
            event = recv_monitor_message(monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)


def snapshot(ctx, eps, subtree, deadline):
    """ICANHAZ? then KVSYNC* until KTHXBAI. Returns (sequence, {key: msg})."""
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    try:
        dealer.connect(eps["snapshot"])
        dealer.send_multipart([ICANHAZ, subtree.encode("utf-8")])
        entries = {}
        while True:
            msg = decode_kvmsg(recv_multipart(dealer, deadline, "the snapshot (KTHXBAI)"))
            if msg["key"] == KTHXBAI.decode():
                if msg["body"] != subtree.encode("utf-8"):
                    raise ProtocolError("KTHXBAI body %r is not the subtree %r" % (msg["body"], subtree))
                return msg["seq"], entries
            if not msg["key"].startswith(subtree):
                raise ProtocolError("KVSYNC for %r is outside the subtree %r" % (msg["key"], subtree))
            if msg["body"]:
                entries[msg["key"]] = msg
            else:
                entries.pop(msg["key"], None)
    finally:
        dealer.close(linger=0)


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------------
# commands


def cmd_set(ctx, eps, args, deadline, body):
    props = format_props([("ttl", args.ttl)]) if args.ttl is not None else ""
    uuid = os.urandom(16)
    pub = ctx.socket(zmq.PUB)
    try:
        # PUB/SUB slow joiner: a PUB drops messages until the peer is connected and its
        # subscription has arrived. Wait for the handshake, then give the SUBSCRIBE a moment.
        connect_and_wait(pub, eps["collector"], deadline)
        time.sleep(args.settle)
        pub.send_multipart(encode_kvmsg(args.key, 0, uuid, props, body))
    finally:
        pub.close(linger=int(args.linger * 1000))  # flush before exit
    emit({"sent": True, "key": args.key, "value": body.decode("utf-8", "replace"), "props": props, "uuid": uuid.hex()})


def cmd_snapshot(ctx, eps, args, deadline):
    sequence, entries = snapshot(ctx, eps, args.subtree, deadline)
    emit({"sequence": sequence, "entries": {k: entry_json(m) for k, m in sorted(entries.items())}})


def cmd_follow(ctx, eps, args, deadline):
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    applied = []
    replica = {}
    try:
        # Subscribe to the subtree first and to HUGZ second: subscriptions travel in order on one
        # connection, so once a HUGZ arrives the subtree subscription is in force on the server and
        # nothing published after the snapshot can be missed.
        sub.setsockopt(zmq.SUBSCRIBE, args.subtree.encode("utf-8"))
        sub.setsockopt(zmq.SUBSCRIBE, HUGZ)
        sub.connect(eps["publisher"])
        queued = []
        while True:
            msg = decode_kvmsg(recv_multipart(sub, deadline, "the first HUGZ (subscription in force)"))
            if msg["key"] == HUGZ.decode():
                break
            queued.append(msg)  # an update that raced the HUGZ; the snapshot decides on it below
        sequence, entries = snapshot(ctx, eps, args.subtree, deadline)
        replica = {k: entry_json(m) for k, m in entries.items()}
        emit({"event": "ready", "sequence": sequence, "keys": len(replica)})
        hugz = 0
        while len(applied) < args.count:
            msg = queued.pop(0) if queued else decode_kvmsg(recv_multipart(sub, deadline, "%d updates" % args.count))
            if msg["key"] == HUGZ.decode():
                hugz += 1
                continue
            if not msg["key"].startswith(args.subtree):
                raise ProtocolError("update for %r is outside the subscribed subtree %r" % (msg["key"], args.subtree))
            if msg["seq"] <= sequence:
                continue  # already in the snapshot (or older)
            if applied and msg["seq"] <= applied[-1]:
                raise ProtocolError("update %d for %r after %d: sequence went backwards" % (msg["seq"], msg["key"], applied[-1]))
            applied.append(msg["seq"])
            if msg["body"]:
                replica[msg["key"]] = entry_json(msg)
            else:
                replica.pop(msg["key"], None)
            emit({"event": "update", "key": msg["key"], "seq": msg["seq"], "value": msg["body"].decode("utf-8", "replace"), "props": msg["props"]})
        emit({"event": "done", "snapshot_sequence": sequence, "applied": applied, "hugz": hugz, "entries": dict(sorted(replica.items()))})
    except Timeout:
        sys.stderr.write("chp_client: partial follow: applied=%s replica=%s\n" % (applied, json.dumps(replica)))
        raise
    finally:
        sub.close(linger=0)


def main(argv):
    parser = argparse.ArgumentParser(prog="chp_client.py", description="independent CHP (RFC 12) client")
    parser.add_argument("--endpoint", required=True, help="snapshot endpoint tcp://HOST:P (publisher P+1, collector P+2)")
    parser.add_argument("--timeout", type=float, default=5.0, help="overall deadline in seconds (default 5)")
    commands = parser.add_subparsers(dest="command", required=True)
    p_set = commands.add_parser("set", help="KVSET KEY VALUE on the collector (an empty VALUE deletes)")
    p_set.add_argument("key")
    p_set.add_argument("value")
    p_set.add_argument("--ttl", type=int, default=None, help="ttl property in seconds")
    p_del = commands.add_parser("del", help="KVSET KEY with an empty body (delete)")
    p_del.add_argument("key")
    for p in (p_set, p_del):
        p.add_argument("--settle", type=float, default=0.3, help="pause after the handshake before sending (s)")
        p.add_argument("--linger", type=float, default=1.0, help="linger on close (s)")
    p_snap = commands.add_parser("snapshot", help="ICANHAZ? SUBTREE and print the result")
    p_snap.add_argument("subtree", nargs="?", default="")
    p_follow = commands.add_parser("follow", help="subscribe, snapshot, then apply N updates")
    p_follow.add_argument("subtree")
    p_follow.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)

    eps = endpoints(args.endpoint)
    deadline = time.monotonic() + args.timeout
    ctx = zmq.Context()
    try:
        if args.command == "set":
            if args.ttl is not None and args.ttl < 0:
                parser.error("--ttl must be >= 0")
            cmd_set(ctx, eps, args, deadline, args.value.encode("utf-8"))
        elif args.command == "del":
            args.ttl = None
            cmd_set(ctx, eps, args, deadline, b"")
        elif args.command == "snapshot":
            cmd_snapshot(ctx, eps, args, deadline)
        else:
            cmd_follow(ctx, eps, args, deadline)
    except Timeout as error:
        sys.stderr.write("chp_client: %s (after %.1f s)\n" % (error, args.timeout))
        return EXIT_TIMEOUT
    except ProtocolError as error:
        sys.stderr.write("chp_client: protocol violation: %s\n" % error)
        return EXIT_PROTOCOL
    finally:
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
