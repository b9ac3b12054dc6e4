"""The VLA policy alone, on a machine beside the robot (e.g. a GPU box next to a Jetson-less robot).

    ros2 launch vla_bringup policy.launch.py checkpoint:=/path/to/export backend:=tensorrt

On the robot: ``ros2 launch vla_bringup robot.launch.py policy:=false``. The wiring lives in
policy.yaml beside this file (also read by ``vla launch policy``).
"""

from vla_bringup.launch_description import generate


def generate_launch_description():
    """Entry point of ros2 launch."""
    return generate("policy")
