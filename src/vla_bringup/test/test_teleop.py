"""Teleop over real DDS: sim_robot + scripted_teleop + teleop_collector write episodes vla_core loads."""


import metaworld  # noqa: F401 - required: a missing install fails, never skips
import rclpy  # noqa: F401 - required: a missing install fails, never skips
from conftest import Launch  # noqa: E402

from vla_core.data.dataset import load_episodes  # noqa: E402


def test_scripted_teleop_records_loadable_episodes(tmp_path, ros_env):
    out = tmp_path / "teleop"
    launch = Launch("teleop", ros_env, [f"out_dir:={out}"])
    try:
        ok = False
        for _ in range(240):
            if "finished 3 demonstrations" in launch.output():
                ok = True
                break
            if launch.proc.poll() is not None:
                break
            import time

            time.sleep(0.5)
        assert ok, launch.output()
    finally:
        code = launch.stop()
    assert code == 0, launch.output()
    report = load_episodes(out)
    assert not report.skipped and len(report.episodes) == 3
    for ep in report.episodes:
        n = len(ep)
        assert n >= 10 and len(ep.proprio) == n and len(ep.images["corner2"]) == n
        assert ep.instruction == "open the drawer" and ep.robot == "sawyer" and ep.success
        assert ep.proprio_names == ["hand_x", "hand_y", "hand_z", "gripper_opening"]
