"""Test node: prints every vla_msgs/ActionChunk it receives on the remapped 'chunks' topic."""

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from vla_msgs.msg import ActionChunk


class ChunkListener(Node):
    def __init__(self):
        super().__init__("chunk_listener")
        self.create_subscription(ActionChunk, "chunks", self.on_chunk, 10)

    def on_chunk(self, msg):
        rows = [list(msg.actions[i * len(msg.action_names):(i + 1) * len(msg.action_names)]) for i in range(msg.horizon)]
        print(f"received chunk horizon={msg.horizon} names={list(msg.action_names)} first={rows[0]} "
              f"instruction='{msg.instruction}'", flush=True)


def main():
    rclpy.init()
    node = ChunkListener()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        print("listener shutting down cleanly", flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
