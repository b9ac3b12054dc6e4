"""Where the milliseconds of one training step go (issue 10, section 1): batch assembly, augmentation,
forward (vision / language / fusion / head), backward, optimiser, EMA.

    python scripts/experiments/profile_train_step.py --config src/vla_core/config/mt10_cpu.yaml --data.path=data/mt10

Prints the median of each phase over --steps steps (after warm-up) in ms, and samples/s.
"""

import argparse
import time

import numpy as np
import torch

from vla_core.config import ExperimentConfig
from vla_core.training.trainer import Trainer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="src/vla_core/config/mt10_cpu.yaml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="torch.compile the vision encoder, fusion and head")
    args, overrides = parser.parse_known_args()
    cfg = ExperimentConfig.load(args.config, overrides + ["--train.tensorboard=false"])
    trainer = Trainer(cfg, progress=False)
    policy = trainer.policy
    policy.train()
    if args.compile:
        for module in (policy.vision, policy.fusion, policy.head):
            module.compile()
    phases = {k: [] for k in ("batch", "vision", "fusion+head+loss", "backward", "optimizer", "ema", "total")}
    # Time the encoder parts separately with hooks on the vision module.
    marks = {}
    if not args.compile:  # a compiled module runs no Python hooks: its vision time is part of the next phase
        policy.vision.register_forward_pre_hook(lambda m, i: marks.__setitem__("v0", time.perf_counter()))
        policy.vision.register_forward_hook(lambda m, i, o: marks.__setitem__("v1", time.perf_counter()))
    warm = 8 if args.compile else 3
    for step in range(args.steps + warm):
        t0 = time.perf_counter()
        batch = trainer._batch(trainer.train_set[trainer._indices(step, 0)], trainer.generator, True)
        t1 = time.perf_counter()
        loss, _ = policy(batch)
        t2 = time.perf_counter()
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        trainer.optimizer.step()
        t4 = time.perf_counter()
        if trainer.ema is not None:
            trainer.ema.update(policy)
        t5 = time.perf_counter()
        if step >= warm:
            vision = marks["v1"] - marks["v0"] if marks else 0.0
            for k, v in [("batch", t1 - t0), ("vision", vision), ("fusion+head+loss", t2 - t1 - vision),
                         ("backward", t3 - t2), ("optimizer", t4 - t3), ("ema", t5 - t4), ("total", t5 - t0)]:
                phases[k].append(v * 1e3)
    if args.compile:  # no hooks ran: the forward is one phase, not a vision time of zero
        phases["forward (compiled)"] = phases.pop("fusion+head+loss")
        del phases["vision"]
    b = cfg.train.batch_size
    print(f"batch {b}, torch threads {torch.get_num_threads()}")
    for k, v in phases.items():
        print(f"  {k:18s} {np.median(v):8.1f} ms")
    print(f"  samples/s          {b / (np.median(phases['total']) / 1e3):8.0f}")


if __name__ == "__main__":
    main()
