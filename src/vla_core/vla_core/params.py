"""ROS parameters <-> configuration dataclasses, without importing ROS.

A node declares one parameter per dataclass field (default and description from the field, the
description from ``field(metadata={"doc": ...})``) and converts the values back with
:func:`from_parameters`, which raises :class:`ParameterError` naming the parameter on a bad value.
So every parameter is declared once, in the dataclass that the plain logic class consumes.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from vla_core.errors import VLAError


class ParameterError(VLAError):
    """A node parameter has an invalid value."""


@dataclass
class ParameterSpec:
    """Name, default, description and kind of one parameter.

    ``kind``: bool, integer, double, string, double_array or string_array (ROS cannot infer the
    type of an empty list, so nodes declare it from this).
    """

    name: str
    default: Any
    description: str
    kind: str

    @property
    def dynamic_typing(self) -> bool:
        """ROS infers BYTE_ARRAY from an empty list; such parameters must accept the file's array type."""
        return self.kind.endswith("array") and not self.default

    @property
    def ros_type(self) -> int:
        """rcl_interfaces/ParameterType constant (plain integers, so no ROS import is needed here)."""
        return {"bool": 1, "integer": 2, "double": 3, "string": 4, "double_array": 8, "string_array": 9}[self.kind]


_KINDS = {bool: "bool", int: "integer", float: "double", str: "string"}


def _kind(tp) -> str:
    if typing.get_origin(tp) is list:
        inner = (typing.get_args(tp) or (str,))[0]
        return "double_array" if inner is float else "string_array"
    return _KINDS.get(tp, "string")


def parameter_specs(cls) -> list[ParameterSpec]:
    """One :class:`ParameterSpec` per field of dataclass ``cls`` (fields without a default are required: default None)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(ParameterSpec(f.name, default, f.metadata.get("doc", f.name.replace("_", " ")), _kind(hints[f.name])))
    return out


def from_parameters(cls, values: dict[str, Any], node_name: str = "node"):
    """Build ``cls`` from parameter values; a bad value raises :class:`ParameterError` naming the parameter."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for spec in parameter_specs(cls):
        value = values.get(spec.name, spec.default)
        tp = hints[spec.name]
        try:
            if tp is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif typing.get_origin(tp) is list and value is not None:
                inner = (typing.get_args(tp) or (Any,))[0]
                value = [float(v) if inner is float else v for v in value]
        except (TypeError, ValueError):
            raise ParameterError(f"{node_name}: parameter '{spec.name}' has an invalid value {value!r}") from None
        if value is None:
            raise ParameterError(f"{node_name}: parameter '{spec.name}' is required ({spec.description})")
        kwargs[spec.name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{node_name}: invalid parameters: {exc}") from None


def doc(text: str, **kwargs):
    """A dataclass field whose ``text`` becomes the ROS parameter's description."""
    return dataclasses.field(metadata={"doc": text}, **kwargs)


def declare_parameters(node, specs: list[ParameterSpec], descriptor_cls) -> dict[str, Any]:
    """Declare ``specs`` on an rclpy ``node`` and return their values by name.

    ``descriptor_cls`` is ``rcl_interfaces.msg.ParameterDescriptor``, passed in so this module needs no ROS import.
    """
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor_cls(description=spec.description, type=spec.ros_type,
                                                                      dynamic_typing=spec.dynamic_typing))
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}
