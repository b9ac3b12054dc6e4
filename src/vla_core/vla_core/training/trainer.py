"""``vla train``: behaviour cloning of a VLA policy on a directory of episodes.

AdamW with linear warm-up and cosine decay, gradient clipping and accumulation, mixed precision
on CUDA, optional EMA of the weights, checkpoints ``last`` and ``best`` (by validation loss),
exact resume (model, optimiser, scheduler, EMA and every RNG), a progress bar with loss and
samples/s, TensorBoard logs and ``train_log.jsonl``. Runs as one process or data-parallel under
``torchrun`` / ``accelerate launch`` (:mod:`vla_core.training.distributed`).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from vla_core.checkpoint import load_matching_weights, load_policy, save_checkpoint
from vla_core.config import ExperimentConfig
from vla_core.data.augment import color_jitter, drop_words, random_shift
from vla_core.data.dataset import EpisodeDataset, dataset_stats, load_episodes, spec_from_episodes, split_by_episode
from vla_core.errors import ConfigError, DatasetError
from vla_core.policy import make_policy
from vla_core.training.distributed import DistInfo, batch_indices, init_distributed, mean_across_ranks, shutdown_distributed, steps_share
from vla_core.training.ema import ParameterEMA
from vla_core.training.finetune import add_lora, apply_freezing, count_parameters, param_groups

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is '{name}' but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(warmup: int, total: int):
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0.05 at ``total``."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def prepare_images(images: dict[str, torch.Tensor], augment, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """uint8 (B, To, H, W, 3) per camera -> float (B, To, 3, H, W) in [0, 1], augmented if ``augment``."""
    out = {}
    for cam, x in images.items():
        b, to = x.shape[:2]
        f = x.flatten(0, 1).permute(0, 3, 1, 2).float().div_(255.0)
        if augment is not None and augment.enable:
            f = random_shift(f, augment.shift_pad, generator)
            f = color_jitter(f, augment.brightness, augment.contrast, generator)
        out[cam] = f.unflatten(0, (b, to))
    return out


def _as_is(batch):
    """DataLoader collate function for batches the dataset already stacked."""
    return batch


@dataclass
class TrainResult:
    """Where the run wrote its checkpoints and how it ended."""

    output_dir: Path
    step: int
    train_loss: float
    best_val: float          # the lowest validation figure named by train.select_by (the ``best`` checkpoint's)
    samples_per_s: float


class Trainer:
    """One training run described by an :class:`ExperimentConfig`."""

    def __init__(self, config: ExperimentConfig, progress: bool = True):
        self.config = config
        self.progress = progress
        tc = config.train
        if not config.data.path:
            raise ConfigError("data.path must name a directory of episodes (e.g. --data.path=data/mt10)")
        if tc.num_threads > 0:
            torch.set_num_threads(tc.num_threads)
        self.dist, self.device = init_distributed(resolve_device(tc.device))
        self.main = self.dist.is_main
        seed_everything(tc.seed + self.dist.rank)  # dropout differs per rank; DDP makes the initial weights equal
        report = load_episodes(config.data.path, warn=False)
        self.skipped = report.skipped
        for _name, why in report.skipped:
            self._print(f"skipped {why}")
        episodes = report.episodes
        if config.data.successful_only:
            episodes = [ep for ep in report.episodes if ep.success]
            if not episodes:
                raise DatasetError(f"dataset directory '{config.data.path}': none of its {len(report.episodes)} episodes is "
                                   f"marked successful (set data.successful_only=false to train on them anyway)")
            if len(episodes) < len(report.episodes):
                self._print(f"left out {len(report.episodes) - len(episodes)} of {len(report.episodes)} episodes marked "
                            f"unsuccessful (data.successful_only)")
        train_eps, val_eps = split_by_episode(episodes, config.data.val_fraction, tc.seed)
        pc = config.policy
        self.spec = spec_from_episodes(episodes, config.data.cameras or None)
        budget = config.data.memory_budget_mb
        self.train_set = EpisodeDataset(train_eps, pc.horizon, pc.n_obs_steps, list(self.spec.cameras), budget)
        self.val_set = (EpisodeDataset(val_eps, pc.horizon, pc.n_obs_steps, list(self.spec.cameras),
                                       max(0.0, budget - self.train_set.image_bytes / 2**20)) if val_eps else None)
        if not self.train_set.resident:
            self._print(f"images: {self.train_set.image_bytes / 2**30:.1f} GB decoded, over data.memory_budget_mb "
                        f"{budget:g}: read from disk per batch (data.num_workers={config.data.num_workers})")
        stats = dataset_stats(train_eps)
        # The action range the policy is trained on: every runtime clips its chunks to it.
        self.spec.action_low, self.spec.action_high = stats["action_min"].tolist(), stats["action_max"].tolist()
        self.policy = make_policy(pc, self.spec, stats)
        if tc.init_from:
            loaded, skipped = load_matching_weights(self.policy, tc.init_from)
            self._print(f"initialised {len(loaded)} tensors from {tc.init_from} ({len(skipped)} skipped: other names or shapes)")
        if tc.lora.enable:
            add_lora(self.policy, tc.lora)
        apply_freezing(self.policy, tc)
        self.policy.to(self.device)
        # Data-parallel: DDP averages the gradients of the ranks; self.policy stays the bare module.
        self.model = (DistributedDataParallel(self.policy, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                              find_unused_parameters=False) if self.dist.enabled else self.policy)
        trainable, total = count_parameters(self.policy)
        self._print(f"policy: head={pc.head}, {trainable:,} trainable of {total:,} parameters "
                    f"({len(self.train_set)} training frames from {len(train_eps)} episodes, {len(val_eps)} validation episodes)")
        self.effective_batch = tc.batch_size * tc.grad_accum * self.dist.world_size
        self._print(f"effective batch {self.effective_batch} = {tc.batch_size} per process x {tc.grad_accum} accumulation "
                    f"x {self.dist.world_size} process(es); learning rate {tc.lr:g} (not rescaled with the batch)")
        self.optimizer = torch.optim.AdamW(param_groups(self.policy, tc), lr=tc.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(tc.warmup_steps, tc.steps))
        self.ema = ParameterEMA(self.policy, tc.ema_decay) if tc.ema else None
        self.generator = torch.Generator().manual_seed(tc.seed + self.dist.rank)  # augmentation draws
        self.step = 0
        self.best_val = float("inf")
        self.output_dir = Path(tc.output_dir)
        self.use_amp = tc.amp and self.device.type == "cuda"
        self.wandb = None
        if tc.wandb and self.main:
            try:
                import wandb
            except ImportError:
                raise ConfigError("train.wandb is true but the package wandb is not installed (pip install wandb)") from None
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.wandb = wandb.init(mode="offline", dir=str(self.output_dir), project="vla", config=config.to_dict())
        if tc.resume and (self.output_dir / "last").is_dir():
            self._resume(self.output_dir / "last")

    def _print(self, text: str) -> None:
        if self.main:
            print(text, flush=True)

    # ---------------------------------------------------------------- state
    def _training_state(self) -> dict:
        return {
            "step": self.step, "best_val": self.best_val,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            # With EMA the checkpoint's weights are the averaged ones; keep the live ones for resume.
            # (cloned: the EMA is swapped into these very tensors while the checkpoint is written)
            "live_model": {k: v.detach().clone() for k, v in self.policy.state_dict().items()} if self.ema is not None else None,
            "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                    "data": self.generator.get_state()},
        }

    def _resume(self, directory: Path) -> None:
        loaded = load_policy(directory, self.spec, self.device, what="the dataset")
        self.policy.load_state_dict(loaded.state_dict())
        state = torch.load(directory / "training_state.pt", weights_only=False)
        if state.get("live_model") is not None:
            self.policy.load_state_dict(state["live_model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.generator.set_state(rng["data"])
        self.step, self.best_val = state["step"], state["best_val"]
        self._print(f"resumed from {directory} at step {self.step}")

    def _save(self, name: str) -> None:
        state = self._training_state()  # taken first: it holds the live (not averaged) weights
        with self._averaged() as model:
            save_checkpoint(self.output_dir / name, model, self.config, self.step, state,
                            {"best_val": self.best_val, "select_by": self.config.train.select_by})

    def _averaged(self):
        """The policy with EMA weights swapped in (or as it is, without EMA)."""
        return self.ema.applied(self.policy) if self.ema is not None else nullcontext(self.policy)

    # ---------------------------------------------------------------- loop
    def _indices(self, step: int, micro: int) -> np.ndarray:
        return batch_indices(len(self.train_set), self.config.train.batch_size, self.config.train.seed, step, micro, self.dist)

    def _index_stream(self, end: int):
        """The index batches from the current step to ``end`` (what DataLoader workers fetch ahead)."""
        for step in range(self.step, end):
            for micro in range(self.config.train.grad_accum):
                yield self._indices(step, micro)

    def _batch(self, batch: dict, generator: torch.Generator, augment: bool) -> dict:
        """A stacked batch (``dataset[indices]``) with its images prepared and augmented, on the device."""
        batch = dict(batch)
        # uint8 to the device first, converted and augmented there: a quarter of the bytes to copy, and on a GPU the
        # float conversion leaves the training process's one CPU thread (224 px on an H100: 290 samples/s without).
        images = {c: t.to(self.device, non_blocking=True) for c, t in batch["images"].items()}
        batch["images"] = prepare_images(images, self.config.data.augment if augment else None, generator)
        if augment and self.config.data.augment.enable:
            batch["instruction"] = drop_words(batch["instruction"], self.config.data.augment.word_drop, generator)
        return {k: (v.to(self.device) if isinstance(v, torch.Tensor) else
                    {c: t.to(self.device) for c, t in v.items()} if isinstance(v, dict) else v)
                for k, v in batch.items()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """``loss`` and ``action_error`` (:meth:`VLAPolicy.validation_figures`) on the validation set.

        Means over a fixed set of validation batches (the same batches and noise draws every call); NaN without
        a validation set.
        """
        if self.val_set is None:
            return {"loss": float("nan"), "action_error": float("nan")}
        cpu_state = torch.get_rng_state()
        torch.manual_seed(12345)  # the same noise draws every validation, so numbers are comparable
        gen = torch.Generator().manual_seed(12345)
        with self._averaged() as model:
            model.eval()
            single = DistInfo()
            figures = [model.validation_figures(self._batch(self.val_set[batch_indices(
                len(self.val_set), self.config.train.batch_size, 12345, i, 0, single)], gen, False), gen)
                for i in range(self.config.train.val_batches)]
        torch.set_rng_state(cpu_state)
        self.policy.train()
        loss, error = np.mean(figures, axis=0)
        return {"loss": float(loss), "action_error": float(error)}

    def run(self, stop_at: int | None = None) -> TrainResult:
        """Train until ``train.steps`` (or stop early at ``stop_at``, saving ``last``); returns where the checkpoints are."""
        from tqdm import tqdm

        tc = self.config.train
        writer = None
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if tc.tensorboard and self.main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(self.output_dir / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        self.policy.train()
        bar = tqdm(total=tc.steps, initial=self.step, disable=not (self.progress and self.main), desc="train", unit="step",
                   dynamic_ncols=True)
        t0, samples, loss_ema, last_loss = time.perf_counter(), 0, None, float("nan")
        sps = 0.0
        end = tc.steps if stop_at is None else min(stop_at, tc.steps)
        workers = self.config.data.num_workers
        fetched = iter(DataLoader(self.train_set, sampler=self._index_stream(end), batch_size=None, num_workers=workers,
                                  collate_fn=_as_is, prefetch_factor=4, persistent_workers=False)) if workers > 0 else None
        log_file = open(self.output_dir / "train_log.jsonl", "a") if self.main else None  # noqa: SIM115 - closed below
        while self.step < end:
            self.optimizer.zero_grad(set_to_none=True)
            metrics = {}
            for micro in range(tc.grad_accum):
                if fetched is not None:
                    batch = self._batch(next(fetched), self.generator, augment=True)
                else:
                    batch = self._batch(self.train_set[self._indices(self.step, micro)], self.generator, augment=True)
                last_micro = micro == tc.grad_accum - 1
                sync = self.model.no_sync() if self.dist.enabled and not last_micro else nullcontext()
                # Under DDP each rank's loss is a mean over its own non-padded steps; weighting it by its
                # share of the global batch's steps makes DDP's gradient average the full batch's mean.
                weight = steps_share(batch["action_is_pad"], self.dist, self.device)
                with sync, torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
                    loss, metrics = self.model(batch)
                    loss = loss * weight
                    (loss / tc.grad_accum).backward()
                samples += tc.batch_size * self.dist.world_size
            grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), tc.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.policy)
            self.step += 1
            last_loss = mean_across_ranks(loss.item(), self.dist, self.device)  # the loss of the global batch
            loss_ema = last_loss if loss_ema is None else 0.95 * loss_ema + 0.05 * last_loss
            sps = samples / max(1e-9, time.perf_counter() - t0)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_ema:.4f}", samples_s=f"{sps:.0f}")
            if log_file is not None and (self.step % tc.log_every == 0 or self.step == end):
                log_file.write(json.dumps({"step": self.step, "loss": last_loss, "lr": self.scheduler.get_last_lr()[0],
                                           "samples_per_s": sps, "world_size": self.dist.world_size}) + "\n")
                log_file.flush()
            if not self.main:
                continue  # validation, checkpoints and logs belong to rank 0
            if writer is not None and self.step % tc.log_every == 0:
                writer.add_scalar("train/loss", last_loss, self.step)
                writer.add_scalar("train/grad_norm", float(grad_norm), self.step)
                writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                writer.add_scalar("train/samples_per_s", sps, self.step)
                for k, v in metrics.items():
                    writer.add_scalar(f"train/{k}", float(v), self.step)
            if self.wandb is not None and self.step % tc.log_every == 0:
                self.wandb.log({"train/loss": last_loss, "train/lr": self.scheduler.get_last_lr()[0], "train/samples_per_s": sps,
                                **{f"train/{k}": float(v) for k, v in metrics.items()}}, step=self.step)
            if self.step % tc.val_every == 0 or self.step == tc.steps:
                figures = self.validate()
                val = figures[tc.select_by]
                if writer is not None and not math.isnan(val):
                    for k, v in figures.items():
                        writer.add_scalar(f"val/{k}", v, self.step)
                if log_file is not None:
                    log_file.write(json.dumps({"step": self.step, **{f"val_{k}": v for k, v in figures.items()}}) + "\n")
                if not math.isnan(val) and val < self.best_val:
                    self.best_val = val
                    self._save("best")
                bar.write(f"step {self.step}: train loss {loss_ema:.4f}, val loss {figures['loss']:.4f}, val action error "
                          f"{figures['action_error']:.4f}, {sps:.0f} samples/s")
            if self.step % tc.save_every == 0 or self.step in (tc.steps, end):
                self._save("last")
        bar.close()
        if log_file is not None:
            log_file.close()
        if self.dist.enabled:
            shutdown_distributed()
        if not self.main:
            return TrainResult(self.output_dir, self.step, float(loss_ema or last_loss), self.best_val, sps)
        if writer is not None:
            writer.close()
        if self.wandb is not None:
            self.wandb.finish()
        if not (self.output_dir / "best").is_dir():
            self._save("best")
        return TrainResult(self.output_dir, self.step, float(loss_ema or last_loss), self.best_val, sps)
