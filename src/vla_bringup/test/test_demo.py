"""The main job end to end, scaled down: create the default policy (collect + train), then drive the real graph."""

import json

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("metaworld")


def test_demo_creates_the_default_policy_and_runs_instructions(tmp_path, ros_env, monkeypatch):
    from vla_bringup import demo

    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(key, ros_env[key])
    monkeypatch.setenv("VLA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "DEMO_TASKS", ["drawer-close-v3"])
    monkeypatch.setattr(demo, "EPISODES_PER_TASK", 2)
    monkeypatch.setattr(demo, "TRAIN_STEPS", 3)
    out = tmp_path / "demo"
    code = demo.main(["--instructions", "close the drawer", "make me a sandwich", "--timeout", "20", "--out", str(out)])
    assert code == 1  # the unknown instruction is reported as refused
    assert (tmp_path / "cache" / "default_policy" / "run" / "best" / "model.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    first, second = summary["episodes"]
    assert first["task"] == "drawer-close-v3" and first["commands"] > 0 and "error" not in first
    assert "matches no task" in second["error"]
    assert summary["safety"] is not None and summary["safety"]["received"] > 0
    assert (out / "rollout.gif").stat().st_size > 1000
    # A second run reuses the cached policy.
    assert demo.ensure_default_policy() == tmp_path / "cache" / "default_policy" / "run" / "best"
