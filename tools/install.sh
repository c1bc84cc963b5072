#!/usr/bin/env bash
# Create (or update) the mtl_fusion virtual environment and install everything.
#
#   bash tools/install.sh          # user install: mtl_fusion as a wheel (copies)
#   bash tools/install.sh --dev    # developers: this checkout linked (editable)
#
# --dev (or MTL_FUSION_DEV=1) installs the same dependencies, then links the
# checkout with `python setup.py develop` instead of installing a wheel:
# mtl_fusion/.mim/{configs,tools} become symlinks to configs/ and tools/, and
# the environment points at the checkout (an .egg-link, easy-install.pth), so
# `mim train mtl_fusion <cfg>`, `python tools/train.py <cfg>` and
# `mtl_fusion::` config bases use the working tree without reinstalling.
# Rerunning without --dev replaces the link with a wheel again.
#
# Environment variables (all optional):
#   MTL_FUSION_DEV          1: same as --dev
#   MTL_FUSION_VENV         where the virtual environment lives (default: <repo>/.venv)
#   MTL_FUSION_DEVICE       cpu | cuda | auto (default auto: cuda when nvidia-smi works)
#   MTL_FUSION_TORCH_INDEX  a pip index for torch (e.g. https://download.pytorch.org/whl/cpu
#                           or .../whl/cu121); unset: the default index / find-links
#   MTL_FUSION_WHEEL_CACHE  where a locally built mmcv wheel is kept
#                           (default: ~/.cache/mtl_fusion/wheels)
#   MTL_FUSION_WHEELS       extra folder searched for a prebuilt mmcv wheel
#                           (default: <repo>/../shared/wheels when it exists)
#   MTL_FUSION_MMCV_STOP    set to 'metadata' to stop the mmcv source build after the
#                           sdist download and its metadata stage (what CI checks on
#                           every run; seconds instead of the 12-minute compile)
#   PYTHON                  the interpreter that creates the venv (default: python3)
#
# mmcv 2.1.0 has no wheel on PyPI. Without a prebuilt wheel the script builds one in a
# dedicated build environment: a second venv holding only the pinned build tools of
# requirements/build.txt (setuptools with pkg_resources, wheel, ninja) that sees the
# project venv's torch through a .pth line. Whatever setuptools pip resolves for torch
# in the project venv therefore cannot break the build.
#
# A second run with nothing changed is a no-op that takes about a second: stamps in
# the venv record a hash of the requirements and one of the package sources; when
# only the sources changed, only the package is reinstalled.
set -Eeuo pipefail

DEV=${MTL_FUSION_DEV:-0}
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (use --dev or nothing)" >&2; exit 2 ;;
  esac
done
case "$DEV" in 0|1) ;; *) echo "MTL_FUSION_DEV must be 0 or 1, got '$DEV'" >&2; exit 2 ;; esac

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

# Every phase sets STEP and HINT; a failing command then prints the phase, the command
# and what to do next instead of a bare traceback.
STEP="start"
HINT=""
step() { STEP=$1; HINT=${2:-}; log "$STEP"; }
on_error() {
  local rc=$? cmd=$BASH_COMMAND
  # A failing subshell reports through its parent, once.
  [ "$BASH_SUBSHELL" -gt 0 ] && exit "$rc"
  trap - ERR
  {
    echo
    echo "[install] FAILED in step: $STEP (exit $rc)"
    echo "[install] command: $cmd"
    [ -n "$HINT" ] && printf '[install] what to do: %s\n' "$HINT"
    echo "[install] the venv is $VENV; rerunning the script resumes from the failed step."
  } >&2
  exit "$rc"
}
trap on_error ERR
MMCV_HINT="mmcv $MMCV_VERSION has no wheel on PyPI, so it is built from source here. To skip the build, \
point MTL_FUSION_WHEELS at a folder holding a prebuilt mmcv-$MMCV_VERSION-*.whl (built for this Python \
and torch $TORCH_VERSION), or keep the wheel this script caches in MTL_FUSION_WHEEL_CACHE \
(now $CACHE). The build needs gcc/g++ and the Python headers; its pinned tools are in \
requirements/build.txt."

# Hashes of what decides the dependencies, and of the package itself.
hash_files() {
  ( cd "$REPO" && find "$@" -type f -not -path '*/__pycache__/*' -not -path 'mtl_fusion/.mim/*' \
      -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum ) | sha256sum | cut -d' ' -f1
}
DEPS_HASH=$( { echo "device=$DEVICE python=$("$PYTHON" -c 'import sys; print(sys.version)')"
               hash_files requirements tools/install.sh; } | sha256sum | cut -d' ' -f1)
PKG_HASH=$(hash_files setup.py MANIFEST.in README.md _mtl_fusion_scope.py mtl_fusion_scope.pth model-index.yml \
             mtl_fusion configs tools)
# A linked checkout needs no refresh when sources change; the stamp records the mode.
[ "$DEV" = 1 ] && PKG_HASH="dev:$REPO"

STAMP=$VENV/.mtl_fusion_install
DEPS_STAMP=$VENV/.mtl_fusion_deps
install_package() {
  if [ "$DEV" = 1 ]; then
    step "mtl_fusion (developer link of $REPO)" "the checkout could not be linked: read the error above \
(a syntax error in setup.py shows here)."
    # an installed wheel in site-packages would shadow the checkout
    "$VENV/bin/python" -m pip --disable-pip-version-check uninstall -q -y mtl_fusion >/dev/null 2>&1 || true
    ( cd "$REPO" && "$VENV/bin/python" setup.py -q develop >/dev/null )
  else
    step "mtl_fusion (non-editable, so that mim finds mtl_fusion/.mim)" "the package itself failed to build or import: \
read the error above (a syntax error in mtl_fusion/ or setup.py shows here)."
    # keep the egg-info of a developer link of this checkout (another venv may use it)
    local keep_egg_info=0
    [ -d "$REPO/mtl_fusion.egg-info" ] && [ -L "$REPO/mtl_fusion/.mim/configs" ] && keep_egg_info=1
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps --no-build-isolation \
      --force-reinstall "$REPO"
    rm -rf "$REPO/build"
    [ "$keep_egg_info" = 1 ] || rm -rf "$REPO"/*.egg-info
  fi
  ( cd "$VENV" && "$VENV/bin/python" -c 'import mtl_fusion; print("mtl_fusion", mtl_fusion.__version__, "imports from", mtl_fusion.__file__)' )
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

step "build tools" "check that PyPI is reachable (pip config list) and rerun."
"${PIP[@]}" install -q "pip>=23" wheel ninja

if has torch "$TORCH_VERSION"; then
  log "torch $TORCH_VERSION present"
else
  step "installing torch $TORCH_VERSION ($DEVICE)" "torch $TORCH_VERSION must be installable with pip; \
on a CPU machine set MTL_FUSION_TORCH_INDEX to PyTorch's CPU wheel index, on CUDA to the index of your CUDA version."
  "${PIP[@]}" install -q "torch==$TORCH_VERSION" ${MTL_FUSION_TORCH_INDEX:+--index-url "$MTL_FUSION_TORCH_INDEX"}
fi

# mmcv with compiled ops: shared wheel folder > local wheel cache > build from source.
build_mmcv() {
  # Build the mmcv wheel into $CACHE inside a dedicated build environment.
  local build env site
  build=$(mktemp -d)
  env=$build/build-env
  step "mmcv: build environment with the pinned tools of requirements/build.txt" "$MMCV_HINT"
  # The same base interpreter as the project venv, so that its torch is ABI-compatible.
  "$("$PY" -c 'import sys; print(sys._base_executable)')" -m venv "$env"
  "$env/bin/python" -m pip --disable-pip-version-check install -q -r "$REPO/requirements/build.txt"
  # The project venv's torch (and its dependencies) after the build env's own packages.
  site=$("$env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/mtl_fusion_project_venv.pth"
  step "mmcv: checking the build environment" "$MMCV_HINT"
  "$env/bin/python" - "$TORCH_VERSION" <<'PYEOF'
import sys
try:
    import pkg_resources  # noqa: F401  (mmcv's setup.py imports it)
except ImportError as e:
    sys.exit(f'the mmcv build environment has no pkg_resources ({e}); '
             'requirements/build.txt must pin a setuptools that ships it (< 82)')
import setuptools
import torch
if torch.__version__.split('+')[0] != sys.argv[1]:
    sys.exit(f'the build environment sees torch {torch.__version__}, expected {sys.argv[1]}')
print(f'[install] build env: setuptools {setuptools.__version__}, torch {torch.__version__}')
PYEOF
  step "mmcv: downloading the $MMCV_VERSION source and preparing its metadata" "$MMCV_HINT"
  ( cd "$build" && PATH="$env/bin:$PATH" "$env/bin/python" -m pip --disable-pip-version-check download -q \
      --no-deps --no-binary :all: --no-build-isolation -d "$build" "mmcv==$MMCV_VERSION" )
  tar -xzf "$build/mmcv-$MMCV_VERSION.tar.gz" -C "$build"
  # torch >= 2.5 headers need C++20; mmcv 2.1.0 hard-codes C++14/17.
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$build/mmcv-$MMCV_VERSION/setup.py"
  grep -q -- '-std=c++20' "$build/mmcv-$MMCV_VERSION/setup.py"
  ( cd "$build/mmcv-$MMCV_VERSION" && PATH="$env/bin:$PATH" MMCV_WITH_OPS=1 FORCE_CUDA=0 \
      "$env/bin/python" setup.py -q egg_info -e "$build" >/dev/null )
  log "mmcv: sdist downloaded and its metadata prepared ($(cat "$build"/mmcv.egg-info/PKG-INFO | grep -m1 '^Version:'))"
  if [ "${MTL_FUSION_MMCV_STOP:-}" = metadata ]; then
    rm -rf "$build"
    log "stopping after the mmcv metadata stage (MTL_FUSION_MMCV_STOP=metadata): the source path works"
    exit 0
  fi
  step "mmcv: compiling $MMCV_VERSION with ops (10 to 30 minutes on 2 cores)" "$MMCV_HINT"
  FORCE_CUDA=$([ "$DEVICE" = cuda ] && echo 1 || echo 0)
  ( cd "$build/mmcv-$MMCV_VERSION" && PATH="$env/bin:$PATH" MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE_CUDA \
      MAX_JOBS=${MAX_JOBS:-2} "$env/bin/python" -m pip --disable-pip-version-check wheel \
      --no-build-isolation --no-deps -w "$CACHE" . )
  rm -rf "$build"
  log "mmcv wheel cached in $CACHE"
}

if [ "${MTL_FUSION_MMCV_STOP:-}" != metadata ] && has mmcv "$MMCV_VERSION" && "$PY" -c 'import mmcv.ops' >/dev/null 2>&1; then
  log "mmcv $MMCV_VERSION (with ops) present"
else
  mkdir -p "$CACHE"
  FIND_LINKS=()
  [ -d "$SHARED_WHEELS" ] && FIND_LINKS+=(--find-links "$SHARED_WHEELS")
  FIND_LINKS+=(--find-links "$CACHE")
  if [ "${MTL_FUSION_MMCV_STOP:-}" != metadata ] && { ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 || \
     { [ -d "$SHARED_WHEELS" ] && ls "$SHARED_WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; }; }; then
    log "installing mmcv $MMCV_VERSION from a cached wheel"
  else
    build_mmcv
  fi
  step "mmcv: installing the wheel" "$MMCV_HINT"
  "${PIP[@]}" install -q "${FIND_LINKS[@]}" "mmcv==$MMCV_VERSION"
  "$PY" -c 'import mmcv.ops' || { echo "mmcv $MMCV_VERSION was installed but mmcv.ops does not import" >&2; exit 1; }
fi

step "OpenMMLab stack, nuscenes-devkit, spconv ($DEVICE)" "check that PyPI is reachable and rerun; \
the pins are in requirements/pinned.txt, runtime.txt and $DEVICE.txt."
grep -v '^torch' "$REPO/requirements/$DEVICE.txt" > "$VENV/.device-reqs.txt"
"${PIP[@]}" install -q -r "$REPO/requirements/pinned.txt" -r "$REPO/requirements/runtime.txt" \
  -r "$VENV/.device-reqs.txt" -r "$REPO/requirements/tests.txt" "mmcv==$MMCV_VERSION" "torch==$TORCH_VERSION"

step "openmim (without its download-only dependencies)" "check that PyPI is reachable and rerun."
"${PIP[@]}" install -q --no-deps "$(grep '^openmim' "$REPO/requirements/mim.txt")"
"${PIP[@]}" install -q $(grep -v '^#\|^openmim' "$REPO/requirements/mim.txt")

install_package
echo "$DEPS_HASH" > "$DEPS_STAMP"
log "done in $(( $(date +%s) - START )) s; activate with: source $VENV/bin/activate"
