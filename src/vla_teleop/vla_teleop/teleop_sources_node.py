"""Human teleop sources: a gamepad (sensor_msgs/Joy, mapping in YAML) and the keyboard in a terminal.

Both publish on the robot's command topics (/robot/cmd_twist, /robot/gripper_cmd) at ``rate`` Hz,
like the scripted expert, and drive the collector through its services. The keyboard source also
asks for the instruction at the terminal and publishes it on /instruction.

    ros2 run vla_teleop joy_teleop --ros-args --params-file vla_bringup/config/joy_mapping.yaml
    ros2 run vla_teleop keyboard_teleop          (needs a terminal)
"""

from __future__ import annotations

import select
import sys
import termios
import threading
import tty
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import Float64, String
from std_srvs.srv import SetBool, Trigger

from vla_core.params import ParameterError, declare_parameters, doc, from_parameters, parameter_specs
from vla_ros.runner import run_node
from vla_teleop.recorder import KEY_HELP, JoyMapping, KeyboardTeleop


@dataclass
class TeleopSourceConfig:
    """Parameters shared by the human teleop sources (the joy mapping fields apply to joy_teleop)."""

    rate: float = doc("command publication rate in Hz", default=30.0)
    collector_node: str = doc("name of the collector node (for ~/start, ~/stop, ~/discard)", default="teleop_collector")
    axes: list[int] = doc("Joy axis index per velocity dimension (x, y, z); -1 = none", default_factory=lambda: [1, 0, 4])
    scale: list[float] = doc("multiplier per axis (command units at full deflection)", default_factory=lambda: [1.0, 1.0, 1.0])
    gripper_close_button: int = doc("Joy button that closes the gripper while held", default=5)
    start_button: int = doc("Joy button: start recording", default=0)
    stop_success_button: int = doc("Joy button: stop and mark success", default=1)
    stop_failure_button: int = doc("Joy button: stop and mark failure", default=2)
    discard_button: int = doc("Joy button: discard the episode", default=3)
    speed: float = doc("keyboard: command magnitude of a key press", default=0.5)

    def __post_init__(self):
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if len(self.axes) != 3 or len(self.scale) != 3:
            raise ValueError("axes and scale need one entry per velocity dimension (3)")


class _TeleopSource(Node):
    def __init__(self, name: str):
        super().__init__(name)
        specs = parameter_specs(TeleopSourceConfig)
        values = declare_parameters(self, specs, ParameterDescriptor)
        self.cfg = from_parameters(TeleopSourceConfig, values, self.get_name())
        self.pub_twist = self.create_publisher(TwistStamped, "/robot/cmd_twist", 10)
        self.pub_gripper = self.create_publisher(Float64, "/robot/gripper_cmd", 10)
        self.pub_instruction = self.create_publisher(String, "/instruction", 10)
        c = self.cfg.collector_node
        self._collector = {"start": self.create_client(Trigger, f"/{c}/start"), "discard": self.create_client(Trigger, f"/{c}/discard"),
                        "stop": self.create_client(SetBool, f"/{c}/stop")}
        self.command = np.array([0.0, 0.0, 0.0, -1.0])
        self.create_timer(1.0 / self.cfg.rate, self._publish)

    def _publish(self):
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in self.command[:3])
        self.pub_twist.publish(msg)
        self.pub_gripper.publish(Float64(data=float(self.command[3])))

    def event(self, name: str) -> None:
        """Forward a recorder event to the collector's services."""
        if name == "start":
            self._collector["start"].call_async(Trigger.Request())
        elif name in ("stop_success", "stop_failure"):
            self._collector["stop"].call_async(SetBool.Request(data=name == "stop_success"))
        elif name == "discard":
            self._collector["discard"].call_async(Trigger.Request())
        self.get_logger().info(f"event: {name}")


class JoyTeleopNode(_TeleopSource):
    """sensor_msgs/Joy -> commands and recorder events."""

    def __init__(self):
        super().__init__("joy_teleop")
        c = self.cfg
        self.mapping = JoyMapping(axes=list(c.axes), scale=list(c.scale), gripper_close_button=c.gripper_close_button,
                                  start_button=c.start_button, stop_success_button=c.stop_success_button,
                                  stop_failure_button=c.stop_failure_button, discard_button=c.discard_button)
        self._buttons: list[int] = []
        self.create_subscription(Joy, "/joy", self._on_joy, 10)

    def _on_joy(self, msg: Joy) -> None:
        self.command = self.mapping.command(list(msg.axes), list(msg.buttons))
        for name in self.mapping.events(list(msg.buttons), self._buttons):
            self.event(name)
        self._buttons = list(msg.buttons)


class KeyboardTeleopNode(_TeleopSource):
    """Keys in a raw terminal -> commands, recorder events and instructions (keys are read in a thread)."""

    def __init__(self):
        super().__init__("keyboard_teleop")
        if not sys.stdin.isatty():
            raise ParameterError("keyboard_teleop needs a terminal (stdin is not a TTY)")
        self.keys = KeyboardTeleop(self.cfg.speed)
        self.finished = False  # the node runner stops when this turns true ('q')
        self._terminal = termios.tcgetattr(sys.stdin)
        self._reader = threading.Thread(target=self._read_keys, name="keyboard", daemon=True)
        self._reader.start()

    def ask_instruction(self) -> None:
        """Prompt for the instruction and publish it."""
        text = input("instruction for the next episode: ").strip()
        if text:
            self.pub_instruction.publish(String(data=text))

    def handle(self, ch: str) -> bool:
        """One key; returns False on quit."""
        event = self.keys.key(ch)
        self.command = self.keys.command()
        if event == "quit":
            return False
        if event == "instruction":
            return True
        if event:
            self.event(event)
        return True

    def _read_keys(self) -> None:
        print(KEY_HELP)
        self.ask_instruction()
        tty.setcbreak(sys.stdin.fileno())
        while not self.finished:
            if select.select([sys.stdin], [], [], 0.05)[0]:
                ch = sys.stdin.read(1)
                if ch == "i":
                    termios.tcsetattr(sys.stdin, termios.TCSADRAIN, self._terminal)
                    self.ask_instruction()
                    tty.setcbreak(sys.stdin.fileno())
                elif not self.handle(ch):
                    self.finished = True

    def close(self) -> None:
        """Give the terminal back as it was."""
        self.finished = True
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, self._terminal)


def joy_main(args=None) -> int:
    """Entry point of joy_teleop."""
    return run_node(JoyTeleopNode, args)


def keyboard_main(args=None) -> int:
    """Entry point of keyboard_teleop."""
    return run_node(KeyboardTeleopNode, args)
