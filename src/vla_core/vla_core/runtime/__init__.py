"""Running a policy in closed loop: how chunks become one action per control tick."""
