#!/usr/bin/env bash
# The native engine's proofs in CI (after `make test`, with the fuzzer already provisioned):
#   1. its quick run of the reference under the strict gate;
#   2. the agreement suite (both engines, fresh testees) on cases 1-7 and 10 for the reference,
#      websockets and every mode of the non-conformant testee (conformance/testees/broken_echo.py);
#   3. a sample of 12.x and 13.x (13.3-13.7 included) through the agreement suite.
# Members run three at a time: most of their time is the cases' own timers, not CPU.
# Any disagreement (exit 1) or a member that cannot run (exit 3) fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
WSCONFORM=.venv/bin/wsconform
out=$(mktemp -d -t wsconform-ci-agree.XXXXXX)
trap 'rm -rf "$out"' EXIT

$WSCONFORM run --engine native --profile quick --gate strict --agent reference \
  --outdir "$out/native-quick" -q

members=(reference websockets)
while IFS= read -r mode; do members+=("broken:$mode"); done < <(
  .venv/bin/python -c 'from wsconform.agreement import broken_modes; print("\n".join(broken_modes()))'
)
agree_member() {  # one member's agreement on cases 1-7 and 10; its log kept for the failure
  local member=$1 dir="$out/agree/${1//:/-}" racy=()
  # Chopped-write cases whose verdict against this member changes from run to run under
  # either engine, as the member itself races its echo against the next frame's octets
  # (reports/agreement.md: websockets 3.4, 4.1.5, 4.2.5; no-echo-before-fail 3.4, 4.1.5,
  # 4.2.5). A case that differs is run up to four more times, until Autobahn judges it
  # another way, but an oracle that happens to answer one way five times would still fail CI
  # by chance. `wsconform agree` without --exclude still compares them, and lists the race.
  case $member in
    websockets) racy=(--exclude 3.4,4.1.5,4.2.5) ;;
    broken:no-echo-before-fail) racy=(--exclude 3.4,4.1.5,4.2.5) ;;
  esac
  mkdir -p "$dir"
  if $WSCONFORM agree --profile quick "${racy[@]}" --agent "$member" --outdir "$dir" -q \
      >"$dir.log" 2>&1; then
    grep -E " agree, " "$dir.log" | tail -n 1
  else
    echo "agreement failed for $member:"; cat "$dir.log"; return 1
  fi
}
export -f agree_member
export WSCONFORM out
printf '%s\n' "${members[@]}" | xargs -P 3 -I{} bash -c 'agree_member "$1"' _ {}

$WSCONFORM agree --agent reference --cases '12.1.1,12.1.10,12.3.10,12.5.18,13.1.1,13.2.1,13.3.1,13.3.10,13.4.1,13.5.1,13.5.10,13.6.1,13.7.1,13.7.10' \
  --outdir "$out/agree-deflate" -q
echo "agreement: every member agrees"
