"""Build TensorRT engines on the target (e.g. a Jetson) from an export directory's ONNX graphs.

    python -m vla_core.tensorrt_build EXPORT_DIR [--fp16] [--dry-run] [--trtexec PATH]

For every graph ``<name>.onnx`` it runs ``trtexec`` and writes ``<name>.engine`` next to it, with a
batch-1 optimisation profile (a robot controller runs one observation at a time). The input shapes
are read from the ONNX files, so any export (any cameras, history length, head) builds the same way.
Engines are specific to the GPU and TensorRT version they were built with: build them on the target.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from vla_core.errors import VLAError


def input_shapes(onnx_path: Path) -> dict[str, list[int]]:
    """Input name -> shape with every symbolic dimension (batch, tokens) set to its batch-1 value."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    shapes = {}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        dims = []
        for d in inp.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else 1)
        shapes[inp.name] = dims
    return shapes


def trtexec_commands(export_dir: Path, fp16: bool, trtexec: str = "trtexec") -> list[list[str]]:
    """One trtexec command per graph of the export."""
    from vla_core.export import read_export

    meta = read_export(export_dir)
    commands = []
    for name, onnx_file in meta["graphs"].items():
        onnx_path = export_dir / onnx_file
        shapes = input_shapes(onnx_path)
        if name == "language":  # token count is dynamic: build for the export's padded length
            shapes = {k: [1, meta["max_length"]] for k in shapes}
        spec = ",".join(f"{k}:{'x'.join(map(str, v))}" for k, v in shapes.items())
        cmd = [trtexec, f"--onnx={onnx_path}", f"--saveEngine={onnx_path.with_suffix('.engine')}",
               f"--minShapes={spec}", f"--optShapes={spec}", f"--maxShapes={spec}", "--skipInference"]
        if fp16 or meta["fp16"]:
            cmd.append("--fp16")
        commands.append(cmd)
    return commands


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m vla_core.tensorrt_build", description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--fp16", action="store_true", help="allow half-precision kernels")
    parser.add_argument("--dry-run", action="store_true", help="print the trtexec commands only")
    parser.add_argument("--trtexec", default="trtexec", help="trtexec executable (JetPack: /usr/src/tensorrt/bin/trtexec)")
    args = parser.parse_args(argv)
    try:
        commands = trtexec_commands(Path(args.export_dir), args.fp16, args.trtexec)
        if args.dry_run:
            for cmd in commands:
                print(" ".join(cmd))
            return 0
        if shutil.which(args.trtexec) is None:
            raise VLAError(f"'{args.trtexec}' was not found: install TensorRT (JetPack ships it in /usr/src/tensorrt/bin) "
                           "or pass --trtexec PATH")
        for cmd in commands:
            print(" ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
    except VLAError as exc:
        print(f"tensorrt_build: error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"tensorrt_build: error: trtexec failed with exit code {exc.returncode}", file=sys.stderr)
        return exc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
