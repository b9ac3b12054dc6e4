"""The trained default policy shipped for the Sawyer demo (policies/sawyer/): it is what the recipe
says it is, the demo uses it without training anything, and it still does the job in simulation."""

import json
from pathlib import Path

import metaworld  # noqa: F401 - required: a missing install fails, never skips
import pytest

from vla_bringup import demo

PACKAGE = Path(demo.__file__).resolve().parents[1]


def test_the_demo_uses_the_shipped_policy_without_training(monkeypatch, tmp_path):
    import vla_core.collect
    import vla_core.training.trainer

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("the demo trained a policy although one is shipped")

    monkeypatch.setenv("VLA_CACHE", str(tmp_path))
    monkeypatch.setattr(vla_core.collect, "collect", must_not_run)
    monkeypatch.setattr(vla_core.training.trainer.Trainer, "run", must_not_run)
    ckpt = demo.ensure_default_policy(progress=False, robot="sawyer")
    assert ckpt == demo.shipped_policy("sawyer") and (ckpt / "model.safetensors").is_file()
    assert demo.shipped_policy("aloha") is None  # no ALOHA policy is shipped: its recipe makes one


def test_the_shipped_policy_is_the_recipes():
    """Architecture, data and training length of the shipped weights are those of config/sawyer/demo_policy.yaml
    and the demo's robot entry: a change of the recipe without retraining the shipped policy fails here."""
    from vla_core.checkpoint import read_checkpoint_meta
    from vla_core.config import ExperimentConfig

    config, spec, meta = read_checkpoint_meta(demo.shipped_policy("sawyer"))
    recipe = ExperimentConfig.load(PACKAGE / "config" / "sawyer" / "demo_policy.yaml")
    robot = demo.ROBOTS["sawyer"]
    assert config.policy == recipe.policy
    assert config.data.augment == recipe.data.augment and config.data.val_fraction == recipe.data.val_fraction
    for key in ("batch_size", "lr", "warmup_steps", "ema", "ema_decay", "weight_decay", "seed"):
        assert getattr(config.train, key) == getattr(recipe.train, key), key
    assert meta["step"] <= robot.train_steps and config.train.steps == robot.train_steps
    readme = (PACKAGE / "policies" / "sawyer" / "README.md").read_text()
    assert "python -m vla_bringup.demo --from-recipe" in readme
    assert spec.robot == "sawyer" and list(spec.cameras) == ["corner2"]


@pytest.mark.parametrize("task", ["drawer-open-v3", "button-press-topdown-v3"])
def test_the_shipped_policy_succeeds_in_simulation(tmp_path, task):
    """Six unseen seeds of the two hardest demo tasks through ``vla eval``'s own rollout code: at least five
    succeed (all six here; one is spare for another machine's floating point). The previous default policy,
    trained with the random shift, got 4 and 3 of these six."""
    from vla_core.evaluation import EvalConfig, evaluate

    cfg = EvalConfig(suite="metaworld-mt10", checkpoint=str(demo.shipped_policy("sawyer")), out=str(tmp_path),
                     episodes_per_task=6, heldout_episodes_per_task=0, tasks=[task], baselines=[], workers=1,
                     video=False)
    summary = evaluate(cfg, progress=False)
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(results) == 6
    assert sum(r["success"] for r in results) >= 5, summary
