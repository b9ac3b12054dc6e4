"""The task interface every simulated (or real) environment implements, and the suite registry.

A :class:`Task` is one robot scene with a language goal::

    obs = task.reset(seed, instruction)     # {"images": {cam: uint8 (H, W, 3)}, "proprio": (P,), "instruction": str}
    obs, success, done = task.step(action)  # action (A,) in the robot's command units
    task.expert_action()                    # scripted expert's next action, where the suite has one
    task.hold_action(last_action)           # what keeps the robot still (no planned action due)
    task.observe()                          # the current observation, cameras rendered now
    task.render_view(size)                  # a picture for people (videos), not a policy input
    task.stages(), task.stage_reached()     # named milestones before success, and how far this episode got

Suites are registered by name and imported lazily (``metaworld-mt10`` lives in ``vla_sim``), so
``vla_core`` stays free of simulator imports until a suite is asked for.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from vla_core.errors import VLAError
from vla_core.spec import PolicySpec

SUITES = {
    "metaworld-mt10": "vla_sim.metaworld_suite:MetaWorldMT10",
    "aloha": "vla_sim.aloha_suite:AlohaSuite",
}


class UnknownInstructionError(VLAError):
    """An instruction matches no task of the suite."""


@dataclass
class StepResult:
    """What one control step returns: the next observation, and whether the episode succeeded / ended."""

    observation: dict
    success: bool
    done: bool


EE_VELOCITY, JOINT_POSITION = "ee_velocity", "joint_position"


class Task(ABC):
    """One scene of a suite (see the module docstring for the contract)."""

    name: str
    spec: PolicySpec
    max_steps: int
    #: how a robot takes this task's actions: ``ee_velocity`` (an end-effector twist, the last action a
    #: gripper command) or ``joint_position`` (one absolute position per action name, as a joint trajectory)
    command_interface: str = EE_VELOCITY

    @abstractmethod
    def reset(self, seed: int, instruction: str | None = None) -> dict:
        """Start an episode; the seed fixes object and goal placement. Returns the first observation."""

    @abstractmethod
    def step(self, action: np.ndarray, render: bool = True) -> StepResult:
        """Apply one action (clipped to the action range) and advance one control period.

        ``render=False`` skips the camera (the observation repeats the last frame): for callers that
        publish images at a lower rate than the control rate.
        """

    def observe(self) -> dict:
        """The observation of the current state with its cameras rendered now.

        ``step(action, render=False)`` skips rendering (its observation repeats the last frame); callers
        that look at images only now and then (a chunked policy) step without rendering and call this.
        """
        raise NotImplementedError

    def render_view(self, size: int = 256) -> np.ndarray | None:
        """A picture of the scene for people (videos) from a viewer camera, or None where there is none."""
        return None

    def stages(self) -> list[str]:
        """Milestones on the way to success, in order (e.g. grasped, lifted): where failed episodes stop.

        Evaluation reports how many episodes reached each; empty (the default) where the task has none.
        """
        return []

    def stage_reached(self) -> int:
        """How many of :meth:`stages` this episode has reached so far (the furthest one counts; 0 at a reset)."""
        return 0

    def expert_action(self) -> np.ndarray:
        """The scripted expert's action for the current state."""
        raise VLAError(f"task '{self.name}' has no scripted expert")

    def hold_action(self, last_action: np.ndarray | None) -> np.ndarray:
        """The action that keeps the robot still (sent while no planned action is due).

        Default: zeros, right for velocity and delta commands; ``last_action`` is the last action sent
        (None at the start), for robots that hold by repeating a position or a gripper command.
        """
        return np.zeros(len(self.spec.action_names), np.float32)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release renderer / simulator resources."""


class ScriptedExpert(ABC):
    """A task's scripted expert outside the simulator (a teleop source): acts from the simulator's privileged state.

    ``state`` is what the simulated robot publishes on /sim/state (``Task.state_vector``); ``step`` is
    the control step of the episode the action is for (0 = the first after the reset), which experts
    that replay a plan need. Actions are in ``action_names`` order for ``command_interface``.
    """

    command_interface: str
    action_names: list[str]
    #: whether ``act`` replays a plan that its first call makes from the episode's first state (seconds of
    #: work): a teleop source then plans before the episode's clock starts, not while the robot waits
    plans: bool = False

    def reset(self) -> None:  # noqa: B027 - optional hook
        """A new episode starts (the next ``act`` may see new object poses)."""

    @abstractmethod
    def act(self, state: np.ndarray, step: int) -> np.ndarray:
        """The expert's action for control step ``step`` given the privileged ``state``."""


class Suite(ABC):
    """A named set of tasks with their instructions."""

    name: str
    task_names: list[str]
    #: episode cap in control steps used when the caller gives none (collection, evaluation)
    max_steps: int = 200

    @abstractmethod
    def make_task(self, name: str, **kwargs) -> Task:
        """Build task ``name`` (kwargs: camera size and the like)."""

    @abstractmethod
    def instructions(self, task: str, split: str = "train") -> list[str]:
        """Phrasings of the task's goal: ``train`` ones for data, ``heldout`` ones for evaluation only."""

    def scripted_expert(self, task: str) -> ScriptedExpert:
        """The scripted expert of ``task`` for a teleop source in another process than the simulator."""
        raise VLAError(f"suite {self.name} has no scripted expert that acts from the simulator's state")

    def task_for_instruction(self, instruction: str) -> str:
        """The task an instruction asks for; an instruction matching no task is an error, never a default."""
        key = normalize_instruction(instruction)
        for task in self.task_names:
            for split in ("train", "heldout"):
                if key in {normalize_instruction(i) for i in self.instructions(task, split)}:
                    return task
        examples = "; ".join(f"'{self.instructions(t)[0]}'" for t in self.task_names[:4])
        raise UnknownInstructionError(
            f"instruction '{instruction}' matches no task of suite {self.name}; try e.g. {examples}")


def normalize_instruction(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation."""
    return " ".join(text.lower().strip().rstrip(".!").split())


def make_suite(name: str) -> Suite:
    """Instantiate a registered suite by name."""
    if name not in SUITES:
        raise VLAError(f"unknown suite '{name}'; known suites: {', '.join(SUITES)}")
    module, cls = SUITES[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise VLAError(f"suite '{name}' needs the package {module.split('.')[0]} ({exc})") from None
    return getattr(mod, cls)()
