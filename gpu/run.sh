#!/usr/bin/env bash
# Runs the WebGPU check (fixtures + bench on tfjs's webgpu backend, Dawn through the `webgpu` package)
# from what gpu/pack.sh put in .gpu/, on a machine with no Node and maybe no Vulkan loader:
#
#     bash gpu/run.sh OUT_DIR [extra webgpuCheck options, e.g. --skip-bench]
#
# Writes into OUT_DIR (flat, at most 6 files): run.log (everything printed), webgpu-check.json,
# webgpu-check.log, diagnostics.txt when no WebGPU adapter was found, and with VB_SECOND_FLAGS
# webgpu-check-flags.json and webgpu-check-flags.log.
# Env: VB_TIME_LIMIT (seconds for the check's own budget, default 240), VB_HARD_TIMEOUT (kill after,
# default limit + 90), VB_SECOND_FLAGS (tfjs flags NAME=value,NAME=value: after the main check, run
# the forward bench again in a new process with these flags set before the backend initialises,
# into webgpu-check-flags.*; options VB_SECOND_ARGS, default `--skip-fixtures --skip-train-smoke
# --bench=fwd --models=swinv2_tiny_window8_256,vit_small_patch16_224 --batches=1,8`; budget
# VB_SECOND_TIME_LIMIT, default 90 s, killed at +60 s), VB_GPU_WORK (scratch, default /tmp/vbgpu), VB_FORCE_BUNDLED_LIBS=1 (use the
# packed Vulkan/GL libraries even where the system has them), VB_FORCE_COMPAT=1 (run node through the
# packed glibc), VK_DRIVER_FILES (kept if set: e.g. lavapipe for a local test, see gpu/README.md).
set -u
OUT=${1:?usage: bash gpu/run.sh OUT_DIR [webgpuCheck options]}
shift
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PK=$REPO/.gpu
W=${VB_GPU_WORK:-/tmp/vbgpu}
TIME_LIMIT=${VB_TIME_LIMIT:-240}
HARD=${VB_HARD_TIMEOUT:-$((TIME_LIMIT + 90))}
DIAG=$OUT/diagnostics.txt
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json

say() { echo "### [$(date -u +%T)] $*"; }

# xz -d, or Python's lzma where xz is missing
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; fi
}

# extract a .deb without dpkg if needed (ar + tar)
deb_x() {
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$2"; return; fi
  local t; t=$(mktemp -d)
  (cd "$t" && ar x "$1" && tar -xf data.tar.* -C "$2")
  rm -rf "$t"
}

diagnostics() {
  {
    echo "==== diagnostics $(date -u +%FT%TZ): $*"
    echo "-- env (GPU / Vulkan / library paths)"
    env | grep -E '^(VK_|LD_LIBRARY_PATH|NVIDIA|CUDA|__EGL|__GLX|DISPLAY|XDG)' | sort
    echo "-- /dev/nvidia* /dev/dri"
    ls -la /dev/nvidia* /dev/dri 2>&1 | head -20
    echo "-- ICD files"
    for d in /usr/local/nvidia/share/vulkan/icd.d /usr/local/nvidia/etc/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/etc/vulkan/icd.d; do
      [ -d "$d" ] || continue
      for f in "$d"/*.json; do [ -f "$f" ] && { echo "$f:"; cat "$f"; echo; }; done
    done
    find /usr/local/nvidia /usr/share/vulkan /etc/vulkan -maxdepth 4 -name '*.json' 2>/dev/null | head -30
    echo "-- driver libraries"
    ls /usr/local/nvidia/lib64 /usr/local/nvidia/lib 2>/dev/null | grep -iE 'vulkan|glx|gldispatch|glvkspirv|gpucomp|nvidia-gl|egl' | head -30
    echo "-- ldconfig -p (vulkan, GL dispatch, nvidia GL)"
    ldconfig -p | grep -iE 'vulkan|GLX|GLdispatch|nvidia-gl|EGL_nvidia' | head -30
    if command -v vulkaninfo >/dev/null; then echo "-- vulkaninfo --summary"; timeout 30 vulkaninfo --summary 2>&1 | head -60; else echo "(no vulkaninfo)"; fi
  } >> "$DIAG" 2>&1
}

main() {
  say "visbackbones WebGPU check: repo $REPO, out $OUT, work $W, time limit ${TIME_LIMIT}s (hard ${HARD}s)"
  uname -a; (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); ldd --version 2>&1 | head -1; nproc
  [ -f "$PK/webgpuCheck.mjs" ] || { echo "missing $PK/webgpuCheck.mjs: run bash gpu/pack.sh first (and carry .gpu)"; return 2; }
  head -5 "$PK/MANIFEST.txt" 2>/dev/null
  say "nvidia-smi -L"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv 2>&1
  else echo "(no nvidia-smi)"; fi

  say "unpacking node, dawn.node, libraries into $W"
  rm -rf "$W"; mkdir -p "$W/sysroot" "$W/lib"
  unxz_to "$PK/node.xz" "$W/node" && chmod +x "$W/node"
  cp -r "$PK/webgpu" "$W/webgpu"
  unxz_to "$PK/webgpu/dist/linux-x64/dawn.node.xz" "$W/webgpu/dist/linux-x64/dawn.node" && rm "$W/webgpu/dist/linux-x64/dawn.node.xz"
  tar -C "$W" -xJf "$PK/compat.tar.xz" 2>/dev/null || python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$PK/compat.tar.xz" "$W"
  for f in "$PK"/debs/*.deb; do deb_x "$f" "$W/sysroot"; done

  say "ldconfig -p | grep vulkan (system, before)"
  ldconfig -p | grep -i vulkan || echo "(no libvulkan in the system cache)"
  # libraries the system lacks: link the packed ones into $W/lib (searched after everything else)
  local so n=0
  for so in libvulkan.so.1 libGLdispatch.so.0 libGLX.so.0 libEGL.so.1 libOpenGL.so.0 libGL.so.1 libGLESv2.so.2; do
    if [ "${VB_FORCE_BUNDLED_LIBS:-0}" = 1 ] || ! ldconfig -p | grep -q "[[:space:]]$so "; then
      ln -sf "$W/sysroot/usr/lib/x86_64-linux-gnu/$so" "$W/lib/$so" && n=$((n + 1)) && echo "using packed $so"
    fi
  done
  local ldp=""
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -d "$d" ] && case ":${LD_LIBRARY_PATH:-}:" in *":$d:"*) ;; *) ldp="$ldp:$d" ;; esac
  done
  if [ "${VB_FORCE_BUNDLED_LIBS:-0}" = 1 ]; then export LD_LIBRARY_PATH="$W/lib${ldp}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH}${ldp}:$W/lib"; fi
  export LD_LIBRARY_PATH=${LD_LIBRARY_PATH#:}
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  [ $n -gt 0 ] && ls -la "$W/lib"

  # Vulkan driver: the NVIDIA ICD lives outside the loader's search path on these machines
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$NVIDIA_ICD" ] && ! grep -qls nvidia /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null; then
    export VK_DRIVER_FILES=$NVIDIA_ICD VK_ICD_FILENAMES=$NVIDIA_ICD
  fi
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset: the loader searches its default folders)}"
  [ -n "${VK_DRIVER_FILES:-}" ] && cat "${VK_DRIVER_FILES%%:*}" 2>/dev/null

  # node + dawn.node: system libraries, else packed libstdc++, else the packed glibc as loader
  NODE=("$W/node")
  local smoke="require('$W/webgpu/dist/linux-x64/dawn.node'); console.log('node', process.version, 'loads dawn.node')"
  mkdir -p "$W/compat/cxx" && cp "$W/compat/libstdc++.so.6" "$W/compat/libgcc_s.so.1" "$W/compat/cxx/"
  if [ "${VB_FORCE_COMPAT:-0}" != 1 ] && "${NODE[@]}" -e "$smoke"; then
    :
  elif [ "${VB_FORCE_COMPAT:-0}" != 1 ] && LD_LIBRARY_PATH="$W/compat/cxx:$LD_LIBRARY_PATH" "${NODE[@]}" -e "$smoke"; then
    export LD_LIBRARY_PATH="$W/compat/cxx:$LD_LIBRARY_PATH"
    echo "using packed libstdc++"
  else
    NODE=("$W/compat/ld-linux-x86-64.so.2" --library-path "$W/compat:$LD_LIBRARY_PATH" "$W/node")
    echo "using packed glibc as loader"
    "${NODE[@]}" -e "$smoke" || { echo "node cannot load dawn.node"; diagnostics "node cannot load dawn.node"; return 2; }
  fi

  export WEBGPU_MODULE=$W/webgpu/index.js VB_REPO_ROOT=$REPO
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

  # probe for an adapter; on failure try the NVIDIA ICD explicitly, then the packed loader, with loader logs
  say "probing WebGPU adapter"
  if ! timeout -k 5 60 "${NODE[@]}" "$PK/webgpuCheck.mjs" "$W/probe0" --probe; then
    diagnostics "first probe found no adapter"
    local try ok=0
    for try in icd bundled; do
      if [ "$try" = icd ]; then
        [ -f "$NVIDIA_ICD" ] || continue
        export VK_DRIVER_FILES=$NVIDIA_ICD VK_ICD_FILENAMES=$NVIDIA_ICD
      else
        ln -sf "$W/sysroot/usr/lib/x86_64-linux-gnu/libvulkan.so.1" "$W/lib/libvulkan.so.1"
        ln -sf "$W/sysroot/usr/lib/x86_64-linux-gnu/libGLdispatch.so.0" "$W/lib/libGLdispatch.so.0"
        export LD_LIBRARY_PATH="$W/lib:$LD_LIBRARY_PATH"
        [ "${NODE[0]}" = "$W/node" ] || NODE=("$W/compat/ld-linux-x86-64.so.2" --library-path "$W/compat:$LD_LIBRARY_PATH" "$W/node")
      fi
      say "probe with $try (VK_DRIVER_FILES=${VK_DRIVER_FILES:-}, LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"
      echo "==== probe with $try, VK_LOADER_DEBUG=error,warn,driver" >> "$DIAG"
      if VK_LOADER_DEBUG=error,warn,driver timeout -k 5 60 "${NODE[@]}" "$PK/webgpuCheck.mjs" "$W/probe-$try" --probe >> "$DIAG" 2>&1; then
        ok=1; echo "adapter found with $try"; break
      fi
    done
    if [ $ok = 0 ]; then
      echo "==== first probe again with VK_LOADER_DEBUG=all (tail)" >> "$DIAG"
      VK_LOADER_DEBUG=all timeout -k 5 60 "${NODE[@]}" "$PK/webgpuCheck.mjs" "$W/probe-debug" --probe 2>&1 | tail -150 >> "$DIAG"
      cp "$W/probe0/webgpu-check.log" "$OUT/webgpu-check.log" 2>/dev/null
      cp "$W/probe0/webgpu-check.json" "$OUT/webgpu-check.json" 2>/dev/null
      say "NO WEBGPU ADAPTER: see $DIAG"
      return 3
    fi
  fi

  say "running the check (${TIME_LIMIT}s budget, killed at ${HARD}s)"
  timeout -k 10 "$HARD" "${NODE[@]}" "$PK/webgpuCheck.mjs" "$OUT" --time-limit="$TIME_LIMIT" "$@"
  local rc=$?
  say "check exit code $rc (0 all fixtures passed, 1 some failed, 2 crash, 3 no adapter, 124/137 killed by timeout)"
  [ $rc = 3 ] && diagnostics "check found no adapter"

  # the same forward bench once more with other tfjs flags (fixed at backend init: a new process)
  if [ -n "${VB_SECOND_FLAGS:-}" ] && [ $rc -le 1 ]; then
    local t2=${VB_SECOND_TIME_LIMIT:-90} args2
    read -r -a args2 <<< "${VB_SECOND_ARGS:---skip-fixtures --skip-train-smoke --bench=fwd --models=swinv2_tiny_window8_256,vit_small_patch16_224 --batches=1,8}"
    say "second run: tfjs flags $VB_SECOND_FLAGS, ${args2[*]} (${t2}s budget, killed at $((t2 + 60))s)"
    timeout -k 10 $((t2 + 60)) "${NODE[@]}" "$PK/webgpuCheck.mjs" "$OUT" --out-name=webgpu-check-flags --time-limit="$t2" --tf-flags="$VB_SECOND_FLAGS" "${args2[@]}"
    say "second run exit code $? (0 ran, 2 crash or a bad --tf-flags value, 3 no adapter, 124/137 killed by timeout)"
  fi
  nvidia-smi --query-gpu=name,memory.used,clocks.sm --format=csv 2>/dev/null
  return $rc
}

set -o pipefail
main "$@" 2>&1 | grep --line-buffered -v 'XDG_RUNTIME_DIR is invalid' | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
