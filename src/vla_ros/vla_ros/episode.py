"""The end of the current episode, heard from the simulator's /episode/done and /episode/success.

The simulator publishes both flags every control step, and keeps publishing ``done = True`` after an
episode ends until it is reset. After a reset, messages of the last episode can still wait in a
subscription's queue: one topic keeps its order, two topics (the reset's reply and the flags) do not.
A listener that clears its flags at the reset can then hear a stale ``True`` and end the new episode
at once (a 28-frame demonstration recorded by the scripted teleop on a loaded machine fits this).

:class:`EpisodeFlags` counts a topic's value only once that topic has said ``False`` since
:meth:`EpisodeFlags.restart`: the simulator's first message of the new episode, which follows every
stale one on the same topic. :func:`listen` subscribes a node to both topics.
"""

from __future__ import annotations


class EpisodeFlags:
    """``done`` and ``success`` of the episode started at the last :meth:`restart` (ROS-free)."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """A new episode begins (call once the reset is answered): both flags False until heard anew."""
        self.done = self.success = False
        self._fresh = {"done": False, "success": False}

    def on_done(self, value: bool) -> None:
        """One /episode/done message."""
        self._hear("done", bool(value))

    def on_success(self, value: bool) -> None:
        """One /episode/success message."""
        self._hear("success", bool(value))

    def _hear(self, name: str, value: bool) -> None:
        if not value:
            self._fresh[name] = True
        if self._fresh[name]:
            setattr(self, name, value)


def listen(node) -> EpisodeFlags:
    """Subscribe ``node`` to /episode/done and /episode/success; returns the flags they update."""
    from std_msgs.msg import Bool

    flags = EpisodeFlags()
    node.create_subscription(Bool, "/episode/done", lambda m: flags.on_done(m.data), 10)
    node.create_subscription(Bool, "/episode/success", lambda m: flags.on_success(m.data), 10)
    return flags
