"""Turn a node graph (vla_core.launch.graph) into a ``launch`` description of ``launch_ros`` Nodes.

The graph is the single declaration of the wiring; this module and ``vla launch`` are its two
front ends. Imported only by the launch files, where ``launch`` / ``launch_ros`` are installed.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from vla_core.launch.graph import Graph, load_graph, split_arguments


def graph_file(name: str) -> str:
    """Installed path of graph ``name`` (e.g. ``robot``)."""
    return os.path.join(get_package_share_directory("vla_bringup"), "launch", f"{name}.yaml")


def to_launch_description(graph: Graph) -> LaunchDescription:
    """One DeclareLaunchArgument per graph argument, one Node per graph node."""
    actions = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
               for a in graph.arguments.values()]
    for node in graph.nodes:
        on_exit = Shutdown(reason=f"required node {node.name} exited") if node.required else None
        condition = IfCondition(LaunchConfiguration(node.condition)) if node.condition else None
        if node.command:
            actions.append(ExecuteProcess(cmd=node.command + node.arguments, name=node.name, output="screen",
                                          on_exit=on_exit, condition=condition))
            continue
        # $(arg NAME) in a parameters file's path becomes the launch argument, resolved when the node starts
        parameters = [[LaunchConfiguration(piece) if is_arg else piece for piece, is_arg in split_arguments(template)]
                      for template in node.parameter_templates]
        if node.arg_parameters:
            parameters.append({param: LaunchConfiguration(arg) for param, arg in node.arg_parameters.items()})
        actions.append(Node(package=node.package, executable=node.executable, name=node.name,
                            parameters=parameters, remappings=list(node.remappings.items()),
                            arguments=node.arguments, output="screen", on_exit=on_exit, condition=condition))
    return LaunchDescription(actions)


def generate(name: str) -> LaunchDescription:
    """Launch description of graph ``name`` with its declared arguments."""
    return to_launch_description(load_graph(graph_file(name)))
