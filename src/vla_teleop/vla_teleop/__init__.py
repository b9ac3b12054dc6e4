"""Teleoperation sources and the collector node that records episodes with vla_core's EpisodeWriter (issue 5)."""
