"""Simulated robot + teleop source + demonstration collector.

    ros2 launch vla_bringup teleop.launch.py out_dir:=data/teleop

The wiring lives in teleop.yaml beside this file (also read by ``vla launch teleop``).
"""

from vla_bringup.launch_description import generate


def generate_launch_description():
    """Entry point of ros2 launch."""
    return generate("teleop")
