"""vla_controller: the executor. One command per control tick from the chunk scheduler; no model code.

Subscribes  /vla/action_chunk (vla_msgs/ActionChunk, from vla_policy), /joint_states (freshness of
            the robot's state), /instruction (std_msgs/String: a new one flushes the plan),
            /episode/start (std_msgs/Header: the robot was reset at header.stamp; flushes the plan and
            refuses chunks computed from older observations)
Publishes   /vla/chunk_request (vla_msgs/ChunkRequest) when the scheduler wants a chunk,
            once per control tick, by the robot's command interface (robot.yaml remaps these topics to
            the safety monitor, never to the robot):
              ee_velocity: /vla/cmd_twist (geometry_msgs/TwistStamped) + /vla/gripper_cmd (std_msgs/Float64)
              joint_position: /vla/joint_trajectory (trajectory_msgs/JointTrajectory, one point)
            /diagnostics (tick timing, plan depth, holds, stale actions skipped, inference delay)

The logic is :class:`vla_inference.executor.Executor` around the one chunk scheduler (the class
``vla eval`` runs): ticks from the clock, requests, latency compensation from the chunk's stamp,
blending / temporal ensembling / real-time chunking, holds (zero velocity, gripper unchanged) and
refusals of chunks for another robot or rate. This node maps actions to the robot's command. It
never imports torch, so inference in the vla_policy process cannot stall its timer.

A joint-position robot gets, each tick, a trajectory of one point: the tick's action, due one
control period later (where a JointTrajectoryController interpolates to from its current setpoint).
Sending the rest of the buffered chunk instead would let the robot's controller play on through a
late tick, but blind: the plan is re-decided every tick (blending, temporal ensembling, real-time
chunking change the steps ahead), the safety monitor clamps every point against the state measured
now, and a controller that loses the stream should stop within one period, not run out a stale
chunk. A hold is a trajectory with no points (the monitor holds the measured position).
"""

from __future__ import annotations

import gc
import os
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Header, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_core.env import EE_VELOCITY, JOINT_POSITION
from vla_core.params import ParameterError, declare_parameters, doc, from_parameters, parameter_specs
from vla_core.runtime.scheduler import SchedulerConfig
from vla_inference.executor import Executor, ExecutorConfig
from vla_msgs.msg import ActionChunk, ChunkRequest
from vla_ros.runner import run_node
from vla_ros.stamps import duration, seconds
from vla_ros.topics import subscribe_latched_and_volatile


@dataclass
class CommandConfig:
    """How actions become this robot's commands; vla_controller parameters."""

    command_interface: str = doc("'ee_velocity': an end-effector twist + gripper; 'joint_position': a JointTrajectory "
                                 "of absolute joint positions", default=EE_VELOCITY)
    joint_names: list[str] = doc("joint_position robots: the trajectory's joint name for each action, in action_names "
                                 "order (empty = the action names themselves)", default_factory=list)
    twist_actions: list[str] = doc("ee_velocity robots: action names sent as twist.linear x, y, z", default_factory=list)
    gripper_action: str = doc("ee_velocity robots: action name sent on the gripper topic ('' = none)", default="")
    realtime_priority: int = doc("SCHED_FIFO priority (1-99) of the control loop's thread; 0 = normal scheduling. Needs "
                                 "root or CAP_SYS_NICE; without them a warning is logged and the loop runs normally",
                                 default=0)

    def __post_init__(self):
        if self.command_interface not in (EE_VELOCITY, JOINT_POSITION):
            raise ValueError(f"command_interface must be '{EE_VELOCITY}' or '{JOINT_POSITION}', got '{self.command_interface}'")
        if len(self.twist_actions) > 3:
            raise ValueError("twist_actions names at most 3 actions (linear x, y, z)")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError("realtime_priority must be in [0, 99]")


class VLAControllerNode(Node):
    """Thin ROS wrapper around :class:`Executor`: actions -> the robot's command (see the module docstring)."""

    def __init__(self, **node_kwargs):
        super().__init__("vla_controller", **node_kwargs)
        specs = parameter_specs(ExecutorConfig) + parameter_specs(SchedulerConfig) + parameter_specs(CommandConfig)
        values = declare_parameters(self, specs, ParameterDescriptor)
        config = from_parameters(ExecutorConfig, values, self.get_name())
        self.command = from_parameters(CommandConfig, values, self.get_name())
        names = config.action_names
        self.joint_robot = self.command.command_interface == JOINT_POSITION
        if self.joint_robot:
            self._joints = list(self.command.joint_names) or list(names)
            if len(self._joints) != len(names):
                raise ParameterError(f"{self.get_name()}: joint_names has {len(self._joints)} names for {len(names)} actions")
        else:
            if not self.command.twist_actions:
                raise ParameterError(f"{self.get_name()}: twist_actions must name the actions sent as twist.linear x, y, z")
            for name in [*self.command.twist_actions, *([self.command.gripper_action] if self.command.gripper_action else [])]:
                if name not in names:
                    raise ParameterError(f"{self.get_name()}: '{name}' is not one of action_names {names}")
            self._twist_index = [names.index(n) for n in self.command.twist_actions]
            self._gripper_index = names.index(self.command.gripper_action) if self.command.gripper_action else None
        self.core = Executor(config, from_parameters(SchedulerConfig, values, self.get_name()))
        self._warned: set[str] = set()
        self.tick_times: deque[float] = deque(maxlen=2000)   # wall-clock time of every tick (diagnostics)
        if self.joint_robot:
            self.pub_trajectory = self.create_publisher(JointTrajectory, "/vla/joint_trajectory", 10)
            period = self.core.period
            self._point_time = duration(period)
        else:
            self.pub_twist = self.create_publisher(TwistStamped, "/vla/cmd_twist", 10)
            self.pub_gripper = self.create_publisher(Float64, "/vla/gripper_cmd", 10)
        self.pub_request = self.create_publisher(ChunkRequest, "/vla/chunk_request", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(ActionChunk, "/vla/action_chunk", self._on_chunk, 10)
        self.create_subscription(Header, "/episode/start", self._on_episode_start, 10)
        self.create_subscription(JointState, "/joint_states", lambda _m: self.core.on_state(self._now()), qos_profile_sensor_data)
        subscribe_latched_and_volatile(self, String, "/instruction", self._on_instruction)
        self.create_timer(self.core.period, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)
        if self.command.realtime_priority:
            self._realtime(self.command.realtime_priority)
        # Full garbage collections would traverse every object rclpy and numpy made at start-up, with the
        # loop stalled meanwhile: freeze them, so later collections only look at new objects.
        gc.collect()
        gc.freeze()
        sc = self.core.scheduler.config
        self.get_logger().info(f"{config.control_rate:g} Hz control, {sc.mode} execution, a new chunk every "
                               f"{sc.execute_steps} ticks; actions {names}")

    def _realtime(self, priority: int) -> None:
        """Real-time scheduling for the thread that spins the node (timer callbacks and publishing)."""
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            self.get_logger().info(f"control loop runs with SCHED_FIFO priority {priority}")
        except (PermissionError, OSError, AttributeError) as exc:
            self.get_logger().warning(f"realtime_priority {priority} not granted ({exc}); the control loop runs with "
                                      f"normal scheduling (grant CAP_SYS_NICE or set realtime_priority: 0)")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_instruction(self, msg: String) -> None:
        if self.core.on_instruction(msg.data):
            self.get_logger().info(f"instruction: '{msg.data}'")

    def _on_episode_start(self, msg: Header) -> None:
        self.core.on_episode_start(seconds(msg.stamp))
        self.get_logger().info(f"episode start ({msg.frame_id or 'robot reset'}): plan dropped")

    def _on_chunk(self, msg: ActionChunk) -> None:
        step = seconds(msg.step_duration)
        stamp = seconds(msg.header.stamp)
        problem = self.core.on_chunk(msg.request_id, list(msg.action_names), step, msg.horizon, np.asarray(msg.actions),
                                     msg.instruction, stamp)
        if problem and problem not in self._warned:
            self._warned.add(problem)
            self.get_logger().warning(f"refusing chunks, holding the robot: {problem}")

    def _on_tick(self) -> None:
        self.tick_times.append(time.monotonic())
        action, request = self.core.step(self._now())
        if request is not None:
            msg = ChunkRequest(request_id=request.id, frozen_steps=int(request.frozen),
                               action_names=list(self.core.config.action_names),
                               prefix=np.asarray(request.prefix, np.float64).reshape(-1).tolist(),
                               step_duration=duration(self.core.period))
            msg.header.stamp = self.get_clock().now().to_msg()
            self.pub_request.publish(msg)
        if self.joint_robot:
            traj = JointTrajectory(joint_names=self._joints)
            traj.header.stamp = self.get_clock().now().to_msg()
            if action is not None:  # None = hold: no points (the safety monitor holds the measured position)
                traj.points.append(JointTrajectoryPoint(positions=[float(v) for v in action], time_from_start=self._point_time))
            self.pub_trajectory.publish(traj)
            return
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        if action is not None:  # None = hold: zero velocity, gripper unchanged
            for axis, i in zip("xyz", self._twist_index):
                setattr(msg.twist.linear, axis, float(action[i]))
            if self._gripper_index is not None:
                self.pub_gripper.publish(Float64(data=float(action[self._gripper_index])))
        self.pub_twist.publish(msg)

    def _publish_diagnostics(self) -> None:
        intervals = np.diff(np.asarray(self.tick_times)[-200:]) * 1e3
        values = self.core.diagnostics() | {
            "tick_interval_p50_ms": float(np.percentile(intervals, 50)) if intervals.size else 0.0,
            "tick_interval_p99_ms": float(np.percentile(intervals, 99)) if intervals.size else 0.0}
        fresh = self.core.state_fresh(self._now())
        status = DiagnosticStatus(level=DiagnosticStatus.OK if fresh else DiagnosticStatus.WARN, name="vla_controller",
                                  message="running" if fresh else "holding: robot state is stale",
                                  values=[KeyValue(key=k, value=f"{v:.3f}" if isinstance(v, float) else str(v))
                                          for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)


def main(args=None) -> int:
    """Entry point of the vla_controller executable."""
    return run_node(VLAControllerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
