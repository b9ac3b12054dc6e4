"""A small process supervisor: the stand-in for ``ros2 launch`` where it cannot be installed.

Starts every node of a :class:`~vla_core.launch.graph.Graph` with its ``--ros-args``, prefixes each
output line with the node's name, forwards SIGINT / SIGTERM to all nodes, stops everything when a
required node exits, and returns that node's exit code (0 after a clean shutdown).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from vla_core.launch.graph import Graph, NodeSpec

COLORS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m", "\033[31m"]
RESET = "\033[0m"


class Supervisor:
    """Runs a graph's nodes as child processes until a signal or a required node's exit."""

    def __init__(self, graph: Graph, grace_s: float = 5.0, out=None):
        self.graph = graph
        self.grace_s = grace_s
        self.out = out or sys.stdout
        self.procs: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._color = self.out.isatty() if hasattr(self.out, "isatty") else False

    def _log(self, name: str, line: str, index: int = 0) -> None:
        prefix = f"[{name}]"
        if self._color:
            prefix = f"{COLORS[index % len(COLORS)]}{prefix}{RESET}"
        with self._lock:
            self.out.write(f"{prefix} {line}\n")
            self.out.flush()

    def _pump(self, name: str, index: int, proc: subprocess.Popen) -> None:
        for raw in iter(proc.stdout.readline, b""):
            self._log(name, raw.decode(errors="replace").rstrip("\n"), index)

    def _start(self, index: int, node: NodeSpec) -> None:
        cmd = self.graph.command(node)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which forwards it once.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        self.procs[node.name] = proc
        threading.Thread(target=self._pump, args=(node.name, index, proc), daemon=True).start()
        self._log("launch", f"started {node.name} (pid {proc.pid})")

    def _signal_all(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def shutdown(self) -> None:
        """SIGINT every node, then SIGTERM, then SIGKILL after ``grace_s`` each."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            self._signal_all(sig)
            deadline = time.monotonic() + self.grace_s
            while time.monotonic() < deadline and any(p.poll() is None for p in self.procs.values()):
                time.sleep(0.05)
            if all(p.poll() is not None for p in self.procs.values()):
                return

    def run(self) -> int:
        """Start all nodes and supervise them; returns the launch's exit code."""
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def on_signal(signum, frame):
            self._log("launch", f"received {signal.Signals(signum).name}, shutting down")
            self._stop.set()

        for s in previous:
            signal.signal(s, on_signal)
        code = 0
        try:
            for i, node in enumerate(self.graph.active_nodes):
                self._start(i, node)
            while not self._stop.is_set():
                for node in self.graph.active_nodes:
                    rc = self.procs[node.name].poll()
                    if rc is None:
                        continue
                    if node.required:
                        self._log("launch", f"required node {node.name} exited with code {rc}; stopping all nodes")
                        code = rc if rc >= 0 else 128 - rc
                        self._stop.set()
                        break
                self._stop.wait(0.05)
        finally:
            self.shutdown()
            for s, h in previous.items():
                signal.signal(s, h)
        for name, proc in self.procs.items():
            rc = proc.returncode
            if rc not in (0, None) and code == 0 and rc not in (-signal.SIGINT, 130):
                self._log("launch", f"{name} exited with code {rc} during shutdown")
                code = rc if rc > 0 else 128 - rc
        self._log("launch", f"all nodes stopped (exit code {code})")
        return code
