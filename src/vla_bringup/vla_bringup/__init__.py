"""Launch wiring of the VLA workspace: node graphs (launch/*.yaml) and their ros2 launch front end."""
