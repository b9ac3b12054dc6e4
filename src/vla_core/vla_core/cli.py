"""The ``vla`` command line: ``vla collect|train|eval|export|bench|data|launch ...``.

Each subcommand imports its implementation lazily so ``vla --help`` stays fast. User errors
(:class:`VLAError`) print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from vla_core.errors import VLAError


def cmd_train(args) -> int:
    """Train a policy from a config file plus dotted overrides."""
    from vla_core.config import ExperimentConfig
    from vla_core.training.trainer import Trainer

    config = ExperimentConfig.load(args.config, args.overrides)
    trainer = Trainer(config, progress=not args.no_progress)
    result = trainer.run()
    if trainer.main:  # under torchrun, rank 0 reports
        print(json.dumps({"output_dir": str(result.output_dir), "step": result.step, "train_loss": result.train_loss,
                          "best_val": result.best_val, "select_by": config.train.select_by, "samples_per_s": round(result.samples_per_s, 1),
                          "effective_batch": trainer.effective_batch, "world_size": trainer.dist.world_size}))
    return 0


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _max_steps(args) -> int:
    """--max-steps, or the suite's own episode length (Meta-World 200, ALOHA 400) when it is 0."""
    from vla_core.env import make_suite

    if args.max_steps < 0:
        raise VLAError(f"--max-steps must be >= 0 (0: the suite's own episode length), got {args.max_steps}")
    return args.max_steps or make_suite(args.suite).max_steps


def cmd_collect(args) -> int:
    """Scripted demonstrations in a simulated suite."""
    from vla_core.collect import collect

    summary = collect(args.suite, args.out, args.episodes_per_task, _csv(args.tasks), workers=args.workers,
                      image_size=args.image_size, max_steps=_max_steps(args), seed_offset=args.seed_offset,
                      progress=not args.no_progress, camera=args.camera or None, extra_steps=args.extra_steps)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_eval(args) -> int:
    """Closed-loop evaluation with a report."""
    from vla_core.evaluation import EvalConfig, evaluate

    if not args.checkpoint and not args.baselines:
        raise VLAError("give --checkpoint, or --baselines expert,zero to evaluate only the baselines")
    cfg = EvalConfig(suite=args.suite, checkpoint=args.checkpoint or None, out=args.out,
                     episodes_per_task=args.episodes_per_task, heldout_episodes_per_task=args.heldout_episodes_per_task,
                     tasks=_csv(args.tasks), modes=_csv(args.modes), delays_ms=_csv(args.delay_ms) or ["0"],
                     baselines=_csv(args.baselines), max_steps=_max_steps(args), workers=args.workers,
                     video=not args.no_video, backend=args.backend, compile=args.compile, providers=_csv(args.providers),
                     device=args.device, seed_base=args.seed_base)
    from vla_core.evaluation import policy_agents
    from vla_core.runtime.scheduler import parse_mode

    for mode in cfg.modes:  # reject an unknown mode or delay before any rollout starts
        parse_mode(mode, 1, 10_000)
    policy_agents(cfg.modes, cfg.delays_ms)
    summary = evaluate(cfg, progress=not args.no_progress)
    print(json.dumps({a: {"average_success": s["average_success"], "heldout_phrasing_success": s["heldout_phrasing_success"]}
                      for a, s in summary.items()}, indent=2))
    print(f"report: {args.out}/report.md")
    return 0


def cmd_export(args) -> int:
    """Export a checkpoint to ONNX graphs."""
    from vla_core.export import export_onnx, read_export

    out = export_onnx(args.checkpoint, args.out, fp16=args.fp16)
    meta = read_export(out)
    print(json.dumps({"out": str(out), "head": meta["head"], "graphs": meta["graphs"], "fp16": meta["fp16"]}, indent=2))
    return 0


def cmd_bench(args) -> int:
    """Training throughput and inference latency per head, as JSON on stdout."""
    from vla_core.bench import run_bench

    result = run_bench(quick=args.quick, heads=_csv(args.heads) or None, overrides=args.overrides, threads=args.threads,
                       backends=_csv(args.backends), compile=args.compile, providers=_csv(args.providers))
    print(json.dumps(result, indent=2))
    return 0


def cmd_data_inspect(args) -> int:
    """Summary of an episode directory."""
    from vla_core.data.inspect import format_summary, summarize

    summary = summarize(args.directory)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def cmd_data_to_lerobot(args) -> int:
    """Convert an episode directory to the LeRobotDataset v3 layout."""
    from vla_core.data.lerobot import export_lerobot

    out = export_lerobot(args.directory, args.out, repo_id=args.repo_id, video=args.video)
    print(f"wrote LeRobotDataset v3 to {out}")
    return 0


def cmd_data_from_lerobot(args) -> int:
    """Convert a LeRobotDataset v3 directory into episode files."""
    from vla_core.data.lerobot import import_lerobot

    paths = import_lerobot(args.directory, args.out)
    print(f"wrote {len(paths)} episodes to {args.out}")
    return 0


def cmd_data_from_bag(args) -> int:
    """Convert ROS 2 bags into episodes."""
    from vla_core.data.bag import BagConversion, convert_bag
    from vla_core.errors import ConfigError

    cameras = {}
    for item in args.image_topic:
        name, _, topic = item.rpartition("=")
        name = name or topic.strip("/").split("/")[0]  # /front/image_raw -> front
        if name in cameras:
            raise ConfigError(f"two image topics map to the camera name '{name}'; name them: --image-topic NAME=TOPIC")
        cameras[name] = topic
    size = [int(x) for x in _csv(args.image_size)]
    conv = BagConversion(image_topics=cameras, state_topic=args.state_topic, command_topic=args.command_topic,
                         rate=args.rate, gripper_topic=args.gripper_topic, instruction=args.instruction,
                         instruction_topic=args.instruction_topic, episode_topic=args.episode_topic, max_gap=args.max_gap,
                         min_frames=args.min_frames, robot=args.robot, compression=args.compression, image_size=size)
    total = 0
    for bag in args.bags:
        written, dropped = convert_bag(bag, args.out, conv)
        total += len(written)
        print(f"{bag}: {len(written)} episodes, {len(dropped)} too short" + "".join(f"\n  dropped {d}" for d in dropped))
    print(f"wrote {total} episodes to {args.out} at {args.rate:g} Hz")
    return 0 if total else 1


def cmd_data_recover(args) -> int:
    """Turn the partial files of interrupted recordings into unfinished episodes (or remove them)."""
    from vla_core.data.episode import recover

    results = recover(args.directory, remove=args.remove)
    for name, what in results:
        print(f"{name}: {what}")
    if not results:
        print(f"{args.directory}: no partial episode files; nothing to do")
    return 1 if any("not recoverable" in what for _, what in results) else 0


def cmd_launch(args) -> int:
    """Run a node graph under the process supervisor (stand-in for ros2 launch)."""
    from vla_core.launch.graph import load_graph
    from vla_core.launch.supervisor import Supervisor

    graph = load_graph(args.graph, args.args)
    if args.dry_run:
        print(graph.describe())
        return 0
    return Supervisor(graph).run()


def _runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", action="store_true", help="torch back end: torch.compile the encoder (slow to start)")
    p.add_argument("--providers", default="", help="onnxruntime back end: execution providers in order of preference, "
                                                   "e.g. CUDAExecutionProvider,CPUExecutionProvider")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vla``."""
    parser = argparse.ArgumentParser(
        prog="vla", description="Vision-Language-Action robot policies: data, training, evaluation, deployment.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("collect", help="record scripted demonstrations in simulation (resumable)")
    p.add_argument("--suite", default="metaworld-mt10")
    p.add_argument("--episodes-per-task", type=int, default=30)
    p.add_argument("--out", required=True, help="directory of episode files")
    p.add_argument("--tasks", default="", help="comma-separated subset of the suite's tasks")
    p.add_argument("--workers", type=int, default=2, help="parallel simulator processes")
    p.add_argument("--image-size", type=int, default=64, help="camera resolution in pixels (square)")
    p.add_argument("--camera", default="", help="the suite's camera to record (default: the suite's default)")
    p.add_argument("--max-steps", type=int, default=0,
                   help="episode cap in control steps (0: the suite's own: Meta-World 200, ALOHA 400)")
    p.add_argument("--seed-offset", type=int, default=0, help="first seed (evaluation uses seeds from 100000)")
    p.add_argument("--extra-steps", type=int, default=5,
                   help="steps the expert keeps acting after success (within the cap): what the policy sees of settling")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("train", help="train a policy on a directory of episodes",
                       description="Train a policy. Any config key can be overridden: --policy.head=diffusion --train.steps=5000")
    p.add_argument("--config", help="YAML experiment config (defaults apply to missing keys)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train, accepts_overrides=True)

    p = sub.add_parser("eval", help="closed-loop evaluation of a checkpoint in simulation, with a report")
    p.add_argument("--checkpoint", default="", help="checkpoint directory (omit to evaluate baselines only)")
    p.add_argument("--suite", default="metaworld-mt10")
    p.add_argument("--episodes-per-task", type=int, default=50)
    p.add_argument("--heldout-episodes-per-task", type=int, default=-1, help="held-out phrasing episodes (default: half)")
    p.add_argument("--seed-base", type=int, default=100_000,
                   help="first evaluation seed (100000: the test seeds every reported figure uses; choose execution "
                        "settings on another range, e.g. 200000, so the test seeds stay unseen)")
    p.add_argument("--tasks", default="", help="comma-separated subset of the suite's tasks")
    p.add_argument("--modes", default="sync",
                   help="chunk execution modes MODE[:K] (K actions per chunk): sync, blend, ensemble, rtc "
                        "(aliases: full, receding, receding:K); ensemble:K:M also sets the ensemble weight exp(-M * i)")
    p.add_argument("--delay-ms", default="0",
                   help="simulated inference delays, comma-separated milliseconds or 'measured' (this back end's median "
                        "latency); each mode runs at each delay")
    p.add_argument("--baselines", default="expert,zero", help="baseline agents: expert, zero (empty for none)")
    p.add_argument("--max-steps", type=int, default=0,
                   help="episode cap in control steps (0: the suite's own: Meta-World 200, ALOHA 400)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--backend", default="torch", help="torch (checkpoint) or onnxruntime / tensorrt (export directory)")
    _runtime_flags(p)
    p.add_argument("--device", default="cpu", help="torch back end: where every worker runs the policy (cpu, cuda, cuda:N)")
    p.add_argument("--out", default="runs/eval", help="report directory")
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="export a checkpoint for deployment (ONNX)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (TensorRT engines are built from ONNX on the target)")
    p.add_argument("--out", required=True, help="export directory")
    p.add_argument("--fp16", action="store_true", help="half-precision graphs (for GPU back ends)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="training throughput and inference latency per head (JSON)",
                       description="Benchmark the default CPU recipe. Config overrides apply: --policy.fusion.dim=256")
    p.add_argument("--quick", action="store_true", help="fewer iterations (under 60 s)")
    p.add_argument("--heads", default="", help="comma-separated heads (default: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--backends", default="torch", help="comma-separated: torch, onnxruntime, tensorrt")
    _runtime_flags(p)
    p.set_defaults(func=cmd_bench, accepts_overrides=True)

    p = sub.add_parser("data", help="inspect and convert demonstration data")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    d = dsub.add_parser("inspect", help="summary of an episode directory")
    d.add_argument("directory")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=cmd_data_inspect)
    d = dsub.add_parser("to-lerobot", help="export episodes as a LeRobotDataset v3 directory")
    d.add_argument("directory")
    d.add_argument("--out", required=True)
    d.add_argument("--repo-id", default="local/vla_dataset")
    d.add_argument("--video", action="store_true", help="cameras as AV1 video features (LeRobot's default) instead of PNG images")
    d.set_defaults(func=cmd_data_to_lerobot)
    d = dsub.add_parser("from-lerobot", help="import a LeRobotDataset v3 directory as episodes")
    d.add_argument("directory")
    d.add_argument("--out", required=True)
    d.set_defaults(func=cmd_data_from_lerobot)
    d = dsub.add_parser("from-bag", help="convert ROS 2 bags (MCAP or sqlite3) into episodes")
    d.add_argument("bags", nargs="+", help="bag directories (as written by ros2 bag record)")
    d.add_argument("--out", required=True, help="directory of episode files")
    d.add_argument("--image-topic", action="append", required=True,
                   help="camera topic, as TOPIC or NAME=TOPIC (repeat for several cameras)")
    d.add_argument("--state-topic", default="/joint_states", help="sensor_msgs/JointState of the robot")
    d.add_argument("--command-topic", required=True, help="the command the operator sent (twist, trajectory, joint state)")
    d.add_argument("--gripper-topic", default="", help="std_msgs/Float64 gripper command appended to the action")
    d.add_argument("--rate", type=float, required=True, help="control rate of the episodes in Hz")
    d.add_argument("--instruction", default="", help="instruction of every episode")
    d.add_argument("--instruction-topic", default="", help="std_msgs/String topic carrying the instruction")
    d.add_argument("--episode-topic", default="", help="any message on this topic starts a new episode")
    d.add_argument("--max-gap", type=float, default=0.5, help="seconds of silence on any stream that end an episode")
    d.add_argument("--min-frames", type=int, default=10, help="shorter episodes are dropped")
    d.add_argument("--robot", default="", help="robot name stored in the episodes")
    d.add_argument("--compression", default="lzf", help="lzf, gzip, none or jpeg:QUALITY")
    d.add_argument("--image-size", default="", help="H,W to centre-crop and resize images to (default: as recorded)")
    d.set_defaults(func=cmd_data_from_bag)
    d = dsub.add_parser("recover", help="turn recordings interrupted by a crash into episodes marked unfinished")
    d.add_argument("directory")
    d.add_argument("--remove", action="store_true", help="delete the partial files instead of recovering them")
    d.set_defaults(func=cmd_data_recover)

    p = sub.add_parser("launch", help="bring up a node graph without ros2 launch (e.g. 'vla launch robot')")
    p.add_argument("graph", help="graph name in vla_bringup (robot, teleop) or a path to a graph YAML")
    p.add_argument("args", nargs="*", help="launch arguments as name:=value")
    p.add_argument("--dry-run", action="store_true", help="print the resolved node graph and exit")
    p.set_defaults(func=cmd_launch)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vla`` executable."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if rest and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.overrides = rest
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except VLAError as exc:
        print(f"vla {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vla {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
