"""The nodes serve any robot: no node source (nor the parameter classes it declares) names a Meta-World joint,
action, camera, task or module. A robot is described by its spec and its parameter files (config/<robot>/)."""

import re
from pathlib import Path

import pytest

from vla_sim import aloha_suite, metaworld_suite

SRC = Path(__file__).resolve().parents[2]
# Every node, and the modules whose dataclasses are their parameters.
NODE_SOURCES = sorted(SRC.glob("vla_*/vla_*/*_node.py")) + [
    SRC / "vla_teleop/vla_teleop/recorder.py", SRC / "vla_inference/vla_inference/executor.py",
    SRC / "vla_safety/vla_safety/monitor.py", SRC / "vla_safety/vla_safety/joint_limits.py",
    SRC / "vla_core/vla_core/runtime/scheduler.py", SRC / "vla_core/vla_core/trajectory.py",
]


def meta_world_names() -> dict[str, set[str]]:
    """The Meta-World names a node must not know, read from the suite itself (so the test follows it)."""
    mujoco_cameras = {model_name for model_name, _, _ in metaworld_suite.CAMERAS.values()}
    cameras = ({*metaworld_suite.CAMERAS, *mujoco_cameras, metaworld_suite.VIEW_CAMERA}
               - set(aloha_suite.CAMERAS) - {"workspace"})   # "top" is ALOHA's too, "workspace" a plain word
    return {"joint": set(metaworld_suite.PROPRIO_NAMES), "camera": cameras, "task": set(metaworld_suite.MT10_TASKS),
            "action": set(metaworld_suite.ACTION_NAMES) - {"gripper"}, "module": {"metaworld", "sawyer"}}


def offences(text: str) -> list[str]:
    found = []
    for kind, names in meta_world_names().items():
        for name in names:
            # actions are short words (dx): only as a quoted string; modules anywhere, even inside a name
            # (vla_sim.metaworld_suite); the rest as whole words
            pattern = {"action": rf"""["']{re.escape(name)}["']""", "module": re.escape(name)}.get(
                kind, rf"(?<![\w-]){re.escape(name)}(?![\w-])")
            for m in re.finditer(pattern, text, flags=re.IGNORECASE if kind == "module" else 0):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"line {line}: {kind} '{name}'")
    return found


def test_the_forbidden_names_are_real():
    names = meta_world_names()
    assert {"hand_x", "gripper_opening"} <= names["joint"] and {"corner2", "topview"} <= names["camera"]
    assert "drawer-open-v3" in names["task"] and names["action"] == {"dx", "dy", "dz"}
    # the check finds each kind where it is written
    assert offences('cameras = ["corner2"]\nname = "hand_x"\nx = "dx"\nimport metaworld\ntask = "reach-v3"') == [
        "line 2: joint 'hand_x'", "line 1: camera 'corner2'", "line 5: task 'reach-v3'", "line 3: action 'dx'",
        "line 4: module 'metaworld'"]
    assert offences("from vla_sim.metaworld_suite import x\nsuite = 'metaworld-mt10'") == [
        "line 1: module 'metaworld'", "line 2: module 'metaworld'"]
    assert not offences("dx = 1  # a local variable\nworkspace box\n/top/image_raw\nhand_xyz\nMeta-World")


@pytest.mark.parametrize("path", NODE_SOURCES, ids=lambda p: p.name)
def test_no_node_source_names_a_meta_world_joint_action_camera_or_task(path):
    assert path.is_file(), path
    assert offences(path.read_text()) == [], f"{path.relative_to(SRC)} is written for one robot"
