"""rclpy glue shared by every node of the workspace (vla_core stays free of ROS).

:func:`vla_ros.runner.run_node` is the one ``main()`` of every node: init, parameter errors in one
line with exit code 2, spin, and a clean exit 0 on SIGINT / SIGTERM.
"""
