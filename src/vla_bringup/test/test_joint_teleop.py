"""Teleop of a joint-position robot over real DDS: teleop.yaml with robot:=aloha (sim_robot, the scripted expert
publishing one-point JointTrajectory messages as a leader-arm bridge would, teleop_collector) records
episodes with 14-D joint-position actions and three cameras that vla_core loads."""

import time

import numpy as np
import rclpy  # noqa: F401 - required: a missing install fails, never skips
import yaml
from conftest import Launch, graph_with_overrides
from std_srvs.srv import SetBool, Trigger

from vla_core.data.dataset import load_episodes
from vla_sim.aloha_suite import DEFAULT_CAMERAS, JOINT_NAMES, AlohaSuite


def test_scripted_aloha_teleop_records_joint_space_episodes(tmp_path, ros_env, probe):
    out = tmp_path / "teleop"
    overrides = {"sim_robot": {"max_steps": 200, "camera_rate": 10.0}, "scripted_teleop": {"episodes": 2, "seed_start": 3}}
    launch = Launch(graph_with_overrides("teleop", tmp_path, overrides), ros_env, ["robot:=aloha", f"out_dir:={out}"])
    try:
        deadline = time.monotonic() + 150
        while "finished 2 demonstrations" not in launch.output() and launch.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "finished 2 demonstrations" in launch.output(), launch.output()
        # A refused request after successful ones is answered and logged, not fatal (rclpy refuses a logging
        # call site whose severity changes: the collector once died here when an episode was too short).
        refused = probe.call(SetBool, "/teleop_collector/stop", SetBool.Request(data=True))
        assert not refused.success and refused.message == "not recording"
        time.sleep(0.5)
        assert launch.proc.poll() is None, launch.output()
    finally:
        code = launch.stop()
    assert code == 0, launch.output()
    report = load_episodes(out)
    collector = "\n".join(line for line in launch.output().splitlines() if "teleop_collector" in line)
    assert not report.skipped and len(report.episodes) == 2, collector[-3000:]
    suite = AlohaSuite()
    for ep in report.episodes:
        n = len(ep)
        # The collector samples on a 50 Hz timer; a loaded machine delays ticks (94 of 200 frames seen with CI and a
        # training sharing the 2 cores), so the count is loose and coverage is checked against the plan below.
        assert n >= 20 and ep.robot == "aloha" and ep.fps == 50.0
        assert ep.instruction == suite.instructions("transfer-cube")[0]
        assert ep.proprio_names == JOINT_NAMES and ep.action_names == JOINT_NAMES
        assert ep.actions.shape == (n, 14) and ep.proprio.shape == (n, 14)
        assert sorted(ep.images) == sorted(DEFAULT_CAMERAS) and all(len(ep.images[c]) == n for c in DEFAULT_CAMERAS)
        # The actions are the expert's planned joint positions, taken from the commanded trajectories.
        assert np.abs(ep.actions[-1] - ep.actions[0]).max() > 0.3
        assert np.abs(ep.proprio[-1] - ep.proprio[0]).max() > 0.3   # and the arms followed them
    # Each recorded action is a row of the plan for one of the two seeds (3 and 4).
    task = suite.make_task("transfer-cube", image_size=8, render=False)
    plans = []
    for seed in (3, 4):
        task.reset(seed)
        expert = suite.scripted_expert("transfer-cube")
        plans.append(np.array([expert.act(task.state_vector, k) for k in range(400)]))
    task.close()
    rows = np.concatenate(plans)
    for ep in report.episodes:
        distance = np.abs(ep.actions[:, None, :] - rows[None]).max(-1)
        nearest = distance.min(1)
        # The episode runs to the sim's max_steps (200) however many ticks the collector got: its last action is a
        # late step of the plan (a stale /episode/done once ended one after 28 frames, at plan step 28).
        last_step = int(distance[-1].argmin()) % len(plans[0])   # the row's step within its seed's plan
        assert last_step >= 150, last_step
        # ... and it starts at the plan's beginning: the teleop plans before the episode's clock starts (planned
        # after the reset, the first 100-165 steps went by while the arms waited, and the replay began mid-plan).
        first_step = int(distance[0].argmin()) % len(plans[0])
        assert first_step <= 30, first_step
        # (the teleop plans from object poses a few steps later, when they have settled by microns: 1.001e-3 rad
        # seen once in a fresh-clone CI run; what the arms measured is 10x further from the plan, checked below)
        assert nearest.max() < 3e-3, nearest.max()
        measured = np.abs(ep.proprio[:, None, :] - rows[None]).max(-1).min(1)
        assert measured.max() > 1e-2   # what the arms measured is not the plan: the check tells them apart


def test_scripted_teleop_asks_again_while_the_collector_refuses_to_start(tmp_path, ros_env, probe):
    # The collector is already recording (the test holds an episode open) when the scripted teleop asks it to
    # start: the teleop must ask again rather than act a demonstration nobody records, each time after a fresh
    # reset of the same seed (the expert's plan counts steps from the episode's start), and record once it may.
    out = tmp_path / "teleop"
    overrides = {"sim_robot": {"max_steps": 200, "camera_rate": 10.0},
                 "scripted_teleop": {"episodes": 1, "seed_start": 3, "start_timeout": 60.0},
                 "teleop_collector": {"instruction": "held open by the test"}}
    graph = yaml.safe_load(graph_with_overrides("teleop", tmp_path, overrides).read_text())

    def part(name, keep):   # the installed graph with only some of its nodes
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(graph | {"nodes": [n for n in graph["nodes"] if keep(n["name"])]}))
        return path

    args = ["robot:=aloha", f"out_dir:={out}"]
    robot = Launch(part("robot", lambda n: n != "scripted_teleop"), ros_env, args)
    teleop = None
    try:
        held = probe.call(Trigger, "/teleop_collector/start", Trigger.Request(), timeout=60)
        assert held.success, held.message
        teleop = Launch(part("teleop", lambda n: n == "scripted_teleop"), ros_env, args)
        assert teleop.wait_for("asking again", 90), teleop.output()
        assert "collector refused to start: already recording" in teleop.output()
        time.sleep(1.0)                                    # still refused, still asking: nothing acted yet
        assert "not recorded" not in teleop.output() and "finished" not in teleop.output()
        discarded = probe.call(Trigger, "/teleop_collector/discard", Trigger.Request())
        assert discarded.success, discarded.message
        assert teleop.wait_for("finished 1 demonstrations", 90), teleop.output()
    finally:
        teleop_code = teleop.stop() if teleop is not None else 0
        code = robot.stop()
    assert code == 0 and teleop_code == 0, robot.output() + (teleop.output() if teleop else "")
    assert "not recorded" not in teleop.output(), teleop.output()
    report = load_episodes(out)
    collector = "\n".join(line for line in robot.output().splitlines() if "teleop_collector" in line)
    assert not report.skipped and len(report.episodes) == 1, collector[-3000:]   # the held-open one was discarded
    # One reset, one more after the expert planned, and one before each request after a refusal: asked again
    # only after resetting the scene again, never in the middle of an episode.
    resets = robot.output().count("episode: task transfer-cube, seed 3,")
    assert resets >= 3, robot.output()
    ep = report.episodes[0]
    assert ep.instruction == AlohaSuite().instructions("transfer-cube")[0] and len(ep) >= 20
    assert np.abs(ep.actions[-1] - ep.actions[0]).max() > 0.1   # the expert acted while it was recorded
