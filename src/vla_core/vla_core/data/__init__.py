"""Demonstration data: the episode file format, the training dataset and format converters."""
