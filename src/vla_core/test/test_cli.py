"""The vla command line, run as a real subprocess: user errors give one line, no traceback."""

import json
import subprocess
import sys

import pytest

from vla_core.data.synthetic import make_dataset


def vla(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "vla_core.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_subcommands():
    r = vla("--help")
    assert r.returncode == 0
    for cmd in ("collect", "train", "eval", "export", "bench", "data", "launch"):
        assert cmd in r.stdout


@pytest.mark.parametrize("args, code, words", [
    (["fly"], 2, "invalid choice: 'fly'"),
    (["train", "--config", "/nonexistent.yaml"], 2, "config file '/nonexistent.yaml' does not exist"),
    (["train", "--policy.head=banana"], 2, "policy.head must be one of"),
    (["train"], 2, "data.path must name a directory"),
    (["eval", "--checkpoint", "/nonexistent"], 2, "checkpoint '/nonexistent' does not exist"),
    (["export", "--checkpoint", "/nonexistent", "--out", "/tmp/x"], 2, "checkpoint '/nonexistent' does not exist"),
    (["collect", "--out", "/tmp/x", "--tasks", "fly-v3"], 2, "unknown task 'fly-v3'"),
    (["collect", "--out", "/tmp/x", "--max-steps", "-1"], 2, "--max-steps must be >= 0"),
    (["data", "inspect", "/nonexistent"], 2, "does not exist"),
    (["launch", "robot", "nosuch:=1", "--dry-run"], 2, "unknown launch argument 'nosuch'"),
])
def test_user_errors_are_one_sentence(args, code, words):
    r = vla(*args)
    assert r.returncode == code, r.stderr
    assert words in r.stderr
    assert "Traceback" not in r.stderr


def test_data_inspect(tmp_path):
    make_dataset(tmp_path, episodes=3, length=12)
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    r = vla("data", "inspect", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "3 episodes, 36 frames at 10 Hz" in r.stdout and "move the block" in r.stdout
    assert "broken.h5" in r.stdout
    summary = json.loads(vla("data", "inspect", str(tmp_path), "--json").stdout)
    assert summary["episodes"] == 3 and len(summary["action_ranges"]) == 4


def test_bench_quick_reports_every_head():
    r = vla("bench", "--quick", "--backends", "torch,onnxruntime", "--policy.fusion.layers=1", timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["heads"]) == {"regression", "diffusion", "flow", "tokens"} and out["backends"] == ["torch", "onnxruntime"]
    for h in out["heads"].values():
        for backend in ("torch", "onnxruntime"):
            lat = h["latency_ms"][backend]
            assert lat["n"] == 30 and 0 < lat["p50"] <= lat["p99"]
        assert h["train_samples_per_s"] > 0 and h["horizon"] == 16
    # Each head really ran, with its own sampler (timings cannot show it on a busy machine; pass counts can).
    assert {name: h["network_passes_per_chunk"] for name, h in out["heads"].items()} == \
        {"regression": 1, "tokens": 1, "diffusion": 10, "flow": 5}
    assert out["heads"]["regression"]["trainable_parameters"] != out["heads"]["tokens"]["trainable_parameters"]


def test_backend_options_are_checked_before_any_work(tmp_path):
    r = vla("eval", "--checkpoint", str(tmp_path), "--backend", "onnxruntime", "--compile")
    assert r.returncode == 2 and "torch.compile applies to the torch back end" in r.stderr


def test_episode_length_defaults_to_the_suites_own():
    """--max-steps 0 (the default) is each suite's episode length: ALOHA's expert needs 400 steps, Meta-World 200."""
    import argparse

    from vla_core.cli import _max_steps

    assert _max_steps(argparse.Namespace(max_steps=0, suite="aloha")) == 400
    assert _max_steps(argparse.Namespace(max_steps=0, suite="metaworld-mt10")) == 200
    assert _max_steps(argparse.Namespace(max_steps=120, suite="aloha")) == 120
