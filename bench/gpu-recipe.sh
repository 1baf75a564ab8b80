#!/usr/bin/env bash
# The default model's training recipe (README, "Training the default model") end to end on a
# lent GPU machine, every stage with --provider webgpu, timed per stage.
#
# The data and the code do not fit one device call's 64 MiB carry, so it takes two calls on the
# same warm machine (ignored folders such as data/ stay there between calls):
#   here:   bash ../shared/tools/device-pack && GPU_NO_GOLDEN=1 bash scripts/gpu-prepare.sh
#           mkdir -p .devemoji && tar -C <dataset parent> -czf .devemoji/emoji.tar.gz emoji
#   call 1 (carry .devemoji):             mkdir -p data && tar -xzf .devemoji/emoji.tar.gz -C data
#   call 2 (carry .devcarry .gl .devdata): source .devcarry/device-unpack && bash bench/gpu-recipe.sh
# `sdts dataset emoji` itself is not run there: it needs the emoji packages from the registry.
#
# Stages run under one budget (GPU_BUDGET_S, default 520 s); a stage that runs out of time is
# stopped and its rate reported from loss.jsonl (each line has the seconds since the run began).
# Timings come back in $OUT/recipe.txt, each stage's output in $OUT/<stage>.log, and losses,
# configs, sample grids (and the model, when the U-Net stage finishes) in $OUT/recipe.tar: a
# device call brings back only a few files.
set -u
cd "$(dirname "$0")/.."
export OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
R=$OUT/recipe.txt
source bench/gpu-lib.sh
gpu_start 520 "$R"
DATA=${GPU_DATA:-data/emoji}
RUNS=${GPU_RUNS:-runs/gpu}
P=${GPU_PROVIDER:-webgpu}
[ -f .devdata/b/cli.mjs ] && SDTS=(node .devdata/b/cli.mjs) || SDTS=(node --import tsx src/cli/main.ts)

# stage NAME ARGS...: `sdts train NAME DATA --out RUNS/NAME ARGS` under the time left − 15 s
stage() {
  local name=$1; shift
  local t=$(( $(left) - 15 ))
  if [ "$t" -lt 20 ]; then log "$name: SKIPPED, $(left) s left of the budget"; return 1; fi
  log "$name: start, timeout ${t} s"
  local s=$(date +%s)
  timeout -k 5 "$t" "${SDTS[@]}" train "$name" "$DATA" --out "$RUNS/$name" --provider "$P" "$@" > "$OUT/$name.log" 2>&1
  local rc=$? w=$(( $(date +%s) - s ))
  mkdir -p "$OUT/runs/$name"
  cp -r "$RUNS/$name"/{loss.jsonl,config.json,samples} "$OUT/runs/$name/" 2>/dev/null
  # the last line of the loss log: step reached and seconds since the run began
  local last; last=$(tail -n 1 "$RUNS/$name/loss.jsonl" 2>/dev/null)
  log "$name: exit $rc after ${w} s wall$( [ $rc = 124 ] || [ $rc = 137 ] && echo " (STOPPED at the budget)"); last step: ${last:-none}"
  [ $rc = 0 ]
}

log "gpu-recipe: budget ${BUDGET} s; node $(node --version); $(nproc) CPUs; provider $P; data $DATA ($(ls "$DATA" 2>/dev/null | grep -c '\.png$') images)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/GPU: /' | tee -a "$R"
if [ ! -d "$DATA" ]; then log "no dataset at $DATA: carry it first (see the header)"; exit 2; fi
rm -rf "$RUNS"
stage vae --steps 600 --batch 8 --lr 1e-3 &&
  stage clip --steps 1500 --batch 128 --lr 1e-3 &&
  stage unet --vae "$RUNS/vae" --clip "$RUNS/clip" --steps 3000 --batch 64 --lr 1e-3 &&
  { "${SDTS[@]}" train export "$OUT/runs/model" --vae "$RUNS/vae" --clip "$RUNS/clip" --unet "$RUNS/unet" >> "$R" 2>&1; log "export: exit $?"; }
tar -C "$OUT" -cf "$OUT/recipe.tar" runs && rm -rf "$OUT/runs"
log "gpu-recipe: done"
