"""`vla collect` and `vla eval` end to end on Meta-World, kept small."""

import json
import subprocess
import sys

import metaworld  # noqa: F401 - required: a missing install fails, never skips
import pytest

from vla_core.cli import main
from vla_core.data.dataset import load_episodes


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = tmp_path_factory.mktemp("mt10")
    code = main(["collect", "--episodes-per-task", "2", "--tasks", "reach-v3", "--out", str(out),
                 "--workers", "1", "--max-steps", "80", "--no-progress"])
    assert code == 0
    return out


def test_collect_writes_loadable_episodes_and_resumes(collected, capsys):
    report = load_episodes(collected)
    assert not report.skipped and len(report.episodes) == 2
    ep = report.episodes[0]
    assert ep.task == "reach-v3" and ep.success and ep.images["corner2"].shape[1:] == (64, 64, 3)
    assert len(ep.actions) == len(ep.proprio) == len(ep.images["corner2"])
    (collected / "reach-v3__00001.h5").unlink()
    capsys.readouterr()
    assert main(["collect", "--episodes-per-task", "2", "--tasks", "reach-v3", "--out", str(collected),
                 "--workers", "1", "--max-steps", "80", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["already_present"] == 1 and summary["recorded"] == 1
    assert (collected / "reach-v3__00001.h5").is_file()


def test_collect_keeps_the_asked_steps_after_success(tmp_path, capsys):
    """--extra-steps: the expert goes on acting that many steps past the first success (what settling looks like)."""
    lengths = {}
    for extra in (0, 12):
        out = tmp_path / f"extra{extra}"
        assert main(["collect", "--episodes-per-task", "1", "--tasks", "reach-v3", "--out", str(out), "--workers", "1",
                     "--max-steps", "150", "--extra-steps", str(extra), "--no-progress"]) == 0
        (ep,) = load_episodes(out).episodes
        assert ep.success
        lengths[extra] = len(ep.actions)
    assert lengths[12] == lengths[0] + 12
    capsys.readouterr()
    assert main(["collect", "--episodes-per-task", "1", "--tasks", "reach-v3", "--out", str(tmp_path / "bad"),
                 "--extra-steps", "-1", "--no-progress"]) == 2
    assert "extra steps after success must be 0 or more" in capsys.readouterr().err


def eval_cli(*args):
    return subprocess.run([sys.executable, "-m", "vla_core.cli", "eval", "--tasks", "reach-v3", "--workers", "1",
                           "--no-progress", *args], capture_output=True, text=True, timeout=600)


def test_eval_runs_the_robot_scheduler_with_inference_delay_and_resumes(collected, tmp_path):
    run = tmp_path / "run"
    assert main(["train", f"--data.path={collected}", f"--train.output_dir={run}", "--train.steps=3",
                 "--train.batch_size=4", "--policy.horizon=8", "--policy.n_action_steps=4", "--policy.fusion.dim=32",
                 "--policy.fusion.layers=1", "--policy.vision.channels=[8,16,16,16]", "--data.val_fraction=0.0",
                 "--train.tensorboard=false", "--no-progress"]) == 0
    out = tmp_path / "eval"
    args = ["--checkpoint", str(run / "last"), "--episodes-per-task", "2", "--heldout-episodes-per-task", "1",
            "--max-steps", "24", "--modes", "sync,blend", "--delay-ms", "0,50", "--baselines", "", "--out", str(out)]
    r = eval_cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    agents = json.loads((out / "results.json").read_text())["agents"]
    assert set(agents) == {"policy:sync", "policy:blend", "policy:sync@50ms", "policy:blend@50ms"}
    assert agents["policy:sync"]["heldout_episodes"] == 1 and agents["policy:sync"]["latency_ms"]["calls"] > 0
    # 50 ms at 80 Hz: a chunk arrives 4 ticks after its request.
    assert agents["policy:sync@50ms"]["delay_ticks"] == 4 and agents["policy:sync"]["delay_ticks"] == 0
    # Synchronous execution holds the robot during every inference (24 steps, 4 actions per chunk: 3 chunks x 4
    # ticks); asynchronous execution holds only while the very first chunk is computed.
    assert agents["policy:sync@50ms"]["holds_per_episode"] == 12.0
    assert agents["policy:blend@50ms"]["holds_per_episode"] == 4.0
    assert agents["policy:sync"]["holds_per_episode"] == 0.0 == agents["policy:blend"]["holds_per_episode"]
    report = (out / "report.md").read_text()
    assert "| reach-v3 |" in report and "held-out phrasings" in report and "| policy:blend@50ms | 4 |" in report
    assert (out / "success.png").stat().st_size > 1000
    assert list((out / "videos").glob("reach-v3__policy_sync.gif"))

    # Interrupted evaluations resume: drop two finished episodes, and only those run again.
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 9  # 4 agents x 2 episodes + 1 held-out
    (out / "results.jsonl").write_text("\n".join(lines[:-2]) + "\n")
    r = eval_cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len((out / "results.jsonl").read_text().splitlines()) == 9
    r = eval_cli(*[a if a != str(run / "last") else str(run / "best") for a in args])
    assert r.returncode == 2 and "holds results of another evaluation (checkpoint differ" in r.stderr


def test_eval_baselines_report_the_expert_with_wilson_intervals(tmp_path):
    from vla_core.evaluation import wilson_interval

    out = tmp_path / "baselines"
    r = eval_cli("--episodes-per-task", "3", "--max-steps", "150", "--baselines", "expert,zero", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    agents = json.loads((out / "results.json").read_text())["agents"]
    expert, zero = agents["expert"]["tasks"]["reach-v3"], agents["zero"]["tasks"]["reach-v3"]
    assert expert["success"] == 1.0 and zero["success"] == 0.0  # the scripted expert reaches; standing still does not
    assert expert["ci95"] == pytest.approx(list(wilson_interval(3, 3))) and zero["ci95"] == pytest.approx(list(wilson_interval(0, 3)))
    assert 0.4 < wilson_interval(3, 3)[0] < 0.5  # 3 of 3: the interval is wide, as it should be
    # The interval always contains the rate itself (6 of 6 once rounded to an upper bound below 1.0, and the
    # report's chart refused the negative error bar).
    for n in range(1, 60):
        for k in (0, n // 3, n):
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n)
    assert agents["expert"]["tasks"]["reach-v3"]["mean_length"] < 150
    seeds = sorted({json.loads(line)["seed"] for line in (out / "results.jsonl").read_text().splitlines()})
    assert seeds == [100_000, 100_001, 100_002]  # the test seeds, never collected


def test_eval_seed_base_moves_every_episode_to_another_seed_range(tmp_path):
    out = tmp_path / "validation"
    r = eval_cli("--episodes-per-task", "2", "--max-steps", "150", "--baselines", "expert", "--seed-base", "200000",
                 "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    seeds = sorted({json.loads(line)["seed"] for line in (out / "results.jsonl").read_text().splitlines()})
    assert seeds == [200_000, 200_001]
    assert json.loads((out / "results.json").read_text())["meta"]["seed_base"] == 200_000
    assert "from 200000" in (out / "report.md").read_text()
