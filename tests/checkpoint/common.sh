# Sourced by the checkpoint script tests: $TOOL (ckpt_tool), $MPI (mpirun with test flags), a
# fresh $WORK directory removed at exit, and fail().
set -euo pipefail
TOOL=$1
MPI="${MPIEXEC:-mpirun} --oversubscribe --bind-to none"
WORK=$(mktemp -d /tmp/flam_ckpt_script.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The venv's Python (torch, numpy), which ctest puts first on PATH and names in FLAM_PYTHON.
PY=${FLAM_PYTHON:-python3}
