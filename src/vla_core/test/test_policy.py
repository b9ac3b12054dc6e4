"""Tests run over every registered action head."""

import copy

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from vla_core.checkpoint import load_matching_weights, load_policy, save_checkpoint
from vla_core.data.dataset import EpisodeDataset, dataset_stats, load_episodes, spec_from_episodes
from vla_core.errors import CheckpointError
from vla_core.policy import HEADS, make_policy
from vla_core.spec import PolicySpec
from vla_core.training.trainer import prepare_images

# Steps each head gets to overfit 6 tiny episodes, and the fraction of its first loss it must reach.
OVERFIT = {"regression": (150, 0.35), "diffusion": (250, 0.5), "flow": (250, 0.5), "tokens": (150, 0.5)}


def build(cfg):
    eps = load_episodes(cfg.data.path).episodes
    spec = spec_from_episodes(eps)
    policy = make_policy(cfg.policy, spec, dataset_stats(eps))
    ds = EpisodeDataset(eps, cfg.policy.horizon, cfg.policy.n_obs_steps)
    return policy, ds, spec


def batch_of(ds, idx):
    b = default_collate([ds[i] for i in idx])
    b["images"] = prepare_images(b["images"], None, None)
    return b


def obs_of(batch):
    return {"images": batch["images"], "proprio": batch["proprio"], "instruction": batch["instruction"]}


def overfit(policy, ds, steps):
    """Train ``policy`` on random batches of ``ds``; the mean loss of the first 5 and the last 20 steps."""
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    policy.train()
    for _ in range(steps):
        idx = torch.randint(0, len(ds), (32,), generator=gen).tolist()
        loss, metrics = policy(batch_of(ds, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.mean(losses[:5]), np.mean(losses[-20:])


@pytest.mark.parametrize("head", sorted(HEADS))
def test_overfits_tiny_dataset(head, tiny_config):
    policy, ds, _ = build(tiny_config(head))
    steps, frac = OVERFIT[head]
    start, end = overfit(policy, ds, steps)
    assert end < frac * start, f"{head}: loss {start:.4f} -> {end:.4f}"


def test_regression_queries_can_decode_several_steps_each(tiny_config, tmp_path):
    cfg = tiny_config("regression", "--policy.regression.steps_per_query=4")
    policy, ds, spec = build(cfg)
    assert policy.head.queries.shape[1] == cfg.policy.horizon // 4   # 2 queries for a chunk of 8
    steps, frac = OVERFIT["regression"]
    start, end = overfit(policy, ds, steps)
    assert end < frac * start, f"loss {start:.4f} -> {end:.4f}"
    policy.eval()
    obs = obs_of(batch_of(ds, [0, 7, 30]))
    chunk = policy.predict_action_chunk(obs)
    assert chunk.shape == (3, cfg.policy.horizon, spec.action_dim)
    save_checkpoint(tmp_path / "ckpt", policy, cfg, step=5)
    torch.testing.assert_close(load_policy(tmp_path / "ckpt", expected_spec=spec).predict_action_chunk(obs), chunk,
                               rtol=0, atol=0)


def test_each_camera_keeps_its_own_tokens_and_instructions(tiny_config):
    # Several cameras share one vision encoder: each camera's tokens must be those of its own images,
    # FiLM-conditioned on its own sample's instruction (a guard for any batching of cameras or time steps).
    cfg = tiny_config("regression", "--policy.n_obs_steps=2", "--policy.fusion.film=true")
    eps = load_episodes(cfg.data.path).episodes
    spec = spec_from_episodes(eps)
    two = PolicySpec(cameras={"front": spec.cameras["front"], "wrist": spec.cameras["front"]},
                     proprio_names=spec.proprio_names, action_names=spec.action_names, fps=spec.fps)
    policy = make_policy(cfg.policy, two, dataset_stats(eps)).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # FiLM starts as the identity: give the instruction an effect on the image tokens
        for film in policy.vision.films:
            film.proj.weight.copy_(torch.randn(film.proj.weight.shape, generator=g) * 0.1)
    images = {cam: torch.rand(3, 2, 3, 32, 32, generator=g) for cam in two.cameras}
    proprio = torch.randn(3, 2, len(spec.proprio_names), generator=g)
    obs = {"images": images, "proprio": proprio, "instruction": ["open the drawer", "press the button", "reach"]}
    with torch.no_grad():
        lang = policy.encode_instruction(obs["instruction"], 3)
        alone = [policy.vision(images[cam].flatten(0, 1), lang.repeat_interleave(2, dim=0)).unflatten(0, (3, 2))
                 for cam in two.cameras]
        p = policy.proprio(policy.normalizer.normalize_proprio(proprio).flatten(1))
        torch.testing.assert_close(policy.encode(obs), policy.fusion(lang, p, alone))


@pytest.mark.parametrize("head", sorted(HEADS))
def test_save_load_round_trip_gives_identical_outputs(head, tiny_config, tmp_path):
    cfg = tiny_config(head)
    policy, ds, spec = build(cfg)
    policy.eval()
    obs = obs_of(batch_of(ds, [0, 7, 30]))
    before = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(3))
    save_checkpoint(tmp_path / "ckpt", policy, cfg, step=5)
    loaded = load_policy(tmp_path / "ckpt", expected_spec=spec)
    after = loaded.predict_action_chunk(obs, generator=torch.Generator().manual_seed(3))
    assert before.shape == (3, cfg.policy.horizon, spec.action_dim)
    torch.testing.assert_close(before, after, rtol=0, atol=0)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_forward_does_not_change_its_batch(head, tiny_config):
    policy, ds, _ = build(tiny_config(head))
    batch = batch_of(ds, [1, 2, 3, 40])
    snapshot = copy.deepcopy(batch)
    policy.train()
    policy(batch)
    for key in ("proprio", "actions", "action_is_pad"):
        torch.testing.assert_close(batch[key], snapshot[key], rtol=0, atol=0)
    torch.testing.assert_close(batch["images"]["front"], snapshot["images"]["front"], rtol=0, atol=0)
    assert batch["instruction"] == snapshot["instruction"]


@pytest.mark.parametrize("head", ["diffusion", "flow"])
def test_sampling_is_deterministic_under_a_seed(head, tiny_config):
    policy, ds, _ = build(tiny_config(head))
    policy.eval()
    obs = obs_of(batch_of(ds, [0, 1]))
    a = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(7))
    b = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(7))
    c = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_accepts_uint8_hwc_numpy_and_single_instruction(tiny_config):
    cfg = tiny_config("regression")
    policy, ds, _ = build(cfg)
    policy.eval()
    ep = ds.episodes[0]
    obs = {"images": {"front": ep.images["front"][:1]}, "proprio": ep.proprio[:1], "instruction": ep.instruction}
    chunk = policy.predict_action_chunk(obs)
    float_obs = {"images": {"front": torch.from_numpy(ep.images["front"][:1]).permute(0, 3, 1, 2).float() / 255},
                 "proprio": torch.from_numpy(ep.proprio[:1]), "instruction": [ep.instruction]}
    torch.testing.assert_close(chunk, policy.predict_action_chunk(float_obs))


def test_select_action_serves_from_its_queue(tiny_config):
    cfg = tiny_config("regression")
    policy, ds, _ = build(cfg)
    policy.eval()
    obs = obs_of(batch_of(ds, [0]))
    chunk = policy.predict_action_chunk(obs)
    calls = []
    original = policy.predict_action_chunk
    policy.predict_action_chunk = lambda o, generator=None: calls.append(1) or original(o)
    policy.reset()
    actions = [policy.select_action(obs) for _ in range(cfg.policy.n_action_steps + 1)]
    assert len(calls) == 2  # one chunk per n_action_steps
    torch.testing.assert_close(torch.stack(actions[: cfg.policy.n_action_steps], 1), chunk[:, : cfg.policy.n_action_steps])


def test_spec_mismatch_is_refused_with_a_sentence(tiny_config, tmp_path):
    cfg = tiny_config("regression")
    policy, _, spec = build(cfg)
    save_checkpoint(tmp_path / "ckpt", policy, cfg)
    wrong_cam = PolicySpec(cameras={"wrist": [32, 32, 3]}, proprio_names=spec.proprio_names, action_names=spec.action_names, fps=10)
    with pytest.raises(CheckpointError, match=r"expects camera\(s\) \['front'\]"):
        load_policy(tmp_path / "ckpt", expected_spec=wrong_cam)
    wrong_act = PolicySpec(cameras=spec.cameras, proprio_names=spec.proprio_names, action_names=["a", "b"], fps=10)
    with pytest.raises(CheckpointError, match="produces 4 actions"):
        load_policy(tmp_path / "ckpt", expected_spec=wrong_act)


def test_corrupt_or_missing_checkpoint(tiny_config, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nothing")
    cfg = tiny_config("regression")
    policy, _, _ = build(cfg)
    save_checkpoint(tmp_path / "ckpt", policy, cfg)
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_policy(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "spec.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete: missing spec.json"):
        load_policy(tmp_path / "ckpt")


def test_partial_load_takes_matching_tensors_only(tiny_config, tmp_path):
    reg = tiny_config("regression")
    policy, _, _ = build(reg)
    save_checkpoint(tmp_path / "ckpt", policy, reg)
    other, _, _ = build(tiny_config("tokens"))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    loaded, skipped = load_matching_weights(other, tmp_path / "ckpt")
    saved = policy.state_dict()
    stored = {k for k in saved if k in policy.trainable_state_keys()}
    same = {k for k in stored if k in before and before[k].shape == saved[k].shape and not k.startswith("normalizer.")}
    assert set(loaded) == same and set(skipped) == stored - same  # exactly the same-name same-shape tensors
    assert {k for k in skipped if not k.startswith("normalizer.")} == {"head.out.bias", "head.out.weight"}
    for k in loaded:
        torch.testing.assert_close(other.state_dict()[k], saved[k], rtol=0, atol=0)
    assert torch.equal(other.state_dict()["head.out.weight"], before["head.out.weight"])  # left as it was
    torch.testing.assert_close(other.state_dict()["vision.out.weight"], policy.state_dict()["vision.out.weight"])


def test_instruction_noise_is_added_while_training_only(tiny_config):
    noisy, ds, _ = build(tiny_config("regression", "--policy.language.noise=0.5", "--policy.fusion.dropout=0"))
    obs = obs_of(batch_of(ds, [0, 1, 2, 3]))
    clean = noisy.encode_instruction(obs["instruction"], 4)
    seen = []
    noisy.fusion.lang_proj.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach()))
    noisy.train()
    a, b = noisy.encode(obs), noisy.encode(obs)
    assert not torch.allclose(a, b)
    ratio = ((seen[0] - clean).norm(dim=-1) / clean.norm(dim=-1)).mean().item()
    assert 0.3 < ratio < 0.7, ratio  # the noise's norm is about 0.5 of the embedding's
    noisy.eval()
    assert torch.equal(noisy.encode(obs), noisy.encode(obs))
    assert torch.equal(seen[-1], clean)
    quiet = build(tiny_config("regression", "--policy.fusion.dropout=0"))[0].train()
    assert torch.equal(quiet.encode(obs), quiet.encode(obs))
