#!/usr/bin/env bash
# Set up this machine for napari-lesionmix: Debian packages for a virtual X display
# (napari renders only on X), then the package itself with its extras.
#   bash scripts/setup.sh        -> the plugin and the batch engine (napari[all], dask)
#   bash scripts/setup.sh test   -> also the test tools and nnU-Net v2 (CPU torch)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=0
for bin in Xvfb; do command -v "$bin" >/dev/null 2>&1 || need_apt=1; done
[ -e /usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4 ] || [ -e /usr/lib/aarch64-linux-gnu/libxcb-icccm.so.4 ] || need_apt=1
if [ "$need_apt" = 1 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
    libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-cursor0 \
    libgl1 libegl1 libfontconfig1 libdbus-1-3 >/dev/null
fi

if [ "${1:-}" = "test" ]; then
  # torch 2.13.0 is the CPU build nnU-Net v2 needs here; nnU-Net checks our exports.
  python -m pip install -q -e ".[test,all,distributed]" nnunetv2 "torch==2.13.0"
else
  python -m pip install -q -e ".[all,distributed]"
fi
