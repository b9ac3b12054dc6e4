"""safety_monitor: the only path from the controller to the robot.

Subscribes  /safety/in/cmd_twist (geometry_msgs/TwistStamped), /safety/in/gripper_cmd (std_msgs/Float64),
            /joint_states, /emergency_stop (std_msgs/Empty), /safety/heartbeat (std_msgs/Empty),
            /episode/start (std_msgs/Header: the simulator moved the robot on purpose at header.stamp;
            the first state measured after it is a new baseline for the speed check - never a release
            of the e-stop; it may arrive after that state, see episode_start_grace)
Publishes   /safety/out/cmd_twist, /safety/out/gripper_cmd (remapped to the robot's command topics),
            /safety/status (vla_msgs/SafetyStatus)
Services    ~/reset (std_srvs/Trigger): releases the e-stop latch

Joint-position robots (command_interface: joint_position) instead
Subscribe   /safety/in/joint_trajectory (trajectory_msgs/JointTrajectory)
Publish     /safety/out/joint_trajectory (remapped to /joint_trajectory_controller/joint_trajectory)
and read their limits from the parameters joint_limits.<joint>.{has_position_limits, min_position,
max_position, has_velocity_limits, max_velocity, has_acceleration_limits, max_acceleration}: a
ros2_control joint_limits file nested under this node's ros__parameters (see
vla_bringup/config/aloha/safety_monitor.yaml); estop_margins.<joint> gives a joint its own
estop_margin (a gripper that contact pushes past its range). Trajectories leave stamped zero (start on arrival,
as a JointTrajectoryController reads it); a hold is one point at the held measured position due at
once, or a trajectory with no points (hold where you are) while no position has been measured.

For end-effector robots the command vector is [twist.linear.x, .y, .z, gripper]; the gripper value is cached and forwarded
with each twist, so one filtered command leaves per controller tick; the twist's header stamp is
checked against max_command_age. Until the first command, and whenever the monitor holds, the
watchdog timer sends the hold command at 50 Hz. All logic is in SafetyMonitor.
"""

from __future__ import annotations

from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty, Float64, Header
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_core.errors import VLAError
from vla_core.params import ParameterError, declare_parameters, from_parameters, parameter_specs
from vla_msgs.msg import SafetyStatus
from vla_ros.runner import run_node
from vla_ros.stamps import duration, seconds
from vla_safety.joint_limits import JointLimit, parse_joint_limits
from vla_safety.monitor import JointCommand, SafetyLimits, SafetyMonitor, check_estop_margins

# ros2_control's per-joint limit parameters (joint_limits.<joint>.<key>) that the monitor reads.
LIMIT_KEYS = {"has_position_limits": False, "min_position": float("nan"), "max_position": float("nan"),
              "has_velocity_limits": False, "max_velocity": float("nan"),
              "has_acceleration_limits": False, "max_acceleration": float("nan")}


class SafetyMonitorNode(Node):
    """Thin ROS wrapper around :class:`SafetyMonitor`."""

    def __init__(self):
        super().__init__("safety_monitor")
        self._specs = parameter_specs(SafetyLimits)
        declare_parameters(self, self._specs, ParameterDescriptor)
        limits = from_parameters(SafetyLimits, self._values(), self.get_name())
        joint_limits = margins = None
        if limits.joint_robot:
            for joint in limits.command_names:
                for key, default in LIMIT_KEYS.items():
                    self.declare_parameter(f"joint_limits.{joint}.{key}", default)
                self.declare_parameter(f"estop_margins.{joint}", float("nan"))
            joint_limits = self._joint_limits(limits.command_names)
            margins = self._estop_margins(limits.command_names)
        try:
            self.monitor = SafetyMonitor(limits, on_event=lambda reason: self.get_logger().warning(f"intervention: {reason}"),
                                         joint_limits=joint_limits, estop_margins=margins)
        except VLAError as exc:
            raise ParameterError(f"{self.get_name()}: {exc}") from None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._gripper = float(limits.hold_command[-1]) if len(limits.hold_command) == 4 else 0.0
        self.pub_status = self.create_publisher(SafetyStatus, "/safety/status", 10)
        if limits.joint_robot:
            self.pub_trajectory = self.create_publisher(JointTrajectory, "/safety/out/joint_trajectory", 10)
            self.create_subscription(JointTrajectory, "/safety/in/joint_trajectory", self._on_trajectory, 10)
        else:
            self.pub_twist = self.create_publisher(TwistStamped, "/safety/out/cmd_twist", 10)
            self.pub_gripper = self.create_publisher(Float64, "/safety/out/gripper_cmd", 10)
            self.create_subscription(TwistStamped, "/safety/in/cmd_twist", self._on_twist, 10)
            self.create_subscription(Float64, "/safety/in/gripper_cmd", self._on_gripper, 10)
        # Before /joint_states: when an announcement and the state after the move wait together, the executor
        # takes them in creation order, and the announcement first is a quiet re-baseline, not a held jump.
        self.create_subscription(Header, "/episode/start", self._on_episode_start, 10)
        self.create_subscription(JointState, "/joint_states", self._on_joint_state, 10)
        self.create_subscription(Empty, "/emergency_stop", self._on_estop, 10)
        self.create_subscription(Empty, "/safety/heartbeat", lambda _: self.monitor.heartbeat(self._now()), 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(0.02, self._on_watchdog)
        self.create_timer(1.0 / limits.status_rate, self._publish_status)
        self._last_state = self.monitor.state
        self.get_logger().info(f"guarding {limits.command_names}; watchdog {limits.watchdog_timeout}s")

    def _values(self, overrides: dict | None = None) -> dict:
        values = {s.name: self.get_parameter(s.name).value for s in self._specs}
        return values | (overrides or {})

    def _value(self, name: str, overrides: dict | None):
        """Parameter ``name``: its value in ``overrides`` (a parameter update under way), else the current one."""
        return overrides[name] if overrides and name in overrides else self.get_parameter(name).value

    def _joint_limits(self, joints: list[str], overrides: dict | None = None) -> dict[str, JointLimit]:
        """The joint_limits.* parameters (with ``overrides``) as limits per joint; a bad entry names the joint."""
        table = {}
        for joint in joints:
            entry = {}
            for key in LIMIT_KEYS:
                value = self._value(f"joint_limits.{joint}.{key}", overrides)
                if key.startswith("has_") or value == value:   # leave out values never set (nan)
                    entry[key] = value
            table[joint] = entry
        try:
            return parse_joint_limits({"joint_limits": table}, f"{self.get_name()} parameters")
        except VLAError as exc:
            raise ParameterError(str(exc)) from None

    def _estop_margins(self, joints: list[str], overrides: dict | None = None) -> dict[str, float]:
        """The estop_margins.<joint> parameters that are set (with ``overrides``): joint -> margin."""
        margins = {}
        for joint in joints:
            value = self._value(f"estop_margins.{joint}", overrides)
            if value == value:   # nan: not set, the common estop_margin applies
                margins[joint] = float(value)
        try:
            return check_estop_margins(margins, joints)
        except VLAError as exc:
            raise ParameterError(f"{self.get_name()}: {exc}") from None

    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        try:
            limits = from_parameters(SafetyLimits, self._values(changes), self.get_name())
            if (limits.command_interface, limits.command_names) != (self.monitor.limits.command_interface,
                                                                    self.monitor.limits.command_names):
                raise ParameterError("command_interface and command_names are fixed at start-up (they choose the topics)")
            if limits.joint_robot:
                margins = self._estop_margins(limits.command_names, changes)
                self.monitor.joint_limits = self._joint_limits(limits.command_names, changes)
                self.monitor.estop_margins = margins
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.monitor.limits = limits
        return SetParametersResult(successful=True)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _publish(self, command, now: float) -> None:
        """Send ``command`` stamped ``now``: the time it is for (a forwarded command keeps its controller's stamp)."""
        if isinstance(command, JointCommand):
            self._publish_trajectory(command)
            return
        msg = TwistStamped()
        msg.header.stamp = Time(seconds=now, clock_type=self.get_clock().clock_type).to_msg()
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in command[:3])
        self.pub_twist.publish(msg)
        if len(command) > 3:
            self.pub_gripper.publish(Float64(data=float(command[3])))
        if self.monitor.state != self._last_state:
            self._publish_status()

    def _publish_trajectory(self, command: JointCommand) -> None:
        """Send a joint trajectory stamped zero: the robot's controller starts it when it arrives."""
        msg = JointTrajectory(joint_names=list(self.monitor.limits.command_names))
        for t, point in zip(command.times, command.positions):
            msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in point],
                                                   time_from_start=duration(float(t))))
        self.pub_trajectory.publish(msg)
        if self.monitor.state != self._last_state:
            self._publish_status()

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        stamp = seconds(msg.header.stamp)
        times = [seconds(p.time_from_start) for p in msg.points]
        out = self.monitor.filter_trajectory(list(msg.joint_names), times, [list(p.positions) for p in msg.points],
                                             self._now(), stamp if stamp > 0 else None)
        self._publish_trajectory(out)

    def _on_twist(self, msg: TwistStamped) -> None:
        lin = msg.twist.linear
        stamp = seconds(msg.header.stamp)
        out = self.monitor.filter([lin.x, lin.y, lin.z, self._gripper], self._now(), stamp)
        self._publish(out, self.monitor.output_time)

    def _on_episode_start(self, msg: Header) -> None:
        stamp = seconds(msg.stamp)
        self.monitor.rebaseline(stamp if stamp > 0 else None)
        self.get_logger().info(f"episode start ({msg.frame_id or 'robot repositioned'}): state re-baselined")

    def _on_gripper(self, msg: Float64) -> None:
        self._gripper = msg.data

    def _on_joint_state(self, msg: JointState) -> None:
        stamp = seconds(msg.header.stamp)
        self.monitor.observe_state(list(msg.name), list(msg.position), self._now(), stamp, list(msg.velocity))

    def _on_estop(self, _msg) -> None:
        self.monitor.trigger_estop("/emergency_stop")
        now = self._now()
        self._publish(self.monitor.tick(now), now)   # the hold, at once

    def _on_reset(self, _request, response):
        response.success = self.monitor.reset(self._now())
        response.message = "e-stop released"
        self.get_logger().info("reset: e-stop released")
        self._publish_status()
        return response

    def _on_watchdog(self) -> None:
        now = self._now()
        hold = self.monitor.tick(now)
        if hold is not None:
            self._publish(hold, now)

    def _publish_status(self) -> None:
        s = self.monitor.status()
        msg = SafetyStatus(state=s["state"], reasons=s["reasons"], commands_received=s["received"],
                           commands_forwarded=s["forwarded"], commands_clipped=s["clipped"],
                           commands_rejected=s["rejected"], watchdog_holds=s["watchdog_holds"], estop_count=s["estops"])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_status.publish(msg)
        self._last_state = s["state"]


def main(args=None) -> int:
    """Entry point of the safety_monitor executable."""
    return run_node(SafetyMonitorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
