"""Simulated robot + VLA controller + safety monitor.

    ros2 launch vla_bringup robot.launch.py checkpoint:=/path/to/checkpoint

The wiring lives in robot.yaml beside this file (also read by ``vla launch robot``).
"""

from vla_bringup.launch_description import generate


def generate_launch_description():
    """Entry point of ros2 launch."""
    return generate("robot")
