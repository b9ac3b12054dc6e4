"""Teleoperation recording and input mapping, free of ROS.

:class:`EpisodeRecorder` samples synchronised (image, proprio, commanded action) frames at a fixed
rate while recording and streams them to disk with vla_core's one :class:`EpisodeWriter` (a writer
thread behind a bounded queue: sampling never waits on the disk, memory stays bounded however long
the demonstration, and a crash loses at most the last second - ``vla data recover``). Teleop data and
``vla collect`` data are the same format. Episodes shorter than ``min_frames`` are dropped; an
episode cannot start without an instruction.

:class:`JoyMapping` turns ``sensor_msgs/Joy`` axes and buttons into a command and recorder events,
from a YAML mapping (``vla_bringup/config/joy_mapping.yaml``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_core.data.episode import EpisodeWriter
from vla_core.params import doc


@dataclass
class CollectorConfig:
    """Parameters of the teleop_collector node."""

    out_dir: str = doc("directory episodes are written to", default="data/teleop")
    rate: float = doc("recording rate in Hz", default=30.0)
    min_frames: int = doc("episodes with fewer frames are dropped", default=10)
    max_age: float = doc("seconds after which an input is too old to record", default=0.5)
    instruction: str = doc("instruction to use when none arrives on /instruction", default="")
    robot: str = doc("robot name stored in the episodes", default="")
    cameras: list[str] = doc("cameras to record, by name: topics <camera>/image_raw, images/<camera> in the files",
                             default_factory=list)
    command_interface: str = doc("the commands recorded as actions: 'ee_velocity' (/robot/cmd_twist linear x, y, z + "
                                 "/robot/gripper_cmd) or 'joint_position' (the first point of each JointTrajectory on "
                                 "/joint_trajectory_controller/joint_trajectory, in action_names order)", default="ee_velocity")
    action_names: list[str] = doc("names of the recorded command dimensions (joint_position: the joint names)",
                                  default_factory=list)
    compression: str = doc("image storage: jpeg:QUALITY (real cameras: 25 kB a 640x480 frame, 5x the speed of lossless), "
                           "or lzf / gzip (lossless), none", default="jpeg:90")
    image_size: list[int] = doc("[height, width] to centre-crop and resize frames to at record time; [] keeps full resolution",
                                default_factory=list)
    queue_frames: int = doc("frames waiting for the disk before new ones are dropped (and counted); "
                            "memory bound: this many frames of every camera", default=16)

    def __post_init__(self):
        if self.rate <= 0 or self.min_frames < 1 or self.max_age <= 0 or self.queue_frames < 1:
            raise ValueError("rate and max_age must be positive, min_frames and queue_frames >= 1")
        if self.image_size and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ValueError(f"image_size must be [] or [height, width], got {list(self.image_size)}")
        from vla_core.data.episode import parse_compression
        from vla_core.errors import EpisodeError

        try:
            parse_compression(self.compression)
        except EpisodeError as exc:
            raise ValueError(str(exc)) from None
        if not self.cameras:
            raise ValueError("cameras must name at least one camera")
        if not self.action_names:
            raise ValueError("action_names must name the recorded command dimensions")
        if self.command_interface not in ("ee_velocity", "joint_position"):
            raise ValueError(f"command_interface must be 'ee_velocity' or 'joint_position', got '{self.command_interface}'")
        if self.command_interface == "ee_velocity" and len(self.action_names) != 4:
            raise ValueError("an ee_velocity robot records 4 actions (twist linear x, y, z and the gripper)")


class EpisodeRecorder:
    """Start / sample / stop / discard around one EpisodeWriter."""

    def __init__(self, config: CollectorConfig, proprio_names: list[str] | None = None, clock=time.monotonic):
        self.config = config
        self.clock = clock
        self.proprio_names = list(proprio_names or [])
        self.instruction = config.instruction
        self.writer: EpisodeWriter | None = None
        self.saved: list[Path] = []
        self.dropped = 0          # episodes shorter than min_frames
        self.dropped_frames = 0   # frames the disk could not take, over all episodes
        self.missed_samples = 0   # ticks without fresh inputs while recording
        self._finishing: list[EpisodeWriter] = []
        self._last_tick: float | None = None
        self.max_tick_gap = 0.0   # longest interval between two sampling ticks of the current episode (s)
        self.late_ticks = 0       # ticks more than half a period late in the current episode
        self._inputs: dict[str, tuple[float, object]] = {}

    @property
    def recording(self) -> bool:
        """Whether an episode is being recorded."""
        return self.writer is not None

    def set_input(self, name: str, value) -> None:
        """Latest ``image/<camera>`` (H, W, 3), ``proprio`` (P,) or ``action`` (A,), time-stamped on arrival."""
        self._inputs[name] = (self.clock(), value)

    def start(self) -> tuple[bool, str]:
        """Begin an episode (needs an instruction)."""
        if self.recording:
            return False, "already recording"
        if not self.instruction:
            return False, "no instruction: publish one on /instruction or set the 'instruction' parameter"
        self._last_tick, self.max_tick_gap, self.late_ticks = None, 0.0, 0
        path = Path(self.config.out_dir) / f"teleop_{time.strftime('%Y%m%d_%H%M%S')}_{len(self.saved):04d}.h5"
        self.writer = EpisodeWriter(path, fps=self.config.rate, instruction=self.instruction, robot=self.config.robot,
                                    action_names=self.config.action_names, proprio_names=self.proprio_names,
                                    compression=self.config.compression, threaded=True,
                                    queue_frames=self.config.queue_frames, image_size=self.config.image_size or None)
        return True, f"recording '{self.instruction}'"

    def sample(self) -> bool:
        """Record one frame if every input is fresh; returns whether a frame was added."""
        if not self.recording:
            return False
        now = self.clock()
        if self._last_tick is not None:  # a stalled callback thread shows here first
            gap = now - self._last_tick
            self.max_tick_gap = max(self.max_tick_gap, gap)
            self.late_ticks += gap > 1.5 / self.config.rate
        self._last_tick = now
        needed = [f"image/{c}" for c in self.config.cameras] + ["proprio", "action"]
        if any(k not in self._inputs or now - self._inputs[k][0] > self.config.max_age for k in needed):
            self.missed_samples += 1
            return False
        return self.writer.add_frame({c: self._inputs[f"image/{c}"][1] for c in self.config.cameras},
                                     self._inputs["proprio"][1], self._inputs["action"][1])

    def stop(self, success: bool) -> tuple[Path | None, str]:
        """Finish the episode: written atomically, or dropped when too short."""
        if not self.recording:
            return None, "not recording"
        writer, self.writer = self.writer, None
        if len(writer) < self.config.min_frames:
            writer.discard()
            self.dropped += 1
            return None, f"dropped: {len(writer)} frames < min_frames {self.config.min_frames}"
        # The writer thread writes what is queued and renames the file; this callback does not wait.
        path = writer.finish(success=success, wait=False)
        self.saved.append(path)
        self._finishing = [w for w in self._finishing if not w.done.is_set()] + [writer]
        self.dropped_frames += writer.dropped
        lost = f", {writer.dropped} frames dropped: the disk could not keep up" if writer.dropped else ""
        return path, (f"saved {len(self.saved)}: {path} ({len(writer)} frames, {'success' if success else 'failure'}{lost}; "
                      f"longest sampling gap {1e3 * self.max_tick_gap:.1f} ms, {self.late_ticks} late ticks)")

    def discard(self) -> str:
        """Abandon the current episode (nothing is left on disk)."""
        if self.writer is not None:
            self.writer.discard()
        self.writer = None
        return "discarded"

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every stopped episode is in place; returns False on timeout."""
        return all(w.done.wait(timeout) for w in self._finishing)

    def close(self) -> Path | None:
        """Shut down: an episode still recording is written, marked unfinished and unsuccessful."""
        self.flush(timeout=30.0)
        writer, self.writer = self.writer, None
        if writer is None or len(writer) == 0:
            return None
        path = writer.finish(success=False, finished=False)
        self.saved.append(path)
        return path


@dataclass
class JoyMapping:
    """Gamepad axes -> command, buttons -> recorder events (indices into sensor_msgs/Joy)."""

    axes: list[int]                 # one axis per command dimension; -1 = not driven by an axis
    scale: list[float]              # multiplier of each axis
    gripper_close_button: int = 5   # held: gripper command +1, else -1
    start_button: int = 0
    stop_success_button: int = 1
    stop_failure_button: int = 2
    discard_button: int = 3
    deadzone: float = 0.05

    def command(self, axes: list[float], buttons: list[int]) -> np.ndarray:
        """Command vector (len(self.axes) + 1 with the gripper last)."""
        out = []
        for a, s in zip(self.axes, self.scale):
            v = axes[a] if 0 <= a < len(axes) else 0.0
            out.append(0.0 if abs(v) < self.deadzone else v * s)
        grip = 1.0 if 0 <= self.gripper_close_button < len(buttons) and buttons[self.gripper_close_button] else -1.0
        return np.array(out + [grip])

    def events(self, buttons: list[int], previous: list[int]) -> list[str]:
        """Recorder events for buttons pressed since ``previous`` (rising edges only)."""
        names = {self.start_button: "start", self.stop_success_button: "stop_success",
                 self.stop_failure_button: "stop_failure", self.discard_button: "discard"}
        out = []
        for index, name in names.items():
            now = 0 <= index < len(buttons) and buttons[index]
            before = 0 <= index < len(previous) and previous[index]
            if now and not before:
                out.append(name)
        return out


# Keyboard teleop: key -> (command dimension, direction); gripper keys set it absolutely.
KEY_BINDINGS = {
    "w": (0, +1), "s": (0, -1), "a": (1, +1), "d": (1, -1), "r": (2, +1), "f": (2, -1),
}
KEY_HELP = ("w/s: +x/-x   a/d: +y/-y   r/f: up/down   space: close/open gripper   x: stop motion   "
            "1: start recording   2: stop (success)   3: stop (failure)   0: discard   i: new instruction   q: quit")


class KeyboardTeleop:
    """Keystrokes -> velocity command (3 axes + gripper) and recorder events; no terminal handling here."""

    def __init__(self, speed: float = 0.5):
        self.speed = speed
        self.velocity = np.zeros(3)
        self.gripper = -1.0

    def key(self, ch: str) -> str | None:
        """Apply one keystroke; returns a recorder event (start, stop_success, stop_failure, discard, quit, instruction) or None."""
        if ch in KEY_BINDINGS:
            axis, sign = KEY_BINDINGS[ch]
            self.velocity[:] = 0.0
            self.velocity[axis] = sign * self.speed
        elif ch == " ":
            self.gripper = -self.gripper
        elif ch == "x":
            self.velocity[:] = 0.0
        else:
            return {"1": "start", "2": "stop_success", "3": "stop_failure", "0": "discard", "q": "quit",
                    "i": "instruction"}.get(ch)
        return None

    def command(self) -> np.ndarray:
        """Current command [vx, vy, vz, gripper]."""
        return np.concatenate([self.velocity, [self.gripper]])
