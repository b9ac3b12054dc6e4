"""ROS 2 bags -> episodes: a bag written here with rosbags (MCAP and sqlite3), converted and checked frame by frame."""

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from vla_core.cli import main as vla
from vla_core.data.bag import BagConversion, convert_bag
from vla_core.data.dataset import load_episodes
from vla_core.errors import DatasetError

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
NS = 1_000_000_000


def _header(t_ns: int):
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=t_ns // NS, nanosec=t_ns % NS), frame_id="")


def _image(t_ns: int, value: int, encoding: str = "rgb8"):
    img = np.zeros((12, 16, 3), np.uint8)
    img[..., 0] = value
    if encoding == "bgr8":
        img = img[..., ::-1]
    return T["sensor_msgs/msg/Image"](header=_header(t_ns), height=12, width=16, encoding=encoding, is_bigendian=0, step=48,
                                      data=np.ascontiguousarray(img).reshape(-1))


def write_bag(path, plugin):
    """Two episodes of 2 s split by a marker, a 1 s silence of the camera inside the second; state at 100 Hz,
    commands at 50 Hz (value = time in ms), camera at 30 Hz (red channel = frame count), instruction topic."""
    w = Writer(path, version=9, storage_plugin=plugin)
    with w:
        conns = {
            "/front/image_raw": w.add_connection("/front/image_raw", "sensor_msgs/msg/Image", typestore=TS),
            "/wrist/image_raw": w.add_connection("/wrist/image_raw", "sensor_msgs/msg/Image", typestore=TS),
            "/joint_states": w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=TS),
            "/cmd": w.add_connection("/cmd", "geometry_msgs/msg/TwistStamped", typestore=TS),
            "/grip": w.add_connection("/grip", "std_msgs/msg/Float64", typestore=TS),
            "/instruction": w.add_connection("/instruction", "std_msgs/msg/String", typestore=TS),
            "/episode/start": w.add_connection("/episode/start", "std_msgs/msg/Header", typestore=TS),
        }
        events = []
        t0 = 5 * NS
        for ep, (start, text) in enumerate([(0, "pick up the cube"), (3 * NS, "open the drawer")]):
            events.append((t0 + start - NS // 10, "/episode/start", _header(0)))
            events.append((t0 + start - NS // 20, "/instruction", T["std_msgs/msg/String"](data=text)))
            for k in range(60):  # camera, 30 Hz for 2 s; the second episode's camera stops for 1 s at 1 s
                t = t0 + start + k * NS // 30
                if ep == 1 and 30 <= k < 60:
                    continue
                events.append((t, "/front/image_raw", _image(t, k)))
                events.append((t, "/wrist/image_raw", _image(t, 255 - k, "bgr8")))
            for k in range(200):
                t = t0 + start + k * NS // 100
                events.append((t, "/joint_states", T["sensor_msgs/msg/JointState"](
                    header=_header(t), name=["j1", "j2"], position=np.array([k, -k], float), velocity=np.zeros(2),
                    effort=np.zeros(0))))
            for k in range(100):
                t = t0 + start + k * NS // 50
                lin = T["geometry_msgs/msg/Vector3"](x=t / 1e6, y=0.0, z=-1.0)
                twist = T["geometry_msgs/msg/Twist"](linear=lin, angular=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0))
                events.append((t, "/cmd", T["geometry_msgs/msg/TwistStamped"](header=_header(t), twist=twist)))
                events.append((t, "/grip", T["std_msgs/msg/Float64"](data=float(ep))))
        for t, topic, msg in sorted(events, key=lambda e: e[0]):
            w.write(conns[topic], t, TS.serialize_cdr(msg, conns[topic].msgtype))
    return path


@pytest.mark.parametrize("plugin", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_a_bag_converts_into_synchronised_episodes(tmp_path, plugin):
    bag = write_bag(tmp_path / "session", plugin)
    conv = BagConversion(image_topics={"front": "/front/image_raw", "wrist": "/wrist/image_raw"}, state_topic="/joint_states",
                         command_topic="/cmd", gripper_topic="/grip", rate=10.0, instruction_topic="/instruction",
                         episode_topic="/episode/start", max_gap=0.2, min_frames=5, robot="arm")
    written, dropped = convert_bag(bag, tmp_path / "episodes", conv)
    assert len(written) == 2 and dropped == []
    eps = {e.instruction: e for e in load_episodes(tmp_path / "episodes").episodes}
    first, second = eps["pick up the cube"], eps["open the drawer"]
    assert first.fps == 10 and first.robot == "arm" and first.action_names == ["dx", "dy", "dz", "gripper"]
    assert first.proprio_names == ["j1", "j2"] and set(first.cameras) == {"front", "wrist"}
    # 2 s at 10 Hz, plus the ticks at 2.0 and 2.1 s that still hold messages younger than max_gap (0.2 s);
    # the second ends the same way when its camera goes silent at 1 s
    assert len(first) == 22 and len(second) == 12
    # sample and hold: at tick i (t = i/10 s) the newest command was sent at or before i*100 ms
    t_ms = first.actions[:, 0] - first.actions[0, 0]
    np.testing.assert_allclose(t_ms, [*(np.arange(20) * 100.0), 1980, 1980], atol=1e-3)
    np.testing.assert_allclose(first.proprio[:, 0], [*(np.arange(20) * 10), 199, 199])
    np.testing.assert_array_equal(first.actions[:, 3], 0.0)
    np.testing.assert_array_equal(second.actions[:, 3], 1.0)
    front = first.frames("front", np.arange(20))
    np.testing.assert_array_equal(front[:, 0, 0, 0], [(i * 30) // 10 for i in range(20)])  # newest frame at each tick
    wrist = first.frames("wrist", [0])
    assert wrist[0, 0, 0, 0] == 255  # bgr8 turned into RGB


def test_cli_and_clear_errors(tmp_path, capsys):
    bag = write_bag(tmp_path / "session", StoragePlugin.MCAP)
    code = vla(["data", "from-bag", str(bag), "--out", str(tmp_path / "eps"), "--image-topic", "/front/image_raw",
                "--command-topic", "/cmd", "--rate", "20", "--instruction", "do the thing", "--episode-topic", "/episode/start",
                "--image-size", "8,8", "--compression", "jpeg:90"])
    assert code == 0 and "wrote 2 episodes" in capsys.readouterr().out
    ep = load_episodes(tmp_path / "eps").episodes[0]
    assert ep.cameras == {"front": (8, 8, 3)} and ep.instruction == "do the thing" and ep.fps == 20
    with pytest.raises(DatasetError, match="topic '/nope' .* is not in the bag"):
        convert_bag(bag, tmp_path / "x", BagConversion({"front": "/nope"}, "/joint_states", "/cmd", 10.0, instruction="x"))
    with pytest.raises(DatasetError, match="not a ROS 2 bag"):
        convert_bag(tmp_path, tmp_path / "x", BagConversion({"front": "/front/image_raw"}, "/joint_states", "/cmd", 10.0))
    with pytest.raises(DatasetError, match="no instruction"):
        convert_bag(bag, tmp_path / "y", BagConversion({"front": "/front/image_raw"}, "/joint_states", "/cmd", 10.0))
    assert not (tmp_path / "y").exists() or not list((tmp_path / "y").iterdir())  # nothing half-written
