"""What the ROS benchmarks share: an isolated DDS domain, node processes with parameters, interval statistics.

Benchmarks (``bench_control``, ``bench_safety``, ``bench_record``) run real nodes in their own
processes over real DDS, on a domain of their own restricted to localhost so that a benchmark
never talks to a robot on the same network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np


def isolated_env(base_domain: int) -> dict:
    """Environment for a benchmark: a DDS domain derived from ``base_domain`` and the pid, localhost only.

    Also applied to this process (its own rclpy context joins the same domain).
    """
    env = dict(os.environ, ROS_DOMAIN_ID=str(base_domain + os.getpid() % 30), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    os.environ.update(ROS_DOMAIN_ID=env["ROS_DOMAIN_ID"], ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return env


def spawn_node(module: str, name: str, params: dict, env: dict, params_file: str = "", output=subprocess.DEVNULL) -> subprocess.Popen:
    """``python -m module`` as node ``name`` with ``params`` (lists as YAML flow sequences)."""
    args = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}"]
    if params_file:
        args += ["--params-file", params_file]
    for k, v in params.items():
        args += ["-p", f"{k}:={json.dumps(v) if isinstance(v, list) else v}"]
    return subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else output)


def interval_stats(values_ms) -> dict:
    """p50 / p99 / max / n of a list of milliseconds (None when empty)."""
    a = np.asarray(values_ms, dtype=float)
    if a.size == 0:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2), "n": int(a.size)}
