"""teleop_collector: records teleoperated demonstrations with vla_core's streaming EpisodeWriter.

Frames stream to disk from a writer thread (bounded queue, bounded memory); no callback waits on the
disk. Stopped by a signal mid-episode, the episode is kept marked unfinished; killed outright, its
partial file is restored by ``vla data recover <out_dir>``.

Subscribes  <camera>/image_raw for every camera in ``cameras``, /joint_states, the commanded action whatever the
            teleop source: /robot/cmd_twist + /robot/gripper_cmd (ee_velocity robots) or the first point of
            each JointTrajectory on /joint_trajectory_controller/joint_trajectory (joint_position robots),
            /instruction (std_msgs/String), /joy (buttons)
Services    ~/start (std_srvs/Trigger), ~/stop (std_srvs/SetBool: data = success), ~/discard (std_srvs/Trigger)
Gamepad     buttons from joy_mapping.yaml: start, stop as success, stop as failure, discard
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, Joy
from std_msgs.msg import Float64, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_core.errors import VLAError
from vla_core.image_codec import image_to_numpy, to_rgb
from vla_core.params import declare_parameters, from_parameters, parameter_specs
from vla_ros.runner import run_node
from vla_ros.topics import subscribe_latched_and_volatile
from vla_teleop.recorder import CollectorConfig, EpisodeRecorder, JoyMapping


class TeleopCollectorNode(Node):
    """Thin ROS wrapper around :class:`EpisodeRecorder`."""

    def __init__(self):
        super().__init__("teleop_collector")
        specs = parameter_specs(CollectorConfig)
        values = declare_parameters(self, specs, ParameterDescriptor)
        self.cfg = from_parameters(CollectorConfig, values, self.get_name())
        self.recorder = EpisodeRecorder(self.cfg, clock=lambda: self.get_clock().now().nanoseconds * 1e-9)
        self.joy = JoyMapping(axes=[], scale=[])
        self._buttons: list[int] = []
        self._twist = np.zeros(3)
        self._gripper = -1.0
        for cam in self.cfg.cameras:
            self.create_subscription(Image, f"{cam}/image_raw", lambda msg, cam=cam: self._on_image(cam, msg), 5)
        self.create_subscription(JointState, "/joint_states", self._on_joints, 10)
        if self.cfg.command_interface == "joint_position":
            self.create_subscription(JointTrajectory, "/joint_trajectory_controller/joint_trajectory", self._on_trajectory, 10)
        else:
            self.create_subscription(TwistStamped, "/robot/cmd_twist", self._on_twist, 10)
            self.create_subscription(Float64, "/robot/gripper_cmd", self._on_gripper, 10)
        subscribe_latched_and_volatile(self, String, "/instruction", self._on_instruction)
        self.create_subscription(Joy, "/joy", self._on_joy, 10)
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(SetBool, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/discard", self._srv_discard)
        self.create_timer(1.0 / self.cfg.rate, self._on_timer)
        self.get_logger().info(f"recording to {self.cfg.out_dir} at {self.cfg.rate:g} Hz (services ~/start, ~/stop, ~/discard)")

    def _on_image(self, cam, msg):
        try:
            self.recorder.set_input(f"image/{cam}", to_rgb(image_to_numpy(msg), msg.encoding))
        except VLAError as exc:
            self.get_logger().warning(f"dropping image: {exc}", throttle_duration_sec=5.0)

    def _on_joints(self, msg):
        if not self.recorder.proprio_names:
            self.recorder.proprio_names = list(msg.name)
        self.recorder.set_input("proprio", np.array(msg.position, np.float32))

    def _action(self):
        self.recorder.set_input("action", np.concatenate([self._twist, [self._gripper]]).astype(np.float32))

    def _on_trajectory(self, msg):
        """The setpoint the robot is sent to next (the first point); an empty trajectory holds: the action stays."""
        if not msg.points:
            return
        names = list(msg.joint_names)
        if sorted(names) != sorted(self.cfg.action_names) or len(msg.points[0].positions) != len(names):
            self.get_logger().warning(f"not recording a trajectory for joints {names}: expected {self.cfg.action_names}",
                                      throttle_duration_sec=5.0)
            return
        point = msg.points[0].positions
        self.recorder.set_input("action", np.array([point[names.index(n)] for n in self.cfg.action_names], np.float32))

    def _on_twist(self, msg):
        lin = msg.twist.linear
        self._twist = np.array([lin.x, lin.y, lin.z])
        self._action()

    def _on_gripper(self, msg):
        self._gripper = float(msg.data)
        self._action()

    def _on_instruction(self, msg):
        self.recorder.instruction = msg.data

    def _on_joy(self, msg):
        for event in self.joy.events(list(msg.buttons), self._buttons):
            if event == "start":
                self._log(*self.recorder.start())
            elif event.startswith("stop"):
                self._log(True, self.recorder.stop(event == "stop_success")[1])
            else:
                self._log(True, self.recorder.discard())
        self._buttons = list(msg.buttons)

    def _log(self, ok: bool, message: str) -> None:
        # one call site per severity: rclpy refuses a call site whose severity changes between calls
        if ok:
            self.get_logger().info(message)
        else:
            self.get_logger().warning(message)

    def _srv_start(self, _req, res):
        res.success, res.message = self.recorder.start()
        self._log(res.success, res.message)
        return res

    def _srv_stop(self, req, res):
        path, res.message = self.recorder.stop(bool(req.data))
        res.success = path is not None
        self._log(res.success, res.message)
        return res

    def _srv_discard(self, _req, res):
        res.success, res.message = True, self.recorder.discard()
        return res

    def _on_timer(self):
        self.recorder.sample()

    def destroy_node(self):
        """An episode still recording at shutdown is written, marked unfinished (never lost)."""
        path = self.recorder.close()
        if path is not None:
            self.get_logger().warning(f"shut down while recording: kept {path} marked unfinished")
        if self.recorder.dropped_frames:
            self.get_logger().warning(f"{self.recorder.dropped_frames} frames were dropped: the disk could not keep up")
        super().destroy_node()


def main(args=None) -> int:
    """Entry point of the teleop_collector executable."""
    return run_node(TeleopCollectorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
