"""``vla data from-bag``: ROS 2 bags (MCAP or sqlite3) -> episodes, without a ROS installation.

Record on the robot with ``ros2 bag record``, convert here, train. The bag is read in time order
(``rosbags``, pure Python) and resampled at ``rate`` Hz the way the teleop collector samples: at every
tick the newest message of each stream is taken (sample and hold), and the command in force at the
tick is the action. Bag receive times are the clock, so simulated-time headers do not matter.

Episodes end on a message on ``episode_topic`` (for example the simulator's ``/episode/start``), or
where any stream falls silent for more than ``max_gap`` seconds; episodes shorter than
``min_frames`` are dropped and reported. Instructions come from a ``std_msgs/String`` topic (the
newest one when the episode starts) or a fixed text. Episodes are written through the one
:class:`~vla_core.data.episode.EpisodeWriter`, streaming: memory stays bounded whatever the bag size.

Command topics understood: ``geometry_msgs/TwistStamped`` or ``Twist`` (linear x, y, z; plus a
``std_msgs/Float64`` gripper topic if given), ``trajectory_msgs/JointTrajectory`` (the first point's
positions), ``sensor_msgs/JointState`` (positions, e.g. a leader arm) and ``std_msgs/Float64MultiArray``.
Images: ``sensor_msgs/Image`` (any encoding of :mod:`vla_core.image_codec`) and ``CompressedImage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_core.data.episode import EpisodeWriter
from vla_core.errors import DatasetError, VLAError
from vla_core.image_codec import decode_compressed, image_to_numpy, to_rgb


@dataclass
class BagConversion:
    """What to read from the bag and how to cut it into episodes."""

    image_topics: dict[str, str]          # camera name -> topic
    state_topic: str
    command_topic: str
    rate: float
    gripper_topic: str = ""
    instruction: str = ""
    instruction_topic: str = ""
    episode_topic: str = ""
    max_gap: float = 0.5
    min_frames: int = 10
    robot: str = ""
    compression: str = "lzf"
    image_size: list[int] = field(default_factory=list)


def _image(msg, msgtype: str) -> np.ndarray:
    if msgtype.endswith("CompressedImage"):
        return decode_compressed(msg.data)
    return np.ascontiguousarray(to_rgb(image_to_numpy(msg), msg.encoding))


def _command(msg, msgtype: str) -> tuple[np.ndarray, list[str]]:
    kind = msgtype.rsplit("/", 1)[-1]
    if kind == "TwistStamped":
        lin = msg.twist.linear
        return np.array([lin.x, lin.y, lin.z]), ["dx", "dy", "dz"]
    if kind == "Twist":
        return np.array([msg.linear.x, msg.linear.y, msg.linear.z]), ["dx", "dy", "dz"]
    if kind == "JointTrajectory":
        if not msg.points:
            raise ValueError("an empty JointTrajectory")
        return np.asarray(msg.points[0].positions, float), list(msg.joint_names)
    if kind == "JointState":
        return np.asarray(msg.position, float), list(msg.name)
    if kind == "Float64MultiArray":
        return np.asarray(msg.data, float), []
    raise DatasetError(f"command topic type '{msgtype}' is not supported; expected TwistStamped, Twist, JointTrajectory, "
                       f"JointState or Float64MultiArray")


class _Episodes:
    """Ticks -> episodes through the streaming writer."""

    def __init__(self, conv: BagConversion, out: Path, stem: str):
        self.conv, self.out, self.stem = conv, out, stem
        self.writer: EpisodeWriter | None = None
        self.count = 0
        self.written: list[Path] = []
        self.dropped: list[str] = []

    def add(self, images, proprio, action, instruction, proprio_names, action_names) -> None:
        if self.writer is None:
            if not instruction:
                raise DatasetError("no instruction: give --instruction, or --instruction-topic with a message before the episode")
            self.writer = EpisodeWriter(self.out / f"{self.stem}_{self.count:04d}.h5", fps=self.conv.rate,
                                        instruction=instruction, robot=self.conv.robot, action_names=action_names,
                                        proprio_names=proprio_names, compression=self.conv.compression,
                                        image_size=self.conv.image_size or None)
            self.count += 1
        self.writer.add_frame(images, proprio, action)

    def end(self, why: str) -> None:
        if self.writer is None:
            return
        w, self.writer = self.writer, None
        if len(w) < self.conv.min_frames:
            w.discard()
            self.dropped.append(f"{w.path.name}: {len(w)} frames < {self.conv.min_frames} ({why})")
        else:
            self.written.append(w.finish(success=True, extra={"source": self.stem, "ended_by": why}))


def convert_bag(bag: str | Path, out: str | Path, conv: BagConversion) -> tuple[list[Path], list[str]]:
    """Convert one bag directory (or ``.mcap`` / ``.db3`` file's directory); returns (episodes written, dropped ones)."""
    from rosbags.rosbag2 import Reader, ReaderError
    from rosbags.typesys import Stores, get_typestore

    bag, out = Path(bag), Path(out)
    if bag.is_file():
        bag = bag.parent
    if not (bag / "metadata.yaml").is_file():
        raise DatasetError(f"'{bag}' is not a ROS 2 bag directory (no metadata.yaml; record one with 'ros2 bag record')")
    if conv.rate <= 0:
        raise DatasetError(f"--rate must be a positive control rate in Hz, got {conv.rate}")
    typestore = get_typestore(Stores.ROS2_JAZZY)
    period = int(round(1e9 / conv.rate))
    max_gap = int(conv.max_gap * 1e9)
    streams = {**{f"image/{cam}": topic for cam, topic in conv.image_topics.items()},
               "state": conv.state_topic, "command": conv.command_topic,
               **({"gripper": conv.gripper_topic} if conv.gripper_topic else {})}
    episodes = _Episodes(conv, out, bag.name)
    latest: dict[str, tuple[int, object]] = {}
    names = {"proprio": [], "action": []}
    instruction = conv.instruction
    next_tick: int | None = None
    try:
        with Reader(bag) as reader:
            present = {c.topic: c for c in reader.connections}
            for key, topic in streams.items():
                if topic not in present:
                    raise DatasetError(f"topic '{topic}' ({key}) is not in the bag; it has {', '.join(sorted(present))}")
            wanted = {t: k for k, t in streams.items()}
            extra = [t for t in (conv.instruction_topic, conv.episode_topic) if t]
            for t in extra:
                if t not in present:
                    raise DatasetError(f"topic '{t}' is not in the bag; it has {', '.join(sorted(present))}")
            connections = [present[t] for t in [*wanted, *extra]]

            def tick_until(now: int) -> None:
                nonlocal next_tick
                while next_tick is not None and next_tick <= now:
                    t = next_tick
                    if any(t - latest[k][0] > max_gap for k in streams):
                        episodes.end("gap")
                        next_tick = None  # restart once every stream is fresh again
                        return
                    action = latest["command"][1]
                    if "gripper" in latest:
                        action = np.append(action, latest["gripper"][1])
                    episodes.add({cam: latest[f"image/{cam}"][1] for cam in conv.image_topics}, latest["state"][1], action,
                                  instruction, names["proprio"], names["action"])
                    next_tick = t + period

            for connection, stamp, raw in reader.messages(connections=connections):
                tick_until(stamp - 1)  # ticks strictly before this message see the state before it
                msg = typestore.deserialize_cdr(raw, connection.msgtype)
                if connection.topic == conv.episode_topic:
                    episodes.end("marker")
                    next_tick = None
                    latest.clear()  # the next episode starts from fresh messages
                    continue
                if connection.topic == conv.instruction_topic:
                    instruction = str(msg.data)
                    continue
                key = wanted[connection.topic]
                try:
                    if key.startswith("image/"):
                        value = _image(msg, connection.msgtype)
                    elif key == "state":
                        value = np.asarray(msg.position, np.float32)
                        names["proprio"] = names["proprio"] or list(msg.name)
                    elif key == "gripper":
                        value = float(msg.data)
                    else:
                        value, action_names = _command(msg, connection.msgtype)
                        names["action"] = names["action"] or action_names + (["gripper"] if conv.gripper_topic else [])
                except (VLAError, ValueError) as exc:
                    raise DatasetError(f"{bag.name}: message on {connection.topic} at {stamp * 1e-9:.3f} s: {exc}") from None
                latest[key] = (stamp, value)
                if next_tick is None and len(latest) == len(streams):
                    next_tick = stamp  # every stream has spoken: the episode's first tick
            tick_until(max((s for s, _ in latest.values()), default=0))
            episodes.end("end of bag")
    except ReaderError as exc:
        if episodes.writer is not None:
            episodes.writer.discard()
        raise DatasetError(f"'{bag}' cannot be read as a ROS 2 bag ({exc})") from None
    except BaseException:
        if episodes.writer is not None:
            episodes.writer.discard()
        raise
    return episodes.written, episodes.dropped
