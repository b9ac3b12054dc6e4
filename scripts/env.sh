#!/usr/bin/env bash
# Source me: activates .venv, makes it an ament prefix when ROS comes from wheels, and sources
# the colcon install space. `source scripts/env.sh` from any directory.
_vla_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_vla_venv=${VLA_VENV:-$_vla_root/.venv}
if [ ! -x "$_vla_venv/bin/python" ]; then
  echo "scripts/env.sh: $_vla_venv does not exist; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck source=/dev/null
source "$_vla_venv/bin/activate"
if [ -d "$_vla_venv/share/ament_index" ]; then
  export AMENT_PREFIX_PATH="$_vla_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$_vla_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
if [ -f "$_vla_root/install/local_setup.bash" ]; then
  # shellcheck source=/dev/null
  source "$_vla_root/install/local_setup.bash"
fi
unset _vla_root _vla_venv
