"""The one node runner as a real process: SIGINT (once or twice) and SIGTERM exit 0 without a traceback,
a bad parameter exits 2 with one line, ``close()`` runs on shutdown."""

import os
import signal
import subprocess
import sys
import time

import pytest
import rclpy  # noqa: F401 - required: a missing install fails, never skips

NODE = r"""
import sys
from rclpy.node import Node
from vla_core.params import ParameterError
from vla_ros.runner import run_node

class Ticker(Node):
    def __init__(self):
        super().__init__("ticker")
        if self.declare_parameter("fail", False).value:
            raise ParameterError("ticker: parameter 'fail' is true")
        self.ready = False
        self.create_timer(0.01, self.tick)

    def tick(self):  # spinning: construction is over, so a stop signal now means a clean shutdown
        if not self.ready:
            self.ready = True
            print("ready", flush=True)

    def close(self):
        print("closed", flush=True)

sys.exit(run_node(Ticker, sys.argv))
"""


def start(env, *ros_args):
    return subprocess.Popen([sys.executable, "-c", NODE, "--ros-args", *ros_args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_ready(proc):
    line = proc.stdout.readline()
    assert line.strip() == "ready", line + proc.stderr.read()


@pytest.fixture
def env():
    return dict(os.environ, ROS_DOMAIN_ID=str(180 + os.getpid() % 40), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM],
                                     [signal.SIGINT, signal.SIGTERM]])
def test_stop_signals_exit_cleanly(env, signals):
    proc = start(env)
    wait_ready(proc)
    for s in signals:
        proc.send_signal(s)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "closed" in out and "Traceback" not in err and "KeyboardInterrupt" not in err


def test_bad_parameter_exits_2_with_one_line(env):
    proc = start(env, "-p", "fail:=true")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip() == "ticker: parameter 'fail' is true"


def test_rclpy_parameter_type_error_exits_2(env):
    proc = start(env, "-p", "fail:=notabool")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "fail" in err and "Traceback" not in err


SLOW_START = r"""
import os, sys, time
from rclpy.node import Node
from vla_ros.runner import run_node

class Slow(Node):
    def __init__(self):
        super().__init__("slow")
        print("loading", flush=True)
        time.sleep(60)  # a model that takes a minute to load
        print("built", flush=True)

sys.exit(run_node(Slow, sys.argv))
"""


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGTERM, signal.SIGINT]])
def test_a_stop_signal_during_a_slow_start_up_exits_at_once(env, signals):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_START], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "loading"
    t0 = time.monotonic()
    for s in signals:
        proc.send_signal(s)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and time.monotonic() - t0 < 20, err
    assert "built" not in out and "Traceback" not in err


NICE = r"""
import os, sys
from rclpy.node import Node
from vla_ros.runner import run_node

class Yielding(Node):
    def __init__(self):
        super().__init__("yielding")
        os.nice(10)  # as vla_policy does once loaded
        self.ready = False
        self.create_timer(0.01, self.tick)

    def tick(self):
        if not self.ready:
            self.ready = True
            print("ready", flush=True)

    def close(self):
        print("nice", os.getpriority(os.PRIO_PROCESS, 0), flush=True)

sys.exit(run_node(Yielding, sys.argv))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority back needs CAP_SYS_NICE (root here in CI)")
def test_a_node_that_lowered_its_priority_shuts_down_at_the_start_up_priority(env):
    proc = subprocess.Popen([sys.executable, "-c", NICE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_ready(proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"nice {os.getpriority(os.PRIO_PROCESS, 0)}" in out
