# flam completion bash: the script sources in bash and completes subcommands, an inspect target,
# config actions and each subcommand's options from the parser's own tables (train's --fresh,
# inspect batch's --json); after an option that takes a value it completes file names.
set -euo pipefail
FLAM=${FLAM_BIN:?}
W=$(mktemp -d /tmp/flam_cli_completion.XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$FLAM" completion bash >"$W/flam.bash"
touch "$W/run.yaml"
bash --norc --noprofile -c '
  set -u
  source "$1"
  complete -p flam | grep -q _flam || { echo "no completion for flam"; exit 1; }
  check() {  # check WANT WORD...: completing the last WORD offers WANT
    local want=$1; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    _flam
    printf "%s\n" "${COMPREPLY[@]}" | grep -qx -- "$want" ||
      { echo "completing [$*] gave [${COMPREPLY[*]}], not $want"; exit 1; }
  }
  refuse() {  # refuse UNWANTED WORD...: completing the last WORD does not offer UNWANTED
    local unwanted=$1; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    _flam
    if printf "%s\n" "${COMPREPLY[@]}" | grep -qx -- "$unwanted"; then
      echo "completing [$*] offered $unwanted"; exit 1
    fi
  }
  check train flam tr
  check completion flam comp
  check --fresh flam train --f
  check --config flam train --co
  refuse --json flam train --
  check batch flam inspect ba
  check --json flam inspect batch --j
  check --png flam inspect batch --p
  check keys flam config k
  check --dry-run flam submit --d
  check "$2/run.yaml" flam train --config "$2/ru"
' _ "$W/flam.bash" "$W" || fail "bash completion"
echo PASS
