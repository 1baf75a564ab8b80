#!/usr/bin/env bash
# The default model's U-Net stage alone on a lent GPU (--provider webgpu), in one device call.
#
# One call carries at most 64 MiB with the working tree, and the tree alone is ~30 MB with the
# shipped model, so this carries the least the stage reads: captions, weights.json and the
# latent cache of a run that already encoded the dataset. With the cache present the stage reads
# the images only to count them, so one white PNG stands in for each (hard links on the device).
# Prepare here (the shipped U-Net's weights are moved out of the tree for the call, then back):
#   bash ../shared/tools/device-pack && GPU_NO_GOLDEN=1 bash scripts/gpu-prepare.sh
#   rm .devdata/torchsrc.tar.xz .devdata/b/{gpu,train,make-sd15-random}.mjs
#   mkdir -p .devemoji && echo /.devemoji/ >> .git/info/exclude
#   (cd data/emoji && tar -c *.txt weights.json | xz > ../../.devemoji/captions.tar.xz)
#   xz -c <unet run>/latents.safetensors > .devemoji/latents.safetensors.xz
#   node -e "require('sharp')({create:{width:64,height:64,channels:3,background:'#fff'}}).png().toFile('.devemoji/white.png')"
#   mv models/default/unet/diffusion_pytorch_model.safetensors /elsewhere/   (and back after the call)
# Call (carry .devcarry .gl .devdata .devemoji): T=548 bash bench/gpu-unet.sh
# It trains on models/default's VAE and text encoder with the recipe's flags (STEPS, SEED, T =
# the stage's time limit in seconds), exports, and returns log.txt, unet.log, loss.jsonl,
# config.json and the exported U-Net split in 15 MB parts (cat unet.part.* > the safetensors).
# Measured on a lent H200: 0.30 s per step (3.26 it/s), so 3,000 steps need ≈ 15 min, more
# than one 10-minute call: a second call on the still-warm machine (it stays 30 s) continues the
# run, as the script passes --resume when runs/g/unet holds a checkpoint.
set -u
cd "$(dirname "$0")/.."
[ -n "${LOCAL:-}" ] || source .devcarry/device-unpack
export OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
P=${P:-webgpu}; STEPS=${STEPS:-3000}; T=${T:-548}; SEED=${SEED:-3}
L=$OUT/log.txt
source bench/gpu-lib.sh
gpu_start "$T" "$L"
mkdir -p data/emoji && tar -xJf .devemoji/captions.tar.xz -C data/emoji
(cd data/emoji && for f in *.txt; do ln -f ../../.devemoji/white.png "${f%.txt}.png"; done)
[ -f runs/g/unet/latents.safetensors ] || { mkdir -p runs/g/unet && xz -dc .devemoji/latents.safetensors.xz > runs/g/unet/latents.safetensors; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$L" 2>&1
log "setup done; $(ls data/emoji | grep -c png) images; $(nproc) CPUs"
resume=(); [ -f runs/g/unet/checkpoint.safetensors ] && resume=(--resume)
timeout -k 5 "$T" node .devdata/b/cli.mjs train unet data/emoji --out runs/g/unet --vae models/default --clip models/default \
  --steps "$STEPS" --batch 64 --lr 1e-3 --seed "$SEED" --save-every 100 --sample-every 1000 --provider "$P" "${resume[@]}" > "$OUT/unet.log" 2>&1
log "unet exit $?; last: $(tail -n 1 runs/g/unet/loss.jsonl)"
node .devdata/b/cli.mjs train export runs/g/model --vae models/default --clip models/default --unet runs/g/unet >> "$L" 2>&1
cp runs/g/unet/loss.jsonl runs/g/unet/config.json "$OUT/"
split -b 15M runs/g/model/unet/diffusion_pytorch_model.safetensors "$OUT/unet.part."
log "done"
