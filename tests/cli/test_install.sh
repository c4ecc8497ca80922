# make install's rules (cmake --install BUILD --prefix P): P/bin/flam runs from its new place (it
# finds its modules in P/lib and LibTorch where it was linked), and P's bash completion script
# completes flam's subcommands.
set -euo pipefail
BUILD=${1:?usage: test_install.sh BUILD_DIR}
P=$(mktemp -d /tmp/flam_cli_install.XXXXXX)
trap 'rm -rf "$P"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cmake --install "$BUILD" --prefix "$P" >"$P/install.log" || { cat "$P/install.log"; fail "cmake --install"; }
[ -x "$P/bin/flam" ] || fail "no $P/bin/flam"
version=$(env -u LD_LIBRARY_PATH "$P/bin/flam" --version) || fail "installed flam does not run"
grep -q '^LibTorch 2\.' <<<"$version" || fail "installed flam --version: $version"
if ls "$BUILD"/core/libflam_core.so >/dev/null 2>&1; then
  [ -f "$P/lib/libflam_core.so" ] || fail "the shared modules are not installed in $P/lib"
  loaded=$(ldd "$P/bin/flam" | awk '$1 == "libflam_core.so" {print $3}')
  [ "$(readlink -f "$loaded")" = "$(readlink -f "$P/lib/libflam_core.so")" ] ||
    fail "installed flam does not load its modules from $P/lib: $(ldd "$P/bin/flam" | grep flam)"
fi
completion="$P/share/bash-completion/completions/flam"
[ -f "$completion" ] || fail "no completion script at $completion"
bash --norc --noprofile -c '
  source "$1"
  COMP_WORDS=(flam tr); COMP_CWORD=1; COMPREPLY=()
  _flam
  printf "%s\n" "${COMPREPLY[@]}" | grep -qx train
' _ "$completion" || fail "the installed completion does not complete \"flam tr\" to train"
echo "ok: $P/bin/flam ($(head -1 <<<"$version")), lib/, and the completion script"
