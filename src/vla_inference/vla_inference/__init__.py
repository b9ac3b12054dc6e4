"""The vla_controller node: policy inference with action-buffer replanning (issue 5)."""
