"""Training and fine-tuning of VLA policies."""
