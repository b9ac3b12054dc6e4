"""A node graph declared once, as data, and read by both launch front ends.

Graph file (YAML), e.g. ``vla_bringup/launch/robot.yaml``::

    description: simulated robot + VLA controller + safety monitor
    arguments:
      checkpoint: {default: "", description: "policy checkpoint directory"}
    nodes:
      - name: vla_controller            # ROS node name
        package: vla_inference          # package + executable (lib/<package>/<executable>) ...
        executable: vla_controller
        # command: [python3, path/to/node.py]   # ... or an explicit command
        parameters: [config/$(arg robot)/vla_controller.yaml]   # relative to the package share directory;
                                        # $(arg NAME) is the value of launch argument NAME
        arg_parameters: {checkpoint_path: checkpoint}  # ROS parameter <- launch argument
        remappings: {/cmd: /safety/cmd_in}
        arguments: []                   # extra command-line arguments
        required: true                  # if it exits, everything stops
        if: local_policy                # optional: started only when this launch argument is true

``robot.launch.py`` turns this into ``launch_ros.actions.Node`` actions; ``vla launch`` hands it to
:class:`~vla_core.launch.supervisor.Supervisor`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vla_core.configuration import load_yaml
from vla_core.errors import ConfigError

BRINGUP_PACKAGE = "vla_bringup"
ARG_SUBSTITUTION = re.compile(r"\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)")


def split_arguments(text: str) -> list[tuple[str, bool]]:
    """``text`` as (piece, is_argument_name) pairs, empty pieces left out.

    ``"config/$(arg robot)/x.yaml"`` -> ``[("config/", False), ("robot", True), ("/x.yaml", False)]``.
    """
    pieces = ARG_SUBSTITUTION.split(text)   # text, name, text, name, ..., text
    return [(piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece]


@dataclass
class LaunchArgument:
    """A launch argument with its default and description."""

    name: str
    default: str
    description: str = ""


@dataclass
class NodeSpec:
    """One node of the graph, with parameter files resolved to absolute paths."""

    name: str
    package: str = ""
    executable: str = ""
    command: list[str] = field(default_factory=list)
    parameters: list[Path] = field(default_factory=list)
    parameter_templates: list[str] = field(default_factory=list)  # the same files before $(arg ...) substitution
    arg_parameters: dict[str, str] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)
    arguments: list[str] = field(default_factory=list)
    required: bool = True
    condition: str = ""          # launch argument that must be true for the node to start ("" = always)

    def ros_args(self, values: dict[str, str]) -> list[str]:
        """``--ros-args ...`` for this node given the launch argument ``values``."""
        out = ["--ros-args", "-r", f"__node:={self.name}"]
        for p in self.parameters:
            out += ["--params-file", str(p)]
        for param, arg in self.arg_parameters.items():
            value = values[arg] if values[arg] != "" else "''"   # ROS parses the value as YAML: '' is the empty string
            out += ["-p", f"{param}:={value}"]
        for src, dst in self.remappings.items():
            out += ["-r", f"{src}:={dst}"]
        return out


TRUE_VALUES = ("true", "1", "yes", "on")


def is_true(value: str) -> bool:
    """A launch argument's truth, as launch's IfCondition reads it."""
    return value.strip().lower() in TRUE_VALUES


@dataclass
class Graph:
    """A resolved node graph: where it came from, its arguments and values, its nodes."""

    path: Path
    description: str
    arguments: dict[str, LaunchArgument]
    values: dict[str, str]
    nodes: list[NodeSpec]

    @property
    def active_nodes(self) -> list[NodeSpec]:
        """The nodes whose ``if`` condition holds for the argument values."""
        return [n for n in self.nodes if not n.condition or is_true(self.values[n.condition])]

    def command(self, node: NodeSpec) -> list[str]:
        """Full command line of ``node`` (executable resolved through the ament prefixes)."""
        base = list(node.command) if node.command else [str(find_executable(node.package, node.executable))]
        return base + list(node.arguments) + node.ros_args(self.values)

    def describe(self) -> str:
        """Human-readable resolved graph (what ``vla launch --dry-run`` prints)."""
        lines = [f"graph {self.path}", f"  {self.description}".rstrip(), "arguments:"]
        for a in self.arguments.values():
            lines.append(f"  {a.name} = {self.values[a.name]!r}   ({a.description or 'no description'})")
        lines.append("nodes:")
        for n in self.active_nodes:
            try:
                cmd = " ".join(self.command(n))
            except ConfigError as exc:
                cmd = f"<unresolved: {exc}>"
            lines.append(f"  {n.name}{'' if n.required else ' (optional)'}")
            lines.append(f"    command: {cmd}")
            for p in n.parameters:
                lines.append(f"    parameters file: {p}")
            for src, dst in n.remappings.items():
                lines.append(f"    remap: {src} -> {dst}")
        return "\n".join(lines)


def ament_prefixes() -> list[Path]:
    """Install prefixes from ``AMENT_PREFIX_PATH`` (what ``ros2 run`` searches)."""
    return [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def find_share(package: str) -> Path | None:
    """``share/<package>`` of an installed package, or None."""
    for prefix in ament_prefixes():
        if (prefix / "share" / "ament_index" / "resource_index" / "packages" / package).exists():
            return prefix / "share" / package
    return None


def find_executable(package: str, executable: str) -> Path:
    """``lib/<package>/<executable>`` in the ament prefixes (like ``ros2 run``)."""
    for prefix in ament_prefixes():
        candidate = prefix / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(f"executable '{executable}' of package '{package}' was not found in AMENT_PREFIX_PATH "
                      f"(build the workspace and source install/setup.bash)")


def graph_path(name: str) -> Path:
    """A graph name (``robot``) -> ``<vla_bringup share>/launch/robot.yaml``; a path is returned as is."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"graph file '{p}' does not exist")
        return p
    share = find_share(BRINGUP_PACKAGE)
    if share is None:
        raise ConfigError(f"package {BRINGUP_PACKAGE} is not installed (build the workspace and source install/setup.bash)")
    p = share / "launch" / f"{name}.yaml"
    if not p.is_file():
        known = sorted(x.stem for x in (share / "launch").glob("*.yaml"))
        raise ConfigError(f"no graph named '{name}' in {BRINGUP_PACKAGE}; known graphs: {', '.join(known)}")
    return p


def check_parameters_file(path: Path) -> None:
    """A ROS parameters file must map node names (or ``/**``) to ``{ros__parameters: {...}}``."""
    data = load_yaml(path, what="parameters file")
    if not data:
        raise ConfigError(f"parameters file '{path}' must map node names to {{ros__parameters: ...}}")
    for node, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get("ros__parameters"), dict):
            raise ConfigError(f"parameters file '{path}': entry '{node}' must contain a 'ros__parameters' mapping")


def _parse_values(args: list[str]) -> dict[str, str]:
    values = {}
    for a in args:
        if ":=" not in a:
            raise ConfigError(f"launch argument '{a}' must look like name:=value")
        k, v = a.split(":=", 1)
        values[k] = v
    return values


def load_graph(name: str, args: list[str] | None = None) -> Graph:
    """Read, validate and resolve a graph; ``args`` are ``name:=value`` launch arguments."""
    path = graph_path(name)
    data = load_yaml(path)
    share = path.parent.parent
    where = f"graph '{path}'"
    raw_args = data.get("arguments") or {}
    if not isinstance(raw_args, dict):
        raise ConfigError(f"{where}: 'arguments' must be a mapping of name -> {{default, description}}")
    arguments = {}
    for k, v in raw_args.items():
        v = v if isinstance(v, dict) else {"default": v}
        arguments[k] = LaunchArgument(k, str(v.get("default", "")), str(v.get("description", "")))
    values = {k: a.default for k, a in arguments.items()}
    for k, v in _parse_values(list(args or [])).items():
        if k not in arguments:
            raise ConfigError(f"unknown launch argument '{k}' for {path.stem}; expected one of: {', '.join(arguments) or 'none'}")
        values[k] = v
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ConfigError(f"{where}: 'nodes' must be a non-empty list")
    nodes, names = [], set()
    allowed = {"name", "package", "executable", "command", "parameters", "arg_parameters", "remappings", "arguments", "required",
               "if"}
    for i, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict) or "name" not in raw:
            raise ConfigError(f"{where}: node {i} must be a mapping with a 'name'")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ConfigError(f"{where}: node '{raw['name']}' has unknown key '{unknown[0]}'; expected {sorted(allowed)}")
        if raw["name"] in names:
            raise ConfigError(f"{where}: node name '{raw['name']}' appears twice")
        names.add(raw["name"])
        if not raw.get("command") and not (raw.get("package") and raw.get("executable")):
            raise ConfigError(f"{where}: node '{raw['name']}' needs 'package' and 'executable', or 'command'")
        params, templates = [], []
        for p in raw.get("parameters") or []:
            template = str(p if Path(p).is_absolute() else share / p)
            undeclared = [name for name, is_arg in split_arguments(template) if is_arg and name not in arguments]
            if undeclared:
                raise ConfigError(f"{where}: node '{raw['name']}' parameters file '{p}' refers to undeclared argument "
                                  f"'{undeclared[0]}'")
            pp = Path("".join(values[piece] if is_arg else piece for piece, is_arg in split_arguments(template)))
            check_parameters_file(pp)
            params.append(pp)
            templates.append(template)
        arg_params = {str(k): str(v) for k, v in (raw.get("arg_parameters") or {}).items()}
        for param, arg in arg_params.items():
            if arg not in arguments:
                raise ConfigError(f"{where}: node '{raw['name']}' parameter '{param}' refers to undeclared argument '{arg}'")
        condition = str(raw.get("if", ""))
        if condition and condition not in arguments:
            raise ConfigError(f"{where}: node '{raw['name']}' has 'if: {condition}', which is not a declared argument")
        command = raw.get("command") or []
        if isinstance(command, str):
            command = command.split()
        nodes.append(NodeSpec(
            name=str(raw["name"]), package=str(raw.get("package", "")), executable=str(raw.get("executable", "")),
            command=[str(c).replace("$(share)", str(share)) for c in command], parameters=params,
            parameter_templates=templates,
            arg_parameters=arg_params,
            remappings={str(k): str(v) for k, v in (raw.get("remappings") or {}).items()},
            arguments=[str(a) for a in raw.get("arguments") or []], required=bool(raw.get("required", True)),
            condition=condition,
        ))
    return Graph(path, str(data.get("description", "")), arguments, values, nodes)
