#!/usr/bin/env bash
# Create (or update) the mtl_fusion virtual environment and install everything.
#
#   bash tools/install.sh
#
# Environment variables (all optional):
#   MTL_FUSION_VENV         where the virtual environment lives (default: <repo>/.venv)
#   MTL_FUSION_DEVICE       cpu | cuda | auto (default auto: cuda when nvidia-smi works)
#   MTL_FUSION_TORCH_INDEX  a pip index for torch (e.g. https://download.pytorch.org/whl/cpu
#                           or .../whl/cu121); unset: the default index / find-links
#   MTL_FUSION_WHEEL_CACHE  where a locally built mmcv wheel is kept
#                           (default: ~/.cache/mtl_fusion/wheels)
#   MTL_FUSION_WHEELS       extra folder searched for a prebuilt mmcv wheel
#                           (default: <repo>/../shared/wheels when it exists)
#   PYTHON                  the interpreter that creates the venv (default: python3)
#
# A second run with nothing changed is a no-op that takes about a second: stamps in
# the venv record a hash of the requirements and one of the package sources; when
# only the sources changed, only the package is reinstalled.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MTL_FUSION_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}
CACHE=${MTL_FUSION_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mtl_fusion/wheels}
SHARED_WHEELS=${MTL_FUSION_WHEELS:-$REPO/../shared/wheels}
MMCV_VERSION=2.1.0
TORCH_VERSION=2.13.0

DEVICE=${MTL_FUSION_DEVICE:-auto}
if [ "$DEVICE" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    DEVICE=cuda
  else
    DEVICE=cpu
  fi
fi
case "$DEVICE" in cpu|cuda) ;; *) echo "MTL_FUSION_DEVICE must be cpu, cuda or auto, got '$DEVICE'" >&2; exit 2 ;; esac

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Hashes of what decides the dependencies, and of the package itself.
hash_files() {
  ( cd "$REPO" && find "$@" -type f -not -path '*/__pycache__/*' -not -path 'mtl_fusion/.mim/*' \
      -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum ) | sha256sum | cut -d' ' -f1
}
DEPS_HASH=$( { echo "device=$DEVICE python=$("$PYTHON" -c 'import sys; print(sys.version)')"
               hash_files requirements tools/install.sh; } | sha256sum | cut -d' ' -f1)
PKG_HASH=$(hash_files setup.py MANIFEST.in README.md mtl_fusion configs tools)

STAMP=$VENV/.mtl_fusion_install
DEPS_STAMP=$VENV/.mtl_fusion_deps
install_package() {
  log "mtl_fusion (non-editable, so that mim finds mtl_fusion/.mim)"
  "$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps --no-build-isolation \
    --force-reinstall "$REPO"
  rm -rf "$REPO/build" "$REPO"/*.egg-info
  ( cd "$VENV" && "$VENV/bin/python" -c 'import mtl_fusion; print("mtl_fusion", mtl_fusion.__version__, "imports")' )
  echo "$PKG_HASH" > "$STAMP"
}
if [ -x "$VENV/bin/python" ] && [ -f "$DEPS_STAMP" ] && [ "$(cat "$DEPS_STAMP")" = "$DEPS_HASH" ]; then
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PKG_HASH" ]; then
    log "up to date ($VENV)"
    exit 0
  fi
  START=$(date +%s)
  install_package
  log "package refreshed in $(( $(date +%s) - START )) s"
  exit 0
fi

START=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment at $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)

has() { "$PY" - "$@" <<'PYEOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
name, want = sys.argv[1], sys.argv[2]
sys.exit(0 if version(name).split('+')[0] == want else 1)
PYEOF
}

log "build tools"
"${PIP[@]}" install -q "pip>=23" "setuptools>=69,<70" wheel ninja

if has torch "$TORCH_VERSION"; then
  log "torch $TORCH_VERSION present"
else
  log "installing torch $TORCH_VERSION ($DEVICE)"
  "${PIP[@]}" install -q "torch==$TORCH_VERSION" ${MTL_FUSION_TORCH_INDEX:+--index-url "$MTL_FUSION_TORCH_INDEX"}
fi

# mmcv with compiled ops: shared wheel folder > local wheel cache > build from source.
if has mmcv "$MMCV_VERSION" && "$PY" -c 'import mmcv.ops' >/dev/null 2>&1; then
  log "mmcv $MMCV_VERSION (with ops) present"
else
  mkdir -p "$CACHE"
  FIND_LINKS=()
  [ -d "$SHARED_WHEELS" ] && FIND_LINKS+=(--find-links "$SHARED_WHEELS")
  FIND_LINKS+=(--find-links "$CACHE")
  if ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 || \
     { [ -d "$SHARED_WHEELS" ] && ls "$SHARED_WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; }; then
    log "installing mmcv $MMCV_VERSION from a cached wheel"
  else
    log "building mmcv $MMCV_VERSION from source (about 12 minutes on 2 cores)"
    BUILD=$(mktemp -d)
    # (no build isolation: mmcv's setup.py needs pkg_resources and torch from this venv)
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    # torch >= 2.5 headers need C++20; mmcv 2.1.0 hard-codes C++14/17.
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' \
      "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    FORCE_CUDA=$([ "$DEVICE" = cuda ] && echo 1 || echo 0)
    ( cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE_CUDA MAX_JOBS=${MAX_JOBS:-2} \
        "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$CACHE" . )
    rm -rf "$BUILD"
    log "mmcv wheel cached in $CACHE"
  fi
  "${PIP[@]}" install -q "${FIND_LINKS[@]}" "mmcv==$MMCV_VERSION"
  "$PY" -c 'import mmcv.ops' || { echo "mmcv $MMCV_VERSION was installed but mmcv.ops does not import" >&2; exit 1; }
fi

log "OpenMMLab stack, nuscenes-devkit, spconv ($DEVICE)"
grep -v '^torch' "$REPO/requirements/$DEVICE.txt" > "$VENV/.device-reqs.txt"
"${PIP[@]}" install -q -r "$REPO/requirements/pinned.txt" -r "$REPO/requirements/runtime.txt" \
  -r "$VENV/.device-reqs.txt" -r "$REPO/requirements/tests.txt" "mmcv==$MMCV_VERSION" "torch==$TORCH_VERSION"

log "openmim (without its download-only dependencies)"
"${PIP[@]}" install -q --no-deps "$(grep '^openmim' "$REPO/requirements/mim.txt")"
"${PIP[@]}" install -q $(grep -v '^#\|^openmim' "$REPO/requirements/mim.txt")

install_package
echo "$DEPS_HASH" > "$DEPS_STAMP"
log "done in $(( $(date +%s) - START )) s; activate with: source $VENV/bin/activate"
