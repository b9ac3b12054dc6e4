"""The vla_safety package installs and imports without a ROS graph running."""

import importlib


def test_imports_and_documents_itself():
    module = importlib.import_module("vla_safety")
    assert module.__doc__
