"""vla_controller: the executor. One command per control tick from the chunk scheduler; no model code.

Subscribes  /vla/action_chunk (vla_msgs/ActionChunk, from vla_policy), /joint_states (freshness of
            the robot's state), /instruction (std_msgs/String: a new one flushes the plan)
Publishes   /vla/chunk_request (vla_msgs/ChunkRequest) when the scheduler wants a chunk,
            /vla/cmd_twist (geometry_msgs/TwistStamped) + /vla/gripper_cmd (std_msgs/Float64) once per
            control tick (robot.yaml remaps them to the safety monitor, never to the robot),
            /diagnostics (tick timing, plan depth, holds, stale actions skipped, inference delay)

All scheduling lives in :class:`vla_core.runtime.scheduler.ChunkScheduler` (the class ``vla eval``
runs): requests, latency compensation from the chunk's stamp, blending / temporal ensembling /
real-time chunking. This node adds what only a robot has: ticks from the clock, a hold when the
robot's state is stale or no action is planned (zero velocity, gripper unchanged), and a refusal of
chunks whose actions or control rate do not match this robot. It never imports torch, so inference
in the vla_policy process cannot stall its timer.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, String

from vla_core.params import declare_parameters, doc, from_parameters, parameter_specs
from vla_core.runtime.scheduler import ChunkScheduler, SchedulerConfig
from vla_msgs.msg import ActionChunk, ChunkRequest
from vla_ros.runner import run_node
from vla_ros.topics import subscribe_latched_and_volatile


@dataclass
class ExecutorConfig:
    """The robot side of execution; every field is a vla_controller parameter."""

    control_rate: float = doc("control ticks per second (Hz): one command per tick; chunks for another rate are refused",
                              default=80.0)
    action_names: list[str] = doc("action dimensions the robot's command takes, in order (chunks must match)",
                                  default_factory=lambda: ["dx", "dy", "dz", "gripper"])
    twist_actions: list[str] = doc("action names sent as twist.linear x, y, z", default_factory=lambda: ["dx", "dy", "dz"])
    gripper_action: str = doc("action name sent on the gripper topic ('' = none)", default="gripper")
    observation_timeout: float = doc("seconds without /joint_states after which the robot holds and the plan is dropped",
                                     default=0.5)
    request_timeout: float = doc("seconds after which an unanswered chunk request is given up and asked again", default=1.0)
    delay_margin: int = doc("real-time chunking: ticks added to the measured inference delay when freezing actions",
                            default=1)
    realtime_priority: int = doc("SCHED_FIFO priority (1-99) of the control loop's thread; 0 = normal scheduling. Needs "
                                 "root or CAP_SYS_NICE; without them a warning is logged and the loop runs normally",
                                 default=0)

    def __post_init__(self):
        if self.control_rate <= 0:
            raise ValueError("control_rate must be positive")
        if not self.action_names:
            raise ValueError("action_names must name the robot's action dimensions")
        for name in [*self.twist_actions, *([self.gripper_action] if self.gripper_action else [])]:
            if name not in self.action_names:
                raise ValueError(f"'{name}' is not one of action_names {self.action_names}")
        if len(self.twist_actions) > 3:
            raise ValueError("twist_actions names at most 3 actions (linear x, y, z)")
        if self.observation_timeout <= 0 or self.request_timeout <= 0 or self.delay_margin < 0:
            raise ValueError("observation_timeout and request_timeout must be positive, delay_margin >= 0")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError("realtime_priority must be in [0, 99]")


class VLAControllerNode(Node):
    """Thin ROS wrapper around :class:`ChunkScheduler` for an end-effector twist + gripper robot."""

    def __init__(self, **node_kwargs):
        super().__init__("vla_controller", **node_kwargs)
        specs = parameter_specs(ExecutorConfig) + parameter_specs(SchedulerConfig)
        values = declare_parameters(self, specs, ParameterDescriptor)
        self.config = from_parameters(ExecutorConfig, values, self.get_name())
        self.scheduler = ChunkScheduler(from_parameters(SchedulerConfig, values, self.get_name()))
        self.period = 1.0 / self.config.control_rate
        names = self.config.action_names
        self._twist_index = [names.index(n) for n in self.config.twist_actions]
        self._gripper_index = names.index(self.config.gripper_action) if self.config.gripper_action else None
        self.instruction: str | None = None
        self._state_time: float | None = None
        self._t_start: float | None = None
        self.tick = -1
        self.missed_ticks = 0
        self._next_id = 1
        self._requests: dict[int, tuple[int, float]] = {}   # request id -> (tick, time) of the request
        self._request_sent: float | None = None
        self.delays: deque[int] = deque(maxlen=10)           # ticks from request to chunk arrival
        self.tick_times: deque[float] = deque(maxlen=2000)   # wall-clock time of every tick (diagnostics, tests)
        self.refused = 0
        self._warned: set[str] = set()
        self.pub_twist = self.create_publisher(TwistStamped, "/vla/cmd_twist", 10)
        self.pub_gripper = self.create_publisher(Float64, "/vla/gripper_cmd", 10)
        self.pub_request = self.create_publisher(ChunkRequest, "/vla/chunk_request", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(ActionChunk, "/vla/action_chunk", self._on_chunk, 10)
        self.create_subscription(JointState, "/joint_states", self._on_joint_state, qos_profile_sensor_data)
        subscribe_latched_and_volatile(self, String, "/instruction", self._on_instruction)
        self.create_timer(self.period, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)
        if self.config.realtime_priority:
            self._realtime(self.config.realtime_priority)
        # Full garbage collections would traverse every object rclpy and numpy made at start-up, with the
        # loop stalled meanwhile: freeze them, so later collections only look at new objects.
        gc.collect()
        gc.freeze()
        sc = self.scheduler.config
        self.get_logger().info(f"{self.config.control_rate:g} Hz control, {sc.mode} execution, a new chunk every "
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

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ inputs
    def _on_joint_state(self, _msg: JointState) -> None:
        self._state_time = self._now()

    def _on_instruction(self, msg: String) -> None:
        if msg.data != self.instruction:
            self.get_logger().info(f"instruction: '{msg.data}'")
            self.instruction = msg.data
            self._flush()

    def _flush(self) -> None:
        """Drop the plan and forget requests in flight: their chunks were computed for another situation."""
        self.scheduler.reset()
        self._requests.clear()
        self._request_sent = None

    def _on_chunk(self, msg: ActionChunk) -> None:
        request = self._requests.pop(msg.request_id, None)
        if request is None or msg.instruction != self.instruction:
            return  # answers a request made before a flush
        n = len(self.config.action_names)
        step = msg.step_duration.sec + msg.step_duration.nanosec * 1e-9
        problem = None
        if list(msg.action_names) != list(self.config.action_names):
            problem = (f"the policy produces actions {list(msg.action_names)} but this robot takes "
                       f"{self.config.action_names} (parameter action_names)")
        elif not math.isclose(step, self.period, rel_tol=1e-3):
            problem = (f"the policy's chunks step every {step * 1e3:.2f} ms ({1 / step:g} Hz) but control_rate is "
                       f"{self.config.control_rate:g} Hz: retrain at this rate or set control_rate")
        elif len(msg.actions) != msg.horizon * n or not np.isfinite(msg.actions).all():
            problem = "a chunk with a wrong size or non-finite actions"
        if problem:
            self.refused += 1
            self.scheduler.cancel()
            self._warn_once(problem, f"refusing chunks, holding the robot: {problem}")
            return
        req_tick, req_time = request
        # Latency compensation: the chunk's first action belongs to the tick of its observation.
        obs_time = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        t0 = req_tick - int(round((req_time - obs_time) / self.period))
        now = max(self.tick + 1, req_tick)   # the next tick to execute
        self.scheduler.insert(np.asarray(msg.actions, np.float64).reshape(msg.horizon, n), t0, now)
        self.delays.append(now - req_tick)
        self._request_sent = None

    # ------------------------------------------------------------------ control tick
    def _current_tick(self, now: float) -> int:
        if self._t_start is None:
            self._t_start = now
        tick = max(self.tick + 1, int(round((now - self._t_start) / self.period)))
        self.missed_ticks += tick - self.tick - 1 if self.tick >= 0 else 0
        return tick

    def _request(self, tick: int, now: float) -> None:
        frozen = (max(self.delays) + self.config.delay_margin) if self.delays else self.config.delay_margin
        req = self.scheduler.request(tick, frozen=frozen)
        msg = ChunkRequest(request_id=self._next_id, frozen_steps=int(req.frozen), action_names=list(self.config.action_names),
                           prefix=np.asarray(req.prefix, np.float64).reshape(-1).tolist(),
                           step_duration=Duration(sec=int(self.period), nanosec=int(round((self.period % 1) * 1e9))))
        msg.header.stamp = self.get_clock().now().to_msg()
        self._requests = {self._next_id: (tick, now)}   # only the newest request's answer is used
        self._next_id += 1
        self._request_sent = now
        self.pub_request.publish(msg)

    def _on_tick(self) -> None:
        now = self._now()
        self.tick_times.append(time.monotonic())
        self.tick = tick = self._current_tick(now)
        fresh = self._state_time is not None and now - self._state_time <= self.config.observation_timeout
        if not fresh:
            self._flush()   # never replay a plan made for a world we no longer see
        elif self.instruction:
            if self._request_sent is not None and now - self._request_sent > self.config.request_timeout:
                self.scheduler.cancel()   # unanswered (policy busy, restarted, or its observations stale): ask again
                self._request_sent = None
            if self.scheduler.wants_chunk(tick):
                self._request(tick, now)
        action = self.scheduler.pop(tick) if fresh else None
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
        values = {"plan_depth": self.scheduler.depth(self.tick + 1), "holds": self.scheduler.holds,
                  "chunks": self.scheduler.chunks, "stale_actions_skipped": self.scheduler.stale_skipped,
                  "missed_ticks": self.missed_ticks, "refused_chunks": self.refused,
                  "inference_delay_ticks": max(self.delays) if self.delays else 0,
                  "tick_interval_p50_ms": float(np.percentile(intervals, 50)) if intervals.size else 0.0,
                  "tick_interval_p99_ms": float(np.percentile(intervals, 99)) if intervals.size else 0.0}
        fresh = self._state_time is not None and self._now() - self._state_time <= self.config.observation_timeout
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
