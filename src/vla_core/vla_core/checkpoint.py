"""Self-describing checkpoint directories: the one saver and the one loader.

Layout::

    CKPT/
      meta.json                  format version, vla_core version, training step, head
      config.yaml                the full ExperimentConfig (policy + data + train)
      spec.json                  cameras, proprio / action names, control rate
      normalization.safetensors  action / proprio statistics
      encoders.json              identities of pretrained encoders referenced (not copied)
      model.safetensors          weights (frozen pretrained language model excluded)
      training_state.pt          optimizer / scheduler / EMA / RNG state, for exact resume (optional)

Loading compares the stored spec with what the caller provides and fails with one sentence on a
mismatch. :func:`load_matching_weights` copies only same-name same-shape tensors (fine-tuning).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_core.config import ExperimentConfig
from vla_core.errors import CheckpointError, ConfigError
from vla_core.spec import PolicySpec

FORMAT_VERSION = 1
REQUIRED_FILES = ("meta.json", "config.yaml", "spec.json", "normalization.safetensors", "model.safetensors")


def save_checkpoint(directory: str | Path, policy, config: ExperimentConfig, step: int = 0,
                    training_state: dict | None = None, extra_meta: dict | None = None) -> Path:
    """Write ``policy`` as a checkpoint directory, atomically (a temporary directory renamed into place)."""
    from vla_core import __version__

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        state = policy.state_dict()
        keep = policy.trainable_state_keys()
        weights = {k: v.detach().cpu().contiguous() for k, v in state.items() if k in keep}
        save_file(weights, str(tmp / "model.safetensors"))
        stats = {k: torch.as_tensor(v) for k, v in policy.normalizer.stats().items()}
        save_file(stats, str(tmp / "normalization.safetensors"))
        config.save(tmp / "config.yaml")
        (tmp / "spec.json").write_text(json.dumps(policy.spec.to_dict(), indent=2))
        from vla_core.policy.encoders import model_identity

        encoders = {"language": model_identity(config.policy.language.pretrained_path)
                    | {"frozen": config.policy.language.freeze}}
        if config.policy.vision.type == "hf":
            encoders["vision"] = model_identity(config.policy.vision.pretrained_path) | {"frozen": config.policy.vision.freeze}
        (tmp / "encoders.json").write_text(json.dumps(encoders, indent=2))
        meta = {"format_version": FORMAT_VERSION, "vla_core_version": __version__, "step": int(step),
                "head": config.policy.head} | dict(extra_meta or {})
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if training_state is not None:
            torch.save(training_state, tmp / "training_state.pt")
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint '{directory}' does not exist (expected a directory written by vla train)")
    missing = [f for f in REQUIRED_FILES if not (directory / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint '{directory}' is incomplete: missing {', '.join(missing)}")


def read_checkpoint_meta(directory: str | Path) -> tuple[ExperimentConfig, PolicySpec, dict]:
    """Config, spec and meta of a checkpoint, without building the model."""
    directory = Path(directory)
    _check_directory(directory)
    try:
        meta = json.loads((directory / "meta.json").read_text())
        spec = PolicySpec.from_dict(json.loads((directory / "spec.json").read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint '{directory}' has a corrupt meta.json or spec.json ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint '{directory}' has format version {meta.get('format_version')}, this vla_core reads {FORMAT_VERSION}"
        )
    try:
        config = ExperimentConfig.load(directory / "config.yaml")
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint '{directory}': {exc}") from None
    return config, spec, meta


def load_policy(directory: str | Path, expected_spec: PolicySpec | None = None, device: str | torch.device = "cpu",
                what: str = "the caller"):
    """Build the policy stored in ``directory``; check it against ``expected_spec`` if given."""
    from vla_core.policy import make_policy

    directory = Path(directory)
    config, spec, _ = read_checkpoint_meta(directory)
    if expected_spec is not None:
        spec.check_compatible(expected_spec, what)
    try:
        stats = {k: v.numpy() for k, v in load_file(str(directory / "normalization.safetensors")).items()}
        weights = load_file(str(directory / "model.safetensors"))
    except Exception as exc:  # safetensors raises several types for a truncated or foreign file
        raise CheckpointError(f"checkpoint '{directory}' has unreadable weights ({exc})") from None
    policy = make_policy(config.policy, spec, stats)
    if config.train.lora.enable:
        from vla_core.training.finetune import add_lora

        add_lora(policy, config.train.lora)
    expected = policy.trainable_state_keys()
    missing = sorted(expected - set(weights))
    unexpected = sorted(set(weights) - set(policy.state_dict()))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint '{directory}' does not match its config: "
            f"{len(missing)} missing tensors (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    try:
        policy.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint '{directory}' has tensors of the wrong shape ({str(exc).splitlines()[-1].strip()})") from None
    return policy.to(device).eval()


def load_matching_weights(policy, directory: str | Path) -> tuple[list[str], list[str]]:
    """Copy tensors with the same name and shape from a checkpoint into ``policy``.

    Returns (loaded names, skipped names). Used to fine-tune from another checkpoint whose action
    space, cameras or head may differ.
    """
    directory = Path(directory)
    _check_directory(directory)
    weights = load_file(str(directory / "model.safetensors"))
    own = policy.state_dict()
    loaded = [k for k, v in weights.items() if k in own and own[k].shape == v.shape and not k.startswith("normalizer.")]
    policy.load_state_dict({k: weights[k] for k in loaded}, strict=False)
    skipped = sorted(set(weights) - set(loaded))
    return loaded, skipped
