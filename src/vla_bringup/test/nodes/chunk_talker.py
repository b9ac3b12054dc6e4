"""Test node: publishes vla_msgs/ActionChunk at 20 Hz; optionally crashes with exit code 3."""

import sys

import rclpy
from builtin_interfaces.msg import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from vla_msgs.msg import ActionChunk


class ChunkTalker(Node):
    def __init__(self):
        super().__init__("chunk_talker")
        self.declare_parameter("crash_after", 0.0)
        self.crash_after = self.get_parameter("crash_after").value
        self.pub = self.create_publisher(ActionChunk, "chunks", 10)
        self.count = 0
        self.start = self.get_clock().now()
        self.create_timer(0.05, self.tick)

    def tick(self):
        msg = ActionChunk()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.action_names = ["dx", "dy"]
        msg.horizon = 3
        msg.step_duration = Duration(sec=0, nanosec=33_333_333)
        msg.actions = [float(self.count + i) for i in range(6)]
        msg.instruction = "open the drawer"
        msg.inference_latency = 0.004
        self.pub.publish(msg)
        self.count += 1
        elapsed = (self.get_clock().now() - self.start).nanoseconds * 1e-9
        if self.crash_after > 0 and elapsed > self.crash_after:
            self.get_logger().error("simulated crash")
            sys.exit(3)


def main():
    rclpy.init()
    node = ChunkTalker()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        node.get_logger().info("shutting down cleanly")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
