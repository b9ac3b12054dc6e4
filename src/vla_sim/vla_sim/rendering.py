"""Off-screen rendering of MuJoCo scenes for policies and videos: one renderer for every path.

:class:`SceneRenderer` draws a camera of a physics model's current state from a *render copy* of
the model whose visual meshes are decimated (``fast-simplification``) and whose multisampling is
off. Physics never sees the copy (collision meshes, contacts and dynamics are the original model's),
so the task is unchanged; only what the camera draws is simpler. Measured on a 2-core CPU with
software OpenGL, Meta-World's Sawyer at 64 px: 20.5 ms a frame at full detail, 2.5 ms with meshes
decimated by 90 % and no multisampling (``python -m vla_sim.rendering``). ``vla collect``,
``vla eval`` and ``sim_robot`` all render through this class, so their images are identical.

:func:`ensure_offscreen_gl`: MuJoCo reads ``MUJOCO_GL`` when it first creates a context, so the choice
is made once, before the first renderer: the user's setting is kept; otherwise EGL, then OSMesa.
"""

from __future__ import annotations

import atexit
import copy
import os
import subprocess
import sys
import time

import numpy as np

from vla_core.errors import VLAError

# Visual meshes with fewer faces than this are left as they are (decimating them saves nothing).
MIN_FACES = 500

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


def _use_backend(backend: str) -> None:
    """Make ``mujoco.Renderer`` create contexts of ``backend``.

    ``mujoco`` picks its context class from ``MUJOCO_GL`` once, when first imported; a process that
    imported it before :func:`ensure_offscreen_gl` ran (a test runner, a ROS node importing a simulator
    package) would otherwise get a windowing context on a machine without a display.
    """
    import importlib

    from mujoco import gl_context

    module = {"egl": "mujoco.egl", "osmesa": "mujoco.osmesa"}.get(backend.lower())
    if module and getattr(gl_context.GLContext, "__module__", "") != module:
        gl_context.GLContext = importlib.import_module(module).GLContext


def decimate_visual_meshes(model, reduction: float) -> int:
    """Simplify, in place, every mesh of ``model`` with at least ``MIN_FACES`` faces; returns the faces left.

    Meant for a render copy of a model: vertices, faces and normals are rewritten into the mesh's own
    slots (the simplified mesh is never larger), with area-weighted vertex normals.
    """
    import fast_simplification

    for i in range(model.nmesh):
        nf = int(model.mesh_facenum[i])
        if nf < MIN_FACES or reduction <= 0:
            continue
        va, nv, fa = model.mesh_vertadr[i], model.mesh_vertnum[i], model.mesh_faceadr[i]
        verts, faces = fast_simplification.simplify(model.mesh_vert[va:va + nv].astype(np.float64),
                                                    model.mesh_face[fa:fa + nf].astype(np.int64),
                                                    target_reduction=reduction)
        normals = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
        vn = np.zeros_like(verts)
        for k in range(3):
            np.add.at(vn, faces[:, k], normals)
        vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
        model.mesh_vert[va:va + len(verts)] = verts
        model.mesh_vertnum[i] = len(verts)
        model.mesh_face[fa:fa + len(faces)] = faces
        model.mesh_facenum[i] = len(faces)
        na = model.mesh_normaladr[i]
        model.mesh_normal[na:na + len(vn)] = vn
        model.mesh_normalnum[i] = len(vn)
        model.mesh_facenormal[fa:fa + len(faces)] = faces
    return int(model.mesh_facenum.sum())


class SceneRenderer:
    """Renders ``camera`` of a model's state (an ``MjData``) at ``size`` pixels, through a simplified copy.

    ``reduction``: fraction of each large visual mesh's faces removed (0 keeps full detail);
    ``samples``: multisampling (0 = off, the fast default; 4 is MuJoCo's own default);
    ``flip``: cameras mounted upside down (Meta-World's ``corner2``) are turned right side up here, once;
    ``fovy``: the camera's vertical field of view in degrees (None: the model's), e.g. to frame the workspace.
    """

    def __init__(self, model, camera: str, size: int, reduction: float = 0.9, samples: int = 0, flip: bool = False,
                 fovy: float | None = None):
        import mujoco

        _use_backend(ensure_offscreen_gl())
        self.render_model = copy.deepcopy(model)
        self.faces = decimate_visual_meshes(self.render_model, reduction)
        self.render_model.vis.quality.offsamples = samples
        if fovy is not None:
            cam = mujoco.mj_name2id(self.render_model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if cam < 0:
                raise VLAError(f"the model has no camera '{camera}'")
            self.render_model.cam_fovy[cam] = fovy
        self.camera, self.flip = camera, flip
        self._renderer = mujoco.Renderer(self.render_model, size, size)
        # Closed at interpreter exit too, before EGL's own exit handler tears the display down (exit handlers
        # run last-registered first, and EGL's is registered with the first context, just above): otherwise
        # each renderer left open prints an EGL error while the process exits.
        atexit.register(self.close)

    def render(self, data) -> np.ndarray:
        """uint8 (size, size, 3) RGB of the camera for the state in ``data``."""
        self._renderer.update_scene(data, camera=self.camera)
        image = self._renderer.render()
        return np.ascontiguousarray(image[::-1] if self.flip else image)

    def close(self) -> None:
        """Release the GL context now (done at exit for renderers left open)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
            atexit.unregister(self.close)


def _benchmark() -> None:
    """``python -m vla_sim.rendering``: frame time of the policy camera at full detail and as rendered here."""
    from vla_sim.metaworld_suite import MetaWorldTask

    task = MetaWorldTask("drawer-open-v3", image_size=64)
    task.reset(0)
    rows = []
    for label, reduction, samples in [("full detail, 4x multisampling (before)", 0.0, 4), ("as rendered here", 0.9, 0)]:
        r = SceneRenderer(task.env.model, "corner2", 64, reduction, samples, flip=True)
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            r.render(task.env.data)
            times.append(time.perf_counter() - t0)
        rows.append((label, float(np.median(times[20:]) * 1e3), r.faces))
        r.close()
    task.close()
    for label, ms, faces in rows:
        print(f"{label}: {ms:.2f} ms per 64 px frame ({1e3 / ms:.0f} frames/s), {faces} mesh faces")
    print(f"speed-up {rows[0][1] / rows[1][1]:.1f}x")


if __name__ == "__main__":
    _benchmark()
