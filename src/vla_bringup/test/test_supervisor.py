"""`vla launch` brings up real rclpy nodes over DDS, shuts them down on SIGINT, and stops on a crash."""

import signal
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import Launch

NODES = Path(__file__).parent / "nodes"

import rclpy  # noqa: E402,F401 - required: a missing install fails, never skips


def write_graph(tmp_path, crash_after=0.0, listener_required=True):
    params = tmp_path / "config" / "talker.yaml"
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(yaml.safe_dump({"talker": {"ros__parameters": {"crash_after": crash_after}}}))
    graph = {
        "description": "two test nodes exchanging vla_msgs/ActionChunk",
        "nodes": [
            {"name": "talker", "command": [sys.executable, str(NODES / "chunk_talker.py")],
             "parameters": ["config/talker.yaml"], "remappings": {"chunks": "/test/chunks"}},
            {"name": "listener", "command": [sys.executable, str(NODES / "chunk_listener.py")],
             "remappings": {"chunks": "/test/chunks"}, "required": listener_required},
        ],
    }
    path = tmp_path / "launch" / "pair.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(graph))
    return path


def test_two_nodes_exchange_chunks_and_stop_cleanly_on_sigint(tmp_path, ros_env):
    launch = Launch(write_graph(tmp_path), ros_env)
    try:
        assert launch.wait_for("[listener] received chunk horizon=3 names=['dx', 'dy']", 20), launch.output()
        launch.proc.send_signal(signal.SIGINT)
        code = launch.proc.wait(timeout=20)
    finally:
        if launch.proc.poll() is None:
            launch.proc.kill()
    out = launch.output()
    assert code == 0, out
    assert "received SIGINT, shutting down" in out
    assert "listener shutting down cleanly" in out
    assert "all nodes stopped (exit code 0)" in out


def test_required_node_crash_stops_everything_with_its_code(tmp_path, ros_env):
    launch = Launch(write_graph(tmp_path, crash_after=1.0), ros_env)
    try:
        code = launch.proc.wait(timeout=30)
    finally:
        if launch.proc.poll() is None:
            launch.proc.kill()
    out = launch.output()
    assert code == 3, out
    assert "required node talker exited with code 3; stopping all nodes" in out
    assert "[talker]" in out and "simulated crash" in out


def test_dry_run_prints_resolved_graph(tmp_path):
    graph = write_graph(tmp_path)
    r = subprocess.run([sys.executable, "-m", "vla_core.cli", "launch", str(graph), "--dry-run"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--ros-args -r __node:=talker --params-file" in r.stdout
    assert f"parameters file: {tmp_path / 'config' / 'talker.yaml'}" in r.stdout
    assert "remap: chunks -> /test/chunks" in r.stdout
