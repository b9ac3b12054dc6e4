"""The installed node graphs and their parameter files are valid; bad graphs get clear errors."""

from pathlib import Path

import pytest
import yaml

from vla_core.errors import ConfigError
from vla_core.launch.graph import check_parameters_file, load_graph

PKG = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, args", [("robot", []), ("robot", ["robot:=aloha"]), ("teleop", []), ("policy", [])])
def test_graphs_load_and_reference_real_parameter_files(name, args):
    graph = load_graph(str(PKG / "launch" / f"{name}.yaml"), args)
    assert graph.nodes
    for node in graph.nodes:
        for p in node.parameters:
            check_parameters_file(p)
            assert node.name in yaml.safe_load(p.read_text()), f"{p} has no section for node {node.name}"


def test_robot_graph_keeps_the_controller_off_the_robot_topic():
    graph = load_graph(str(PKG / "launch" / "robot.yaml"), ["checkpoint:=/tmp/ckpt"])
    by_name = {n.name: n for n in graph.nodes}
    assert set(by_name["vla_controller"].remappings.values()) == {"/safety/in/cmd_twist", "/safety/in/gripper_cmd",
                                                                  "/safety/in/joint_trajectory"}
    assert set(by_name["safety_monitor"].remappings.values()) == {"/robot/cmd_twist", "/robot/gripper_cmd",
                                                                  "/joint_trajectory_controller/joint_trajectory"}
    assert "checkpoint:=/tmp/ckpt" in by_name["vla_policy"].ros_args(graph.values)
    assert not any("checkpoint" in a for a in by_name["vla_controller"].ros_args(graph.values))  # the executor has no model
    assert [n.name for n in graph.active_nodes] == ["sim_robot", "vla_policy", "vla_controller", "safety_monitor"]


def test_the_robot_argument_picks_the_parameter_files():
    for robot in ("sawyer", "aloha"):
        graph = load_graph(str(PKG / "launch" / "robot.yaml"), [f"robot:={robot}"])
        files = {n.name: [p.relative_to(PKG) for p in n.parameters] for n in graph.nodes}
        assert files["safety_monitor"] == [Path("config") / robot / "safety_monitor.yaml"]
        assert files["vla_policy"] == [Path("config") / "vla_policy.yaml"]   # the same for every robot
        assert [n.parameter_templates for n in graph.nodes][0] == [str(PKG / "config" / "$(arg robot)" / "sim_robot.yaml")]
    with pytest.raises(ConfigError, match=r"parameters file '.*config/ur5/sim_robot.yaml' does not exist"):
        load_graph(str(PKG / "launch" / "robot.yaml"), ["robot:=ur5"])


def test_policy_can_run_elsewhere():
    robot = load_graph(str(PKG / "launch" / "robot.yaml"), ["policy:=false", "sim:=False"])
    assert [n.name for n in robot.active_nodes] == ["vla_controller", "safety_monitor"]
    assert "vla_policy" not in robot.describe()
    remote = load_graph(str(PKG / "launch" / "policy.yaml"), ["checkpoint:=/tmp/export", "backend:=tensorrt"])
    assert [n.name for n in remote.active_nodes] == ["vla_policy"]
    assert "backend:=tensorrt" in remote.active_nodes[0].ros_args(remote.values)


def _graph(tmp_path, node_extra, params_text=None):
    (tmp_path / "launch").mkdir(exist_ok=True)
    (tmp_path / "config").mkdir(exist_ok=True)
    if params_text is not None:
        (tmp_path / "config" / "p.yaml").write_text(params_text)
    node = {"name": "n", "command": ["true"]} | node_extra
    path = tmp_path / "launch" / "g.yaml"
    path.write_text(yaml.safe_dump({"arguments": {"a": {"default": "1"}}, "nodes": [node]}))
    return str(path)


@pytest.mark.parametrize("extra, params_text, words", [
    ({"parameters": ["config/missing.yaml"]}, None, "parameters file '.*missing.yaml' does not exist"),
    ({"parameters": ["config/p.yaml"]}, "n: {ros__parameters: [unclosed", "not valid YAML at line 1"),
    ({"parameters": ["config/p.yaml"]}, "n: {rate: 3}", "entry 'n' must contain a 'ros__parameters' mapping"),
    ({"arg_parameters": {"x": "undeclared"}}, None, "refers to undeclared argument 'undeclared'"),
    ({"parameters": ["config/$(arg b)/p.yaml"]}, None, "parameters file 'config/\\$\\(arg b\\)/p.yaml' refers to undeclared argument 'b'"),
    ({"colour": "red"}, None, "unknown key 'colour'"),
    ({"command": []}, None, "needs 'package' and 'executable', or 'command'"),
    ({"if": "undeclared"}, None, "has 'if: undeclared', which is not a declared argument"),
])
def test_bad_graphs(tmp_path, extra, params_text, words):
    with pytest.raises(ConfigError, match=words):
        load_graph(_graph(tmp_path, extra, params_text))


def test_unknown_argument_and_graph_name(tmp_path):
    with pytest.raises(ConfigError, match="unknown launch argument 'b'"):
        load_graph(_graph(tmp_path, {}), ["b:=2"])
    with pytest.raises(ConfigError, match="must look like name:=value"):
        load_graph(_graph(tmp_path, {}), ["a=2"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_graph(str(tmp_path / "nope.yaml"))
