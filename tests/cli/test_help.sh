#!/usr/bin/env bash
# flam SUBCOMMAND --help describes every option the subcommand's parser accepts (its Args table,
# as `flam SUBCOMMAND --flam-describe-options` lists it): one line per option with its meaning,
# none "(undocumented)", and every option that takes a value names its default (or "required").
# Long meanings wrap under the option (continuation lines indented past the option column): no
# line of any --help exceeds 100 columns.
set -euo pipefail
FLAM=${FLAM_BIN:?}
fail() { echo "FAIL: $*" >&2; exit 1; }
commands=$("$FLAM" --help | awk '/^subcommands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{on=0}')
[[ -n $commands ]] || fail "no subcommands in flam --help"
checked=0
# --help with each option's continuation lines joined to its first line.
joined() {
  awk 'substr($0, 1, 33) ~ /^ +$/ && substr($0, 34, 1) ~ /[^ ]/ {
         sub(/^ +/, " "); entry = entry $0; next
       }
       {if (started) print entry; entry = $0; started = 1}
       END {if (started) print entry}'
}
top_long=$("$FLAM" --help | awk 'length($0) > 100')
[[ -z $top_long ]] || fail "flam --help has lines over 100 columns:\n$top_long"
check() {  # check HELP_ARGS... -- DESCRIBE_ARGS...
  local help_args=() describe_args=()
  while [[ $1 != -- ]]; do help_args+=("$1"); shift; done
  shift
  describe_args=("$@")
  local help table long
  help=$("$FLAM" "${help_args[@]}" --help)
  table=$("$FLAM" "${describe_args[@]}" --flam-describe-options)
  long=$(awk 'length($0) > 100' <<<"$help")
  [[ -z $long ]] || fail "${help_args[*]} --help has lines over 100 columns:\n$long"
  help=$(joined <<<"$help")
  if grep -q "(undocumented)" <<<"$help"; then fail "${help_args[*]} --help: $(grep undocumented <<<"$help")"; fi
  while read -r option valued; do
    [[ -n $option ]] || continue
    line=$(grep -E -- "^  $option( |$)" <<<"$help" || true)
    [[ -n $line ]] || fail "${help_args[*]} --help does not describe $option:\n$help"
    words=$(sed -E 's/^ +[^ ]+ +//' <<<"$line")
    [[ ${#words} -ge 10 ]] || fail "${help_args[*]} $option: no meaning: '$line'"
    if [[ -n $valued ]] && ! grep -qE "default|required" <<<"$line"; then
      fail "${help_args[*]} $option names no default: '$line'"
    fi
    checked=$((checked + 1))
  done <<<"$table"
}
for c in $commands; do
  case $c in
    completion) ;;
    inspect) for t in shard batch model checkpoint; do check inspect "$t" -- inspect "$t"; done ;;
    *) check "$c" -- "$c" ;;
  esac
done
# Spot checks of the words themselves.
"$FLAM" train --help | joined | grep -qE -- "--from STEP_DIR +start this new run" || fail "train --from"
"$FLAM" submit --help | joined | grep -qE -- "--after RUN .*afterok" || fail "submit --after"
"$FLAM" inspect batch --help | joined | grep -qE -- "--steps N .*default: 1" || fail "inspect batch --steps"
[[ $checked -ge 60 ]] || fail "only $checked options checked"
echo "PASS ($checked options)"
