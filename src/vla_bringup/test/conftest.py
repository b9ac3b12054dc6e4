import itertools
import os

import pytest

_ids = itertools.count(0)


@pytest.fixture
def ros_env():
    """Environment for a multi-process ROS test: its own domain id, localhost discovery only."""
    domain = 100 + (os.getpid() % 50) * 2 + next(_ids) % 2 + 0
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain % 232), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    return env
