"""Teleop recording and gamepad mapping without ROS."""

import numpy as np

from vla_core.data.episode import read_episode
from vla_teleop.recorder import CollectorConfig, EpisodeRecorder, JoyMapping


def config(**kw):
    """The collector's configuration for a one-camera end-effector robot."""
    return CollectorConfig(**({"cameras": ["corner2"], "action_names": ["dx", "dy", "dz", "gripper"]} | kw))


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def feed(rec, clock, n):
    for i in range(n):
        clock.t += 0.1
        rec.set_input("image/corner2", np.full((8, 8, 3), i, np.uint8))
        rec.set_input("proprio", np.array([i, 0.0]))
        rec.set_input("action", np.array([0.1 * i, 0, 0, 1.0]))
        rec.sample()


def test_records_an_episode_with_the_shared_writer(tmp_path):
    clock = Clock()
    rec = EpisodeRecorder(config(out_dir=str(tmp_path), rate=10, min_frames=3, instruction="open the drawer"),
                          proprio_names=["a", "b"], clock=clock)
    assert rec.start()[0]
    feed(rec, clock, 5)
    path, message = rec.stop(success=True)
    assert rec.flush(timeout=10)
    ep = read_episode(path)
    assert len(ep) == 5 and len(ep.images["corner2"]) == len(ep.proprio) == 5
    assert ep.instruction == "open the drawer" and ep.success and ep.fps == 10
    assert ep.actions[4, 0] == np.float32(0.4)


def test_shutdown_mid_episode_keeps_it_unfinished_and_frames_are_resized(tmp_path):
    clock = Clock()
    cfg = config(out_dir=str(tmp_path), rate=10, instruction="x", image_size=[4, 6], compression="jpeg:90")
    rec = EpisodeRecorder(cfg, clock=clock)
    rec.start()
    feed(rec, clock, 4)
    path = rec.close()
    ep = read_episode(path)
    assert len(ep) == 4 and not ep.finished and not ep.success
    assert ep.images["corner2"].shape == (4, 4, 6, 3)
    assert rec.close() is None  # nothing left to close


def test_bad_compression_or_size_is_refused():
    import pytest

    with pytest.raises(ValueError, match="compression"):
        CollectorConfig(compression="webp")
    with pytest.raises(ValueError, match="image_size"):
        CollectorConfig(image_size=[64])
    with pytest.raises(ValueError, match="cameras must name"):
        CollectorConfig(action_names=["a"])
    with pytest.raises(ValueError, match="action_names must name"):
        CollectorConfig(cameras=["top"])
    with pytest.raises(ValueError, match="command_interface must be"):
        config(command_interface="torque")
    with pytest.raises(ValueError, match="records 4 actions"):
        config(action_names=["a", "b"])
    config(command_interface="joint_position", action_names=["a", "b"])   # any number of joints


def test_short_episodes_are_dropped_and_instruction_required(tmp_path):
    clock = Clock()
    rec = EpisodeRecorder(config(out_dir=str(tmp_path), min_frames=10), clock=clock)
    ok, why = rec.start()
    assert not ok and "no instruction" in why
    rec.instruction = "press the button"
    rec.start()
    feed(rec, clock, 3)
    path, why = rec.stop(True)
    assert path is None and "dropped" in why and rec.dropped == 1
    assert not list(tmp_path.iterdir())


def test_stale_inputs_are_not_recorded(tmp_path):
    clock = Clock()
    rec = EpisodeRecorder(config(out_dir=str(tmp_path), instruction="x", max_age=0.5), clock=clock)
    rec.start()
    feed(rec, clock, 2)
    clock.t += 1.0  # camera stopped
    rec.set_input("proprio", np.zeros(2))
    rec.set_input("action", np.zeros(4))
    assert not rec.sample() and len(rec.writer) == 2
    assert rec.discard() == "discarded" and not rec.recording


def test_joy_mapping():
    m = JoyMapping(axes=[1, 0, 4], scale=[1.0, -1.0, 0.5])
    cmd = m.command([0.5, 0.02, 0, 0, -1.0], [0, 0, 0, 0, 0, 1])
    np.testing.assert_allclose(cmd, [0.0, -0.5, -0.5, 1.0])  # axis 0 inside the dead zone
    assert m.events([1, 0, 0, 1], [0, 0, 0, 1]) == ["start"]  # discard held, not newly pressed


def test_keyboard_teleop():
    from vla_teleop.recorder import KeyboardTeleop

    k = KeyboardTeleop(speed=0.5)
    assert k.key("w") is None
    np.testing.assert_allclose(k.command(), [0.5, 0, 0, -1])
    k.key(" ")
    k.key("f")
    np.testing.assert_allclose(k.command(), [0, 0, -0.5, 1])
    assert k.key("1") == "start" and k.key("2") == "stop_success" and k.key("q") == "quit"
    k.key("x")
    np.testing.assert_allclose(k.command()[:3], 0)
