import itertools
import os
import subprocess
import sys
import threading
import time

import pytest

_ids = itertools.count(0)


@pytest.fixture
def ros_env():
    """Environment for a multi-process ROS test: its own domain id, localhost discovery only.

    A test's domain comes back only eight tests later: nodes of a test that are still shutting down must not
    meet the next test's graph (two robots on one /joint_states look like a jump to the safety monitor).
    """
    domain = 100 + ((os.getpid() % 16) * 8 + next(_ids) % 8) % 128
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    return env


def graph_with_overrides(name, tmp_path, overrides):
    """The installed graph ``name`` with test parameters appended to some nodes' parameter files.

    ``overrides``: node name -> {parameter: value}. Everything else (nodes, remappings, arguments) is the
    installed graph's, so a test runs the wiring users run.
    """
    import yaml

    from vla_core.launch.graph import find_share

    share = find_share("vla_bringup")
    graph = yaml.safe_load((share / "launch" / f"{name}.yaml").read_text())
    for node in graph["nodes"]:
        node["parameters"] = [str(share / p) for p in node.get("parameters", [])]
        if node["name"] in overrides:
            extra = tmp_path / f"{node['name']}.yaml"
            extra.write_text(yaml.safe_dump({node["name"]: {"ros__parameters": overrides[node["name"]]}}))
            node["parameters"].append(str(extra))
    path = tmp_path / f"{name}_test.yaml"
    path.write_text(yaml.safe_dump(graph))
    return path


class Launch:
    """`python -m vla_core.cli launch GRAPH` as a subprocess, with its output collected."""

    def __init__(self, graph, env, args=()):
        self.proc = subprocess.Popen([sys.executable, "-m", "vla_core.cli", "launch", str(graph), *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    def output(self):
        return "\n".join(self.lines)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode


class Probe:
    """An rclpy node in the test process, spun in a background thread, on the test's domain."""

    def __init__(self, domain_id):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.rclpy = rclpy
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - context shut down under us
                break

    def record(self, msg_type, topic, qos=10):
        self.received[topic] = []
        self.node.create_subscription(msg_type, topic, lambda m: self.received[topic].append((time.monotonic(), m)), qos)

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def call(self, srv_type, name, request, timeout=10.0):
        client = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available")
        future = client.call_async(request)
        self.wait_for(future.done, timeout)
        return future.result()

    def close(self):
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2)


@pytest.fixture
def probe(ros_env):
    p = Probe(int(ros_env["ROS_DOMAIN_ID"]))
    yield p
    p.close()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained policy with the Meta-World interface: enough to close the loop."""
    import numpy as np

    from vla_core.checkpoint import save_checkpoint
    from vla_core.config import ExperimentConfig
    from vla_core.policy import make_policy
    from vla_core.spec import PolicySpec

    spec = PolicySpec(cameras={"corner2": [64, 64, 3]}, proprio_names=["hand_x", "hand_y", "hand_z", "gripper_opening"],
                      action_names=["dx", "dy", "dz", "gripper"], fps=80.0, robot="sawyer")
    one, zero = np.ones(4, np.float32), np.zeros(4, np.float32)
    stats = {"action_min": -one, "action_max": one, "action_mean": zero, "action_std": one,
             "proprio_mean": zero, "proprio_std": one}
    cfg = ExperimentConfig.load(None, ["--policy.fusion.dim=64", "--policy.fusion.layers=1", "--policy.vision.channels=[16,32,32,32]"])
    policy = make_policy(cfg.policy, spec, stats).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", policy, cfg)


@pytest.fixture(scope="session")
def tiny_aloha_checkpoint(tmp_path_factory):
    """An untrained policy with the ALOHA interface (three 64 px cameras, 14 joint positions at 50 Hz).

    Its actions are normalised to the arms' start pose +- 0.3 rad, so that its untrained outputs move
    the arms a little around where they start.
    """
    import numpy as np

    from vla_core.checkpoint import save_checkpoint
    from vla_core.config import ExperimentConfig
    from vla_core.policy import make_policy
    from vla_core.spec import PolicySpec
    from vla_sim.aloha_suite import DEFAULT_CAMERAS, FPS, JOINT_NAMES, START_ARM

    spec = PolicySpec(cameras={cam: [64, 64, 3] for cam in DEFAULT_CAMERAS}, proprio_names=list(JOINT_NAMES),
                      action_names=list(JOINT_NAMES), fps=FPS, robot="aloha")
    start = np.array([*START_ARM, 0.1] * 2, np.float32)
    one = np.ones(14, np.float32)
    stats = {"action_min": start - 0.3, "action_max": start + 0.3, "action_mean": start, "action_std": 0.3 * one,
             "proprio_mean": start, "proprio_std": one}
    cfg = ExperimentConfig.load(None, ["--policy.fusion.dim=64", "--policy.fusion.layers=1", "--policy.vision.channels=[16,32,32,32]"])
    policy = make_policy(cfg.policy, spec, stats).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_aloha", policy, cfg)
