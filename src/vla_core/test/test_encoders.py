"""Encoders: Hugging Face vision towers from local directories, the language cache, FiLM."""

import numpy as np
import pytest
import torch
from conftest import TINY

from vla_core.config import ExperimentConfig, LanguageConfig
from vla_core.policy import make_policy
from vla_core.policy.encoders import LanguageEncoder
from vla_core.spec import PolicySpec

SPEC = PolicySpec(cameras={"front": [32, 32, 3]}, proprio_names=["p0", "p1"], action_names=["a0", "a1", "a2"], fps=10)
STATS = {"action_min": -np.ones(3), "action_max": np.ones(3), "action_mean": np.zeros(3), "action_std": np.ones(3),
         "proprio_mean": np.zeros(2), "proprio_std": np.ones(2)}


def _obs(b=2):
    return {"images": {"front": np.random.default_rng(0).integers(0, 255, (b, 32, 32, 3), dtype=np.uint8)},
            "proprio": np.zeros((b, 2), np.float32), "instruction": ["open the drawer", "close the drawer"][:b]}


def _save_tiny_vit(path):
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=64)
    ViTModel(cfg).save_pretrained(path)


def _save_tiny_clip(path):
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "vocab_size": 100},
                     vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                                    "num_hidden_layers": 1, "num_attention_heads": 2}, projection_dim=16)
    CLIPModel(cfg).save_pretrained(path)


@pytest.mark.parametrize("maker", [_save_tiny_vit, _save_tiny_clip], ids=["vit", "clip"])
@pytest.mark.parametrize("freeze", [True, False])
def test_hf_vision_tower_from_a_local_directory(tmp_path, maker, freeze):
    maker(tmp_path / "model")
    cfg = ExperimentConfig.load(None, [*TINY, "--policy.vision.type=hf", f"--policy.vision.pretrained_path={tmp_path / 'model'}",
                                       f"--policy.vision.freeze={str(freeze).lower()}"])
    policy = make_policy(cfg.policy, SPEC, STATS)
    assert type(policy.vision.model).__name__ in ("ViTModel", "CLIPVisionTransformer", "CLIPVisionModel")
    policy.eval()
    out = policy.predict_action_chunk(_obs())
    assert out.shape == (2, cfg.policy.horizon, 3) and torch.isfinite(out).all()
    policy.train()
    batch = dict(_obs(), actions=torch.zeros(2, cfg.policy.horizon, 3), action_is_pad=torch.zeros(2, cfg.policy.horizon, dtype=torch.bool))
    loss, _ = policy(batch)
    loss.backward()
    tower_grads = [p.grad is not None for p in policy.vision.model.parameters()]
    assert (not any(tower_grads)) if freeze else sum(tower_grads) > len(tower_grads) // 2  # poolers stay unused
    assert policy.vision.proj.weight.grad is not None


def test_frozen_hf_tower_is_referenced_not_copied(tmp_path):
    from vla_core.checkpoint import load_policy, save_checkpoint

    _save_tiny_vit(tmp_path / "model")
    cfg = ExperimentConfig.load(None, [*TINY, "--policy.vision.type=hf", f"--policy.vision.pretrained_path={tmp_path / 'model'}",
                                       "--policy.vision.freeze=true"])
    policy = make_policy(cfg.policy, SPEC, STATS).eval()
    save_checkpoint(tmp_path / "ckpt", policy, cfg)
    from safetensors.torch import load_file

    assert not [k for k in load_file(str(tmp_path / "ckpt" / "model.safetensors")) if k.startswith("vision.model.")]
    loaded = load_policy(tmp_path / "ckpt")
    obs = _obs()
    torch.testing.assert_close(policy.predict_action_chunk(obs), loaded.predict_action_chunk(obs))


def test_hf_vision_missing_directory_is_a_clear_error(tmp_path):
    from vla_core.errors import ConfigError

    cfg = ExperimentConfig.load(None, [*TINY, "--policy.vision.type=hf", f"--policy.vision.pretrained_path={tmp_path}"])
    with pytest.raises(ConfigError, match="has no config.json"):
        make_policy(cfg.policy, SPEC, STATS)


def test_frozen_language_encoder_caches_instructions():
    enc = LanguageEncoder(LanguageConfig())
    calls = []
    original = enc._encode
    enc._encode = lambda texts, device: calls.append(list(texts)) or original(texts, device)
    a = enc(["open the drawer", "open the drawer", "press the button"])
    b = enc(["press the button"])
    assert calls == [["open the drawer", "press the button"]]  # each distinct instruction encoded once
    torch.testing.assert_close(a[2], b[0])
    assert a.shape == (3, 384)
    assert not torch.allclose(a[0], a[2])  # the real MiniLM tells instructions apart


def test_trainable_language_encoder_gets_gradients():
    enc = LanguageEncoder(LanguageConfig(freeze=False))
    enc(["open the drawer"]).sum().backward()
    assert any(p.grad is not None for p in enc.model.parameters())


def test_film_conditions_vision_on_language():
    cfg = ExperimentConfig.load(None, [*TINY, "--policy.fusion.film=true"])
    policy = make_policy(cfg.policy, SPEC, STATS)
    assert policy.vision.films is not None
    with torch.no_grad():
        for film in policy.vision.films:  # FiLM starts as the identity; give it weight so language matters
            film.proj.weight.normal_(0, 0.5)
    images = torch.rand(1, 3, 32, 32)
    lang = policy.language(["open the drawer", "close the window"])
    t0 = policy.vision(images, lang[:1])
    t1 = policy.vision(images, lang[1:])
    assert not torch.allclose(t0, t1)
