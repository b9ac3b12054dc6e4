"""The safety monitor between the controller and the robot (issue 5)."""
