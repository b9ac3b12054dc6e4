"""Meta-World MT10 behind the :class:`vla_core.env.Task` interface.

Sawyer arm, 4-D action (end-effector x / y / z delta + gripper, each in [-1, 1]) at 80 Hz
(Meta-World's frame skip of 5 at 2.5 ms). The policy sees camera images, the hand position and the
gripper opening, and the instruction - never the object or goal positions of Meta-World's state
vector (the scripted expert does, as a human teleoperator would see the scene).

Each reset's seed draws new object and goal positions from the task's own ranges, so evaluation
seeds disjoint from the collection seeds are unseen configurations.
"""

from __future__ import annotations

import mujoco
import numpy as np

from vla_core.env import EE_VELOCITY, ScriptedExpert, StepResult, Suite, Task
from vla_core.errors import VLAError
from vla_core.spec import PolicySpec
from vla_sim.rendering import SceneRenderer, ensure_offscreen_gl

MT10_TASKS = [
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
    "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
]

# Training phrasings (used in demonstrations) and held-out phrasings (evaluation only).
INSTRUCTIONS = {
    "reach-v3": (["reach the goal", "move your hand to the target", "reach to the goal position",
                  "put the gripper at the target"], ["touch the target point", "go to the goal location"]),
    "push-v3": (["push the puck to the goal", "slide the puck to the target", "push the block to the goal",
                 "move the puck to the target by pushing"], ["shove the puck onto the goal", "nudge the block to the target spot"]),
    "pick-place-v3": (["pick up the puck and place it at the goal", "pick and place the puck", "put the puck on the target",
                       "grasp the puck and move it to the goal"], ["lift the puck and set it at the target",
                                                              "carry the puck to the goal"]),
    "door-open-v3": (["open the door", "pull the door open", "swing the door open", "open the cabinet door"],
                     ["get the door open", "pull on the door handle to open it"]),
    "drawer-open-v3": (["open the drawer", "pull the drawer open", "pull out the drawer", "slide the drawer open"],
                       ["get the drawer open", "draw the drawer out"]),
    "drawer-close-v3": (["close the drawer", "push the drawer closed", "shut the drawer", "slide the drawer shut"],
                        ["push the drawer in", "get the drawer closed"]),
    "button-press-topdown-v3": (["press the button", "push the button down", "press the button from the top",
                                 "push down on the button"], ["hit the button", "press down the button from above"]),
    "peg-insert-side-v3": (["insert the peg into the hole", "put the peg in the hole", "push the peg into the side hole",
                            "insert the peg sideways"], ["slot the peg into the hole", "fit the peg into the hole"]),
    "window-open-v3": (["open the window", "slide the window open", "push the window open", "move the window to open it"],
                       ["get the window open", "slide open the window"]),
    "window-close-v3": (["close the window", "slide the window closed", "shut the window", "push the window closed"],
                        ["get the window closed", "slide the window shut"]),
}

# Policy cameras by name: the model camera each is based on, its vertical field of view (None: the
# model's own) and whether it is mounted upside down. "workspace" is corner2 zoomed from 60 to 36
# degrees so that it frames the table (every MT10 object stays in view); "top" looks down on the
# table, which with a corner view fixes the 3-D position of a goal a single view cannot.
CAMERAS = {"corner2": ("corner2", None, True), "workspace": ("corner2", 36.0, True), "top": ("topview", None, False)}
CAMERA = "corner2"
# Where the goal is a free point (reach, push, pick-place), Meta-World marks it with a 2 cm red dot
# that a 64 px camera barely resolves (about one pixel, on a red arm). These tasks draw it as a
# 3.5 cm green sphere instead: the goal is something the camera must see, as a real user would mark
# it, while the policy still never receives its coordinates. Sites have no physics: nothing else changes.
GOAL_MARKER_TASKS = ("reach-v3", "push-v3", "pick-place-v3")
GOAL_MARKER_SIZE = 0.035
GOAL_MARKER_RGBA = (0.1, 0.85, 0.1, 1.0)
VIEW_CAMERA = "corner4"  # the scene for people (videos): the whole table, arm and goal marker
FPS = 80.0
ACTION_NAMES = ["dx", "dy", "dz", "gripper"]
PROPRIO_NAMES = ["hand_x", "hand_y", "hand_z", "gripper_opening"]


def _expert_class(task: str):
    import metaworld.policies as policies

    base = task.removesuffix("-v3").replace("-", " ").title().replace(" ", "")
    base = {"PegInsertSide": "PegInsertionSide"}.get(base, base)
    return getattr(policies, f"Sawyer{base}V3Policy")


class MetaWorldExpert(ScriptedExpert):
    """Meta-World's scripted policy of one task: an end-effector velocity + gripper from the 39-D state."""

    command_interface = EE_VELOCITY
    action_names = list(ACTION_NAMES)

    def __init__(self, task: str):
        self.policy = _expert_class(task)()

    def act(self, state: np.ndarray, step: int) -> np.ndarray:
        """Meta-World's policies look at the state only."""
        return np.clip(self.policy.get_action(np.asarray(state)), -1.0, 1.0).astype(np.float32)


class MetaWorldTask(Task):
    """One MT10 environment with off-screen rendering, seeded resets and its scripted expert."""

    def __init__(self, name: str, image_size: int = 64, max_steps: int = 200, camera: str | list[str] = CAMERA,
                 render: bool = True):
        if name not in MT10_TASKS:
            raise VLAError(f"unknown Meta-World MT10 task '{name}'; expected one of {', '.join(MT10_TASKS)}")
        cameras = [c.strip() for c in camera.split(",")] if isinstance(camera, str) else list(camera)
        for cam in cameras:
            if cam not in CAMERAS:
                raise VLAError(f"unknown Meta-World camera '{cam}'; expected one of {', '.join(CAMERAS)}")
        ensure_offscreen_gl()
        import metaworld

        self.name = name
        self.max_steps = max_steps
        self.cameras = cameras
        benchmark = metaworld.MT1(name, seed=0)
        self.env = benchmark.train_classes[name]()
        self.env.set_task(benchmark.train_tasks[0])
        # Draw object / goal positions from the reset seed instead of the fixed task vector.
        self.env._freeze_rand_vec = False
        self.env.seeded_rand_vec = True
        # Shadows and reflections off: software rendering on 2 cores is the collection bottleneck.
        self.env.model.light_castshadow[:] = 0
        self.env.model.mat_reflectance[:] = 0
        if name in GOAL_MARKER_TASKS:
            goal = self.env.model.site("goal")
            goal.size[0] = GOAL_MARKER_SIZE
            goal.rgba[:] = GOAL_MARKER_RGBA
        # Meta-World's corner cameras are mounted upside down: SceneRenderer turns them right side up.
        self._renderers = {cam: SceneRenderer(self.env.model, CAMERAS[cam][0], image_size, flip=CAMERAS[cam][2],
                                              fovy=CAMERAS[cam][1]) for cam in cameras} if render else {}
        self._viewer: SceneRenderer | None = None
        self.env.max_path_length = 10_000  # episode length is ours to cap (max_steps)
        self.expert = _expert_class(name)()
        self.spec = PolicySpec(cameras={cam: [image_size, image_size, 3] for cam in cameras}, proprio_names=list(PROPRIO_NAMES),
                               action_names=list(ACTION_NAMES), fps=FPS, robot="sawyer",
                               action_low=[-1.0] * 4, action_high=[1.0] * 4)
        self._state = None
        self._instruction = INSTRUCTIONS[name][0][0]
        self._steps = 0
        self._last_images = {cam: np.zeros((image_size, image_size, 3), np.uint8) for cam in cameras}

    def _observation(self, render: bool = True) -> dict:
        if render:  # render=False at construction: no renderers, blank images
            self._last_images = {cam: r.render(self.env.data) for cam, r in self._renderers.items()} or self._last_images
        return {"images": dict(self._last_images), "proprio": self._state[:4].astype(np.float32).copy(),
                "instruction": self._instruction}

    def observe(self) -> dict:
        """The observation of the current state, its cameras rendered now."""
        return self._observation(render=True)

    def render_view(self, size: int = 256) -> np.ndarray:
        """The scene from the viewer camera, anti-aliased, for videos (never a policy input)."""
        if self._viewer is None or self._viewer_size != size:
            if self._viewer is not None:
                self._viewer.close()
            self._viewer = SceneRenderer(self.env.model, VIEW_CAMERA, size, samples=4, flip=True)
            self._viewer_size = size
        return self._viewer.render(self.env.data)

    @property
    def state_vector(self) -> np.ndarray:
        """Meta-World's full 39-D state (object and goal positions): for scripted experts only, never the policy."""
        return self._state.copy()

    def reset(self, seed: int, instruction: str | None = None) -> dict:
        """New episode with object / goal placement drawn from ``seed``."""
        self._instruction = instruction or INSTRUCTIONS[self.name][0][0]
        # Meta-World's reset() ignores its seed argument; seeding goes through env.seed().
        self.env.seed(int(seed))
        self._state, _ = self.env.reset()
        # reset() moves the goal site in the model but leaves the derived positions of the previous
        # episode in data: without this the first frame shows the old goal.
        mujoco.mj_forward(self.env.model, self.env.data)
        self._steps = 0
        return self._observation()

    def step(self, action: np.ndarray, render: bool = True) -> StepResult:
        """One 12.5 ms control step."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        # Checked before clipping: clip would turn inf into a full-speed command.
        a = np.clip(a, -1.0, 1.0).astype(np.float32) if np.isfinite(a).all() else np.zeros(4, np.float32)
        self._state, _, terminated, truncated, info = self.env.step(a)
        self._steps += 1
        success = bool(info.get("success", 0.0) > 0.5)
        done = success or terminated or self._steps >= self.max_steps
        return StepResult(self._observation(render), success, bool(done))

    def expert_action(self) -> np.ndarray:
        """Meta-World's scripted policy (sees the full state vector)."""
        return np.clip(self.expert.get_action(self._state), -1.0, 1.0).astype(np.float32)

    def hold_action(self, last_action: np.ndarray | None) -> np.ndarray:
        """Zero end-effector motion; the gripper keeps its last command (open at the start)."""
        grip = -1.0 if last_action is None else float(last_action[3])
        return np.array([0.0, 0.0, 0.0, grip], np.float32)

    def close(self) -> None:
        """Close the renderers explicitly (avoids EGL noise at interpreter exit)."""
        for r in [*self._renderers.values(), self._viewer]:
            if r is not None:
                r.close()
        self._renderers, self._viewer = {}, None


class MetaWorldMT10(Suite):
    """The ten MT10 tasks with their instructions."""

    name = "metaworld-mt10"
    task_names = list(MT10_TASKS)

    cameras = list(CAMERAS)

    def scripted_expert(self, task: str) -> MetaWorldExpert:
        """Meta-World's scripted policy for ``task``, acting from /sim/state."""
        if task not in MT10_TASKS:
            raise VLAError(f"unknown Meta-World MT10 task '{task}'; expected one of {', '.join(MT10_TASKS)}")
        return MetaWorldExpert(task)

    def make_task(self, name: str, **kwargs) -> MetaWorldTask:
        """Build one task (``image_size``, ``max_steps``, ``camera``: a name, a comma-separated list or a list)."""
        return MetaWorldTask(name, **kwargs)

    def instructions(self, task: str, split: str = "train") -> list[str]:
        """Training or held-out phrasings of ``task``."""
        if task not in INSTRUCTIONS:
            raise VLAError(f"unknown Meta-World MT10 task '{task}'")
        return list(INSTRUCTIONS[task][0 if split == "train" else 1])
