"""Fault injection: the safety_monitor as a real process, on simulation time, driven through every fault.

The test process plays the robot and the controller: it publishes /clock, /joint_states and stamped
commands, and records everything the monitor forwards. Each phase injects one fault and asserts
that no unsafe command reaches the robot topic; at the end every intervention must have been logged
exactly once per occurrence. Bounded to well under 60 s.
"""

import math
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import rclpy  # noqa: F401 - required: a missing install fails, never skips
import yaml
from builtin_interfaces.msg import Time  # noqa: E402
from conftest import Launch  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Empty, Float64, Header  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from vla_msgs.msg import SafetyStatus  # noqa: E402
from vla_ros import stamps  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "sawyer" / "safety_monitor.yaml"
HAND = ["hand_x", "hand_y", "hand_z"]
OUT = "/safety/out/cmd_twist"
RATE = 160.0  # max_rate of vx / vy / vz in safety_monitor.yaml (per second)


def graph(tmp_path, **params):
    path = tmp_path / "launch" / "safety.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    overrides = tmp_path / "config" / "overrides.yaml"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_text(yaml.safe_dump({"safety_monitor": {"ros__parameters": {"use_sim_time": True, **params}}}))
    path.write_text(yaml.safe_dump({"nodes": [{
        "name": "safety_monitor", "command": [sys.executable, "-m", "vla_safety.safety_monitor_node"],
        "parameters": [str(CONFIG), str(overrides)]}]}))
    return path


class Robot:
    """The simulated world seen by the monitor: a clock, the hand's state, and a controller."""

    def __init__(self, probe):
        self.node = probe.node
        self.sim = 100.0          # simulation time, advanced by the clock thread
        self.names, self.position, self.publishing = list(HAND), [0.0, 0.6, 0.2], True
        self.pub_clock = self.node.create_publisher(Clock, "/clock", 10)
        self.pub_state = self.node.create_publisher(JointState, "/joint_states", 10)
        self.pub_cmd = self.node.create_publisher(TwistStamped, "/safety/in/cmd_twist", 100)
        self.pub_grip = self.node.create_publisher(Float64, "/safety/in/gripper_cmd", 10)
        self.pub_estop = self.node.create_publisher(Empty, "/emergency_stop", 10)
        self.pub_start = self.node.create_publisher(Header, "/episode/start", 10)
        self.pub_heartbeat = self.node.create_publisher(Empty, "/safety/heartbeat", 10)
        self.heartbeat = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                self.sim += now - last
                sim, names, pos, publishing = self.sim, list(self.names), list(self.position), self.publishing
            last = now
            self.pub_clock.publish(Clock(clock=stamps.stamp(sim)))
            if publishing:
                js = JointState(name=names, position=pos)
                js.header.stamp = stamps.stamp(sim)
                self.pub_state.publish(js)
            if self.heartbeat:
                self.pub_heartbeat.publish(Empty())
            time.sleep(0.005)

    def set(self, **kw):
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, v)

    def jump_clock(self, seconds):
        with self._lock:
            self.sim += seconds

    def reposition(self, names, position, late=False):
        """Move the robot on purpose, as a simulator reset does: announce it, then publish the new pose.

        ``late``: the announcement, stamped with the time of the move, arrives 50 ms after the new pose
        (it travels on its own topic, so a loaded monitor may see the jump first).
        """
        self.set(publishing=False)
        time.sleep(0.02)  # the last old pose is out
        with self._lock:
            self.names, self.position = list(names), list(position)
            start = Header(frame_id="reposition", stamp=stamps.stamp(self.sim) if late else Time())
        if not late:
            self.pub_start.publish(start)
            time.sleep(0.02)
        self.set(publishing=True)
        if late:
            time.sleep(0.05)
            self.pub_start.publish(start)

    def command(self, x, y=0.0, z=0.0, age=0.0):
        msg = TwistStamped()
        with self._lock:
            msg.header.stamp = stamps.stamp(self.sim - age)
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = float(x), float(y), float(z)
        self.pub_cmd.publish(msg)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)


def outputs_since(probe, t0):
    return [(t, m.twist.linear) for t, m in list(probe.received[OUT]) if t >= t0]


def is_hold(lin):
    return lin.x == 0.0 and lin.y == 0.0 and lin.z == 0.0


def passes(outs, x):
    """Liveness: the command got through at least once (safety checks look at every output instead)."""
    return any(lin.x == pytest.approx(x) for _, lin in outs)


def stream(robot, probe, seconds, value, rate_hz=80, **kw):
    """Send ``value`` at ``rate_hz`` for ``seconds``; returns the outputs that arrived meanwhile."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        robot.command(value, **kw)
        time.sleep(1 / rate_hz)
    return outputs_since(probe, t0)


@pytest.fixture
def monitor(tmp_path, ros_env, probe):
    probe.record(TwistStamped, OUT)
    probe.record(SafetyStatus, "/safety/status")
    robot = Robot(probe)
    launch = Launch(graph(tmp_path, ramp_in_time=0.3, state_timeout=0.3, heartbeat_timeout=0.0), ros_env)
    assert probe.wait_for(lambda: probe.received["/safety/status"], 30), launch.output()
    assert probe.wait_for(lambda: robot.pub_cmd.get_subscription_count() > 0, 10)
    yield robot, launch
    robot.close()
    code = launch.stop()
    assert code == 0, launch.output()


def test_fault_injection_never_forwards_an_unsafe_command(monitor, probe):
    robot, launch = monitor
    interventions = Counter()
    robot.pub_grip.publish(Float64(data=0.5))
    # 1. Normal operation: in-bounds commands pass unchanged, nothing is reported.
    outs = stream(robot, probe, 0.6, 0.4)
    assert passes(outs, 0.4)
    assert probe.received["/safety/status"][-1][1].state == SafetyStatus.OK

    # 2. Non-finite and huge values: never forwarded outside the bounds; each is a rejection or a clip.
    for v in (math.nan, math.inf, -math.inf, 1e308, -1e39):
        robot.command(v)
        time.sleep(0.02)
    outs = stream(robot, probe, 0.2, 0.4)
    assert all(abs(m.twist.linear.x) <= 1.0 for _, m in list(probe.received[OUT]))
    interventions.update(["rejected: non-finite or wrongly sized command", "clipped to command bounds"])

    # 3. Stale, future and out-of-order stamps are rejected: the robot holds, never moves on them.
    t0 = time.monotonic()
    for _ in range(10):
        robot.command(0.9, age=0.5)      # 0.5 s old > max_command_age 0.2
        time.sleep(0.01)
    for _ in range(10):
        robot.command(0.9, age=-0.5)     # stamped 0.5 s ahead
        time.sleep(0.01)
    assert all(lin.x != 0.9 for _, lin in outputs_since(probe, t0))
    interventions.update(["rejected: command older than max_command_age 0.2 s",
                          "rejected: command stamped in the future (clocks disagree)"])
    stream(robot, probe, 0.2, 0.4)
    t0 = time.monotonic()
    robot.command(0.7)
    time.sleep(0.05)
    robot.command(0.9, age=0.1)          # stamped before the previous command
    time.sleep(0.1)
    assert all(lin.x != 0.9 for _, lin in outputs_since(probe, t0))
    interventions.update(["rejected: command out of order (stamped before the previous one)"])

    # 4. The robot's state under other names (a misconfigured driver): hold, never move.
    robot.set(names=["joint_a", "joint_b", "joint_c"])
    time.sleep(0.45)  # > state_timeout 0.3
    outs = stream(robot, probe, 0.3, 0.4)
    assert outs and all(is_hold(lin) for _, lin in outs)
    stale_state = "holding: joint_states older than 0.3 s for ['hand_x', 'hand_y', 'hand_z']"
    interventions.update([stale_state])
    # ... reordered names are fine; at the +x bound, motion further out is zeroed.
    robot.set(names=["hand_z", "hand_y", "hand_x"], position=[0.2, 0.6, 0.0])
    time.sleep(0.1)
    outs = stream(robot, probe, 0.3, 0.4)
    assert passes(outs, 0.4)
    robot.reposition(["hand_z", "hand_y", "hand_x"], [0.2, 0.6, 0.525])  # hand_x at the +x bound
    time.sleep(0.1)
    outs = stream(robot, probe, 0.3, 0.4, y=0.3)
    assert all(lin.x <= 0.0 for _, lin in outs)  # never further out, whatever else happens
    assert any(lin.x == 0.0 and lin.y == pytest.approx(0.3) for _, lin in outs)
    interventions.update(["workspace bound: hand_x"])
    robot.reposition(HAND, [0.0, 0.6, 0.2], late=True)  # 0.525 m in one state period, explained 50 ms later
    time.sleep(0.5)                                      # > episode_start_grace: it would have latched by now
    status = probe.received["/safety/status"][-1][1]
    assert status.estop_count == 0 and status.state != SafetyStatus.ESTOP, status

    # 5. Duplicated names and the state freezing: hold within the state timeout.
    robot.set(names=["hand_x", "hand_x", "hand_z"])
    time.sleep(0.45)
    outs = stream(robot, probe, 0.3, 0.4)
    assert outs and all(is_hold(lin) for _, lin in outs)
    interventions.update(["rejected: malformed joint_states (names, positions and velocities differ in number, or a name repeats)",
                          stale_state])
    robot.set(names=list(HAND))
    stream(robot, probe, 1.2, 0.4)  # normal operation for longer than the report quiet period (1 s)
    robot.set(publishing=False)  # the state freezes while commands keep coming
    time.sleep(0.45)
    outs = stream(robot, probe, 0.3, 0.4)
    assert outs and all(is_hold(lin) for _, lin in outs)
    interventions.update([stale_state])
    robot.set(publishing=True)
    time.sleep(0.1)
    assert passes(stream(robot, probe, 0.3, 0.4), 0.4)

    # 6. The simulation clock jumps backwards (a simulator reset): hold until state and commands are fresh again.
    time.sleep(0.1)
    robot.jump_clock(-50.0)
    time.sleep(0.1)
    assert passes(stream(robot, probe, 0.5, 0.4), 0.4)   # recovered on fresh state and commands
    interventions.update(["clock jumped backwards: holding until fresh state and commands"])

    # 7. A 1 kHz flood with an e-stop in the middle: nothing but hold after the latch, until ~/reset. First normal
    # operation for longer than the report quiet period: the ramp from hold after the clock jump may have been rate
    # limited (when the jumped clock first arrived with a command), and the flood's limiting, within 1 s of it, would
    # then be the same occurrence, never reported (failed once in a fresh-clone CI run).
    assert passes(stream(robot, probe, 1.2, 0.4), 0.4)
    reports_before = sum("intervention: rate limited" in line for line in list(launch.lines))
    flood_end = time.monotonic() + 1.0
    estop_at = None
    i = 0
    while time.monotonic() < flood_end:
        robot.command((-1) ** i * 0.8)
        if estop_at is None and time.monotonic() > flood_end - 0.6:
            robot.pub_estop.publish(Empty())
            estop_at = time.monotonic()
        i += 1
        time.sleep(0.001)
    assert probe.wait_for(lambda: probe.received["/safety/status"][-1][1].state == SafetyStatus.ESTOP, 5)
    # The monitor sends its hold and then the ESTOP status; a command it forwarded before reading the e-stop
    # can reach the probe later than estop_at on a loaded machine, so count from the status's arrival (plus
    # a margin for the two topics' delivery order). The flood and the watchdog keep outputs coming.
    latched_at = next(t for t, m in list(probe.received["/safety/status"]) if t >= estop_at and m.state == SafetyStatus.ESTOP)
    time.sleep(0.5)
    after = outputs_since(probe, latched_at + 0.25)
    assert after and all(is_hold(lin) for _, lin in after)
    interventions.update(["e-stop: /emergency_stop"])
    # A full reversal was asked every millisecond: granted at most at max_rate, by the monitor's own clock.
    flood = [m for t, m in list(probe.received[OUT]) if flood_end - 1.0 <= t < estop_at]
    sent_at = [stamps.seconds(m.header.stamp) for m in flood]
    steps = [(abs(a.twist.linear.x - b.twist.linear.x), tb - ta) for a, b, ta, tb in zip(flood, flood[1:], sent_at, sent_at[1:])
             if not is_hold(b.twist.linear)]
    assert len(steps) > 20 and all(dx <= RATE * dt + 1e-6 for dx, dt in steps)
    assert max(dx for dx, _ in steps) > 0  # it did move
    # ... a reset during a flood: commands ramp in from hold, never jump to full value.
    def flood_reports_now():
        return sum("intervention: rate limited" in line for line in list(launch.lines)) - reports_before

    assert probe.wait_for(lambda: flood_reports_now() >= 1, 5)  # the log line may lag on a loaded machine
    time.sleep(0.2)
    flood_reports = flood_reports_now()
    res = probe.call(Trigger, "/safety_monitor/reset", Trigger.Request())
    assert res.success
    t_reset = time.monotonic()
    outs = stream(robot, probe, 0.5, 0.8, rate_hz=1000)
    moving = [lin.x for t, lin in outs if t > t_reset and not is_hold(lin)]
    assert moving and moving[0] < 0.5 and max(moving) == pytest.approx(0.8)

    # 8. A state jump that nobody announced: the e-stop latches, and stays latched.
    robot.set(position=[0.3, 0.6, 0.2])  # 0.3 m in one 5 ms state period
    assert probe.wait_for(lambda: probe.received["/safety/status"][-1][1].state == SafetyStatus.ESTOP, 5)
    time.sleep(0.1)
    outs = stream(robot, probe, 0.3, 0.4)
    assert outs and all(is_hold(lin) for _, lin in outs)
    assert any(r.startswith("e-stop: velocity limit exceeded") for r in probe.received["/safety/status"][-1][1].reasons)

    time.sleep(0.3)
    status = probe.received["/safety/status"][-1][1]
    assert status.estop_count == 2 and status.commands_rejected > 0 and status.commands_clipped > 0
    assert launch.proc.poll() is None
    # Every intervention was reported once per occurrence.
    logged = Counter(re.sub(r"^.*intervention: ", "", line) for line in launch.lines if "intervention: " in line)
    for reason, n in interventions.items():
        assert logged[reason] == n, (reason, logged)
    # The 1 kHz flood: one report, however many hundred commands were limited (a stall of the publisher
    # on a loaded machine can let one command through unlimited, which ends the occurrence: at most 3).
    assert 1 <= flood_reports <= 3, flood_reports
    velocity = [r for r in logged if r.startswith("e-stop: velocity limit exceeded")]
    assert len(velocity) == 1 and logged[velocity[0]] == 1, logged


def test_heartbeat_loss_latches_the_estop(tmp_path, ros_env, probe):
    probe.record(TwistStamped, OUT)
    probe.record(SafetyStatus, "/safety/status")
    robot = Robot(probe)
    launch = Launch(graph(tmp_path, heartbeat_timeout=0.3), ros_env)
    try:
        assert probe.wait_for(lambda: probe.received["/safety/status"], 30), launch.output()
        outs = stream(robot, probe, 0.5, 0.4)
        assert outs and all(is_hold(lin) for _, lin in outs)  # no heartbeat yet: the robot holds
        robot.heartbeat = True
        # Liveness once the heartbeat beats: within 5 s (a loaded machine can starve the nodes for a while).
        assert any(passes(stream(robot, probe, 0.5, 0.4), 0.4) for _ in range(10))
        robot.heartbeat = False
        t_loss = time.monotonic()
        assert probe.wait_for(lambda: probe.received["/safety/status"][-1][1].state == SafetyStatus.ESTOP, 5)
        outs = stream(robot, probe, 0.3, 0.4)
        assert all(is_hold(lin) for _, lin in outs)
        assert time.monotonic() - t_loss < 2.0
        assert probe.received["/safety/status"][-1][1].reasons[0] == "e-stop: heartbeat missing"
    finally:
        robot.close()
        code = launch.stop()
    assert code == 0, launch.output()


def test_bad_parameter_stops_the_node_with_its_name(tmp_path, ros_env):
    bad = tmp_path / "config" / "bad.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(yaml.safe_dump({"safety_monitor": {"ros__parameters": {
        "command_names": ["vx", "vy"], "command_lower": [-1.0], "command_upper": [1.0, 1.0],
        "max_rate": [0.0, 0.0], "hold_command": [0.0, 0.0]}}}))
    import subprocess

    r = subprocess.run([sys.executable, "-m", "vla_safety.safety_monitor_node", "--ros-args", "--params-file", str(bad)],
                       env=ros_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "command_lower has 1 values for 2 command dimensions" in r.stderr and "Traceback" not in r.stderr
