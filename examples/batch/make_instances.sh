#!/usr/bin/env bash
# Builds a SWE-bench-style task instance from examples/median, offline: a git repository whose
# base commit lacks the test that shows the bug, a bare mirror of it (as `--repos` expects),
# the instance record (test_patch adds the failing test, patch is the gold fix) and a specs
# file for `v4agent evaluate`. Usage: make_instances.sh OUT_DIR
set -euo pipefail
OUT=${1:?usage: make_instances.sh OUT_DIR}
HERE=$(cd "$(dirname "$0")/../median" && pwd)
rm -rf "$OUT/src" "$OUT/repos"
mkdir -p "$OUT/src" "$OUT/repos"
OUT=$(cd "$OUT" && pwd)
export GIT_AUTHOR_NAME=example GIT_AUTHOR_EMAIL=example@v4agent GIT_COMMITTER_NAME=example \
  GIT_COMMITTER_EMAIL=example@v4agent GIT_CONFIG_NOSYSTEM=1
cd "$OUT/src"
git init -q -b main .
cp "$HERE/stats.py" "$HERE/test_stats.py" .
# The base commit: the unsorted-input test is not there yet.
python3 - <<'PY'
import re
t = open("test_stats.py").read()
open("test_stats.py", "w").write(re.sub(r"\n    def test_median_unsorted.*?\n\n", "\n\n", t, flags=re.S))
PY
git add -A && git commit -qm "median helpers"
BASE=$(git rev-parse HEAD)
cp "$HERE/test_stats.py" test_stats.py
TEST_PATCH=$(git diff)
git checkout -q -- .
sed -i 's/    n = len(values)/    values = sorted(values)\n    n = len(values)/' stats.py
PATCH=$(git diff)
git checkout -q -- .
git clone -q --bare "$OUT/src" "$OUT/repos/example__median.git"
python3 - "$OUT" "$BASE" "$TEST_PATCH" "$PATCH" <<'PY'
import json, sys
out, base, test_patch, patch = sys.argv[1:5]
rec = {
    "instance_id": "example__median-1", "repo": "example/median", "base_commit": base,
    "version": "1.0", "environment_setup_commit": base, "created_at": "2026-11-30",
    "problem_statement": "median() returns the wrong value when its input is not sorted: "
                         "median([3, 1, 2]) gives 1 instead of 2.",
    "hints_text": "", "patch": patch + "\n", "test_patch": test_patch + "\n",
    "FAIL_TO_PASS": json.dumps(["test_median_unsorted (test_stats.StatsTest)"]),
    "PASS_TO_PASS": json.dumps(["test_mean (test_stats.StatsTest)",
                                "test_median_sorted (test_stats.StatsTest)"]),
}
open(f"{out}/instances.jsonl", "w").write(json.dumps(rec) + "\n")
PY
cat > "$OUT/specs.yaml" <<'YAML'
# Test commands per repository and version for `v4agent evaluate` (docs/batch.md).
example/median:
  "*":
    test_cmd: python3 -m unittest -v
    parser: unittest
YAML
echo "instances: $OUT/instances.jsonl  repos: $OUT/repos  specs: $OUT/specs.yaml"
