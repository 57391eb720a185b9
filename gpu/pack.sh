#!/usr/bin/env bash
# Packs everything the WebGPU check needs on a bare x86-64 Linux GPU machine into .gpu/ (ignored):
#   webgpuCheck.mjs        the check, bundled (gpu/build.mjs)
#   node.xz                this machine's Node 20 binary, stripped and xz-compressed
#   webgpu/                the `webgpu` npm package's runtime files, dawn.node stripped + xz
#   debs/                  Debian's Vulkan loader and GL dispatch libraries (used only where missing)
#   compat.tar.xz          this machine's glibc + libstdc++ (used only if the remote ones are too old)
#   MANIFEST.txt           versions, sizes, checksums
# Then `bash gpu/run.sh OUT` there. Needs: npm ci done (esbuild), xz, strip, apt-get, and the npm
# registry the first time: the `webgpu` package (not a project dependency: ~130 MB, all platforms) is
# fetched with `npm pack` into .gpu-cache/ (ignored) and unpacked to .gpu-cache/webgpu/, where a local
# run (lavapipe, `node .gpu/webgpuCheck.mjs`) also finds it. The project's node_modules is not touched.
# Env: WEBGPU_VERSION (default 0.6.2), VB_GPU_CACHE (default .gpu-cache).
# The Node binary takes ~2 minutes to compress; it is reused while the source binary is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PK=$REPO/.gpu
mkdir -p "$PK"
[ "$(uname -m)" = x86_64 ] || { echo "pack.sh: must run on x86-64 (the GPU machine is x86-64)" >&2; exit 1; }

echo "== bundle"
node gpu/build.mjs "$PK/webgpuCheck.mjs"

echo "== node"
NODE_SRC=$(readlink -f "$(command -v node)")
NODE_VER=$("$NODE_SRC" --version)
case "$NODE_VER" in v20.*) ;; *) echo "pack.sh: expected Node 20, found $NODE_VER at $NODE_SRC" >&2; exit 1 ;; esac
NODE_SUM=$(sha256sum "$NODE_SRC" | cut -d' ' -f1)
if [ -f "$PK/node.xz" ] && [ "$(cat "$PK/node.src.sha256" 2>/dev/null)" = "$NODE_SUM" ]; then
  echo "reusing .gpu/node.xz ($NODE_VER)"
else
  TMP=$(mktemp -d)
  strip -o "$TMP/node" "$NODE_SRC"
  "$TMP/node" --version >/dev/null
  xz -9e -T2 -c "$TMP/node" > "$PK/node.xz.part"
  mv "$PK/node.xz.part" "$PK/node.xz"
  echo "$NODE_SUM" > "$PK/node.src.sha256"
  rm -rf "$TMP"
fi

echo "== webgpu (dawn.node)"
WEBGPU_VERSION=${WEBGPU_VERSION:-0.6.2}
CACHE=${VB_GPU_CACHE:-$REPO/.gpu-cache}
WG=$CACHE/webgpu
mkdir -p "$CACHE"
if [ "$(node -p "try { require('$WG/package.json').version } catch { '' }")" = "$WEBGPU_VERSION" ] && [ -f "$WG/dist/linux-x64/dawn.node" ]; then
  echo "reusing $WG (webgpu $WEBGPU_VERSION)"
else
  TGZ=$CACHE/webgpu-$WEBGPU_VERSION.tgz
  if [ ! -f "$TGZ" ]; then
    # npm pack only downloads the tarball (npm's own cache): no install, no scripts, no dependencies
    (cd "$CACHE" && npm pack "webgpu@$WEBGPU_VERSION" --pack-destination "$CACHE" --silent >/dev/null)
  fi
  [ -f "$TGZ" ] || { echo "pack.sh: npm pack webgpu@$WEBGPU_VERSION did not produce $TGZ" >&2; exit 1; }
  rm -rf "$WG" "$CACHE/package"
  # only what the check loads: index.js (ESM, imports node builtins only), package.json, the licence, linux-x64's dawn.node
  tar -C "$CACHE" -xzf "$TGZ" package/index.js package/package.json package/LICENSE.md package/dist/linux-x64/dawn.node
  mv "$CACHE/package" "$WG"
fi
[ -f "$WG/dist/linux-x64/dawn.node" ] || { echo "pack.sh: $WG/dist/linux-x64/dawn.node missing" >&2; exit 1; }
rm -rf "$PK/webgpu"
mkdir -p "$PK/webgpu/dist/linux-x64"
cp "$WG/index.js" "$WG/package.json" "$WG/LICENSE.md" "$PK/webgpu/"
TMP=$(mktemp -d)
strip -o "$TMP/dawn.node" "$WG/dist/linux-x64/dawn.node"
xz -9e -T2 -c "$TMP/dawn.node" > "$PK/webgpu/dist/linux-x64/dawn.node.xz"
rm -rf "$TMP"

echo "== Vulkan loader and GL dispatch .debs (amd64)"
rm -rf "$PK/debs"
mkdir -p "$PK/debs" /tmp/vbgpu-apt/lists/partial
APTO=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/vbgpu-apt/lists)
apt-get "${APTO[@]}" update -qq
(cd "$PK/debs" && apt-get "${APTO[@]}" download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 libgles2 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
ls "$PK/debs"/libvulkan1_*.deb >/dev/null

echo "== compat libraries (glibc, libstdc++) from this machine"
TMP=$(mktemp -d)
mkdir -p "$TMP/compat"
for so in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libstdc++.so.6 libgcc_s.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$so" "$TMP/compat/$so"
done
tar -C "$TMP" -cJf "$PK/compat.tar.xz" compat
rm -rf "$TMP"

{
  echo "packed $(date -u +%FT%TZ) on $(. /etc/os-release; echo "$PRETTY_NAME") ($(ldd --version | head -1))"
  echo "node $NODE_VER (from $NODE_SRC, sha256 $NODE_SUM)"
  echo "webgpu $(node -p "require('$WG/package.json').version")"
  echo "tfjs $(node -p "require('$REPO/node_modules/@tensorflow/tfjs-core/package.json').version")"
  echo "git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src test gpu || echo ' + local changes')"
  echo
  (cd "$PK" && find . -type f ! -name MANIFEST.txt -printf '%P\n' | sort | xargs sha256sum)
} > "$PK/MANIFEST.txt"

echo "== .gpu/"
(cd "$PK" && find . -type f -printf '%10s  %P\n' | sort -k2)
du -sh "$PK"
BYTES=$(du -sb "$PK" | cut -f1)
[ "$BYTES" -le $((45 * 1024 * 1024)) ] || { echo "pack.sh: .gpu/ is over 45 MiB" >&2; exit 1; }
echo "OK: $BYTES bytes"
