"""ALOHA (two 6-DoF ViperX 300s arms with parallel grippers) behind the :class:`vla_core.env.Task` interface.

The MuJoCo models are the ones the PyPI package ``gym-aloha`` ships (its asset files only; this module
loads them with ``mujoco`` directly): the joint-controlled variant the policy drives, and the mocap
("end effector") variant, which defines the point each gripper is steered by (its weld offset).

Actions: 14-D absolute joint positions at 50 Hz - per arm, six joint angles (rad) and the gripper
opening normalised to 0 (closed) .. 1 (open). Proprioception: the same 14 quantities measured. Cameras:
``top`` and the two wrist cameras ``left_wrist`` / ``right_wrist`` (square images, ``image_size``), and
``workspace``, the top camera zoomed onto the part of the table where the task happens (:data:`CAMERAS`).

Scripted expert (the ACT paper's idea, our own trajectories and planner): at reset, the end-effector
waypoints of the task are planned from the object poses (:func:`plan`), and a planner copy of the
joint-controlled scene is run through them: every control step, damped-least-squares inverse
kinematics (:class:`_IKSolver`) turns each gripper's target pose into six joint positions, which are
commanded and simulated, and the planner looks at the objects as it goes (where the cube hangs for
the handover; how peg and socket sit in their grippers). The joint commands are recorded;
:meth:`AlohaTask.expert_action` replays them. MuJoCo is deterministic, so the replay does what the
planner did. (The ACT paper runs the waypoints through the mocap model's weld and replays the joints
it produced; with these models and MuJoCo 3.3 the soft weld lags its target by centimetres and twists
the wrist, and that replay handed the cube over on 6 of 16 seeds: ``python -m vla_sim.aloha_suite``.)
Collection keeps failed episodes, marked unsuccessful.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_core.env import JOINT_POSITION, ScriptedExpert, StepResult, Suite, Task
from vla_core.errors import VLAError
from vla_core.spec import PolicySpec
from vla_sim.rendering import SceneRenderer, ensure_offscreen_gl

ALOHA_TASKS = ["transfer-cube", "insertion"]
INSTRUCTIONS = {
    "transfer-cube": (["transfer the cube to the other arm", "hand the cube to the left arm",
                       "pick up the red cube and pass it to the other gripper", "give the cube to the left hand"],
                      ["hand the cube to the other arm", "pass the red block from the right arm to the left"]),
    "insertion": (["insert the peg into the socket", "put the red peg into the blue socket",
                   "pick up the peg and the socket and insert one into the other", "fit the peg in the socket"],
                  ["put the peg into the socket", "slide the peg into the blue socket"]),
}
# Policy cameras by name: the model camera each is drawn from and its vertical field of view (None: the
# model's own). "workspace" is the top camera narrowed from 78 to 50 degrees (1.7x zoom, the same picture
# as cropping the middle 58 % of the top view): every place an object can lie and the meeting point stay in
# view, the arms' bases fall outside, and the cube, peg and socket get 1.7x the pixels a side.
CAMERAS = {"top": ("top", None), "workspace": ("top", 50.0),
           "left_wrist": ("left_wrist", None), "right_wrist": ("right_wrist", None)}
DEFAULT_CAMERAS = ("top", "left_wrist", "right_wrist")
VIEW_CAMERA = "angle"
FPS = 50.0
CONTROL_DT = 1.0 / FPS
ARMS = ("left", "right")
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
JOINT_NAMES = [f"{arm}_{j}" for arm in ARMS for j in (*ARM_JOINTS, "gripper")]
# The puppet gripper's finger position (m) at "closed" and "open": normalised opening 0 .. 1.
FINGER_CLOSED, FINGER_OPEN = 0.01844, 0.05800
START_ARM = np.array([0.0, -0.96, 1.16, 0.0, -0.3, 0.0])  # both arms, folded above the table
START_FINGER = 0.02239
# Joint limits of the position actuators (rad), per arm joint; gripper 0 .. 1.
ACTION_LOW = [-3.14158, -1.85005, -1.76278, -3.14158, -1.8675, -3.14158, 0.0] * 2
ACTION_HIGH = [3.14158, 1.25664, 1.6057, 3.14158, 2.23402, 3.14158, 1.0] * 2
# Object placement ranges (x, y) on the table; the right arm works at x > 0, the left at x < 0.
CUBE_RANGE = ((0.0, 0.2), (0.4, 0.6))
PEG_RANGE = ((0.1, 0.2), (0.4, 0.6))
SOCKET_RANGE = ((-0.2, -0.1), (0.4, 0.6))
REST_Z = {"box": 0.02, "peg": 0.01, "socket": 0.02}  # centre height of each object resting on the table (m)
OBJECT_NAMES = {"transfer-cube": ("box",), "insertion": ("peg", "socket")}  # free bodies of each task's scene


def assets_dir() -> Path:
    """The MJCF models of ``gym-aloha`` (found without importing the package, which imports dm_control)."""
    spec = importlib.util.find_spec("gym_aloha")
    if spec is None or not spec.submodule_search_locations:
        raise VLAError("the ALOHA suite needs the package gym-aloha (pip install gym-aloha==0.1.5) for its MuJoCo models")
    return Path(list(spec.submodule_search_locations)[0]) / "assets"


def finger_to_opening(finger: float) -> float:
    """Finger joint position (m) -> normalised gripper opening (0 closed, 1 open)."""
    return (finger - FINGER_CLOSED) / (FINGER_OPEN - FINGER_CLOSED)


def opening_to_finger(opening: float) -> float:
    """Normalised gripper opening -> finger joint position (m)."""
    return opening * (FINGER_OPEN - FINGER_CLOSED) + FINGER_CLOSED


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def axis_quat(axis, degrees: float) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation by ``degrees`` about ``axis``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    half = np.radians(degrees) / 2
    return np.array([np.cos(half), *(np.sin(half) * axis)])


def _slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(d)
    return (np.sin((1 - s) * theta) * q0 + np.sin(s * theta) * q1) / np.sin(theta)


@dataclass
class Waypoint:
    """Where one gripper is at control step ``t``: position (m), orientation (w, x, y, z), opening (0 .. 1)."""

    t: int
    xyz: np.ndarray
    quat: np.ndarray
    opening: float


def interpolate(waypoints: list[Waypoint], t: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The gripper pose and opening at step ``t``: linear in position and opening, slerp in orientation."""
    if t <= waypoints[0].t:
        w = waypoints[0]
        return w.xyz, w.quat, w.opening
    for a, b in zip(waypoints, waypoints[1:], strict=False):
        if a.t <= t <= b.t:
            s = (t - a.t) / max(b.t - a.t, 1)
            return a.xyz + s * (b.xyz - a.xyz), _slerp(a.quat, b.quat, s), a.opening + s * (b.opening - a.opening)
    w = waypoints[-1]
    return w.xyz, w.quat, w.opening


HANDOVER = 230  # transfer-cube: the step at which the expert looks where the right gripper holds the cube


def plan(task: str, objects: dict[str, np.ndarray], start: dict[str, np.ndarray], held: np.ndarray | None = None,
         grips: dict[str, np.ndarray] | None = None) -> dict[str, list[Waypoint]]:
    """End-effector waypoints of both grippers for ``task`` given the object positions.

    Positions are the grippers' mocap points (between the fingertips). ``start``: each one at reset.
    Orientations are world rotations of the mocap's reference (identity: the gripper horizontal,
    pointing at the other arm). ``held``: transfer-cube, where the cube hangs in the right gripper from
    :data:`HANDOVER` on (the planner looks, as a person handing over would); None before that.
    ``grips``: insertion, where the peg and the socket sit relative to the points of the grippers holding
    them, once lifted (None before: the nominal grasp offsets).
    """
    identity = np.array([1.0, 0.0, 0.0, 0.0])
    left0, right0 = start["left"], start["right"]
    if task == "transfer-cube":
        cube = objects["box"]
        grasp = cube + [0, 0, -0.01]          # fingertips 1 cm above the table: the pads cover the cube's sides
        meet = np.array([0.0, 0.5, 0.25])
        held = meet if held is None else held
        down = axis_quat([0, 1, 0], -60)      # right gripper pitched 60 degrees down towards the table
        side = axis_quat([1, 0, 0], 90)       # left gripper rolled to close on the cube's top and bottom faces
        right = [Waypoint(0, right0, identity, 0.0),
                 Waypoint(90, cube + [0, 0, 0.08], down, 1.0),       # above the cube, open
                 # Down around it in one steady move, closing on arrival. A rest here (open around the cube)
                 # is a still scene whose next action depends on the clock: policies that replanned in it
                 # waited with the gripper open to the end of the episode (docs/experiments.md, a4).
                 Waypoint(145, grasp, down, 1.0),
                 Waypoint(175, grasp, down, 0.0),                    # closed
                 Waypoint(195, grasp + [0, 0, 0.1], down, 0.0),      # lifted straight up before moving across
                 # The gripper keeps its pick pitch to the end (as ACT's script does): turning it level on
                 # the way to the meeting point slid the cube out of the fingertips in 8 of 50 seeds.
                 Waypoint(215, meet + [0.05, 0, 0], down, 0.0),      # to the meeting point
                 Waypoint(225, meet, down, 0.0),
                 Waypoint(320, meet, down, 0.0),
                 Waypoint(340, meet, down, 1.0),                     # let go once the left holds it
                 Waypoint(380, meet + [0.1, 0, 0], down, 1.0)]
        # No pauses: while the right arm fetches the cube the left one keeps closing in (about 1 mm a step),
        # so every pose of the left arm has one next move. A waiting arm is a still scene whose next action
        # depends on the clock, which a policy that sees only the scene cannot learn (it crept, or stayed).
        left = [Waypoint(0, left0, identity, 0.0),
                Waypoint(120, meet - [0.2, 0, 0], side, 1.0),        # beside the meeting point, open
                Waypoint(HANDOVER, meet - [0.08, 0, 0], side, 1.0),  # slowly nearer while the cube arrives
                Waypoint(265, held - [0.04, 0, 0], side, 1.0),
                Waypoint(290, held + [0.015, 0, 0], side, 1.0),      # fingers over the cube
                Waypoint(315, held + [0.015, 0, 0], side, 0.0),      # closed on it
                Waypoint(350, held + [0.015, 0, 0], side, 0.0),
                Waypoint(390, held - [0.1, 0, 0], side, 0.0)]        # pull it away
    elif task == "insertion":
        # Both objects keep lying along x in their grippers: each gripper keeps its pick orientation, so the
        # peg and the socket stay level and meet end to end. Grasp heights differ (the peg is 2 cm tall, the
        # socket 4 cm), so the right arm carries the peg higher by the difference of the two grasp offsets.
        peg, socket = objects["peg"], objects["socket"]
        meet = np.array([0.0, 0.5, 0.2])
        down_right = axis_quat([0, 1, 0], -60)
        down_left = axis_quat([0, 1, 0], 60)
        peg_grasp, socket_grasp = peg + [0, 0, 0.01], socket + [0, 0, -0.01]
        if grips is None:
            grips = {"peg": peg - peg_grasp, "socket": socket - socket_grasp}
        lift = (grips["socket"] - grips["peg"]) * [0, 1, 1]   # peg and socket on one axis: y and z aligned
        right = [Waypoint(0, right0, identity, 0.0),
                 Waypoint(90, peg + [0, 0, 0.08], down_right, 1.0),
                 Waypoint(145, peg_grasp, down_right, 1.0),
                 Waypoint(175, peg_grasp, down_right, 0.0),
                 Waypoint(195, peg_grasp + [0, 0, 0.1], down_right, 0.0),
                 Waypoint(240, meet + [0.14, 0, 0] + lift, down_right, 0.0),   # slowly closer: no still pause
                 Waypoint(280, meet + [0.12, 0, 0] + lift, down_right, 0.0),
                 Waypoint(360, meet + [0.045, 0, 0] + lift, down_right, 0.0),   # push the peg into the socket
                 Waypoint(400, meet + [0.045, 0, 0] + lift, down_right, 0.0)]
        left = [Waypoint(0, left0, identity, 0.0),
                Waypoint(90, socket + [0, 0, 0.08], down_left, 1.0),
                Waypoint(145, socket_grasp, down_left, 1.0),
                Waypoint(175, socket_grasp, down_left, 0.0),
                Waypoint(195, socket_grasp + [0, 0, 0.1], down_left, 0.0),
                Waypoint(240, meet - [0.14, 0, 0], down_left, 0.0),
                Waypoint(280, meet - [0.12, 0, 0], down_left, 0.0),
                Waypoint(360, meet - [0.045, 0, 0], down_left, 0.0),
                Waypoint(400, meet - [0.045, 0, 0], down_left, 0.0)]
    else:
        raise VLAError(f"unknown ALOHA task '{task}'; expected one of {', '.join(ALOHA_TASKS)}")
    return {"left": left, "right": right}


class _Scene:
    """One loaded model (joint-controlled or mocap) with index tables for arms, fingers and objects."""

    def __init__(self, task: str, mocap: bool):
        import mujoco

        variant = "bimanual_viperx_end_effector_" if mocap else "bimanual_viperx_"
        path = assets_dir() / f"{variant}{task.replace('-', '_')}.xml"
        try:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        except (ValueError, OSError) as exc:
            raise VLAError(f"cannot load the ALOHA model {path}: {exc}") from None
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.arm_qpos = {arm: [m.joint(f"vx300s_{arm}/{j}").qposadr[0] for j in ARM_JOINTS] for arm in ARMS}
        self.arm_dof = {arm: [m.joint(f"vx300s_{arm}/{j}").dofadr[0] for j in ARM_JOINTS] for arm in ARMS}
        self.finger_qpos = {arm: m.joint(f"vx300s_{arm}/left_finger").qposadr[0] for arm in ARMS}
        self.finger_dof = {arm: m.joint(f"vx300s_{arm}/left_finger").dofadr[0] for arm in ARMS}
        self.objects = [m.body(i).name for i in range(m.nbody) if m.body(i).jntnum and m.jnt_type[m.body(i).jntadr[0]] == 0]
        self.substeps = max(1, round(CONTROL_DT / m.opt.timestep))
        self.geom_names = [m.geom(i).name for i in range(m.ngeom)]

    def reset(self, poses: dict[str, np.ndarray]) -> None:
        import mujoco

        mujoco.mj_resetData(self.model, self.data)
        for arm in ARMS:
            self.data.qpos[self.arm_qpos[arm]] = START_ARM
            self.data.qpos[self.finger_qpos[arm]] = START_FINGER
            self.data.qpos[self.finger_qpos[arm] + 1] = -START_FINGER
        for name, xyz in poses.items():
            adr = self.model.joint(self.model.body(name).jntadr[0]).qposadr[0]
            self.data.qpos[adr:adr + 7] = [*xyz, 1.0, 0.0, 0.0, 0.0]
        mujoco.mj_forward(self.model, self.data)

    def command(self, action: np.ndarray) -> None:
        """Set the actuators for a 14-D action (six joint positions and the gripper opening per arm)."""
        for i in range(len(ARMS)):
            arm_a = action[7 * i:7 * i + 7]
            finger = opening_to_finger(arm_a[6])
            self.data.ctrl[8 * i:8 * i + 8] = [*arm_a[:6], finger, -finger]

    def joints(self) -> np.ndarray:
        """The 14 measured quantities: per arm six joint angles and the gripper opening."""
        q = self.data.qpos
        return np.array([*q[self.arm_qpos["left"]], finger_to_opening(q[self.finger_qpos["left"]]),
                         *q[self.arm_qpos["right"]], finger_to_opening(q[self.finger_qpos["right"]])], np.float32)

    def joint_velocities(self) -> np.ndarray:
        """Per arm six joint velocities (rad/s) and the gripper opening rate (1/s)."""
        v = self.data.qvel
        scale = 1.0 / (FINGER_OPEN - FINGER_CLOSED)
        return np.array([*v[self.arm_dof["left"]], v[self.finger_dof["left"]] * scale,
                         *v[self.arm_dof["right"]], v[self.finger_dof["right"]] * scale], np.float32)

    def contacts(self) -> set[tuple[str, str]]:
        pairs = set()
        for c in self.data.contact[:self.data.ncon]:
            a, b = self.geom_names[c.geom1], self.geom_names[c.geom2]
            pairs.add((a, b))
            pairs.add((b, a))
        return pairs

    def step(self) -> None:
        import mujoco

        mujoco.mj_step(self.model, self.data, nstep=self.substeps)


def _fingers(arm: str) -> set[str]:
    return {f"vx300s_{arm}/10_{f}_gripper_finger" for f in ("left", "right")}


def succeeded(task: str, contacts: set[tuple[str, str]]) -> bool:
    """Whether the task is done, from the contacts of the current state.

    Transfer-cube: the left gripper holds the cube off the table and the right has let go (stricter
    than ACT's top reward, which a first touch by the left finger already earns). Insertion: the peg
    touches the socket's pin.
    """
    if task == "transfer-cube":
        right = {("red_box", f) for f in _fingers("right")}
        return (("red_box", "vx300s_left/10_left_gripper_finger") in contacts and ("red_box", "table") not in contacts
                and not right & contacts)
    return ("red_peg", "pin") in contacts


#: milestones before success per task (ACT's reward stages, named): what evaluation reports for failed episodes
STAGES = {"transfer-cube": ["grasped", "lifted", "handed over"],
          "insertion": ["both grasped", "both lifted", "peg meets socket"]}


def stage_of(task: str, contacts: set[tuple[str, str]]) -> int:
    """How many of ``STAGES[task]`` the current contacts show (0: none).

    Transfer-cube: a right finger touches the cube (grasped), the cube off the table as well (lifted), a
    left finger touches it off the table (handed over). Insertion: a finger of either arm touches the peg
    and one the socket (both grasped), neither on the table (both lifted), the peg touches the socket's
    walls or its pin off the table (peg meets socket: an aligned peg can slide in without touching
    a wall).
    """
    def touches(geoms: set[str], fingers: set[str]) -> bool:
        return any((g, f) in contacts for g in geoms for f in fingers)

    if task == "transfer-cube":
        box = {"red_box"}
        off_table = ("red_box", "table") not in contacts
        if off_table and touches(box, _fingers("left")):
            return 3
        if touches(box, _fingers("right")):
            return 2 if off_table else 1
        return 0
    socket = {f"socket-{i}" for i in range(1, 5)}
    fingers = _fingers("left") | _fingers("right")
    off_table = not touches({"red_peg"} | socket, {"table"})
    if off_table and touches({"red_peg"}, socket | {"pin"}):
        return 3
    if touches({"red_peg"}, fingers) and touches(socket, fingers):
        return 2 if off_table else 1
    return 0


class _IKSolver:
    """Inverse kinematics of both arms for the points the mocap model steers (damped least squares)."""

    def __init__(self, task: str, scene: _Scene):
        import mujoco

        mocap = _Scene(task, mocap=True)
        # Weld i keeps arm i's gripper link at relpos / relquat from its mocap body: the mocap point sits
        # 13.5 cm ahead of the gripper link, between the fingertips - the point the waypoints steer.
        self.rel = {arm: (mocap.model.eq_data[i][3:6].copy(), mocap.model.eq_data[i][6:10].copy())
                    for i, arm in enumerate(ARMS)}
        self.scene = scene
        self.data = mujoco.MjData(scene.model)   # kinematics only, never stepped
        m = scene.model
        self.body = {arm: m.body(f"vx300s_{arm}/gripper_link").id for arm in ARMS}
        self.low = {arm: m.jnt_range[[m.joint(f"vx300s_{arm}/{j}").id for j in ARM_JOINTS], 0] for arm in ARMS}
        self.high = {arm: m.jnt_range[[m.joint(f"vx300s_{arm}/{j}").id for j in ARM_JOINTS], 1] for arm in ARMS}

    def points(self, data) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each arm's steered point in ``data``: position and orientation (w, x, y, z)."""
        import mujoco

        out = {}
        for arm in ARMS:
            relpos, relquat = self.rel[arm]
            grip = data.body(self.body[arm])
            inverse = np.zeros(4)
            mujoco.mju_negQuat(inverse, relquat)
            quat = _quat_mul(grip.xquat, inverse)
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, quat)
            out[arm] = (grip.xpos - rot.reshape(3, 3) @ relpos, quat / np.linalg.norm(quat))
        return out

    def solve(self, qpos: np.ndarray, arm: str, pos: np.ndarray, quat: np.ndarray, iterations: int = 50,
              damping: float = 0.05) -> np.ndarray:
        """Six joint positions of ``arm`` that put its point at ``pos`` / ``quat``, starting from ``qpos``."""
        import mujoco

        m, d = self.scene.model, self.data
        relpos, relquat = self.rel[arm]
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, quat)
        target_pos, target_quat = pos + rot.reshape(3, 3) @ relpos, _quat_mul(quat, relquat)
        adr, dof = self.scene.arm_qpos[arm], self.scene.arm_dof[arm]
        d.qpos[:] = qpos
        jac_pos, jac_rot = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        for _ in range(iterations):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            body = d.body(self.body[arm])
            err_pos = target_pos - body.xpos
            err_rot = np.zeros(3)
            mujoco.mju_subQuat(err_rot, target_quat, body.xquat)   # in the body's frame
            err = np.concatenate([err_pos, body.xmat.reshape(3, 3) @ err_rot])
            if np.linalg.norm(err_pos) < 1e-4 and np.linalg.norm(err_rot) < 1e-3:
                break
            mujoco.mj_jacBody(m, d, jac_pos, jac_rot, self.body[arm])
            jac = np.vstack([jac_pos[:, dof], jac_rot[:, dof]])
            pinv = jac.T @ np.linalg.inv(jac @ jac.T + damping ** 2 * np.eye(6))
            # Near the wrist singularity (wrist straight: forearm_roll and wrist_rotate turn about one axis) the
            # pose does not say how to share a rotation between them, and the solver drifts them apart, to +-pi
            # either way from one episode to the next. What the pose leaves free is pulled gently towards the
            # rest posture, so equal poses get equal joints: demonstrations a policy can learn.
            step = pinv @ err + POSTURE_GAIN * (np.eye(6) - pinv @ jac) @ (START_ARM - d.qpos[adr])
            d.qpos[adr] = np.clip(d.qpos[adr] + step, self.low[arm], self.high[arm])
            if np.abs(step).max() < 1e-6:   # settled (where the posture pull leaves a residual error)
                break
        return d.qpos[adr].copy()


# Inverse kinematics: pull of the rest posture in the directions the pose leaves (nearly) free. It keeps the
# straight wrist from drifting, at the price of up to about 7.5 mm where an arm reaches across (0.1 mm without).
POSTURE_GAIN = 0.1
HANDOVER_CLOSED = 315  # transfer-cube: the left gripper has closed; the planner stops following the cube
ALIGN = 270            # insertion: both objects lifted and still; the planner looks how they sit in the grippers


def plan_joint_commands(planner: _Scene, ik: _IKSolver, task: str, objects: dict[str, np.ndarray], steps: int
                        ) -> np.ndarray:
    """The expert's joint commands, (steps, 14): ``planner`` (a joint-controlled scene) is run through the plan.

    Each step, inverse kinematics turns both grippers' waypoint poses into joint positions, which are
    commanded and simulated; the plan is adjusted to where the objects are (see the module docstring).
    Commands are clipped to the joint ranges, as the actuators execute them.
    """
    sc = planner
    sc.reset(objects)
    start = ik.points(sc.data)
    rest = {arm: start[arm][0] for arm in ARMS}

    def waypoints_for(**seen):
        w = plan(task, objects, rest, **seen)
        for arm in ARMS:  # start from the measured orientation, not the planned one
            w[arm][0].quat = start[arm][1]
        return w

    waypoints = waypoints_for()
    commands = np.zeros((steps, len(JOINT_NAMES)), np.float32)
    qpos = sc.data.qpos.copy()   # the inverse kinematics' running solution (each step starts from the last)
    for t in range(steps):
        if task == "transfer-cube" and HANDOVER <= t <= HANDOVER_CLOSED:   # follow the cube as it hangs
            waypoints = waypoints_for(held=sc.data.body("box").xpos.copy())
        elif task == "insertion" and t == ALIGN:
            points = ik.points(sc.data)
            waypoints = waypoints_for(grips={"peg": sc.data.body("peg").xpos - points["right"][0],
                                             "socket": sc.data.body("socket").xpos - points["left"][0]})
        action = np.zeros(len(JOINT_NAMES))
        for i, arm in enumerate(ARMS):
            xyz, quat, opening = interpolate(waypoints[arm], t)
            qpos[sc.arm_qpos[arm]] = ik.solve(qpos, arm, xyz, quat)
            action[7 * i:7 * i + 6] = qpos[sc.arm_qpos[arm]]
            action[7 * i + 6] = opening
        commands[t] = np.clip(action, ACTION_LOW, ACTION_HIGH)
        sc.command(commands[t].astype(np.float64))   # exactly what is recorded, as the task executes it
        sc.step()
    return commands


class AlohaExpert(ScriptedExpert):
    """The scripted expert as a teleop source, the method of :meth:`AlohaTask.expert_action`.

    Plans from the object positions of the first state of an episode, then replays the plan step by step.
    """

    command_interface = JOINT_POSITION
    action_names = list(JOINT_NAMES)
    plans = True

    def __init__(self, task: str, max_steps: int = 400):
        self.task, self.max_steps = task, max_steps
        self._planner: _Scene | None = None
        self._plan: np.ndarray | None = None

    def reset(self) -> None:
        """Plan again from the next state."""
        self._plan = None

    def act(self, state: np.ndarray, step: int) -> np.ndarray:
        """The planned joint command for ``step`` (the last one past the plan's end)."""
        if self._plan is None:
            names = sorted(OBJECT_NAMES[self.task])
            state = np.asarray(state, float)
            if state.shape != (3 * len(names),):
                raise VLAError(f"ALOHA {self.task} state must hold the xyz of {', '.join(names)}, got {state.shape[0]} values")
            objects = {name: state[3 * i:3 * i + 3] for i, name in enumerate(names)}
            if self._planner is None:
                self._planner = _Scene(self.task, mocap=False)
                self._ik = _IKSolver(self.task, self._planner)
            self._plan = plan_joint_commands(self._planner, self._ik, self.task, objects, self.max_steps)
        return self._plan[min(max(step, 0), len(self._plan) - 1)].copy()


class AlohaTask(Task):
    """One ALOHA task: joint-position control at 50 Hz, three cameras, seeded object placement, scripted expert."""

    command_interface = JOINT_POSITION

    def __init__(self, name: str, image_size: int = 64, max_steps: int = 400, camera: str | list[str] = DEFAULT_CAMERAS,
                 render: bool = True):
        if name not in ALOHA_TASKS:
            raise VLAError(f"unknown ALOHA task '{name}'; expected one of {', '.join(ALOHA_TASKS)}")
        cameras = [c.strip() for c in camera.split(",")] if isinstance(camera, str) else list(camera)
        for cam in cameras:
            if cam not in CAMERAS:
                raise VLAError(f"unknown ALOHA camera '{cam}'; expected one of {', '.join(CAMERAS)}")
        ensure_offscreen_gl()
        self.name, self.max_steps, self.cameras = name, max_steps, cameras
        self.scene = _Scene(name, mocap=False)
        self._planner: _Scene | None = None
        m = self.scene.model
        self.scene.model.light_castshadow[:] = 0
        self._renderers = {cam: SceneRenderer(m, CAMERAS[cam][0], image_size, fovy=CAMERAS[cam][1])
                           for cam in cameras} if render else {}
        self._viewer: SceneRenderer | None = None
        self.spec = PolicySpec(cameras={cam: [image_size, image_size, 3] for cam in cameras},
                               proprio_names=list(JOINT_NAMES), action_names=list(JOINT_NAMES), fps=FPS,
                               robot="aloha", action_low=list(ACTION_LOW), action_high=list(ACTION_HIGH))
        self._instruction = INSTRUCTIONS[name][0][0]
        self._last_images = {cam: np.zeros((image_size, image_size, 3), np.uint8) for cam in cameras}
        self._expert: np.ndarray | None = None
        self._setpoint = np.zeros(len(JOINT_NAMES), np.float32)
        self._steps = 0
        self._stage = 0
        self.objects: dict[str, np.ndarray] = {}

    # -- placement and the expert -------------------------------------------------------------------

    def _sample_objects(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)

        def draw(name, ranges):
            return np.array([rng.uniform(*ranges[0]), rng.uniform(*ranges[1]), REST_Z[name]])

        if self.name == "transfer-cube":
            return {"box": draw("box", CUBE_RANGE)}
        return {"peg": draw("peg", PEG_RANGE), "socket": draw("socket", SOCKET_RANGE)}

    def _plan_expert(self) -> np.ndarray:
        """The expert's joint commands for this episode, (max_steps, 14)."""
        if self._planner is None:
            self._planner = _Scene(self.name, mocap=False)
            self._ik = _IKSolver(self.name, self._planner)
        return plan_joint_commands(self._planner, self._ik, self.name, self.objects, self.max_steps)

    @property
    def state_vector(self) -> np.ndarray:
        """The objects' positions (cube; or peg, socket), for scripted experts only, never the policy."""
        return np.concatenate([self.scene.data.body(name).xpos for name in sorted(self.objects)])

    # -- the Task interface ---------------------------------------------------------------------------

    def _observation(self, render: bool = True) -> dict:
        if render and self._renderers:
            self._last_images = {cam: r.render(self.scene.data) for cam, r in self._renderers.items()}
        return {"images": dict(self._last_images), "proprio": self.scene.joints(), "instruction": self._instruction}

    def observe(self) -> dict:
        """The observation of the current state, its cameras rendered now."""
        return self._observation(render=True)

    def render_view(self, size: int = 256) -> np.ndarray:
        """Both arms and the table from the ``angle`` camera, anti-aliased, for videos."""
        if self._viewer is None or self._viewer_size != size:
            if self._viewer is not None:
                self._viewer.close()
            self._viewer = SceneRenderer(self.scene.model, VIEW_CAMERA, size, samples=4)
            self._viewer_size = size
        return self._viewer.render(self.scene.data)

    def reset(self, seed: int, instruction: str | None = None) -> dict:
        """New episode: object placement drawn from ``seed``, arms at the start pose."""
        self._instruction = instruction or INSTRUCTIONS[self.name][0][0]
        self.objects = self._sample_objects(int(seed))
        self.scene.reset(self.objects)
        self._setpoint = self.scene.joints()
        self._expert = None
        self._steps = 0
        self._stage = 0
        return self._observation()

    def step(self, action: np.ndarray, render: bool = True) -> StepResult:
        """Command 14 joint positions for one 20 ms control period (clipped to the joint ranges; non-finite: hold)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (14,):
            raise VLAError(f"ALOHA expects 14 joint-position actions, got shape {a.shape}")
        # Non-finite: keep the last setpoint (what a joint trajectory controller holds); clipping would
        # turn inf into a joint limit.
        a = np.clip(a, ACTION_LOW, ACTION_HIGH) if np.isfinite(a).all() else self._setpoint
        self._setpoint = a.astype(np.float32)
        self.scene.command(a)
        self.scene.step()
        self._steps += 1
        contacts = self.scene.contacts()
        success = succeeded(self.name, contacts)
        self._stage = max(self._stage, stage_of(self.name, contacts))
        done = success or self._steps >= self.max_steps
        return StepResult(self._observation(render), success, bool(done))

    def stages(self) -> list[str]:
        """The task's milestones before success (``STAGES``)."""
        return list(STAGES[self.name])

    def stage_reached(self) -> int:
        """The furthest milestone of this episode so far (0: none), from the contacts after each step."""
        return self._stage

    def expert_action(self) -> np.ndarray:
        """The scripted expert's joint command for this step (planned at the first call after a reset)."""
        if self._expert is None:
            self._expert = self._plan_expert()
        return self._expert[min(self._steps, len(self._expert) - 1)].copy()

    def hold_action(self, last_action: np.ndarray | None) -> np.ndarray:
        """Keep the last setpoint (a position-controlled arm holds by repeating it); at the start, the rest pose."""
        return (self._setpoint if last_action is None else np.asarray(last_action, np.float32)).copy()

    def close(self) -> None:
        """Release the renderers."""
        for r in [*self._renderers.values(), self._viewer]:
            if r is not None:
                r.close()
        self._renderers, self._viewer = {}, None


class AlohaSuite(Suite):
    """Bimanual ALOHA: transfer-cube and insertion."""

    name = "aloha"
    task_names = list(ALOHA_TASKS)
    max_steps = 400   # 8 s at 50 Hz: the scripted expert's plan
    cameras = list(CAMERAS)

    def scripted_expert(self, task: str) -> AlohaExpert:
        """The scripted expert of ``task``, planning from the object positions on /sim/state."""
        if task not in ALOHA_TASKS:
            raise VLAError(f"unknown ALOHA task '{task}'; expected one of {', '.join(ALOHA_TASKS)}")
        return AlohaExpert(task)

    def make_task(self, name: str, **kwargs) -> AlohaTask:
        """Build one task (``image_size``, ``max_steps``, ``camera``: names, comma-separated or a list)."""
        return AlohaTask(name, **kwargs)

    def instructions(self, task: str, split: str = "train") -> list[str]:
        """Training or held-out phrasings of ``task``."""
        if task not in INSTRUCTIONS:
            raise VLAError(f"unknown ALOHA task '{task}'")
        return list(INSTRUCTIONS[task][0 if split == "train" else 1])


def _probe() -> None:
    """``python -m vla_sim.aloha_suite TASK [SEEDS]``: replay the scripted expert on seeds 0.. and report success."""
    import sys

    name, seeds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10
    task = AlohaTask(name, render=False)
    wins = []
    for seed in range(seeds):
        task.reset(seed)
        result = None
        for _ in range(task.max_steps):
            result = task.step(task.expert_action(), render=False)
            if result.done:
                break
        wins.append(bool(result and result.success))
        print(f"seed {seed}: {'success' if wins[-1] else 'failure'} after {task._steps} steps", flush=True)
    print(f"{name}: the expert succeeded on {sum(wins)} of {seeds} seeds")


if __name__ == "__main__":
    _probe()
