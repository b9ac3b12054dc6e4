"""Normalisation statistics and their application: exact values."""

import numpy as np
import torch

from vla_core.normalize import EPS, Normalizer, compute_stats


def test_stats_are_per_dimension_over_all_frames():
    actions = [np.array([[0.0, -2.0], [2.0, 2.0]]), np.array([[4.0, 0.0]])]
    proprio = [np.array([[1.0], [3.0]]), np.array([[5.0]])]
    s = compute_stats(actions, proprio)
    np.testing.assert_array_equal(s["action_min"], [0.0, -2.0])
    np.testing.assert_array_equal(s["action_max"], [4.0, 2.0])
    np.testing.assert_array_equal(s["action_mean"], [2.0, 0.0])
    np.testing.assert_allclose(s["action_std"], [np.std([0, 2, 4]), np.std([-2, 2, 0])])
    np.testing.assert_array_equal(s["proprio_mean"], [3.0])
    np.testing.assert_allclose(s["proprio_std"], [np.std([1, 3, 5])])
    assert all(v.dtype == np.float32 for v in s.values())


def stats(**kw):
    base = {"action_min": np.array([0.0, -2.0]), "action_max": np.array([4.0, 2.0]), "action_mean": np.zeros(2),
            "action_std": np.ones(2), "proprio_mean": np.array([1.0, 2.0]), "proprio_std": np.array([2.0, 0.5])}
    return base | kw


def test_actions_map_min_max_to_minus_one_one_and_back():
    n = Normalizer(stats())
    a = torch.tensor([[0.0, -2.0], [4.0, 2.0], [2.0, 0.0]])
    torch.testing.assert_close(n.normalize_action(a), torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(n.unnormalize_action(n.normalize_action(a)), a)
    torch.testing.assert_close(n.unnormalize_action(torch.tensor([[0.5, -0.5]])), torch.tensor([[3.0, -1.0]]))


def test_constant_dimensions_do_not_divide_by_zero():
    n = Normalizer(stats(action_min=np.array([0.0, 1.0]), action_max=np.array([0.0, 3.0]),
                         proprio_std=np.array([0.0, 0.5])))
    out = n.normalize_action(torch.tensor([[0.0, 2.0]]))
    assert torch.isfinite(out).all() and out[0, 0] == 0.0 and out[0, 1] == 0.0
    torch.testing.assert_close(n.normalize_action(torch.tensor([[2 * EPS, 2.0]]))[0, 0], torch.tensor(2.0))  # scale >= EPS
    p = n.normalize_proprio(torch.tensor([[1.5, 3.0]]))
    torch.testing.assert_close(p, torch.tensor([[0.5 / 1e-3, 2.0]]))  # std clamped to 1e-3


def test_proprio_is_standardised():
    n = Normalizer(stats())
    torch.testing.assert_close(n.normalize_proprio(torch.tensor([[3.0, 3.0]])), torch.tensor([[1.0, 2.0]]))


def test_stats_round_trip_and_travel_as_buffers():
    n = Normalizer(stats())
    back = n.stats()
    for k in Normalizer.STAT_KEYS:
        np.testing.assert_array_equal(back[k], np.asarray(stats()[k], np.float32))
    assert set(dict(n.named_buffers())) == set(Normalizer.STAT_KEYS)


def test_a_small_but_real_range_is_not_swallowed_by_the_floor():
    # a joint that moves 2 mm still spans [-1, 1]: the floor on the half range only guards constant dimensions
    n = Normalizer(stats(action_min=np.array([0.0, -2.0]), action_max=np.array([2e-3, 2.0])))
    torch.testing.assert_close(n.normalize_action(torch.tensor([[2e-3, 2.0], [0.0, -2.0]])),
                               torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
    assert EPS < 1e-4
