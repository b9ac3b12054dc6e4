"""Joint trajectories: what is refused, and the exact setpoints a follower commands."""

import numpy as np
import pytest

from vla_core.trajectory import TrajectoryFollower, check_trajectory

J = ["a", "b"]


@pytest.mark.parametrize("names, times, points, why", [
    (["a", "a"], [1.0], [[0, 0]], "repeat a joint"),
    (["a", "c"], [1.0], [[0, 0]], "unknown ['c'], missing ['b']"),
    (["a"], [1.0], [[0]], "unknown [], missing ['b']"),
    (["a", "b"], [1.0, 2.0], [[0, 0]], "2 times for 1 points"),
    (["a", "b"], [1.0], [[0, 0, 0]], "point 0 has 3 positions for 2 joints"),
    (["a", "b"], [1.0, 2.0], [[0, 0], [np.nan, 0]], "point 1 has a non-finite"),
    (["a", "b"], [np.inf], [[0, 0]], "point 0 has a non-finite"),
    (["a", "b"], [1.0, 1.0], [[0, 0], [1, 1]], "point 1 at 1 s after 1 s"),
    (["a", "b"], [2.0, 1.0], [[0, 0], [1, 1]], "increase"),
    (["a", "b"], [-0.5], [[0, 0]], "point 0 at -0.5 s"),
])
def test_malformed_trajectories_are_named(names, times, points, why):
    assert why in check_trajectory(names, times, points, J)


def test_well_formed_trajectories_pass():
    assert check_trajectory(["b", "a"], [0.0, 0.5], [[1, 2], [3, 4]], J) is None
    assert check_trajectory(["a", "b"], [], [], J) is None          # empty: hold


def test_the_follower_interpolates_from_where_it_was_in_any_joint_order():
    f = TrajectoryFollower(J, [0.0, 0.0])
    assert f.follow(["b", "a"], [1.0, 2.0], [[2.0, 1.0], [4.0, 3.0]], now=10.0) is None
    np.testing.assert_allclose(f.setpoint(10.0), [0, 0])
    np.testing.assert_allclose(f.setpoint(10.25), [0.25, 0.5])       # a quarter of the way to (1, 2)
    np.testing.assert_allclose(f.setpoint(11.0), [1, 2])
    np.testing.assert_allclose(f.setpoint(11.5), [2, 3])
    np.testing.assert_allclose(f.setpoint(12.0), [3, 4])
    np.testing.assert_allclose(f.setpoint(20.0), [3, 4])             # past the end: the last point holds
    assert f.end_time == 12.0
    # A new trajectory mid-way starts from the setpoint at its arrival.
    f.follow(["a", "b"], [1.0], [[0.0, 0.0]], now=11.5)
    np.testing.assert_allclose(f.setpoint(12.0), [1, 1.5])
    # A first point at time 0 is commanded at once.
    f.follow(["a", "b"], [0.0, 1.0], [[5.0, 5.0], [6.0, 6.0]], now=13.0)
    np.testing.assert_allclose(f.setpoint(13.0), [5, 5])
    np.testing.assert_allclose(f.setpoint(13.5), [5.5, 5.5])


def test_the_followers_velocity_is_the_slope_of_the_segment_under_way():
    f = TrajectoryFollower(J, [0.0, 0.0])
    np.testing.assert_array_equal(f.velocity(0.0), [0, 0])
    f.follow(["b", "a"], [1.0, 3.0], [[2.0, 1.0], [2.0, 5.0]], now=10.0)
    np.testing.assert_allclose(f.velocity(10.0), [1, 2])             # from (0, 0) to (1, 2) in 1 s
    np.testing.assert_allclose(f.velocity(10.99), [1, 2])
    np.testing.assert_allclose(f.velocity(11.0), [2, 0])             # (1, 2) to (5, 2) in 2 s
    np.testing.assert_array_equal(f.velocity(13.0), [0, 0])          # at the last point: holding
    np.testing.assert_array_equal(f.velocity(9.0), [0, 0])


def test_an_empty_or_malformed_trajectory_holds_where_the_follower_is():
    f = TrajectoryFollower(J, [0.0, 0.0])
    f.follow(J, [1.0], [[1.0, 2.0]], now=0.0)
    assert f.follow(J, [], [], now=0.5) is None                      # empty: hold here
    np.testing.assert_allclose(f.setpoint(5.0), [0.5, 1.0])
    f.follow(J, [1.0], [[1.0, 2.0]], now=5.0)
    assert "non-finite" in f.follow(J, [1.0], [[np.nan, 0.0]], now=5.5)
    np.testing.assert_allclose(f.setpoint(9.0), [0.75, 1.5])        # refused: held where it was
    f.hold([7.0, 8.0])
    np.testing.assert_allclose(f.setpoint(100.0), [7, 8])
