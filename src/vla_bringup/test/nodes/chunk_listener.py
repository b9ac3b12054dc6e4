"""Test node: prints every vla_msgs/ActionChunk it receives on the remapped 'chunks' topic.

Run by the one node runner, as every node of the workspace is: a stop signal can never land inside a
message take (an rclpy.spin of its own did, once in CI: the listener died with a RuntimeError on SIGINT).
"""

import sys

from rclpy.node import Node

from vla_msgs.msg import ActionChunk
from vla_ros.runner import run_node


class ChunkListener(Node):
    def __init__(self):
        super().__init__("chunk_listener")
        self.create_subscription(ActionChunk, "chunks", self.on_chunk, 10)

    def on_chunk(self, msg):
        rows = [list(msg.actions[i * len(msg.action_names):(i + 1) * len(msg.action_names)]) for i in range(msg.horizon)]
        print(f"received chunk horizon={msg.horizon} names={list(msg.action_names)} first={rows[0]} "
              f"instruction='{msg.instruction}'", flush=True)

    def close(self):  # the runner calls this once the stop signal has ended the spin
        print("listener shutting down cleanly", flush=True)


if __name__ == "__main__":
    sys.exit(run_node(ChunkListener))
