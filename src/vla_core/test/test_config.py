import pytest

from vla_core.config import ExperimentConfig
from vla_core.errors import ConfigError


def test_defaults_are_valid_and_round_trip(tmp_path):
    cfg = ExperimentConfig()
    cfg.save(tmp_path / "c.yaml")
    assert ExperimentConfig.load(tmp_path / "c.yaml") == cfg


def test_dotted_overrides_get_natural_types():
    cfg = ExperimentConfig.load(None, ["--policy.head=diffusion", "--train.steps=7", "--train.lr=1e-3",
                                       "--policy.fusion.film=true", "--train.freeze=vision,language",
                                       "--train.lr_multipliers={vision: 0.1}"])
    assert cfg.policy.head == "diffusion" and cfg.train.steps == 7 and cfg.train.lr == pytest.approx(1e-3)
    assert cfg.policy.fusion.film is True
    assert cfg.train.freeze == ["vision", "language"]
    assert cfg.train.lr_multipliers == {"vision": 0.1}


def test_file_then_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("policy: {head: flow, horizon: 10, n_action_steps: 5}\n")
    cfg = ExperimentConfig.load(tmp_path / "c.yaml", ["--policy.horizon=12"])
    assert (cfg.policy.head, cfg.policy.horizon, cfg.policy.n_action_steps) == ("flow", 12, 5)


@pytest.mark.parametrize("override, words", [
    ("--policy.head=transformer", "policy.head must be one of"),
    ("--policy.horizon=0", "policy.horizon"),
    ("--policy.n_action_steps=99", "n_action_steps"),
    ("--policy.regression.steps_per_query=0", "policy.regression.steps_per_query must be >= 1"),
    ("--policy.regression.steps_per_query=3", "must be a multiple of policy.regression.steps_per_query"),
    ("--train.steps=abc", "train.steps: expected an integer"),
    ("--policy.fusion.dim=130", "multiple of policy.fusion.heads"),
    ("--policy.colour=red", "unknown configuration key 'policy.colour'"),
    ("--train.freeze=[wheels]", "train.freeze"),
    ("policy.head", "must look like"),
])
def test_bad_values_name_the_key(override, words):
    with pytest.raises(ConfigError, match=words.replace(".", r"\.").replace("(", r"\(")):
        ExperimentConfig.load(None, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ExperimentConfig.load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("policy: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        ExperimentConfig.load(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        ExperimentConfig.load(tmp_path / "list.yaml")
