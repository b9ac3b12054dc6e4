"""Off-screen OpenGL selection for MuJoCo on machines without a display.

MuJoCo reads ``MUJOCO_GL`` when it first creates a context, so the choice is made once, before the
first renderer: the user's setting is kept; otherwise EGL is tried, then OSMesa.
"""

from __future__ import annotations

import os
import subprocess
import sys

from vla_core.errors import VLAError

_PROBE = "import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); r = mujoco.Renderer(m, 8, 8); r.close()"


def _works(backend: str) -> bool:
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def ensure_offscreen_gl() -> str:
    """Set ``MUJOCO_GL`` to a working off-screen backend and return it; raise a clear error if none works."""
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        return chosen
    for backend in ("egl", "osmesa"):
        if _works(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    raise VLAError("no off-screen OpenGL works for MuJoCo: install EGL (libegl1) or OSMesa (libosmesa6), "
                   "or set MUJOCO_GL yourself")
