"""Validation figures of saved checkpoints of one run: its training loss and its decoded actions' error.

    python scripts/experiments/validation_figures.py runs/t1-mt10-tokens-L1/train best last

Each checkpoint is measured on its run's own fixed validation batches (the ones `vla train` validates on,
same noise draws), so the figures are those the run logged, or would have logged, at that step. Used to
compare checkpoint criteria (`train.select_by`) without retraining.
"""

from __future__ import annotations

import argparse
import tempfile

from vla_core.checkpoint import load_policy, read_checkpoint_meta
from vla_core.config import ExperimentConfig
from vla_core.training.trainer import Trainer


def main() -> None:
    """Print each checkpoint's validation loss and action error."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a training run's output directory (holds the checkpoints)")
    p.add_argument("checkpoints", nargs="+", help="checkpoint names in it, e.g. best last")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        # The checkpoints' weights are already averaged: no EMA on top; nothing is trained or written.
        config = ExperimentConfig.load(f"{args.run}/{args.checkpoints[0]}/config.yaml",
                                       ["--train.ema=false", f"--train.output_dir={scratch}", "--train.device=cpu"])
        trainer = Trainer(config, progress=False)
        for name in args.checkpoints:
            _, _, meta = read_checkpoint_meta(f"{args.run}/{name}")
            trainer.policy.load_state_dict(load_policy(f"{args.run}/{name}").state_dict())
            figures = trainer.validate()
            print(f"{name} (step {meta['step']}): val loss {figures['loss']:.4f}, val action error {figures['action_error']:.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
