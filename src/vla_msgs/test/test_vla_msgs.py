"""The generated vla_msgs interfaces import and survive a serialisation round trip."""

import pytest
import rclpy  # noqa: F401 - required: a missing install fails, never skips
from builtin_interfaces.msg import Duration  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from vla_msgs.msg import ActionChunk, ChunkRequest, SafetyStatus  # noqa: E402


def test_action_chunk_round_trip():
    msg = ActionChunk(action_names=["dx", "dy", "dz", "gripper"], horizon=2,
                      step_duration=Duration(sec=0, nanosec=12_500_000),
                      actions=[0.1, 0.2, 0.3, -1.0, 0.4, 0.5, 0.6, 1.0], instruction="open the drawer",
                      inference_latency=0.0042, request_id=7)
    back = deserialize_message(serialize_message(msg), ActionChunk)
    assert back.action_names == msg.action_names and back.horizon == 2 and back.request_id == 7
    assert back.step_duration.nanosec == 12_500_000 and back.instruction == "open the drawer"
    assert list(back.actions) == pytest.approx(list(msg.actions))
    assert back.inference_latency == pytest.approx(0.0042)


def test_safety_status_states_and_counters():
    assert (SafetyStatus.OK, SafetyStatus.LIMITED, SafetyStatus.ESTOP) == (0, 1, 2)
    msg = SafetyStatus(state=SafetyStatus.ESTOP, reasons=["joint limit exceeded: hand_z"], commands_received=10,
                       commands_forwarded=7, commands_clipped=2, commands_rejected=1, watchdog_holds=0, estop_count=1)
    back = deserialize_message(serialize_message(msg), SafetyStatus)
    assert back.state == SafetyStatus.ESTOP and back.reasons == ["joint limit exceeded: hand_z"]
    assert (back.commands_received, back.commands_rejected, back.estop_count) == (10, 1, 1)


def test_chunk_request_round_trip():
    msg = ChunkRequest(request_id=3, step_duration=Duration(sec=0, nanosec=12_500_000), frozen_steps=2,
                       action_names=["dx", "gripper"], prefix=[0.1, -1.0, 0.2, -1.0])
    back = deserialize_message(serialize_message(msg), ChunkRequest)
    assert (back.request_id, back.frozen_steps, back.action_names) == (3, 2, ["dx", "gripper"])
    assert list(back.prefix) == pytest.approx([0.1, -1.0, 0.2, -1.0])
