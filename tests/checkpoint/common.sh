# Sourced by the checkpoint script tests: $TOOL (ckpt_tool), $MPI (mpirun with test flags), a
# fresh $WORK directory removed at exit, and fail().
set -euo pipefail
TOOL=$1
MPI="${MPIEXEC:-mpirun} --oversubscribe --bind-to none"
WORK=$(mktemp -d /tmp/flam_ckpt_script.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Debian's python3 has python3-torch and python3-numpy; a pyenv python3 earlier in PATH may not.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
