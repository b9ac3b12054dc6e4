"""Node graphs declared as data, and a process supervisor that runs them without ``ros2 launch``."""
