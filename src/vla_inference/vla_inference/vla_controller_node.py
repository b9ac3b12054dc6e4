"""vla_controller: closed-loop VLA inference with action-buffer replanning.

Subscribes  /camera/image_raw (sensor_msgs/Image), /joint_states (sensor_msgs/JointState),
            /instruction (std_msgs/String)
Publishes   /vla/cmd_twist (geometry_msgs/TwistStamped) + /vla/gripper_cmd (std_msgs/Float64) once
            per control tick (robot.launch.py remaps them to the safety monitor, never to the robot),
            /vla/action_chunk (vla_msgs/ActionChunk) per inference, /diagnostics (latency, buffer, holds)

The policy runs through the one runtime interface (vla_core.runtime.backends): ``backend`` selects
torch (checkpoint), onnxruntime or tensorrt (export directory). Inference runs in a worker thread;
all buffering, blending and hold logic lives in ReplanningController.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String

from vla_core.errors import VLAError
from vla_core.image_codec import image_to_numpy, to_rgb
from vla_core.params import ParameterError, declare_parameters, doc, from_parameters, parameter_specs
from vla_inference.action_buffer import ControllerConfig, InferenceRecord, ReplanningController
from vla_msgs.msg import ActionChunk


@dataclass
class PolicyParams:
    """Which policy to run, and how."""

    checkpoint: str = doc("checkpoint directory (torch) or export directory (onnxruntime, tensorrt)", default="")
    backend: str = doc("inference back end: torch, onnxruntime or tensorrt", default="torch")
    gripper_index: int = doc("action dimension sent as the gripper command (-1: none)", default=3)
    inference_threads: int = doc("CPU threads for inference (leave cores to the control loop; 0 = library default)",
                                  default=1)

    def __post_init__(self):
        if not self.checkpoint:
            raise ValueError("checkpoint must name a checkpoint or export directory")
        if self.backend not in ("torch", "onnxruntime", "tensorrt"):
            raise ValueError(f"backend must be torch, onnxruntime or tensorrt, got '{self.backend}'")


class VLAControllerNode(Node):
    """Thin ROS wrapper around :class:`ReplanningController` and a PolicyRuntime."""

    def __init__(self, runtime=None, **node_kwargs):
        super().__init__("vla_controller", **node_kwargs)
        specs = parameter_specs(PolicyParams) + parameter_specs(ControllerConfig)
        values = declare_parameters(self, specs, ParameterDescriptor)
        values = values
        self.config = from_parameters(ControllerConfig, values, self.get_name())
        if runtime is None:
            self.params = from_parameters(PolicyParams, values, self.get_name())
            from vla_core.runtime.backends import load_runtime

            kwargs = {"threads": self.params.inference_threads} if self.params.backend in ("torch", "onnxruntime") else {}
            try:
                runtime = load_runtime(self.params.checkpoint, self.params.backend, **kwargs)
            except VLAError as exc:
                raise ParameterError(f"vla_controller: parameter 'checkpoint' / 'backend': {exc}") from None
        else:
            self.params = PolicyParams(checkpoint="<in-process>", gripper_index=values["gripper_index"])
        self.runtime = runtime
        self._warm_up()
        self.spec = runtime.spec
        self.camera = next(iter(self.spec.cameras))
        self.core = ReplanningController(self._predict, self.config, on_chunk=self._on_chunk)
        self._proprio: np.ndarray | None = None
        self._image: np.ndarray | None = None
        self._warned: set[str] = set()
        self.tick_times: list[float] = []
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_twist = self.create_publisher(TwistStamped, "/vla/cmd_twist", 10)
        self.pub_gripper = self.create_publisher(Float64, "/vla/gripper_cmd", 10)
        self.pub_chunk = self.create_publisher(ActionChunk, "/vla/action_chunk", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Image, "/camera/image_raw", self._on_image, 5)
        self.create_subscription(JointState, "/joint_states", self._on_joint_state, 10)
        # Both durabilities: the simulator latches its instruction (transient local), while a person's
        # `ros2 topic pub` is volatile - a transient-local subscription alone would never hear it.
        self.create_subscription(String, "/instruction", self._on_instruction, latched)
        self.create_subscription(String, "/instruction", self._on_instruction, 10)
        self.create_timer(1.0 / self.config.control_rate, self._on_tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"policy {self.params.checkpoint} on {runtime.backend}; camera '{self.camera}', "
                               f"{self.config.control_rate:g} Hz control")

    def _warm_up(self) -> None:
        """One inference on a dummy observation before the control loop starts.

        The first call of a back end initialises kernels and allocators (hundreds of milliseconds
        on a CPU); paid here, it never stalls a control tick.
        """
        spec = self.runtime.spec
        obs = {"images": {c: np.zeros((1, *shape), np.uint8) for c, shape in spec.cameras.items()},
               "proprio": np.zeros((1, spec.proprio_dim), np.float32), "instruction": "warm up"}
        start = time.perf_counter()
        for _ in range(2):
            self.runtime.predict_chunk(obs)
        self.get_logger().info(f"warm-up inference: {(time.perf_counter() - start) * 500:.1f} ms per call")
        # Full garbage collections traverse every object torch and transformers created at start-up
        # (hundreds of milliseconds, with the GIL held, stalling the control timer). Freeze them:
        # later collections only look at objects created after this point.
        gc.collect()
        gc.freeze()

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ inputs
    def _on_image(self, msg: Image) -> None:
        try:
            self._image = to_rgb(image_to_numpy(msg), msg.encoding)
        except VLAError as exc:
            self._warn_once("image", f"dropping camera images: {exc}")
            return
        self._update_observation()

    def _on_joint_state(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in self.spec.proprio_names if n not in index]
        if missing:
            self._warn_once("joints", f"/joint_states lacks {missing}; the policy needs {self.spec.proprio_names}")
            return
        self._proprio = np.array([msg.position[index[n]] for n in self.spec.proprio_names], np.float32)
        self._update_observation()

    def _update_observation(self) -> None:
        if self._image is not None and self._proprio is not None:
            self.core.set_observation({"images": {self.camera: self._image}, "proprio": self._proprio})

    def _on_instruction(self, msg: String) -> None:
        if msg.data != self.core.instruction:
            self.get_logger().info(f"instruction: '{msg.data}'")
        self.core.set_instruction(msg.data)

    # ------------------------------------------------------------------ inference (worker thread)
    def _predict(self, obs: dict) -> np.ndarray:
        batch = {"images": {c: im[None] for c, im in obs["images"].items()}, "proprio": obs["proprio"][None],
                 "instruction": obs["instruction"]}
        return self.runtime.predict_chunk(batch)[0]

    def _on_chunk(self, record: InferenceRecord) -> None:
        msg = ActionChunk(action_names=list(self.spec.action_names), horizon=int(record.chunk.shape[0]),
                          actions=[float(v) for v in record.chunk.reshape(-1)], instruction=record.instruction,
                          inference_latency=float(record.latency))
        period = 1.0 / self.config.control_rate
        msg.step_duration = Duration(sec=int(period), nanosec=int((period % 1) * 1e9))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_chunk.publish(msg)

    # ------------------------------------------------------------------ control tick
    def _on_tick(self) -> None:
        self.tick_times.append(time.perf_counter())
        action = self.core.tick()
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        if action is not None:  # None = hold: zero velocity, gripper unchanged
            msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in action[:3])
            gi = self.params.gripper_index
            if 0 <= gi < len(action):
                self.pub_gripper.publish(Float64(data=float(action[gi])))
        self.pub_twist.publish(msg)
        if self.core.errors:
            self.get_logger().error(f"inference failed: {self.core.errors.pop()}")

    def _publish_diagnostics(self) -> None:
        lat = np.array(self.core.latencies[-100:]) * 1e3
        values = {"buffer_depth": self.core.buffer.depth(self.core.tick_index), "holds": self.core.holds,
                  "stale_actions_skipped": self.core.buffer.skipped_stale, "inferences": len(self.core.latencies),
                  "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else 0.0,
                  "latency_p99_ms": float(np.percentile(lat, 99)) if lat.size else 0.0}
        fresh = self.core.observation_fresh()
        status = DiagnosticStatus(level=DiagnosticStatus.OK if fresh else DiagnosticStatus.WARN, name="vla_controller",
                                  message="running" if fresh else "holding: no fresh observation",
                                  values=[KeyValue(key=k, value=f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)


def main(args=None) -> int:
    """Entry point of the vla_controller executable."""
    rclpy.init(args=args)
    try:
        node = VLAControllerNode()
    except (ParameterError, ParameterException) as exc:
        print(f"{exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
