"""sim_robot: a vla_core Task (Meta-World, ALOHA) run as a ROS robot.

Publishes   /joint_states (sensor_msgs/JointState: the task's proprioception names and values; for
            joint-position robots also velocities, the change of position over the last control period),
            /<camera>/image_raw (sensor_msgs/Image, rgb8) + /<camera>/camera_info at camera_rate, one
            pair per camera of the task (/<camera>/image_raw, named by the task's spec),
            /instruction (std_msgs/String, latched), /episode/success and /episode/done (std_msgs/Bool),
            /episode/start (std_msgs/Header: frame_id = task) before the first state of a new episode, so the
            safety monitor takes the teleported arm as a new baseline instead of a velocity violation,
            /sim/task (std_msgs/String, latched) and /sim/state (std_msgs/Float64MultiArray: the
            simulator's full state, for scripted teleop only - the policy never subscribes to it),
            /clock (rosgraph_msgs/Clock) when publish_clock is true,
            /viewer/image_raw (sensor_msgs/Image): the scene from the task's viewer camera at viewer_size
            pixels and viewer_rate Hz, for people (demo videos, rqt); never a policy input
Subscribes  end-effector robots (Meta-World):
            /robot/cmd_twist (geometry_msgs/TwistStamped: end-effector velocity command, x / y / z)
            /robot/gripper_cmd (std_msgs/Float64: -1 open .. 1 close)
            joint-position robots (ALOHA), as ros2_control's JointTrajectoryController:
            /joint_trajectory_controller/joint_trajectory (trajectory_msgs/JointTrajectory: every joint
            of the robot, any order; points interpolated from their arrival on simulation time; an empty
            trajectory holds; a malformed one is refused with one logged reason and the robot holds)
Services    ~/reset (vla_msgs/ResetEpisode): new episode with a task / instruction and seed

The simulation steps on a wall-clock timer at fps x real_time_factor; /clock carries simulation
time, so nodes with use_sim_time stay in step even when rendering makes the sim slower than real time.
A twist older than command_timeout is treated as zero velocity (the gripper keeps its last value);
a joint trajectory holds its last point (vla_core.trajectory.TrajectoryFollower). For reset_settle
seconds after a reset every command is ignored (the robot holds its start pose): commands still in
flight then were planned for the scene before the reset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, Header, String
from trajectory_msgs.msg import JointTrajectory

from vla_core.env import JOINT_POSITION, make_suite
from vla_core.errors import VLAError
from vla_core.image_codec import numpy_to_image_fields
from vla_core.params import ParameterError, declare_parameters, doc, from_parameters, parameter_specs
from vla_core.trajectory import TrajectoryFollower
from vla_msgs.srv import ResetEpisode
from vla_ros.runner import run_node
from vla_ros.stamps import seconds


@dataclass
class SimRobotConfig:
    """Parameters of the sim_robot node."""

    suite: str = doc("task suite of vla_sim, the simulated robot (vla_core.env.SUITES); required", default="")
    task: str = doc("task at start-up (empty: the instruction's task, or the suite's first)", default="")
    instruction: str = doc("instruction at start-up (empty: the task's first phrasing)", default="")
    seed: int = doc("object / goal placement of the first episode", default=0)
    camera_size: int = doc("camera resolution in pixels (square)", default=64)
    camera_rate: float = doc("camera publication rate in Hz of simulation time (rendering is the costly part)", default=20.0)
    real_time_factor: float = doc("simulation speed relative to wall time (1.0 = real time)", default=1.0)
    max_steps: int = doc("episode length cap in control steps", default=400)
    command_timeout: float = doc("seconds (simulation time) after which a velocity command counts as zero", default=0.1)
    publish_clock: bool = doc("publish /clock with simulation time (for use_sim_time)", default=True)
    camera: str = doc("the suite's policy camera(s), comma-separated ('' = the suite's default)", default="")
    viewer_size: int = doc("pixels of the viewer camera stream /viewer/image_raw", default=256)
    viewer_rate: float = doc("Hz of simulation time of /viewer/image_raw; 0 = no viewer stream", default=0.0)
    reset_settle: float = doc("seconds (simulation time) after a reset during which commands are ignored: the ones "
                              "still in flight were planned for the old scene", default=0.1)

    def __post_init__(self):
        if self.camera_size < 8:
            raise ValueError("camera_size must be >= 8 pixels")
        if self.camera_rate <= 0 or self.real_time_factor <= 0:
            raise ValueError("camera_rate and real_time_factor must be positive")
        if self.viewer_rate < 0 or self.viewer_size < 8:
            raise ValueError("viewer_rate must be >= 0 and viewer_size >= 8")
        if self.max_steps < 1:
            raise ValueError("max_steps must be >= 1")
        if self.reset_settle < 0:
            raise ValueError("reset_settle must be >= 0")


class SimRobotNode(Node):
    """Runs one task of a suite in (scaled) real time."""

    def __init__(self):
        super().__init__("sim_robot")
        specs = parameter_specs(SimRobotConfig)
        values = declare_parameters(self, specs, ParameterDescriptor)
        self.cfg = from_parameters(SimRobotConfig, values, self.get_name())
        try:
            self.suite = make_suite(self.cfg.suite)
        except VLAError as exc:
            raise ParameterError(f"sim_robot: parameter 'suite': {exc}") from None
        self.tasks = {}
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_joints = self.create_publisher(JointState, "/joint_states", 10)
        self.pub_images: dict[str, tuple] = {}  # camera -> (image publisher, camera_info publisher), made per task
        self.pub_instruction = self.create_publisher(String, "/instruction", latched)
        self.pub_task = self.create_publisher(String, "/sim/task", latched)
        self.pub_state = self.create_publisher(Float64MultiArray, "/sim/state", 10)
        self.pub_success = self.create_publisher(Bool, "/episode/success", 10)
        self.pub_done = self.create_publisher(Bool, "/episode/done", 10)
        self.pub_start = self.create_publisher(Header, "/episode/start", 10)
        self.pub_viewer = self.create_publisher(Image, "/viewer/image_raw", 2) if self.cfg.viewer_rate > 0 else None
        self.pub_clock = self.create_publisher(Clock, "/clock", 10) if self.cfg.publish_clock else None
        self.create_service(ResetEpisode, "~/reset", self._on_reset)
        self.sim_time = 0.0
        self.steps_total = 0
        self.follower: TrajectoryFollower | None = None
        self._last_refusal = ""
        ok, message = self.reset_episode(self.cfg.instruction, self.cfg.task, self.cfg.seed)
        if not ok:
            raise ParameterError(f"sim_robot: parameters 'task' / 'instruction': {message}")
        self._episode_start = -self.cfg.reset_settle   # nothing was in flight before the first episode
        # The robot's command interface comes from its tasks (one per suite): only that one is offered.
        if self.joint_robot:
            self.create_subscription(JointTrajectory, "/joint_trajectory_controller/joint_trajectory", self._on_trajectory, 10)
        else:
            self.create_subscription(TwistStamped, "/robot/cmd_twist", self._on_twist, 10)
            self.create_subscription(Float64, "/robot/gripper_cmd", self._on_gripper, 10)
        self.create_timer(1.0 / (self.task.spec.fps * self.cfg.real_time_factor), self._step)

    # ------------------------------------------------------------------ episode
    def reset_episode(self, instruction: str, task: str, seed: int) -> tuple[bool, str]:
        """Start an episode; returns (ok, message)."""
        try:
            name = task or (self.suite.task_for_instruction(instruction) if instruction else self.suite.task_names[0])
            if name not in self.suite.task_names:
                return False, f"unknown task '{name}' in suite {self.suite.name}"
            if name not in self.tasks:
                camera = {"camera": self.cfg.camera} if self.cfg.camera else {}
                self.tasks[name] = self.suite.make_task(name, image_size=self.cfg.camera_size, max_steps=self.cfg.max_steps,
                                                        **camera)
        except VLAError as exc:
            return False, str(exc)
        self.task = self.tasks[name]
        for cam in self.task.spec.cameras:
            if cam not in self.pub_images:
                self.pub_images[cam] = (self.create_publisher(Image, f"/{cam}/image_raw", 5),
                                        self.create_publisher(CameraInfo, f"/{cam}/camera_info", 5))
        self.instruction = instruction or self.suite.instructions(name)[0]
        self.seed = seed if seed >= 0 else getattr(self, "seed", -1) + 1
        self.obs = self.task.reset(self.seed, self.instruction)
        self.joint_robot = self.task.command_interface == JOINT_POSITION
        self._last_position = np.asarray(self.obs["proprio"], float)
        self._velocity = np.zeros_like(self._last_position)
        if self.joint_robot:  # a new episode holds its start pose until a trajectory arrives
            self.follower = TrajectoryFollower(self.task.spec.action_names, self.task.hold_action(None))
        self.success = self.done = False
        self.episode_steps = 0
        self._episode_start = self.sim_time
        self._twist = np.zeros(3)
        self._twist_time = -1e9
        self._gripper = -1.0
        self.render_every = max(1, round(self.task.spec.fps / self.cfg.camera_rate))
        self.viewer_every = max(1, round(self.task.spec.fps / self.cfg.viewer_rate)) if self.cfg.viewer_rate > 0 else 0
        start = Header(frame_id=name)
        start.stamp = self._stamp()
        self.pub_start.publish(start)
        self.pub_task.publish(String(data=name))
        self.pub_instruction.publish(String(data=self.instruction))
        self.get_logger().info(f"episode: task {name}, seed {self.seed}, instruction '{self.instruction}'")
        # The new pose goes out with the next step (<= one control period later): listeners hear the
        # episode start first and take the jump of the arm as a new baseline.
        self._render_next = True
        return True, "ok"

    def _on_reset(self, request, response):
        ok, message = self.reset_episode(request.instruction, request.task, request.seed)
        response.success, response.message = ok, message
        response.task, response.instruction = self.task.name, self.instruction
        return response

    # ------------------------------------------------------------------ commands
    def _settling(self) -> bool:
        """Whether commands are ignored now: the scene was reset less than reset_settle ago.

        A real robot is never teleported; a simulated reset is, while the commands the controller and the
        safety monitor sent just before it (planned for the old scene) are still on their way. Executed in
        the new scene they would yank the arm from its new start pose towards the old one.
        """
        return self.sim_time - self._episode_start < self.cfg.reset_settle

    def _on_twist(self, msg: TwistStamped) -> None:
        if self._settling():
            return
        lin = msg.twist.linear
        self._twist = np.array([lin.x, lin.y, lin.z])
        self._twist_time = self.sim_time

    def _on_gripper(self, msg: Float64) -> None:
        if self._settling():
            return
        self._gripper = float(msg.data)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if self._settling():
            return
        times = [seconds(p.time_from_start) for p in msg.points]
        problem = self.follower.follow(list(msg.joint_names), times, [list(p.positions) for p in msg.points], self.sim_time)
        if problem and problem != self._last_refusal:  # one log line per kind of fault, not one per message
            self.get_logger().warning(f"joint trajectory refused, holding: {problem}")
        self._last_refusal = problem or ""

    # ------------------------------------------------------------------ loop
    def _step(self) -> None:
        if self.done:
            # Physics holds, but time goes on and the cameras keep streaming, as a real robot's would:
            # nodes on use_sim_time keep ticking (and holding), a late-starting policy still sees the scene.
            self.sim_time += 1.0 / self.task.spec.fps
            self.steps_total += 1
            self._velocity[:] = 0.0
            render = self.steps_total % self.render_every == 0
            if render:
                self.obs = self.task.observe()
            self._publish(render_step=render)
            return
        if self.joint_robot:
            action = self.follower.setpoint(self.sim_time + 1.0 / self.task.spec.fps)  # where to be at the period's end
        else:
            fresh = self.sim_time - self._twist_time <= self.cfg.command_timeout
            action = np.concatenate([self._twist if fresh else np.zeros(3), [self._gripper]])
        render = (self.episode_steps + 1) % self.render_every == 0 or self._render_next
        self._render_next = False
        result = self.task.step(action, render=render)
        self.obs = result.observation
        self.success = self.success or result.success
        self.done = result.done
        self.episode_steps += 1
        self.steps_total += 1
        self.sim_time += 1.0 / self.task.spec.fps
        position = np.asarray(self.obs["proprio"], float)
        self._velocity = (position - self._last_position) * self.task.spec.fps
        self._last_position = position
        if self.done:
            self.get_logger().info(f"episode done after {self.episode_steps} steps: {'success' if self.success else 'failure'}")
        self._publish(render_step=render)
        if self.pub_viewer is not None and self.episode_steps % self.viewer_every == 0:
            view = self.task.render_view(self.cfg.viewer_size)
            if view is not None:
                msg = Image(**numpy_to_image_fields(view, "rgb8"))
                msg.header.stamp, msg.header.frame_id = self._stamp(), "viewer"
                self.pub_viewer.publish(msg)

    def _stamp(self):
        return rclpy.time.Time(seconds=self.sim_time).to_msg() if self.cfg.publish_clock else self.get_clock().now().to_msg()

    def _publish(self, render_step: bool) -> None:
        stamp = self._stamp()
        if self.pub_clock is not None:
            self.pub_clock.publish(Clock(clock=stamp))
        js = JointState(name=list(self.task.spec.proprio_names), position=[float(v) for v in self.obs["proprio"]])
        if self.joint_robot:
            js.velocity = [float(v) for v in self._velocity]
        js.header.stamp = stamp
        self.pub_joints.publish(js)
        state = getattr(self.task, "state_vector", None)
        if state is not None:
            self.pub_state.publish(Float64MultiArray(data=[float(v) for v in state]))
        self.pub_success.publish(Bool(data=self.success))
        self.pub_done.publish(Bool(data=self.done))
        if render_step:
            for cam, image in self.obs["images"].items():
                pub_image, pub_info = self.pub_images[cam]
                msg = Image(**numpy_to_image_fields(image, "rgb8"))
                msg.header.stamp, msg.header.frame_id = stamp, cam
                pub_image.publish(msg)
                info = CameraInfo(height=msg.height, width=msg.width)
                info.header = msg.header
                pub_info.publish(info)

    def close(self) -> None:
        """Release the renderers (called by the node runner on shutdown)."""
        for task in self.tasks.values():
            task.close()


def main(args=None) -> int:
    """Entry point of the sim_robot executable."""
    return run_node(SimRobotNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
