"""Simulated robot: MuJoCo task suites behind one Task interface, and the sim_robot node (issues 4 and 5)."""
