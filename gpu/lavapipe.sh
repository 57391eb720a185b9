#!/usr/bin/env bash
# Sets up Mesa's software Vulkan driver (lavapipe) on this Debian 12 machine so that the WebGPU check
# runs here without a GPU. Debian 12's own lavapipe (Mesa 22.3) is rejected by Dawn ("Vulkan
# shaderUniform*ArrayDynamicIndexing required"), so Mesa 25 from bookworm-backports is unpacked
# into /opt/lvp25 (nothing of the system's is replaced). Then:
#
#     eval "$(bash gpu/lavapipe.sh)"          # exports VK_DRIVER_FILES and LD_LIBRARY_PATH
#     bash gpu/run.sh /tmp/gpuout --batches=1 --matmul=256   (slow: a CPU; VB_TIME_LIMIT=150)
set -euo pipefail
DEST=${LVP_DEST:-/opt/lvp25}
if [ ! -f "$DEST/lvp_icd.json" ]; then
  {
    apt-get update -qq
    # the runtime dependencies (libllvm15, xcb, wayland, ...) come with Debian 12's own driver package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 mesa-vulkan-drivers
    T=$(mktemp -d)
    mkdir -p "$T/lists/partial" "$T/etc" "$T/debs"
    cat > "$T/etc/bpo.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    O=(-oDir::Etc::SourceList=/dev/null -oDir::Etc::SourceParts="$T/etc" -oDir::State::Lists="$T/lists" -oAPT::Architecture=amd64)
    apt-get "${O[@]}" update -qq
    (cd "$T/debs" && apt-get "${O[@]}" download mesa-vulkan-drivers libdrm2 libdrm-amdgpu1)
    mkdir -p "$DEST"
    for f in "$T"/debs/*.deb; do dpkg-deb -x "$f" "$DEST"; done
    rm -rf "$T"
    printf '{ "ICD": { "api_version": "1.4.305", "library_path": "%s" }, "file_format_version": "1.0.1" }\n' \
      "$DEST/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" > "$DEST/lvp_icd.json"
  } >&2
fi
echo "export VK_DRIVER_FILES=$DEST/lvp_icd.json LD_LIBRARY_PATH=$DEST/usr/lib/x86_64-linux-gnu"
