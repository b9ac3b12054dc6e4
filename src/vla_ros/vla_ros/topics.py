"""Subscriptions that every node needs in the same form.

:func:`subscribe_latched_and_volatile`: a topic such as ``/instruction`` is latched by some
publishers (the simulator: transient local, so late joiners get the current value) and volatile for
others (a person's ``ros2 topic pub``). A transient-local subscription alone never hears the
volatile ones and a volatile one alone misses the latched value, so both are created; the expected
QoS mismatch of the pair is not reported as a warning.
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile


def subscribe_latched_and_volatile(node: Node, msg_type, topic: str, callback: Callable) -> None:
    """Receive ``topic`` from latched (transient-local) and volatile publishers alike."""
    quiet = SubscriptionEventCallbacks(incompatible_qos=lambda _info: None)
    node.create_subscription(msg_type, topic, callback, QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
                             event_callbacks=quiet)
    node.create_subscription(msg_type, topic, callback, 10, event_callbacks=quiet)
