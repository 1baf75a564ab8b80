#!/usr/bin/env bash
# Prepares what bench/gpu.sh needs on the lent GPU machine, within the 64 MiB a device call may
# carry. Run from the repo root after `bash ../shared/tools/device-pack` (which writes
# .devcarry/node.xz, .devcarry/device-unpack and .gl/). This then:
#  - rewrites .devcarry/node_modules.tar.xz without the build/test-only packages (TypeScript,
#    playwright, @types), without the emoji packages (installed --no-save to build the dataset)
#    and without tsx/esbuild: the device runs esbuild bundles instead;
#  - bundles bench/gpu.ts, bench/train.ts, scripts/make-sd15-random.ts and the CLI (for
#    bench/gpu-recipe.sh) into .devdata/b/*.mjs (onnxruntime-node
#    and sharp stay external; the code finds the package root by walking up to package.json);
#  - packs the golden tiny pipeline into .devdata/tiny-pipeline.tar.xz (not with GPU_NO_GOLDEN=1);
#  - packs the torch-peer's diffusers 0.27.2 and huggingface_hub 0.20.3 sources (.py only) into
#    .devdata/torchsrc.tar.xz for bench/torch_unet.py.
#  - adds glvnd's libraries (libglvnd0, libegl1, libgl1, libglx0, libopengl0, libgles2) to .gl/.
# Carry: .devcarry .gl .devdata
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
grep -qxF /.devdata/ .git/info/exclude || echo /.devdata/ >> .git/info/exclude
mkdir -p .devdata/b
node_modules/.bin/esbuild bench/gpu.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --external:sharp --outfile=.devdata/b/gpu.mjs --log-level=warning
node_modules/.bin/esbuild scripts/make-sd15-random.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --external:sharp --outfile=.devdata/b/make-sd15-random.mjs --log-level=warning
node_modules/.bin/esbuild bench/train.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --external:sharp --outfile=.devdata/b/train.mjs --log-level=warning
node_modules/.bin/esbuild src/cli/main.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --external:sharp --outfile=.devdata/b/cli.mjs --log-level=warning
rm -rf .devdata/tiny-pipeline .devdata/tiny-pipeline.tar.xz
# GPU_NO_GOLDEN=1 leaves the golden cases out (8 MB; run gpu.sh with GPU_SKIP="golden-webgpu golden-cpu")
[ "${GPU_NO_GOLDEN:-0}" = 1 ] || tar -C "${GOLDEN:-../shared/golden}" -c tiny-pipeline | xz -T2 -9 > .devdata/tiny-pipeline.tar.xz
S=${SDTS_TORCH_PEER_SRC:-$HOME/.cache/sdts-torch-peer/src}
if [ -d "$S/diffusers/src/diffusers" ]; then
  tar -C "$S" -c --exclude='*.pyc' --exclude=__pycache__ diffusers/src/diffusers huggingface_hub/src/huggingface_hub \
    meta/diffusers-0.27.2.dist-info meta/huggingface_hub-0.20.3.dist-info | xz -T2 -9 > .devdata/torchsrc.tar.xz
fi
# device-pack brings only libvulkan1; the NVIDIA Vulkan ICD (libGLX_nvidia) also needs glvnd's
# libraries, or the loader cannot open it and WebGPU reports "No supported adapters"
if ! ls .gl/libglvnd0_*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  [ -d /tmp/amd64 ] && ls /tmp/amd64/*Packages* >/dev/null 2>&1 || apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
fi
if [ "${SKIP_NODE_MODULES:-0}" != 1 ]; then
  tar -c --exclude='*/darwin*' --exclude='*/win32*' --exclude='*/linux-arm64*' --exclude='*/linux/arm64*' \
      --exclude='*.map' --exclude='node_modules/@typescript' --exclude='node_modules/typescript' \
      --exclude='node_modules/playwright-core' --exclude='node_modules/@types' --exclude='node_modules/.cache' \
      --exclude='node_modules/esbuild' --exclude='node_modules/@esbuild' --exclude='node_modules/tsx' \
      --exclude='node_modules/emoji-datasource-*' \
      node_modules | xz -T2 -6 > .devcarry/node_modules.tar.xz.new
  mv .devcarry/node_modules.tar.xz.new .devcarry/node_modules.tar.xz
fi
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s}')
carry=$(du -sbc .devcarry .gl .devdata | tail -1 | cut -f1)
echo "tree $tree + carry $carry = $((tree + carry)) bytes of $((64 * 1024 * 1024))"
if [ $((tree + carry)) -gt $((64 * 1024 * 1024)) ]; then
  echo "gpu-prepare: over the 64 MiB a device call carries; GPU_NO_GOLDEN=1 drops the golden cases (8 MB)" >&2
  exit 1
fi
