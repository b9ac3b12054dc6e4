"""Checkpoints: the one saver and the one loader, their refusals and their atomicity."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY
from safetensors.torch import load_file, save_file

from vla_core.checkpoint import FORMAT_VERSION, REQUIRED_FILES, load_matching_weights, load_policy, read_checkpoint_meta, save_checkpoint
from vla_core.config import ExperimentConfig
from vla_core.errors import CheckpointError
from vla_core.policy import make_policy
from vla_core.spec import PolicySpec

SPEC = PolicySpec(cameras={"front": [32, 32, 3]}, proprio_names=["p0", "p1"], action_names=["a0", "a1", "a2"], fps=10.0)
STATS = {"action_min": -np.ones(3, np.float32), "action_max": np.ones(3, np.float32), "action_mean": np.zeros(3, np.float32),
         "action_std": np.ones(3, np.float32), "proprio_mean": np.zeros(2, np.float32), "proprio_std": np.ones(2, np.float32)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cfg = ExperimentConfig.load(None, [*TINY, "--policy.head=regression"])
    policy = make_policy(cfg.policy, SPEC, STATS).eval()
    path = save_checkpoint(tmp_path_factory.mktemp("ck") / "ckpt", policy, cfg, step=7, training_state={"step": 7},
                           extra_meta={"best_val_loss": 0.25})
    return path, policy, cfg


def test_round_trip_is_exact_and_self_describing(saved):
    path, policy, cfg = saved
    assert sorted(p.name for p in path.iterdir()) == sorted([*REQUIRED_FILES, "encoders.json", "training_state.pt"])
    config, spec, meta = read_checkpoint_meta(path)
    assert spec == SPEC and config.to_dict() == cfg.to_dict()
    assert meta["step"] == 7 and meta["format_version"] == FORMAT_VERSION and meta["head"] == "regression"
    assert meta["best_val_loss"] == 0.25
    back = load_policy(path)
    assert not back.training
    for k, v in policy.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    stored = load_file(str(path / "model.safetensors"))
    assert not any(k.startswith("language.") for k in stored)  # the frozen language model is referenced, not copied
    assert json.loads((path / "encoders.json").read_text())["language"]["frozen"] is True


def test_overwriting_is_atomic_and_leaves_no_temporary(saved, tmp_path):
    _, policy, cfg = saved
    target = tmp_path / "ck"
    save_checkpoint(target, policy, cfg, step=1)
    save_checkpoint(target, policy, cfg, step=2)
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    assert read_checkpoint_meta(target)[2]["step"] == 2
    assert not (target / "training_state.pt").exists()  # none given: none written


def copy_of(saved, tmp_path):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(saved[0], path)
    return path


@pytest.mark.parametrize("damage, words", [
    (lambda p: (p / "meta.json").unlink(), "is incomplete: missing meta.json"),
    (lambda p: (p / "spec.json").write_text("{not json"), "has a corrupt meta.json or spec.json"),
    (lambda p: (p / "meta.json").write_text(json.dumps({"format_version": FORMAT_VERSION + 1})), "has format version 2"),
    (lambda p: (p / "config.yaml").write_text("policy: {head: banana}"), "policy.head must be one of"),
    (lambda p: (p / "model.safetensors").write_bytes(b"truncated"), "has unreadable weights"),
])
def test_damaged_checkpoints_are_refused_in_one_sentence(saved, tmp_path, damage, words):
    path = copy_of(saved, tmp_path)
    damage(path)
    with pytest.raises(CheckpointError, match=words):
        load_policy(path)


def test_missing_unexpected_and_misshapen_tensors_are_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    weights = load_file(str(path / "model.safetensors"))
    missing = {k: v for k, v in weights.items() if k != "head.out.bias"}
    save_file(missing, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 missing tensors \(e.g. \['head.out.bias'\]\), 0 unexpected"):
        load_policy(path)
    save_file(weights | {"head.extra": torch.zeros(1)}, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"0 missing tensors \(e.g. \[\]\), 1 unexpected \(e.g. \['head.extra'\]\)"):
        load_policy(path)
    save_file(weights | {"head.out.bias": torch.zeros(5)}, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="has tensors of the wrong shape"):
        load_policy(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nowhere")


def test_a_spec_mismatch_is_refused_and_a_match_accepted(saved):
    path = saved[0]
    assert load_policy(path, SPEC) is not None
    other = PolicySpec(cameras={"front": [32, 32, 3]}, proprio_names=["p0"], action_names=SPEC.action_names, fps=10.0)
    with pytest.raises(CheckpointError, match=r"expects 2 proprioception values \['p0', 'p1'\] but the robot provides 1"):
        load_policy(path, other, what="the robot")


def test_matching_weights_skip_the_normaliser(saved, tmp_path):
    path, policy, cfg = saved
    other_stats = {k: v * 3 for k, v in STATS.items()}
    target = make_policy(cfg.policy, SPEC, other_stats)
    loaded, skipped = load_matching_weights(target, path)
    assert not [k for k in loaded if k.startswith("normalizer.")]
    assert {k for k in skipped} == {k for k in load_file(str(path / "model.safetensors")) if k.startswith("normalizer.")}
    np.testing.assert_array_equal(target.normalizer.stats()["action_max"], other_stats["action_max"])  # its own data's stats


def test_saving_creates_missing_parent_directories_and_defaults_to_step_0(saved, tmp_path):
    _, policy, cfg = saved
    path = save_checkpoint(tmp_path / "runs" / "new" / "best", policy, cfg)
    assert read_checkpoint_meta(path)[2]["step"] == 0
