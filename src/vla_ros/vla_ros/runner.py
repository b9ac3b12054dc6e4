"""The one node runner: every executable of the workspace is ``main = lambda: run_node(SomeNode)``.

1. ``rclpy.init`` without rclpy's own signal handlers; SIGINT and SIGTERM only set a stop flag, so
   no ``KeyboardInterrupt`` can land inside a callback or inside ``destroy_node()``, and a signal
   delivered twice (as ``ros2 launch`` may) changes nothing. Once stopping, both are ignored: the
   interpreter's own finalisation would otherwise restore their default action (die by signal).
2. A node whose construction fails on a bad parameter (``ParameterError``, rclpy's
   ``ParameterException``, or any :class:`~vla_core.errors.VLAError`) prints one line to stderr and
   the process exits 2, without a traceback.
3. The executor spins in slices of ``poll_s`` until a stop signal, an external shutdown, or the node
   setting its attribute ``finished`` to True (a node that ends by itself, e.g. on a 'quit' key).
4. Shutdown: the node's ``close()`` (if it has one: flush files, release renderers), then
   ``destroy_node()``, executor and context shutdown; exit code 0.
5. A stop signal while the node is still being built (a model loading) ends the process at once
   with exit 0. A process that lowered its own priority (``vla_policy``'s ``nice``) gets its
   start-up priority back on a stop signal where that is permitted, so a loaded machine cannot
   starve its shutdown past launch's SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from vla_core.errors import VLAError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopDuringStart(BaseException):
    """A stop signal that arrived while the node was still being built."""


def run_node(make_node: Callable[[], rclpy.node.Node], args: list[str] | None = None, threads: int = 1,
             poll_s: float = 0.1) -> int:
    """Run the node built by ``make_node`` until SIGINT / SIGTERM; returns the process exit code.

    ``threads > 1`` spins a MultiThreadedExecutor (for nodes with reentrant or separate callback groups).
    """
    stop = threading.Event()
    starting = [True]
    base_priority = os.getpriority(os.PRIO_PROCESS, 0)

    def on_signal(_signum, _frame):
        stop.set()
        try:  # a node that lowered its own priority (vla_policy) gets it back to shut down promptly under load
            os.setpriority(os.PRIO_PROCESS, 0, base_priority)
        except OSError:
            pass  # raising priority needs CAP_SYS_NICE
        if starting[0]:
            starting[0] = False  # a second signal only sets the flag
            raise _StopDuringStart  # e.g. Ctrl-C while a model loads: nothing to clean up yet

    for s in STOP_SIGNALS:
        signal.signal(s, on_signal)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = executor = None
    try:
        try:
            node = make_node()
            starting[0] = False
        except _StopDuringStart:
            return 0
        except (ParameterException, VLAError) as exc:  # ParameterError is a VLAError
            print(str(exc), file=sys.stderr)
            return 2
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok() and not getattr(node, "finished", False):
            try:
                executor.spin_once(timeout_sec=poll_s)
            except ExternalShutdownException:
                break
        return 0
    finally:
        starting[0] = False
        for s in STOP_SIGNALS:  # shutting down: a second signal must not kill the process half-way
            signal.signal(s, signal.SIG_IGN)
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
