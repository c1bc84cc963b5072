#!/usr/bin/env bash
# Run the whole test suite in the project's virtual environment.
#
#   bash tools/run_tests.sh [extra pytest arguments]
#
# It first runs tools/install.sh (a one-second no-op when nothing changed) so
# that the installed copy used by `mim train/test` matches the source tree.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MTL_FUSION_VENV:-$REPO/.venv}
bash "$REPO/tools/install.sh"
cd "$REPO"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider --durations=15 "$@"
