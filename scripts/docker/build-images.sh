#!/usr/bin/env bash
# Builds twinstar's container images without any registry:
#
#   node:20-bookworm-slim     a minimal Node runtime, assembled from this host's node binary, the
#                             shared libraries it needs, the dynamic loader and a static busybox,
#                             then `docker import`ed. It carries the tag deploy/Dockerfile's FROM
#                             names, so the real Dockerfile builds unchanged (elsewhere, the same
#                             tag is pulled from Docker Hub instead).
#   twinstar-prometheus:local Debian's /usr/bin/prometheus (+ its libraries, web assets and busybox
#                             for health checks), assembled the same way, for docker-compose.ha.yml.
#   twinstar:local            the application: deploy/Dockerfile, built with a context that holds
#                             only the app's files, prepared on the host (compiled dist/src, bin/,
#                             package.json and production node_modules).
#
# The two base images are kept if they already exist; --force rebuilds them. The app image is
# always rebuilt. Needs: docker (an engine answering, see start-engine.sh), node and npm, ldd,
# tar, and a static busybox (Debian package busybox-static, installed here if missing and root).
#
# Usage: scripts/docker/build-images.sh [--force] [--no-app]
# Environment: TWINSTAR_NODE_IMAGE (default node:20-bookworm-slim), TWINSTAR_PROMETHEUS_IMAGE
# (default twinstar-prometheus:local), TWINSTAR_IMAGE (default twinstar:local).
set -euo pipefail

FORCE=0
BUILD_APP=1
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --no-app) BUILD_APP=0 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build-images: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NODE_IMAGE=${TWINSTAR_NODE_IMAGE:-node:20-bookworm-slim}
PROM_IMAGE=${TWINSTAR_PROMETHEUS_IMAGE:-twinstar-prometheus:local}
APP_IMAGE=${TWINSTAR_IMAGE:-twinstar:local}
APP_UID=10001

log() { printf 'build-images: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/twinstar-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/docker/start-engine.sh)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# After a rebuild, removes the image the tag pointed to before (and with it its untagged build
# layers), so that repeated builds do not pile up. It stays if a container still uses it.
drop_replaced() {
  local tag=$1 old=$2
  if [ -n "$old" ] && [ "$old" != "$(image_id "$tag")" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------------------------------------
# Root filesystem helpers
# ---------------------------------------------------------------------------------------------

# Copies a file into the root filesystem $1 at the same absolute path (or at $3), following
# symlinks so that the image holds real files (the host's /lib is itself a symlink on usrmerged
# Debian; in the image it becomes a plain directory).
put() {
  local rootfs=$1 src=$2 dest=${3:-$2}
  mkdir -p "$rootfs$(dirname "$dest")"
  cp -L "$src" "$rootfs$dest"
}

# Copies an ELF binary to $3 in $1, plus every shared library `ldd` lists and the dynamic loader,
# each at the path the binary will look for it. Fails on a library ldd cannot find.
put_elf() {
  local rootfs=$1 bin=$2 dest=$3 out lib
  put "$rootfs" "$bin" "$dest"
  if ! out=$(ldd "$bin" 2>&1); then
    # A static binary ("not a dynamic executable") needs nothing else.
    grep -q 'not a dynamic executable\|statically linked' <<<"$out" && return 0
    die "ldd $bin failed: $out"
  fi
  if grep -q 'not found' <<<"$out"; then die "ldd $bin: missing libraries: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"; fi
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
  # linux-vdso.so.1 is provided by the kernel and has no path.
  while read -r lib; do
    [ -n "$lib" ] && put "$rootfs" "$lib"
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out" | sort -u)
}

find_static_busybox() {
  local bb
  bb=$(command -v busybox || true)
  if [ -n "$bb" ] && ! ldd "$bb" >/dev/null 2>&1; then
    echo "$bb"
    return 0
  fi
  # Debian's busybox-static installs /bin/busybox; the dynamic `busybox` package would need its
  # libraries in the image too, so insist on the static build.
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >"$WORK/apt.log" 2>&1 ||
      { cat "$WORK/apt.log" >&2; die "apt-get install busybox-static failed"; }
    bb=/bin/busybox
    [ -x "$bb" ] && ! ldd "$bb" >/dev/null 2>&1 && { echo "$bb"; return 0; }
  fi
  die "a static busybox is needed (Debian: apt-get install busybox-static)"
}

# Busybox and the applets worth having in a runtime image: a shell, wget for health checks, and
# the usual tools for looking around inside a running container (`docker exec -it ... sh`).
APPLETS="sh ash wget nc nslookup ping ip netstat ps top kill sleep env cat ls cp mv rm mkdir rmdir
ln chmod touch find grep egrep sed awk head tail less wc sort uniq cut tr tee xargs du df id whoami
hostname date uname pwd echo printf test [ true false which timeout stat readlink dirname basename
tar gzip gunzip vi"

put_busybox() {
  local rootfs=$1 bb=$2 applet
  put "$rootfs" "$bb" /bin/busybox
  for applet in $APPLETS; do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
  mkdir -p "$rootfs/usr/bin"
  ln -sf /bin/busybox "$rootfs/usr/bin/env" # for `#!/usr/bin/env node` scripts
}

# /etc basics: users, groups, name resolution order, a world-writable /tmp.
put_etc() {
  local rootfs=$1
  mkdir -p "$rootfs/etc" "$rootfs/root" "$rootfs/tmp" "$rootfs/home/twinstar"
  chmod 1777 "$rootfs/tmp"
  chmod 700 "$rootfs/root"
  cat >"$rootfs/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
twinstar:x:$APP_UID:$APP_UID:twinstar:/home/twinstar:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$rootfs/etc/group" <<EOF
root:x:0:
twinstar:x:$APP_UID:
nogroup:x:65534:
EOF
  # glibc's resolver (libnss_files and libnss_dns are part of libc.so.6 since glibc 2.34):
  # /etc/hosts first, then Docker's embedded DNS, which resolves compose service names.
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  # Docker bind-mounts its own /etc/hosts, /etc/resolv.conf and /etc/hostname over these.
  : >"$rootfs/etc/hosts"
  : >"$rootfs/etc/resolv.conf"
  if [ "$(id -u)" -eq 0 ]; then chown "$APP_UID:$APP_UID" "$rootfs/home/twinstar"; fi
}

# Imports the root filesystem $1 as image $2; the remaining arguments are `--change` lines.
import_rootfs() {
  local rootfs=$1 tag=$2
  shift 2
  local changes=()
  for change in "$@"; do changes+=(--change "$change"); done
  local previous
  previous=$(image_id "$tag")
  tar --numeric-owner -C "$rootfs" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
  drop_replaced "$tag" "$previous"
  log "imported $tag ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.1f MB", $1 / 1e6 }'))"
}

# ---------------------------------------------------------------------------------------------
# (a) node:20-bookworm-slim
# ---------------------------------------------------------------------------------------------
build_node_image() {
  local node rootfs=$WORK/node-rootfs major
  node=$(command -v node) || die "node not found"
  node=$(readlink -f "$node")
  major=$("$node" -p 'process.versions.node.split(".")[0]')
  [ "$major" = 20 ] || log "warning: host node is v$("$node" -p process.versions.node), tagging it $NODE_IMAGE anyway"
  mkdir -p "$rootfs"
  put_elf "$rootfs" "$node" /usr/local/bin/node
  put_busybox "$rootfs" "$BUSYBOX"
  put_etc "$rootfs"
  import_rootfs "$rootfs" "$NODE_IMAGE" \
    'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
    "ENV NODE_VERSION=$("$node" -p process.versions.node)" \
    'CMD ["node"]'
  docker run --rm --network none "$NODE_IMAGE" node -e 'process.exit(0)' ||
    die "$NODE_IMAGE cannot run node (a library missing from the image?)"
}

# ---------------------------------------------------------------------------------------------
# (b) twinstar-prometheus:local
# ---------------------------------------------------------------------------------------------
build_prometheus_image() {
  local prom rootfs=$WORK/prometheus-rootfs
  prom=$(command -v prometheus) || die "prometheus not found (Debian: apt-get install prometheus)"
  mkdir -p "$rootfs"
  put_elf "$rootfs" "$(readlink -f "$prom")" /bin/prometheus
  put_busybox "$rootfs" "$BUSYBOX"
  put_etc "$rootfs"
  # Debian's build serves the web UI's files from /usr/share/prometheus/web; the JavaScript
  # libraries there are symlinks into /usr/share/javascript, copied as files (-h). The UI loads
  # moment-timezone-with-data.min.js only: moment-timezone's 200 MB data/ directory stays out.
  if [ -d /usr/share/prometheus ]; then
    mkdir -p "$rootfs/usr/share"
    tar -C /usr/share -ch --exclude='prometheus/web/static/moment-timezone/data' prometheus |
      tar -C "$rootfs/usr/share" -x
  fi
  # A default configuration that scrapes Prometheus itself; compose mounts deploy/prometheus over
  # /etc/prometheus.
  mkdir -p "$rootfs/etc/prometheus" "$rootfs/prometheus"
  cat >"$rootfs/etc/prometheus/prometheus.yml" <<'EOF'
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:9090']
EOF
  # The TSDB directory belongs to the unprivileged user Prometheus runs as; a named volume mounted
  # there starts as a copy of it, ownership included.
  if [ "$(id -u)" -eq 0 ]; then chown 65534:65534 "$rootfs/prometheus"; else chmod 1777 "$rootfs/prometheus"; fi
  import_rootfs "$rootfs" "$PROM_IMAGE" \
    'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    'USER 65534' \
    'WORKDIR /prometheus' \
    'EXPOSE 9090' \
    'ENTRYPOINT ["/bin/prometheus"]' \
    'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090"]'
  docker run --rm --network none "$PROM_IMAGE" --version >/dev/null ||
    die "$PROM_IMAGE cannot run prometheus"
}

# ---------------------------------------------------------------------------------------------
# (c) twinstar:local
# ---------------------------------------------------------------------------------------------
stage_app() {
  local stage=$1 platform arch
  log "compiling (npm run build)"
  (cd "$REPO" && npm run --silent build) || die "npm run build failed"
  mkdir -p "$stage/dist"
  cp "$REPO/package.json" "$REPO/package-lock.json" "$stage/"
  cp -r "$REPO/bin" "$stage/bin"
  cp -r "$REPO/dist/src" "$stage/dist/src"
  find "$stage/dist" -name '*.d.ts' -delete # types are for library users, not for the server

  # Production dependencies only, installed fresh from the lockfile in the staging directory (the
  # working tree's node_modules keeps its dev dependencies). --ignore-scripts: the root package's
  # "prepare" would compile with tsc, which is a dev dependency, and zeromq's install script only
  # checks that its bundled prebuilt addon loads (the image smoke test below does that).
  log "installing production dependencies into the staging directory"
  if ! (cd "$stage" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null); then
    # Offline fallback: a copy of the working tree's node_modules, pruned in the copy.
    log "npm ci failed; falling back to a pruned copy of $REPO/node_modules"
    rm -rf "$stage/node_modules"
    cp -a "$REPO/node_modules" "$stage/node_modules"
    (cd "$stage" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) ||
      die "npm prune failed"
  fi
  rm -f "$stage/package-lock.json"

  # zeromq ships prebuilt addons for every platform (about 30 MB); keep only this platform's
  # directories (and build/manifest.json, which the loader reads to pick among them).
  platform=$(node -p process.platform)
  arch=$(node -p process.arch)
  if [ -d "$stage/node_modules/zeromq/build/$platform/$arch" ]; then
    find "$stage/node_modules/zeromq/build" -mindepth 1 -maxdepth 1 -type d ! -name "$platform" -exec rm -rf {} +
    find "$stage/node_modules/zeromq/build/$platform" -mindepth 1 -maxdepth 1 -type d ! -name "$arch" -exec rm -rf {} +
  fi
}

build_app_image() {
  local stage=$WORK/app previous
  previous=$(image_id "$APP_IMAGE")
  stage_app "$stage"
  log "building $APP_IMAGE (context: staged app, $(du -sh "$stage" | cut -f1))"
  # The log is shown only on failure (it is mostly the client's notice that the legacy builder
  # is in use: the Debian engine has no BuildKit plugin, and the Dockerfile needs none).
  if ! (cd "$stage" && docker build -f "$REPO/deploy/Dockerfile" -t "$APP_IMAGE" .) >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log" >&2
    die "docker build failed"
  fi
  drop_replaced "$APP_IMAGE" "$previous"
  # Smoke test: the native zeromq addon loads with the libraries the base image carries, and the
  # CLI starts (config errors exit 2 before anything binds).
  docker run --rm --network none --entrypoint node "$APP_IMAGE" --input-type=module \
    -e "const z = await import('zeromq'); if (!z.version) process.exit(1); console.log('libzmq ' + z.version)" ||
    die "$APP_IMAGE: the zeromq addon does not load"
  docker run --rm --network none "$APP_IMAGE" --help >/dev/null ||
    die "$APP_IMAGE: twinstar server --help failed"
  log "built $APP_IMAGE ($(docker image inspect --format '{{.Size}}' "$APP_IMAGE" | awk '{ printf "%.1f MB", $1 / 1e6 }'))"
}

# ---------------------------------------------------------------------------------------------

BUSYBOX=""
need_base=0
if [ "$FORCE" = 1 ] || ! image_exists "$NODE_IMAGE" || ! image_exists "$PROM_IMAGE"; then need_base=1; fi
if [ "$need_base" = 1 ]; then BUSYBOX=$(find_static_busybox); fi

# The previous base image cannot go while the previous app image still builds on it; it is
# dropped once the app image has been rebuilt too.
OLD_NODE_ID=$(image_id "$NODE_IMAGE")
if [ "$FORCE" = 1 ] || ! image_exists "$NODE_IMAGE"; then
  build_node_image
else
  log "$NODE_IMAGE exists (use --force to rebuild)"
fi

if [ "$FORCE" = 1 ] || ! image_exists "$PROM_IMAGE"; then
  build_prometheus_image
else
  log "$PROM_IMAGE exists (use --force to rebuild)"
fi

if [ "$BUILD_APP" = 1 ]; then
  build_app_image
  drop_replaced "$NODE_IMAGE" "$OLD_NODE_ID"
fi

docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}' |
  awk -v a="$NODE_IMAGE" -v b="$PROM_IMAGE" -v c="$APP_IMAGE" 'NR == 1 || $1 == a || $1 == b || $1 == c' >&2
