"""Test node: publishes vla_msgs/ActionChunk at 20 Hz; optionally crashes with exit code 3 (a SystemExit out of
its timer callback, which the node runner lets through)."""

import sys

from builtin_interfaces.msg import Duration
from rclpy.node import Node

from vla_msgs.msg import ActionChunk
from vla_ros.runner import run_node


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

    def close(self):  # the runner calls this once the stop signal has ended the spin
        self.get_logger().info("stopped")


if __name__ == "__main__":
    sys.exit(run_node(ChunkTalker))
