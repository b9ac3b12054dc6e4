import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from vla_core.config import ExperimentConfig  # noqa: E402
from vla_core.data.synthetic import make_dataset  # noqa: E402

# A small policy that trains in seconds on 2 cores (32 px images, width 64).
TINY = [
    "--policy.horizon=8", "--policy.n_action_steps=4", "--policy.vision.image_size=32",
    "--policy.vision.channels=[16,32,32]", "--policy.fusion.dim=64", "--policy.fusion.layers=1",
    "--policy.fusion.dropout=0.0", "--policy.proprio_hidden=64", "--policy.tokens.bins=64",
    "--policy.diffusion.train_timesteps=50", "--policy.diffusion.inference_steps=5", "--policy.flow.inference_steps=4",
    "--data.augment.enable=false",
]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("synthetic")
    make_dataset(d, episodes=6)
    return d


@pytest.fixture
def tiny_config(tiny_data, tmp_path):
    def make(head="regression", *extra):
        return ExperimentConfig.load(None, [*TINY, f"--policy.head={head}", f"--data.path={tiny_data}",
                                            f"--train.output_dir={tmp_path / 'run'}", "--train.device=cpu", *extra])
    return make


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
