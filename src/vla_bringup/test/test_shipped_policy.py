"""The trained default policies shipped for the demo (policies/sawyer/, policies/aloha/): each is what its
recipe says it is, the demo uses it without training anything, and it still does the job in simulation."""

import json
from pathlib import Path

import metaworld  # noqa: F401 - required: a missing install fails, never skips
import pytest

from vla_bringup import demo

PACKAGE = Path(demo.__file__).resolve().parents[1]


@pytest.mark.parametrize("robot", ["sawyer", "aloha"])
def test_the_demo_uses_the_shipped_policy_without_training(monkeypatch, tmp_path, robot):
    import vla_core.collect
    import vla_core.training.trainer

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("the demo trained a policy although one is shipped")

    monkeypatch.setenv("VLA_CACHE", str(tmp_path))
    monkeypatch.setattr(vla_core.collect, "collect", must_not_run)
    monkeypatch.setattr(vla_core.training.trainer.Trainer, "run", must_not_run)
    ckpt = demo.ensure_default_policy(progress=False, robot=robot)
    assert ckpt == demo.shipped_policy(robot) and (ckpt / "model.safetensors").is_file()


@pytest.mark.parametrize("robot, cameras", [("sawyer", ["corner2"]), ("aloha", ["top", "left_wrist", "right_wrist"])])
def test_the_shipped_policy_is_the_recipes(robot, cameras):
    """Architecture, data and training length of the shipped weights are those of config/<robot>/demo_policy.yaml
    and the demo's robot entry: a change of the recipe without retraining the shipped policy fails here."""
    from vla_core.checkpoint import read_checkpoint_meta
    from vla_core.config import ExperimentConfig

    config, spec, meta = read_checkpoint_meta(demo.shipped_policy(robot))
    recipe = ExperimentConfig.load(PACKAGE / "config" / robot / "demo_policy.yaml")
    entry = demo.ROBOTS[robot]
    assert config.policy == recipe.policy
    assert config.data.augment == recipe.data.augment and config.data.val_fraction == recipe.data.val_fraction
    for key in ("batch_size", "lr", "warmup_steps", "ema", "ema_decay", "weight_decay", "seed"):
        assert getattr(config.train, key) == getattr(recipe.train, key), key
    assert meta["step"] <= entry.train_steps and config.train.steps == entry.train_steps
    assert config.data.cameras == recipe.data.cameras and config.data.successful_only == recipe.data.successful_only
    readme = (PACKAGE / "policies" / robot / "README.md").read_text()
    assert "--from-recipe" in readme
    assert spec.robot == robot and list(spec.cameras) == cameras
    assert entry.camera in ("", ",".join(cameras))   # the demonstrations are recorded with the policy's cameras


def _six_seeds(tmp_path, suite: str, robot: str, task: str, **kw) -> tuple[int, dict]:
    """Successes of the shipped policy of ``robot`` on six unseen seeds of ``task`` (``vla eval``'s rollouts), and the summary."""
    from vla_core.evaluation import EvalConfig, evaluate

    cfg = EvalConfig(suite=suite, checkpoint=str(demo.shipped_policy(robot)), out=str(tmp_path), episodes_per_task=6,
                     heldout_episodes_per_task=0, tasks=[task], baselines=[], workers=1, video=False, **kw)
    summary = evaluate(cfg, progress=False)
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(results) == 6
    return sum(r["success"] for r in results), summary


@pytest.mark.parametrize("task", ["drawer-open-v3", "button-press-topdown-v3"])
def test_the_shipped_policy_succeeds_in_simulation(tmp_path, task):
    """Six unseen seeds of the two hardest demo tasks through ``vla eval``'s own rollout code: at least five
    succeed (all six here; one is spare for another machine's floating point). The previous default policy,
    trained with the random shift, got 4 and 3 of these six."""
    successes, summary = _six_seeds(tmp_path, "metaworld-mt10", "sawyer", task)
    assert successes >= 5, summary


def test_the_shipped_aloha_policy_succeeds_in_simulation(tmp_path):
    """Six unseen seeds of transfer-cube through ``vla eval``'s rollout code (sync: a chunk every 48 steps): all
    six succeed with the shipped a7 (a6, trained with dropout, got four); one is spare for another machine's
    floating point."""
    successes, summary = _six_seeds(tmp_path, "aloha", "aloha", "transfer-cube", max_steps=400)
    assert successes >= 5, summary


def test_the_shipped_aloha_policy_exports_to_onnx_and_matches_torch(tmp_path):
    """The joint-space robot goes through ``vla export`` too: three cameras, 14 joints, 96-step chunks; ONNX
    Runtime answers as PyTorch does (1e-4 rad) through the one runtime interface."""
    import numpy as np

    from vla_core.export import export_onnx
    from vla_core.runtime.backends import load_runtime

    ckpt = demo.shipped_policy("aloha")
    torch_rt = load_runtime(ckpt, "torch")
    ort_rt = load_runtime(export_onnx(ckpt, tmp_path / "onnx"), "onnxruntime")
    rng = np.random.default_rng(0)
    obs = {"images": {cam: rng.integers(0, 256, (2, *shape), dtype=np.uint8) for cam, shape in torch_rt.spec.cameras.items()},
           "proprio": rng.uniform(-0.5, 0.5, (2, torch_rt.spec.proprio_dim)).astype(np.float32),
           "instruction": ["transfer the cube to the other arm", "insert the peg into the socket"]}
    a, b = torch_rt.predict_chunk(obs), ort_rt.predict_chunk(obs)
    assert a.shape == b.shape == (2, 96, 14)
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    assert np.abs(a[0] - a[1]).max() > 1e-3   # the two instructions and scenes ask for different motions
