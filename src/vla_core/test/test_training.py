import json

import torch
from conftest import TINY

from vla_core.checkpoint import load_policy
from vla_core.cli import main
from vla_core.config import ExperimentConfig
from vla_core.training.finetune import count_parameters
from vla_core.training.trainer import Trainer


def test_train_writes_last_and_best_and_loss_falls(tiny_config):
    cfg = tiny_config("regression", "--train.steps=60", "--train.val_every=30", "--train.save_every=30",
                      "--train.batch_size=16", "--train.warmup_steps=5", "--data.val_fraction=0.2")
    trainer = Trainer(cfg, progress=False)
    result = trainer.run()
    assert (result.output_dir / "last" / "model.safetensors").is_file()
    assert (result.output_dir / "best" / "training_state.pt").is_file()
    assert result.best_val_loss < 1.0
    assert list((result.output_dir / "tensorboard").glob("events.out.tfevents.*"))
    policy = load_policy(result.output_dir / "last")
    assert policy.spec.cameras == {"front": [32, 32, 3]}


def test_exact_resume(tiny_config, tmp_path):
    common = ["--train.batch_size=8", "--train.warmup_steps=2", "--train.val_every=1000", "--train.ema=true",
              "--data.augment.enable=true", "--train.tensorboard=false"]
    straight = Trainer(tiny_config("diffusion", *common, "--train.steps=6", f"--train.output_dir={tmp_path / 'a'}"), progress=False)
    straight.run()
    interrupted = Trainer(tiny_config("diffusion", *common, "--train.steps=6", f"--train.output_dir={tmp_path / 'b'}"),
                          progress=False)
    interrupted.run(stop_at=3)
    resumed = Trainer(tiny_config("diffusion", *common, "--train.steps=6", f"--train.output_dir={tmp_path / 'b'}",
                                  "--train.resume=true"), progress=False)
    assert resumed.step == 3
    resumed.run()
    a, b = straight.policy.state_dict(), resumed.policy.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_lora_leaves_base_weights_frozen(tiny_config, capsys):
    cfg = tiny_config("regression", "--train.steps=5", "--train.lora.enable=true", "--train.lora.rank=4",
                      "--train.freeze=[vision,proprio]", "--train.tensorboard=false", "--train.batch_size=8")
    trainer = Trainer(cfg, progress=False)
    assert "trainable of" in capsys.readouterr().out
    before = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    trainer.run()
    after = trainer.policy.state_dict()
    lora = [k for k in after if "lora_" in k]
    assert lora and any("fusion." in k for k in lora) and any("head." in k for k in lora)
    changed = [k for k in after if not torch.equal(before[k], after[k])]
    assert changed and all("lora_" in k for k in changed), changed
    trainable, total = count_parameters(trainer.policy)
    assert 0 < trainable < total / 5


def test_lora_checkpoint_reloads(tiny_config, tmp_path):
    cfg = tiny_config("regression", "--train.steps=2", "--train.lora.enable=true", "--train.tensorboard=false",
                      "--train.batch_size=4", f"--train.output_dir={tmp_path / 'lora'}")
    trainer = Trainer(cfg, progress=False)
    trainer.run()
    loaded = load_policy(tmp_path / "lora" / "last")
    for k, v in trainer.policy.state_dict().items():
        if not k.startswith("language."):
            torch.testing.assert_close(v, loaded.state_dict()[k], rtol=0, atol=0)


def test_fine_tune_from_checkpoint_with_lr_groups(tiny_config, tmp_path, capsys):
    Trainer(tiny_config("regression", "--train.steps=2", "--train.tensorboard=false", "--train.batch_size=4",
                        f"--train.output_dir={tmp_path / 'base'}"), progress=False).run()
    cfg = tiny_config("flow", "--train.steps=2", "--train.tensorboard=false", "--train.batch_size=4",
                      f"--train.init_from={tmp_path / 'base' / 'last'}", "--train.lr_multipliers={vision: 0.1}",
                      f"--train.output_dir={tmp_path / 'ft'}")
    trainer = Trainer(cfg, progress=False)
    assert "initialised" in capsys.readouterr().out
    lrs = {g["name"]: g["initial_lr"] for g in trainer.optimizer.param_groups}
    assert lrs["vision"] == cfg.train.lr * 0.1 and lrs["head"] == cfg.train.lr


def test_cli_train_end_to_end(tiny_data, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["train", *TINY, f"--data.path={tiny_data}", f"--train.output_dir={out}", "--train.steps=3",
                 "--train.batch_size=4", "--no-progress", "--train.tensorboard=false"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3 and (out / "last").is_dir()
    assert ExperimentConfig.load(out / "last" / "config.yaml").train.steps == 3


def test_wandb_without_the_package_is_a_clear_error(tiny_config):
    import importlib.util

    import pytest

    from vla_core.errors import ConfigError

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.raises(ConfigError, match="wandb is not installed"):
        Trainer(tiny_config("regression", "--train.wandb=true"), progress=False)


def test_parameter_ema_averages_trainable_parameters_only():
    from vla_core.training.ema import ParameterEMA

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[0].requires_grad_(False)  # frozen: never averaged, never copied
    ema = ParameterEMA(model, decay=0.75)
    assert ema.names == ["1.weight", "1.bias"]
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    ema.update(model)  # the first update copies
    with torch.no_grad():
        model[1].weight.fill_(5.0)
        model[0].weight.fill_(9.0)
    ema.update(model)
    frozen_before = model[0].weight.clone()
    with ema.applied(model) as averaged:
        torch.testing.assert_close(averaged[1].weight, torch.full((1, 2), 0.75 * 1.0 + 0.25 * 5.0))
        torch.testing.assert_close(averaged[0].weight, frozen_before)  # untouched
    torch.testing.assert_close(model[1].weight, torch.full((1, 2), 5.0))  # live weights restored
    other = ParameterEMA(model, decay=0.75)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 2 and torch.equal(other.shadow[0], ema.shadow[0])
