#!/usr/bin/env bash
# Set up this machine for napari-lesionmix, from the system's python3 alone:
#   - Debian packages for a virtual X display (napari renders only on X) and, where the
#     system python3 cannot make virtual environments, python3-venv;
#   - a virtual environment in .venv inside the project (Debian and Ubuntu refuse
#     `pip install` into the system Python, PEP 668), with the package and its extras.
#
#   bash scripts/setup.sh        -> the plugin and the batch engine (napari[all], dask)
#   bash scripts/setup.sh test   -> also the test tools, nnU-Net v2, TorchIO and MONAI (CPU torch)
#
# Afterwards run the project's commands through .venv/bin (e.g. .venv/bin/lesionmix),
# or `source .venv/bin/activate` first. PYTHON=/path/to/python3 picks another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || { echo "setup: no $PY on PATH; install Python >= 3.10" >&2; exit 2; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "setup: $PY is $("$PY" --version 2>&1); napari-lesionmix needs Python >= 3.10" >&2; exit 2; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# X display for napari (and the GUI tests).
need_x=0
command -v Xvfb >/dev/null 2>&1 || need_x=1
ls /usr/lib/*-linux-gnu/libxcb-icccm.so.4 >/dev/null 2>&1 || need_x=1
if [ "$need_x" = 1 ]; then
  apt_install xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
    libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-cursor0 \
    libgl1 libegl1 libfontconfig1 libdbus-1-3
fi

# The project's virtual environment.
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install "python${ver}-venv" || apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade "pip>=24"

if [ "${1:-}" = "test" ]; then
  # torch 2.13.0 is the CPU build nnU-Net v2 needs here; nnU-Net checks our exports and
  # trains with our trainer; TorchIO and MONAI (from the test extra) run our transforms.
  # Pinning torch in the same command keeps pip from replacing it for them.
  "$VPY" -m pip install -q -e ".[test,all,distributed]" nnunetv2 "torch==2.13.0"
else
  "$VPY" -m pip install -q -e ".[all,distributed]"
fi
echo "setup: done; the environment is .venv (run .venv/bin/lesionmix, or source .venv/bin/activate)"
