#!/usr/bin/env bash
# Installs the official Alibaba Cloud OSS SDKs that tests/interop.rs drives against the local server:
#   - a Python venv at <target>/interop-venv with oss2 + alibabacloud-oss-v2 (tests/interop/requirements.txt)
#   - ali-oss at <target>/interop-node/node_modules (tests/interop/package.json + package-lock.json)
# <target> is $OSSPIPE_INTEROP_TARGET, else $CARGO_TARGET_DIR, else ./target.
#
# Idempotent and quick when nothing changed: each install records a hash of its pin files and is
# redone only when they change. The hash is written last, so an interrupted install is redone. Concurrent runs
# (several cargo test processes) serialise on a lock file.
#
# Exit status is non-zero, with a message saying what is missing, when python3/venv/pip or
# node/npm do not work: the interop tests then fail instead of skipping.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${OSSPIPE_INTEROP_TARGET:-${CARGO_TARGET_DIR:-$ROOT/target}}
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
PYTHON=${OSSPIPE_INTEROP_PYTHON:-python3}
INTEROP="$ROOT/tests/interop"
VENV="$TARGET/interop-venv"
NODE_DIR="$TARGET/interop-node"

fail() {
  printf 'interop-setup: %s\n' "$*" >&2
  exit 1
}

mkdir -p "$TARGET"
exec 9>"$TARGET/interop-setup.lock"
flock -w 900 9 || fail "timed out waiting for another interop-setup.sh (lock $TARGET/interop-setup.lock)"

# Hash of stdin: the files that decide what an install contains, plus the tool version.
hash_stdin() {
  sha256sum | cut -d' ' -f1
}

# ---- Python ----------------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 ||
  fail "'$PYTHON' not found: the interop tests need Python 3 (set OSSPIPE_INTEROP_PYTHON=/path/to/python3)"
PY_VERSION=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') ||
  fail "'$PYTHON' does not run"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' ||
  fail "Python $PY_VERSION is too old: the SDKs and scripts need Python >= 3.9"

PY_STAMP=$( (printf 'python %s\n' "$PY_VERSION"; cat "$INTEROP/requirements.txt") | hash_stdin)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.osspipe-stamp" 2>/dev/null)" = "$PY_STAMP" ]; then
  echo "interop-setup: Python venv up to date ($VENV)"
else
  echo "interop-setup: creating Python venv $VENV (Python $PY_VERSION)"
  # A venv records its own path in its scripts, so it is built in place; the stamp, written
  # last, is what marks it complete.
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" ||
    fail "'$PYTHON -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 ||
    fail "the new venv has no pip (on Debian/Ubuntu: apt-get install python3-venv python3-pip)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    -r "$INTEROP/requirements.txt" ||
    fail "pip install -r tests/interop/requirements.txt failed (is PyPI reachable?)"
  "$VENV/bin/python" -c 'import oss2, alibabacloud_oss_v2' ||
    fail "the SDKs do not import after installation"
  printf '%s\n' "$PY_STAMP" >"$VENV/.osspipe-stamp"
  echo "interop-setup: Python venv ready"
fi

# ---- Node ------------------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || fail "'node' not found: the ali-oss interop test needs Node.js >= 16"
command -v npm >/dev/null 2>&1 || fail "'npm' not found: the ali-oss interop test needs npm"
NODE_VERSION=$(node --version) || fail "'node' does not run"

NODE_STAMP=$( (printf 'node %s\n' "$NODE_VERSION"; cat "$INTEROP/package.json" "$INTEROP/package-lock.json") | hash_stdin)
if [ -f "$NODE_DIR/node_modules/ali-oss/package.json" ] &&
  [ "$(cat "$NODE_DIR/.osspipe-stamp" 2>/dev/null)" = "$NODE_STAMP" ]; then
  echo "interop-setup: ali-oss up to date ($NODE_DIR)"
else
  echo "interop-setup: installing ali-oss into $NODE_DIR (node $NODE_VERSION)"
  BUILD="$NODE_DIR.partial"
  rm -rf "$BUILD"
  mkdir -p "$BUILD"
  cp "$INTEROP/package.json" "$INTEROP/package-lock.json" "$BUILD/"
  (cd "$BUILD" && npm ci --no-audit --no-fund --loglevel=error) ||
    fail "npm ci of tests/interop/package-lock.json failed (is the npm registry reachable?)"
  (cd "$BUILD" && node -e 'require("ali-oss")') || fail "ali-oss does not load after installation"
  printf '%s\n' "$NODE_STAMP" >"$BUILD/.osspipe-stamp"
  rm -rf "$NODE_DIR"
  mv "$BUILD" "$NODE_DIR"
  echo "interop-setup: ali-oss ready"
fi
