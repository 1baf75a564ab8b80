#!/usr/bin/env bash
# The GPU checks, as one call on the lent device machine (prepare here first with
# `bash ../shared/tools/device-pack && bash scripts/gpu-prepare.sh`, then run there, carrying
# .devcarry .gl .devdata):
#   source .devcarry/device-unpack && bash bench/gpu.sh
# Steps, each under a timeout that also respects an overall budget (GPU_BUDGET_S, default 420 s):
#   1. the random fp16 SD 1.5 checkpoint is made in the background (scripts/make-sd15-random.ts);
#   2. the golden tiny-pipeline cases on webgpu, then on cpu (bench/gpu.ts golden);
#   3. PyTorch's U-Net step on CUDA, fp16 and fp32 (bench/torch_unet.py, diffusers 0.27.2);
#   4. 512×512 txt2img, 20 Euler steps, CFG 7.5, on webgpu, twice (bench/gpu.ts speed);
#   5. the same on cpu with 2 steps, once, for the per-step ratio;
#   6. the embedded model's U-Net training step (bench/train.ts, batch 64) on webgpu against
#      PyTorch on CUDA (train-webgpu), and on the CPUs against PyTorch on the CPUs (train-cpu).
# The report (timestamped lines) goes to $OUT/gpu.txt, everything printed to $OUT/all.log.
# GPU_SKIP="torch-cuda speed-cpu" leaves out the named steps.
set -u
cd "$(dirname "$0")/.."
export OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
R=$OUT/gpu.txt
ALL=$OUT/all.log
source bench/gpu-lib.sh
gpu_start 420 "$R" "$ALL"
W=${GPU_WORK:-${HOME:-/root}/sdts-gpu-bench}
mkdir -p "$W"
export SDTS_CACHE=$W/cache
CKPT=$W/sd15-random-fp16.safetensors
[ -f .devdata/b/gpu.mjs ] && GPU=(node .devdata/b/gpu.mjs) || GPU=(node --import tsx bench/gpu.ts)
[ -f .devdata/b/train.mjs ] && TRAIN=(node .devdata/b/train.mjs) || TRAIN=(node --import tsx bench/train.ts)
[ -f .devdata/b/make-sd15-random.mjs ] && MK=(node .devdata/b/make-sd15-random.mjs) || MK=(node --import tsx scripts/make-sd15-random.ts)

# skipped NAME: whether GPU_SKIP names the step
skipped() { case " ${GPU_SKIP:-} " in *" $1 "*) return 0;; esac; return 1; }
# step NAME CAP_S CMD...: runs CMD under min(CAP_S, time left − 10 s), output to the log
step() {
  local name=$1 cap=$2; shift 2
  if skipped "$name"; then log "$name: SKIPPED (GPU_SKIP)"; return 0; fi
  local l; l=$(left)
  local t=$(( cap < l - 10 ? cap : l - 10 ))
  if [ "$t" -lt 15 ]; then log "$name: SKIPPED, ${l} s left of the budget"; return 0; fi
  log "$name: start, timeout ${t} s"
  timeout -k 5 "$t" "$@" > "$W/$name.txt" 2>&1
  local rc=$?
  cat "$W/$name.txt" >> "$ALL"
  log "$name: exit $rc$( [ $rc = 124 ] || [ $rc = 137 ] && echo " (TIMED OUT after ${t} s)")"
}

log "gpu.sh: budget ${BUDGET} s; node $(node --version); $(nproc) CPUs; work folder $W"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader 2>&1 | sed 's/^/GPU: /'
  ls /usr/local/nvidia/share/vulkan/icd.d/ 2>&1 | sed 's/^/vulkan ICDs: /'
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"; ldconfig -p | grep -m2 libvulkan
  # the Vulkan driver the loader will open, and any library it lacks (WebGPU finds no adapter without it)
  for j in ${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}; do
    [ -f "$j" ] || continue
    lib=$(grep -o '"library_path"[^,}]*' "$j" | sed 's/.*: *"//; s/".*//')
    path=$lib; [ "${lib#/}" = "$lib" ] && path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    echo "ICD $j: library_path $lib -> ${path:-NOT FOUND by ldconfig}"
    [ -n "$path" ] && { ldd "$path" | grep -i "not found" || echo "ICD library: all its libraries found"; }
  done; } 2>&1 | tee -a "$R" "$ALL"

# 1. the checkpoint, in the background (one CPU core; ~1.7 GB)
# (GPU_SPEED_CKPT: use that model instead, e.g. .devdata/tiny-pipeline with SDTS_GPU_SIZE=128 to try this script on a CPU)
if skipped speed-webgpu && skipped speed-cpu; then
  ( echo "not made: speed-webgpu and speed-cpu skipped" > "$W/mk.log" ) &
elif [ -n "${GPU_SPEED_CKPT:-}" ]; then
  CKPT=$GPU_SPEED_CKPT; ( echo "not made: GPU_SPEED_CKPT=$CKPT" > "$W/mk.log" ) &
else
  ( timeout -k 5 240 "${MK[@]}" "$CKPT" > "$W/mk.log" 2>&1; echo "exit $?" >> "$W/mk.log" ) &
fi
MKPID=$!
log "make-sd15-random: started in the background (pid $MKPID)"

# 2. correctness
TINY=.devdata/tiny-pipeline
if [ -f .devdata/tiny-pipeline.tar.xz ]; then mkdir -p "$W/golden" && tar -C "$W/golden" -xJf .devdata/tiny-pipeline.tar.xz && TINY=$W/golden/tiny-pipeline; fi
VK_LOADER_DEBUG=${VK_LOADER_DEBUG:-error,warn} step golden-webgpu 110 "${GPU[@]}" golden "$TINY" webgpu
step golden-cpu 50 "${GPU[@]}" golden "$TINY" cpu

# 3. PyTorch's U-Net step on CUDA (while the checkpoint is still being written)
if [ -f .devdata/torchsrc.tar.xz ]; then
  mkdir -p /tmp/torchsrc && tar -C /tmp/torchsrc -xJf .devdata/torchsrc.tar.xz
  T=/tmp/torchsrc
  export PYTHONPATH=$T/meta:$T/diffusers/src:$T/huggingface_hub/src${GPU_EXTRA_PYTHONPATH:+:$GPU_EXTRA_PYTHONPATH} PYTHONPYCACHEPREFIX=/tmp/pyc PYTHONUNBUFFERED=1
  step torch-cuda 90 ${GPU_PYTHON:-python3} bench/torch_unet.py --runs ${GPU_TORCH_RUNS:-10} --warmup 3 --dtypes fp16,fp32 ${GPU_TORCH_ARGS:-}
else
  log "torch-cuda: SKIPPED (.devdata/torchsrc.tar.xz not carried)"
fi

# 6. (before the full-size speed steps, which may use up the budget) the embedded model's
# training step; its report lines go to the report as well
train() {
  local name=$1; shift
  step "$name" 150 env SDTS_TORCH_PYTHON="${GPU_PYTHON:-python3}" "${TRAIN[@]}" "$@"
  grep -h -E "^(U-Net stage|sdts \(|torch[ :]|train step ratio|WARNING)" "$W/$name.txt" 2>/dev/null | sed "s/^/$name: /" | tee -a "$R"
}
train train-webgpu --provider webgpu --steps ${GPU_TRAIN_STEPS:-20} --torch-device cuda
train train-cpu --provider cpu --steps 5 --warmup 2 --torch-device cpu

# 4./5. speed at full size
wait "$MKPID"
log "make-sd15-random: $(tr '\n' ' ' < "$W/mk.log")"
if [ -e "$CKPT" ]; then
  log "checkpoint: $(du -sb "$CKPT" | cut -f1) bytes; disk: $(df -h "$W" | tail -1 | tr -s ' ')"
  step speed-webgpu 230 "${GPU[@]}" speed "$CKPT" webgpu 20 2
  step speed-cpu 150 "${GPU[@]}" speed "$CKPT" cpu ${GPU_CPU_STEPS:-2} 1
else
  log "speed: SKIPPED, no checkpoint"
fi
log "gpu.sh: done; cache $(du -sh "$SDTS_CACHE" 2>/dev/null | cut -f1)"
