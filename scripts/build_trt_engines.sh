#!/usr/bin/env bash
# Build TensorRT engines for an export directory, on the target device (Jetson): see README "Deploy".
#   scripts/build_trt_engines.sh EXPORT_DIR [--fp16]
set -euo pipefail
TRTEXEC=${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}
exec python3 -m vla_core.tensorrt_build "$@" --trtexec "$TRTEXEC"
