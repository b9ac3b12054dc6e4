"""`vla collect` and `vla eval` end to end on Meta-World, kept small."""

import json
import subprocess
import sys

import pytest

from vla_core.cli import main
from vla_core.data.dataset import load_episodes

pytest.importorskip("metaworld")


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


def test_eval_end_to_end_on_a_tiny_checkpoint(collected, tmp_path):
    run = tmp_path / "run"
    assert main(["train", f"--data.path={collected}", f"--train.output_dir={run}", "--train.steps=3",
                 "--train.batch_size=4", "--policy.horizon=8", "--policy.n_action_steps=4", "--policy.fusion.dim=32",
                 "--policy.fusion.layers=1", "--policy.vision.channels=[8,16,16,16]", "--data.val_fraction=0.0",
                 "--train.tensorboard=false", "--no-progress"]) == 0
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "vla_core.cli", "eval", "--checkpoint", str(run / "last"),
                        "--tasks", "reach-v3", "--episodes-per-task", "2", "--heldout-episodes-per-task", "1",
                        "--max-steps", "15", "--workers", "1", "--modes", "receding,ensemble",
                        "--baselines", "expert,zero", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    agents = results["agents"]
    assert set(agents) == {"policy:receding", "policy:ensemble", "expert", "zero"}
    assert agents["policy:receding"]["heldout_episodes"] == 1
    assert agents["policy:receding"]["latency_ms"]["calls"] > 0
    assert agents["zero"]["average_success"] == 0.0
    report = (out / "report.md").read_text()
    assert "| reach-v3 |" in report and "held-out phrasings" in report
    assert (out / "success.png").stat().st_size > 1000
    assert list((out / "videos").glob("reach-v3__*.gif"))
