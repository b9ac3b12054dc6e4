"""vla_policy: the policy in its own process; computes chunks on request.

Subscribes  <camera>/image_raw (sensor_msgs/Image) for every camera of the policy's spec (remappable),
            /joint_states (sensor_msgs/JointState: the spec's proprioception names, any order),
            /instruction (std_msgs/String), /vla/chunk_request (vla_msgs/ChunkRequest)
Publishes   /vla/action_chunk (vla_msgs/ActionChunk: header.stamp = time of the observation it was
            computed from, request_id of the request it answers), /diagnostics

The executor (vla_controller) does the scheduling; this node does only inference, through the one
runtime interface (``backend``: torch, onnxruntime, tensorrt). A request is answered from the newest
observation: a worker thread takes the newest pending request (older ones are superseded), so
callbacks never wait for inference. Observations older than ``observation_timeout`` are not used
(the request goes unanswered and the robot holds once its plan runs out). With real-time chunking
the request's planned actions condition the new chunk (flow and diffusion heads; other heads ignore
them). Because the interface is a ROS message, this node can run on another machine than the robot.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from vla_core.errors import VLAError
from vla_core.image_codec import image_to_numpy, to_rgb
from vla_core.params import ParameterError, declare_parameters, doc, from_parameters, parameter_specs
from vla_core.runtime.scheduler import guidance_for
from vla_msgs.msg import ActionChunk, ChunkRequest
from vla_ros.runner import run_node
from vla_ros.stamps import duration, seconds
from vla_ros.topics import subscribe_latched_and_volatile


@dataclass
class PolicyParams:
    """Which policy to run, and how."""

    checkpoint: str = doc("checkpoint directory (torch) or export directory (onnxruntime, tensorrt)", default="")
    backend: str = doc("inference back end: torch, onnxruntime or tensorrt", default="torch")
    inference_threads: int = doc("CPU threads for inference (0 = the library's default)", default=1)
    torch_compile: bool = doc("torch back end: torch.compile the encoder (slower start, faster inference on a GPU)",
                              default=False)
    onnx_providers: list[str] = doc("onnxruntime back end: execution providers in order of preference (empty: CPU), "
                                    "e.g. [TensorrtExecutionProvider, CUDAExecutionProvider, CPUExecutionProvider]",
                                    default_factory=list)
    observation_timeout: float = doc("seconds after which an observation is too old to act on", default=0.5)
    nice: int = doc("CPU priority offset of this process (positive = lower priority than the control loop; "
                    "0 = unchanged)", default=19)

    def __post_init__(self):
        if not self.checkpoint:
            raise ValueError("checkpoint must name a checkpoint or export directory")
        if self.backend not in ("torch", "onnxruntime", "tensorrt"):
            raise ValueError(f"backend must be torch, onnxruntime or tensorrt, got '{self.backend}'")
        if self.observation_timeout <= 0:
            raise ValueError("observation_timeout must be positive")


class VLAPolicyNode(Node):
    """Thin ROS wrapper around a PolicyRuntime."""

    def __init__(self, runtime=None, **node_kwargs):
        super().__init__("vla_policy", **node_kwargs)
        values = declare_parameters(self, parameter_specs(PolicyParams), ParameterDescriptor)
        if runtime is None:
            self.params = from_parameters(PolicyParams, values, self.get_name())
            from vla_core.runtime.backends import load_runtime, runtime_options

            p = self.params
            try:
                options = runtime_options(p.backend, p.inference_threads, p.torch_compile, p.onnx_providers)
                runtime = load_runtime(p.checkpoint, p.backend, **options)
            except VLAError as exc:
                raise ParameterError(f"vla_policy: parameters 'checkpoint' / 'backend' / 'torch_compile' / 'onnx_providers': "
                                     f"{exc}") from None
        else:
            self.params = PolicyParams(checkpoint="<in-process>", observation_timeout=values["observation_timeout"])
        self.runtime = runtime
        self.spec = runtime.spec
        self._warm_up()
        if self.params.nice > 0:  # loaded and warmed up at normal priority; serving yields to the control loop
            os.nice(self.params.nice)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._images: dict[str, tuple[float, float, np.ndarray]] = {}   # camera -> (arrival, stamp, image)
        self._proprio: tuple[float, float, np.ndarray] | None = None
        self._instruction: str | None = None
        self._request: ChunkRequest | None = None
        self._warned: set[str] = set()
        self.waiting: str | None = "no observation yet"   # why requests go unanswered (diagnostics)
        self.latencies: list[float] = []
        self.answered = self.unanswered = 0
        self.pub_chunk = self.create_publisher(ActionChunk, "/vla/action_chunk", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for cam in self.spec.cameras:
            self.create_subscription(Image, f"{cam}/image_raw", lambda msg, cam=cam: self._on_image(cam, msg),
                                     qos_profile_sensor_data)
        self.create_subscription(JointState, "/joint_states", self._on_joint_state, qos_profile_sensor_data)
        subscribe_latched_and_volatile(self, String, "/instruction", self._on_instruction)
        self.create_subscription(ChunkRequest, "/vla/chunk_request", self._on_request, 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        topics = ", ".join(f"{self.resolve_topic_name(c + '/image_raw')}" for c in self.spec.cameras)
        self.get_logger().info(f"policy {self.params.checkpoint} on {runtime.backend}: cameras {topics}, "
                               f"{runtime.horizon} actions per chunk at {self.spec.fps:g} Hz"
                               f"{', real-time chunking' if runtime.supports_guidance else ''}")

    def _warm_up(self) -> None:
        """Two inferences on a dummy observation: the first call of a back end initialises kernels and allocators."""
        obs = {"images": {c: np.zeros((1, *shape), np.uint8) for c, shape in self.spec.cameras.items()},
               "proprio": np.zeros((1, self.spec.proprio_dim), np.float32), "instruction": "warm up"}
        start = time.perf_counter()
        for _ in range(2):
            self.runtime.predict_chunk(obs)
        self.get_logger().info(f"warm-up inference: {(time.perf_counter() - start) * 500:.1f} ms per call")
        # Later garbage collections need not traverse everything torch and transformers built at start-up.
        gc.collect()
        gc.freeze()

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ inputs
    def _stamp(self, header, arrival: float) -> float:
        s = seconds(header.stamp)
        return s if s > 0 else arrival  # drivers that leave stamps empty: time of arrival

    def _on_image(self, cam: str, msg: Image) -> None:
        expected = self.spec.cameras[cam]
        try:
            image = to_rgb(image_to_numpy(msg), msg.encoding)
        except VLAError as exc:
            self._warn_once(f"image-{cam}", f"dropping images of camera '{cam}': {exc}")
            return
        if list(image.shape[:2]) != list(expected[:2]):
            self._warn_once(f"size-{cam}", f"camera '{cam}' sends {image.shape[1]}x{image.shape[0]} images; the policy "
                                           f"expects {expected[1]}x{expected[0]}: not acting on them")
            return
        now = self._now()
        with self._lock:
            self._images[cam] = (now, self._stamp(msg.header, now), image)

    def _on_joint_state(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in self.spec.proprio_names if n not in index]
        if missing or len(msg.position) != len(msg.name):
            self._warn_once("joints", f"/joint_states lacks positions for {missing or 'some names'}; "
                                      f"the policy needs {self.spec.proprio_names}: not acting on it")
            return
        now = self._now()
        with self._lock:
            self._proprio = (now, self._stamp(msg.header, now),
                             np.array([msg.position[index[n]] for n in self.spec.proprio_names], np.float32))

    def _on_instruction(self, msg: String) -> None:
        with self._lock:
            if msg.data != self._instruction:
                self.get_logger().info(f"instruction: '{msg.data}'")
            self._instruction = msg.data

    def _on_request(self, msg: ChunkRequest) -> None:
        with self._lock:
            self._request = msg  # a newer request supersedes one not yet started
        self._wake.set()

    # ------------------------------------------------------------------ inference (worker thread)
    def _observation(self) -> tuple[dict, float] | None:
        """The newest complete observation and its stamp, or None when something is missing or too old."""
        now, timeout = self._now(), self.params.observation_timeout
        with self._lock:
            images, proprio, instruction = dict(self._images), self._proprio, self._instruction
        missing = [c for c in self.spec.cameras if c not in images] + ([] if proprio else ["/joint_states"])
        if missing or not instruction:
            self.waiting = f"waiting for {missing or ['/instruction']}"
            self._warn_once("incomplete", f"no chunk yet: {self.waiting}")
            return None
        stale = [c for c, (arrival, _, _) in images.items() if now - arrival > timeout]
        stale += ["/joint_states"] if now - proprio[0] > timeout else []
        if stale:
            self.waiting = f"observations older than {timeout} s from {stale}"
            self._warn_once("stale", f"no chunk until they are fresh: {self.waiting}")
            return None
        if self.waiting is not None and "stale" in self._warned:
            self.get_logger().info("observations are fresh again")
        self._warned.discard("stale")
        self.waiting = None
        obs = {"images": {c: images[c][2][None] for c in self.spec.cameras}, "proprio": proprio[2][None],
               "instruction": instruction}
        stamp = min([images[c][1] for c in self.spec.cameras] + [proprio[1]])  # the oldest input bounds the state
        return obs, stamp

    def _work(self) -> None:
        while not self._closing:
            if not self._wake.wait(timeout=0.1):
                continue
            self._wake.clear()
            with self._lock:
                request, self._request = self._request, None
            if request is None:
                continue
            try:
                self._answer(request)
            except Exception as exc:  # noqa: BLE001 - reported; the node keeps serving requests
                self.get_logger().error(f"inference failed: {type(exc).__name__}: {exc}")

    def _answer(self, request: ChunkRequest) -> None:
        got = self._observation()
        if got is None:
            self.unanswered += 1
            return
        obs, stamp = got
        period = 1.0 / self.spec.fps
        guidance = None
        n_prefix = len(request.prefix) // max(1, len(request.action_names))
        if n_prefix and self.runtime.supports_guidance:
            if list(request.action_names) != list(self.spec.action_names):
                self._warn_once("names", f"request plans actions {list(request.action_names)}, the policy produces "
                                         f"{list(self.spec.action_names)}: no real-time chunking")
            else:
                prefix = np.asarray(request.prefix, np.float32).reshape(n_prefix, -1)
                offset = int(round((seconds(request.header.stamp) - stamp) / period))
                guidance = guidance_for(prefix, request.frozen_steps, offset, self.runtime.horizon)
        elif n_prefix:
            self._warn_once("rtc", f"real-time chunking needs a flow or diffusion head; this {self.runtime.backend} "
                                   f"policy's chunks are not conditioned on the plan")
        start = time.perf_counter()
        chunk = self.runtime.predict_chunk(obs, guidance=guidance)[0]
        latency = time.perf_counter() - start
        msg = ActionChunk(request_id=request.request_id, action_names=list(self.spec.action_names),
                          horizon=int(chunk.shape[0]), actions=chunk.reshape(-1).astype(float).tolist(),
                          instruction=obs["instruction"], inference_latency=float(latency),
                          step_duration=duration(period))
        msg.header.stamp = Time(seconds=stamp, clock_type=self.get_clock().clock_type).to_msg()
        self.pub_chunk.publish(msg)
        self.latencies.append(latency)
        self.answered += 1

    # ------------------------------------------------------------------ bookkeeping
    def _publish_diagnostics(self) -> None:
        lat = np.array(self.latencies[-100:]) * 1e3
        values = {"chunks": self.answered, "unanswered_requests": self.unanswered,
                  "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else 0.0,
                  "latency_p99_ms": float(np.percentile(lat, 99)) if lat.size else 0.0}
        ok = self.waiting is None
        status = DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN, name="vla_policy",
                                  message="running" if ok else self.waiting,
                                  values=[KeyValue(key=k, value=f"{v:.3f}" if isinstance(v, float) else str(v))
                                          for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)

    def close(self) -> None:
        """Stop the inference thread (called by the node runner on shutdown)."""
        self._closing = True
        self._wake.set()
        self._worker.join(timeout=5.0)


def main(args=None) -> int:
    """Entry point of the vla_policy executable."""
    return run_node(VLAPolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
