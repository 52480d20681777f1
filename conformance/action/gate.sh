#!/usr/bin/env bash
# The Action's gate step: builds the wsconform command from the INPUT_* variables (set from the
# action's inputs), runs it, and publishes its exit code and counts as step outputs.
# It always exits 0 itself, so that the upload step runs; the Action's last step exits with the
# code recorded here. wsconform appends summary.md to $GITHUB_STEP_SUMMARY on its own.
set -uo pipefail

say() { printf '%s\n' "$*" >&2; }
output() { [ -n "${GITHUB_OUTPUT:-}" ] && printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; return 0; }

args=()
if [ -n "${INPUT_MERGE:-}" ]; then
  # shellcheck disable=SC2206  # the glob is meant to expand to the shard directories
  shards=($INPUT_MERGE)
  args+=(merge "${shards[@]}")
elif [ -n "${INPUT_CLIENT_CMD:-}" ]; then
  args+=(run-client --client-cmd "$INPUT_CLIENT_CMD")
else
  args+=(run)
  [ -n "${INPUT_SERVER_CMD:-}" ] && args+=(--server-cmd "$INPUT_SERVER_CMD")
  [ -n "${INPUT_URL:-}" ] && args+=(--url "$INPUT_URL")
fi
if [ -z "${INPUT_MERGE:-}" ]; then
  args+=(--agent "${INPUT_AGENT:-testee}" --engine "${INPUT_ENGINE:-native}" --quiet)
  args+=(--profile "${INPUT_PROFILE:-full}")
  [ -n "${INPUT_CASES:-}" ] && args+=(--cases "$INPUT_CASES")
  [ -n "${INPUT_EXCLUDE:-}" ] && args+=(--exclude "$INPUT_EXCLUDE")
  [ -n "${INPUT_BASELINE:-}" ] && args+=(--baseline "$INPUT_BASELINE")
  [ -n "${INPUT_SHARD:-}" ] && args+=(--shard "$INPUT_SHARD")
fi
args+=(--gate "${INPUT_GATE:-strict}" --outdir "${INPUT_OUTDIR:-wsconform-reports}")
[ -n "${INPUT_EXPECTATIONS:-}" ] && args+=(--expectations "$INPUT_EXPECTATIONS")
[ "${INPUT_ALLOW_UNIMPLEMENTED:-false}" = "true" ] && args+=(--allow-unimplemented)

say "wsconform ${args[*]}"
wsconform "${args[@]}"
code=$?
# A shard's failures are judged when the shards are merged.
if [ -n "${INPUT_SHARD:-}" ] && [ "$code" -eq 1 ]; then
  say "shard ${INPUT_SHARD}: conformance failures are judged at the merge"
  code=0
fi
output exit-code "$code"

summary="${INPUT_OUTDIR:-wsconform-reports}/summary.json"
if [ -f "$summary" ]; then
  python - "$summary" <<'PY' >>"${GITHUB_OUTPUT:-/dev/null}"
import json, sys
summary = json.load(open(sys.argv[1], encoding="utf-8"))
counts = summary["counts"]
failed = counts.get("failed", 0) + counts.get("changed-failure", 0)
print(f"cases={len(summary['cases'])}")
print(f"passed={counts.get('passed', 0)}")
print(f"failed={failed}")
print(f"summary={summary['summary']}")
PY
elif [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '### wsconform could not run (exit %s)\n\nSee the step log for the reason.\n' "$code" \
    >>"$GITHUB_STEP_SUMMARY"
fi
exit 0
