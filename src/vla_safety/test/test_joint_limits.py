"""ros2_control joint_limits files, and trajectories clamped to them: exact values derived from the limits."""

import numpy as np
import pytest
import yaml

from vla_core.errors import VLAError
from vla_safety.joint_limits import JointLimit, clamp_trajectory, limit_arrays, load_joint_limits, parse_joint_limits

FILE = {"joint_limits": {
    "a": {"has_position_limits": True, "min_position": -1.0, "max_position": 1.0, "has_velocity_limits": True,
          "max_velocity": 2.0, "has_acceleration_limits": True, "max_acceleration": 8.0, "has_jerk_limits": False},
    "b": {"has_position_limits": False, "has_velocity_limits": True, "max_velocity": 0.5},
}}


def test_the_ros2_control_format_is_read_flat_or_under_a_node(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump(FILE))
    limits = load_joint_limits(path)
    assert limits["a"] == JointLimit(-1.0, 1.0, 2.0, 8.0)
    assert limits["b"] == JointLimit(-np.inf, np.inf, 0.5, np.inf)
    assert parse_joint_limits({"controller": {"ros__parameters": FILE}}) == limits
    np.testing.assert_array_equal(limit_arrays(limits, ["b", "a"]), [[-np.inf, -1], [np.inf, 1], [0.5, 2], [np.inf, 8]])


@pytest.mark.parametrize("entry, why", [
    ({"has_velocity_limits": True}, "joint 'j' sets has_velocity_limits but gives no max_velocity"),
    ({"has_position_limits": True, "min_position": 1.0, "max_position": 0.0}, "min_position 1.0 is above max_position 0.0"),
    ({"has_acceleration_limits": True, "max_acceleration": -1}, "max_acceleration must be positive"),
    ({"has_velocity_limits": True, "max_velocity": "fast"}, "max_velocity must be a number"),
    ("3.0", "expected a mapping of limits"),
])
def test_bad_entries_name_the_joint(entry, why):
    with pytest.raises(VLAError, match=why.replace("(", r"\(")):
        parse_joint_limits({"joint_limits": {"j": entry}})


def test_bad_files(tmp_path):
    with pytest.raises(VLAError, match="expected a 'joint_limits' mapping"):
        parse_joint_limits({"other": 1})
    with pytest.raises(VLAError, match="cannot be read"):
        load_joint_limits(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("joint_limits: [unclosed")
    with pytest.raises(VLAError, match="not valid YAML"):
        load_joint_limits(tmp_path / "bad.yaml")
    with pytest.raises(VLAError, match=r"no limits for \['c'\]"):
        limit_arrays(parse_joint_limits(FILE), ["a", "c"])


def lims(lo=-1.0, hi=1.0, v=2.0, a=8.0):
    return np.array([[lo], [hi], [v], [a]], float)


def test_points_within_the_limits_pass_unchanged():
    out, changed = clamp_trajectory([0.5, 1.0], [[0.5], [1.0]], [0.0], [1.0], lims())   # 1 rad/s throughout
    np.testing.assert_allclose(out, [[0.5], [1.0]])
    assert not changed


def test_velocity_acceleration_and_position_are_clamped_exactly():
    # 1 rad in 0.25 s = 4 rad/s > 2: the point lags at 2 rad/s -> 0.5.
    out, changed = clamp_trajectory([0.25], [[1.0]], [0.0], [2.0], lims(a=np.inf))
    np.testing.assert_allclose(out, [[0.5]])
    assert changed
    # From rest, 8 rad/s^2 for 0.125 s reaches 1 rad/s: 0.125 rad, then 2 rad/s (capped) for the next 0.125 s.
    out, _ = clamp_trajectory([0.125, 0.25], [[0.5], [1.0]], [0.0], [0.0], lims())
    np.testing.assert_allclose(out, [[0.125], [0.125 + 0.125 * 2.0]])
    # Decelerating is limited too: moving at 2 rad/s, a point asking to stop at once can only slow to 1 rad/s.
    out, _ = clamp_trajectory([0.125], [[0.0]], [0.0], [2.0], lims())
    np.testing.assert_allclose(out, [[0.125]])
    # Position limits win: never beyond max_position, whatever the velocity.
    out, _ = clamp_trajectory([1.0], [[3.0]], [0.9], [2.0], lims(a=np.inf))
    np.testing.assert_allclose(out, [[1.0]])
    out, _ = clamp_trajectory([1.0], [[-5.0]], [0.0], [0.0], lims(v=np.inf, a=np.inf))
    np.testing.assert_allclose(out, [[-1.0]])


def test_a_point_due_at_once_cannot_move_a_velocity_limited_joint():
    out, changed = clamp_trajectory([0.0, 0.5], [[0.8, 0.8], [0.8, 0.8]], [0.0, 0.0], [0.0, 0.0],
                                    np.array([[-1, -1], [1, 1], [2.0, np.inf], [np.inf, np.inf]], float))
    np.testing.assert_allclose(out, [[0.0, 0.8], [0.8, 0.8]])  # joint 0 stays, then moves at 1.6 rad/s; joint 1 jumps
    assert changed
