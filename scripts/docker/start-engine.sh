#!/usr/bin/env bash
# Starts a Docker engine for twinstar's container tests and compose file, if none answers yet.
#
# Idempotent: when `docker info` already works this does nothing; when a dockerd we (or someone)
# started earlier is still coming up, it only waits for it. Otherwise it starts
#
#   dockerd --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=true \
#           --storage-driver=overlay2
#
# in the background (log: /tmp/dockerd.log, override with TWINSTAR_DOCKERD_LOG) and waits, bounded
# by TWINSTAR_DOCKER_WAIT_S seconds (default 60), until `docker info` answers. Needs root and
# Debian's docker.io package (dockerd, containerd, runc, docker-proxy).
#
# Networking with --iptables=false, as measured on this kind of machine (Debian 12, docker.io
# 20.10.24, kernel 6.x, br_netfilter loaded, iptables FORWARD policy ACCEPT):
#
# - Containers on one user-defined bridge network reach each other by name (Docker's embedded DNS
#   at 127.0.0.11 answers) and by address, on `internal: true` networks and ordinary ones alike:
#   traffic on one bridge is switched at layer 2, so no iptables rule and no IP forwarding is
#   involved. (If the host's FORWARD policy were DROP while br_netfilter is loaded, bridged traffic
#   would be dropped: dockerd normally adds ACCEPT rules itself, which --iptables=false turns off.
#   This script warns about that case.)
# - Published ports (`-p 127.0.0.1:9556:9556`) work, through the userland proxy only: without
#   iptables there are no DNAT rules, so the docker-proxy process dockerd starts for each published
#   port, listening on the host address, is what forwards connections into the container. That is
#   the default (--userland-proxy=true); it is spelled out because turning it off, a common tuning,
#   would leave every published port dead on this engine.
# - Docker publishes no ports for a container whose network is `internal: true` (`docker port`
#   shows none and nothing listens), so anything reached through published ports (the compose
#   file) needs an ordinary bridge network. Tests on internal networks can still reach containers
#   from the host at their network addresses: the host has an address on every bridge.
# - --ip-masq=false (no NAT) and --ip-forward=false (dockerd leaves net.ipv4.ip_forward as it is,
#   0 here, instead of setting it to 1): nothing a container sends is routed off the host, so even
#   an ordinary bridge network is private to the machine. `docker info` then warns "IPv4 forwarding
#   is disabled. Networking will not work."; that is about reaching the outside world, which
#   twinstar never needs — container-to-container traffic and published ports work as above.
set -euo pipefail

LOG=${TWINSTAR_DOCKERD_LOG:-/tmp/dockerd.log}
WAIT_S=${TWINSTAR_DOCKER_WAIT_S:-60}

log() { printf 'start-engine: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  log "a Docker engine already answers; nothing to do"
  exit 0
fi

command -v docker >/dev/null 2>&1 || { log "no docker client (apt-get install docker.io)"; exit 1; }
command -v dockerd >/dev/null 2>&1 || { log "no dockerd (apt-get install docker.io)"; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  log "dockerd must be started as root (run this script with sudo, or start the engine yourself)"
  exit 1
fi

# A dockerd already running (from an earlier call that has not finished starting) is waited for,
# not started twice: two engines on one data root corrupt each other's state.
running_pid=""
if [ -s /var/run/docker.pid ]; then
  pid=$(cat /var/run/docker.pid)
  if kill -0 "$pid" 2>/dev/null; then running_pid=$pid; fi
fi

if [ -n "$running_pid" ]; then
  log "dockerd (pid $running_pid) is running but not answering yet; waiting"
else
  if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ] &&
    command -v iptables >/dev/null 2>&1 &&
    iptables -S FORWARD 2>/dev/null | grep -q -- '-P FORWARD DROP'; then
    log "warning: br_netfilter is loaded and the iptables FORWARD policy is DROP;"
    log "         with --iptables=false, containers on one network may not reach each other"
  fi
  log "starting dockerd (log: $LOG)"
  # setsid + nohup: the engine outlives this script and the CI step that ran it.
  setsid nohup dockerd \
    --iptables=false \
    --ip-masq=false \
    --ip-forward=false \
    --userland-proxy=true \
    --storage-driver=overlay2 \
    >"$LOG" 2>&1 </dev/null &
  running_pid=$!
fi

deadline=$((SECONDS + WAIT_S))
until docker info >/dev/null 2>&1; do
  if ! kill -0 "$running_pid" 2>/dev/null; then
    log "dockerd exited before answering; last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "dockerd did not answer within ${WAIT_S}s; last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done
log "Docker engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
