"""scripted_teleop: the simulator's scripted expert as a teleop source.

It publishes on the same command topics a person's teleop device would: for end-effector robots
/robot/cmd_twist + /robot/gripper_cmd (a gamepad), for joint-position robots a one-point
trajectory_msgs/JointTrajectory on /joint_trajectory_controller/joint_trajectory per tick (a
leader-arm bridge), as the suite's expert says (``Suite.scripted_expert``). It runs ``episodes``
demonstrations: reset the sim (~/reset of sim_robot) with the next seed, start the collector, act
until /episode/done, stop the collector with the success flag. While the collector refuses to start
(it has not heard the new instruction yet, or it is recording), it resets the same seed again and asks
again, for up to ``start_timeout``, so that a demonstration is recorded from its first step. The
expert reads /sim/state (the simulator's privileged state); the recorded policy inputs do not. Experts
that replay a plan count control steps from the /episode/start stamp on the node's clock (run it with
use_sim_time); their plan is made before that clock starts (see ``_prepare``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Float64, Float64MultiArray, Header, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_core.env import JOINT_POSITION, make_suite
from vla_core.errors import VLAError
from vla_core.params import ParameterError, declare_parameters, doc, from_parameters, parameter_specs
from vla_msgs.srv import ResetEpisode
from vla_ros import episode
from vla_ros.runner import run_node
from vla_ros.stamps import duration, seconds

RETRY_PAUSE = 0.2   # s between a refused ~/start and the next reset-and-ask


@dataclass
class ScriptedTeleopConfig:
    """Parameters of the scripted_teleop node."""

    suite: str = doc("task suite whose scripted expert acts (the simulator's, e.g. aloha)", default="")
    rate: float = doc("command rate in Hz (the simulator's control rate)", default=50.0)
    episodes: int = doc("demonstrations to run, then idle (0: act without driving episodes)", default=1)
    task: str = doc("task to demonstrate (empty: keep the simulator's)", default="")
    instruction: str = doc("instruction of the demonstrations (empty: the task's default)", default="")
    seed_start: int = doc("seed of the first demonstration", default=0)
    sim_node: str = doc("name of the sim_robot node (for its ~/reset service)", default="sim_robot")
    collector_node: str = doc("name of the collector node (for ~/start and ~/stop)", default="teleop_collector")
    start_timeout: float = doc("s: how long a refused ~/start is asked again (each time after a fresh reset of the "
                               "same seed) before the demonstration runs unrecorded", default=5.0)


class ScriptedTeleopNode(Node):
    """A suite's scripted expert publishing teleop commands."""

    def __init__(self):
        super().__init__("scripted_teleop")
        specs = parameter_specs(ScriptedTeleopConfig)
        values = declare_parameters(self, specs, ParameterDescriptor)
        self.cfg = from_parameters(ScriptedTeleopConfig, values, self.get_name())
        try:
            self.suite = make_suite(self.cfg.suite)
        except VLAError as exc:
            raise ParameterError(f"{self.get_name()}: parameter 'suite': {exc}") from None
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_twist = self.create_publisher(TwistStamped, "/robot/cmd_twist", 10)
        self.pub_gripper = self.create_publisher(Float64, "/robot/gripper_cmd", 10)
        self.pub_trajectory = self.create_publisher(JointTrajectory, "/joint_trajectory_controller/joint_trajectory", 10)
        period = 1.0 / self.cfg.rate
        self._point_time = duration(period)
        self._episode_start: float | None = None
        self._ticks = 0                      # timer ticks so far (the retry clock)
        self._refused_at: int | None = None  # tick of the first refused ~/start of the current demonstration
        self._wait_until = 0                 # no request before this tick (a pause between retries)
        self._expert_task: str | None = None  # the task whose expert self.expert is
        self._prepared: tuple[str, int] | None = None   # (task, seed) a planning expert has planned for
        self._scenes: dict = {}              # task -> local copy of the scene (planning experts)
        self.create_subscription(String, "/sim/task", self._on_task, latched)
        self.create_subscription(Header, "/episode/start", self._on_episode_start, 10)
        self.create_subscription(Float64MultiArray, "/sim/state", self._on_state, 10)
        self.episode = episode.listen(self)   # stale end-of-episode messages never end the next episode
        self.reset_client = self.create_client(ResetEpisode, f"/{self.cfg.sim_node}/reset")
        self.start_client = self.create_client(Trigger, f"/{self.cfg.collector_node}/start")
        self.stop_client = self.create_client(SetBool, f"/{self.cfg.collector_node}/stop")
        self.expert = None
        self.state = None
        self.phase = "idle" if self.cfg.episodes <= 0 else "reset"
        self.completed = 0
        self._pending = None
        self.create_timer(1.0 / self.cfg.rate, self._on_timer)

    def _on_task(self, msg):
        self._use_expert(msg.data)

    def _use_expert(self, task: str) -> None:
        """The scripted expert of ``task`` (the same task's expert is kept, with any plan it made)."""
        if task == self._expert_task:
            return
        self._expert_task = task
        try:
            self.expert = self.suite.scripted_expert(task)
        except VLAError as exc:
            self.expert = None
            self.get_logger().error(f"no scripted expert for task '{task}': {exc}")

    def _on_episode_start(self, msg):
        self._episode_start = seconds(msg.stamp)
        if self.expert is not None and not self.expert.plans:
            self.expert.reset()

    def _prepare(self, seed: int) -> bool:
        """Make a planning expert's plan for ``seed`` from a local copy of the seeded scene, once per seed.

        Returns whether it planned now (the simulated episode must then restart: its clock ran meanwhile).
        """
        key = (self._expert_task, seed)
        if self.expert is None or not self.expert.plans or key == self._prepared:
            return False
        if self._expert_task not in self._scenes:
            self._scenes[self._expert_task] = self.suite.make_task(self._expert_task, image_size=8, render=False)
        scene = self._scenes[self._expert_task]
        scene.reset(seed)
        self.expert.reset()
        self.expert.act(scene.state_vector, 0)
        self._prepared = key
        return True

    def _on_state(self, msg):
        self.state = np.array(msg.data)

    def _call(self, client, request, next_phase):
        if not client.service_is_ready():
            return
        self._pending = (client.call_async(request), next_phase)

    def _on_timer(self):
        self._ticks += 1
        if self._ticks < self._wait_until:
            return
        if self._pending is not None:
            future, next_phase = self._pending
            if not future.done():
                return
            self._pending = None
            if next_phase == "acting":  # the collector answered ~/start
                result = future.result()
                if not result.success:
                    # E.g. it has not heard the new episode's instruction yet, or it is still recording: ask
                    # again rather than act a demonstration nobody records (for at most start_timeout, then act
                    # unrecorded). The scene ran on meanwhile and the expert's plan counts steps from the
                    # episode's start, so each retry resets the same seed first: a demonstration is recorded
                    # from its beginning or not at all.
                    if self._refused_at is None:
                        self._refused_at = self._ticks
                        self.get_logger().warning(f"collector refused to start: {result.message}; asking again")
                    if (self._ticks - self._refused_at) / self.cfg.rate < self.cfg.start_timeout:
                        self.phase = "reset"
                        self._wait_until = self._ticks + max(1, round(RETRY_PAUSE * self.cfg.rate))
                        return
                    self.get_logger().error(f"collector refused to start for {self.cfg.start_timeout} s: "
                                            f"{result.message}; this demonstration is not recorded")
                self._refused_at = None
            if next_phase == "starting":   # sim_robot answered ~/reset
                self._use_expert(future.result().task)
                # A planning expert plans for seconds; done now, the robot would wait while the episode's clock
                # ran, and the plan (counted in steps from the episode's start) would be replayed from its
                # middle. So: plan for this scene, then reset the same seed again.
                if self._prepare(self.cfg.seed_start + self.completed):
                    self.phase = "reset"
                    return
            self.phase = next_phase
            if next_phase == "starting":
                self.episode.restart()
            if next_phase == "reset":
                self.completed += 1
                if self.completed >= self.cfg.episodes:
                    self.get_logger().info(f"finished {self.completed} demonstrations")
                    self.phase = "finished"
            return
        if self.phase == "reset":
            req = ResetEpisode.Request(task=self.cfg.task, instruction=self.cfg.instruction,
                                       seed=self.cfg.seed_start + self.completed)
            self._call(self.reset_client, req, "starting")
        elif self.phase == "starting":
            self._call(self.start_client, Trigger.Request(), "acting")
        elif self.phase in ("acting", "idle"):
            if self.phase == "acting" and self.episode.done:
                self._call(self.stop_client, SetBool.Request(data=self.episode.success), "reset")
                return
            if self.expert is None or self.state is None:
                return
            now = self.get_clock().now().nanoseconds * 1e-9
            step = 0 if self._episode_start is None else max(0, round((now - self._episode_start) * self.cfg.rate))
            action = self.expert.act(self.state, step)
            if self.expert.command_interface == JOINT_POSITION:  # a leader arm: where to be one period from now
                traj = JointTrajectory(joint_names=list(self.expert.action_names))
                traj.header.stamp = self.get_clock().now().to_msg()
                traj.points.append(JointTrajectoryPoint(positions=[float(v) for v in action], time_from_start=self._point_time))
                self.pub_trajectory.publish(traj)
                return
            msg = TwistStamped()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in action[:3])
            self.pub_gripper.publish(Float64(data=float(action[3])))
            self.pub_twist.publish(msg)


def main(args=None) -> int:
    """Entry point of the scripted_teleop executable."""
    return run_node(ScriptedTeleopNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
