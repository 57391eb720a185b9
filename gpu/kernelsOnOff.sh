#!/usr/bin/env bash
# On the GPU machine (device tool, carry .gpu-cache/slim or .gpu): the WebGPU check twice, with our
# WGSL kernels (src/backends/webgpu) off, then on: fixtures, dispatches per forward, profile (GPU
# share) at batch 1 and 8, forward bench at batch 1 and 8; the training smoke with them on.
#     bash gpu/kernelsOnOff.sh $OUT        -> $OUT/off/*, $OUT/on/* (run.log, webgpu-check.json/.log)
# The slim pack (.gpu-cache/slim: node without ICU data, no compat glibc, only the Vulkan loader
# .deb, the bundle xz-compressed) is what fits beside the working tree in the 64 MiB a call carries.
set -u
OUT=${1:?usage: bash gpu/kernelsOnOff.sh OUT}
cd "$(dirname "$0")/.."
if [ ! -f .gpu/webgpuCheck.mjs ] && [ -d .gpu-cache/slim ]; then
  mkdir -p .gpu && cp -r .gpu-cache/slim/. .gpu/
  python3 -c 'import lzma,shutil; shutil.copyfileobj(lzma.open(".gpu/webgpuCheck.mjs.xz"), open(".gpu/webgpuCheck.mjs","wb"))'
fi
for m in off on; do
  extra=()
  [ "$m" = off ] && extra=(--skip-train-smoke)
  VB_TIME_LIMIT=${VB_TIME_LIMIT:-100} VB_HARD_TIMEOUT=${VB_HARD_TIMEOUT:-125} bash gpu/run.sh "$OUT/$m" --vb-kernels=$m \
    --bench=dispatch,profile,fwd --batches=1,8 --profile-batches=1,8 "${extra[@]}"
  echo "### kernels $m: exit $?"
done
