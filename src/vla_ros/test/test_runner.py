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
        self.create_timer(0.01, lambda: None)
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
