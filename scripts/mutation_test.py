"""Mutation testing: does the suite fail when a module's logic is broken in small ways?

    python scripts/mutation_test.py                       # every module in MODULES, table to docs/mutation.md
    python scripts/mutation_test.py --module monitor      # one module, survivors printed with their diff

For each module, every mutation site gets one mutant at a time: comparisons flipped (< <=, == !=,
in / not in), arithmetic swapped (+ -, * /), and / or swapped, a `not` dropped, numeric constants
changed (n -> n + 1), True / False swapped, min / max swapped, np.clip / abs calls removed, and
`if` conditions negated. The mutant is written over the module's source (the workspace imports it
through colcon's symlinks), the module's unit tests run with a time limit, and the original is put
back whatever happens. A mutant is killed when the tests fail or time out.

Why not mutmut / cosmic-ray: both run the tests against a copy of the project, which colcon's
symlink install bypasses (the packages import the original files).
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

README_DEFAULTS = "tests/test_workspace.py::test_readme_documents_every_parameter_default"
# module name -> (source file, unit tests that cover it, pytest -k expression or "")
MODULES = {
    "monitor": ("src/vla_safety/vla_safety/monitor.py", ["src/vla_safety/test/test_safety_monitor.py", README_DEFAULTS], ""),
    "scheduler": ("src/vla_core/vla_core/runtime/scheduler.py",
                  ["src/vla_core/test/test_scheduler.py", "src/vla_inference/test/test_executor.py", README_DEFAULTS], ""),
    "executor": ("src/vla_inference/vla_inference/executor.py", ["src/vla_inference/test/test_executor.py", README_DEFAULTS], ""),
    "episode": ("src/vla_core/vla_core/data/episode.py",
                ["src/vla_core/test/test_episode_data.py", "src/vla_core/test/test_episode_stream.py"], ""),
    "dataset": ("src/vla_core/vla_core/data/dataset.py",
                ["src/vla_core/test/test_episode_data.py", "src/vla_core/test/test_data_scale.py"], "not ddp"),
    "normalize": ("src/vla_core/vla_core/normalize.py", ["src/vla_core/test/test_normalize.py"], ""),
    "checkpoint": ("src/vla_core/vla_core/checkpoint.py", ["src/vla_core/test/test_checkpoint.py"], ""),
    "image_codec": ("src/vla_core/vla_core/image_codec.py", ["src/vla_core/test/test_image_codec.py"], ""),
}

# Survivors examined and found equivalent to the original (no input can tell them apart here).
EQUIVALENT = {
    "image_codec": [
        "lines 56, 58: `itemsize > 1` -> `>= 1`: byte order of a 1-byte dtype is a no-op",
        "lines 57, 69, 70, 71: `channels > 1` -> `> 2`: encodings have 1, 3 or 4 channels, never 2",
        "line 59: `copy=False` -> `copy=True`: the same array, one copy more",
        "line 77 (2 mutants): `is_bigendian` on a big-endian host; this x86_64 host is little-endian",
    ],
    "checkpoint": [
        "lines 53, 60, 63: JSON `indent=2` -> `3`: formatting only",
        "lines 71, 75: `rmtree(..., ignore_errors=True)` -> `False`: only differs when deleting a temporary fails",
        "line 37 (default step 1) and line 43 (`parents=False`): killed since by "
        "test_saving_creates_missing_parent_directories_and_defaults_to_step_0 (added after this run)",
    ],
    "dataset": [
        "line 124: default budget 2048 -> 2049 MB: the same choice for every dataset not within 1 MB of 2 GB",
        "line 145: `episodes[0]` -> `episodes[1]` when sizing the resident array: equal for every dataset of two or more "
        "episodes (their camera shapes are checked equal); not covered for a one-episode resident dataset",
        "line 151 (3 mutants): the log message's numbers",
        "line 171: clip upper bound `n - 1` -> `n + 1`: observation indices never exceed t <= n - 1",
        "line 189: `reshape(-1)` -> `reshape(-2)`: numpy reads any negative size as 'infer'",
    ],
    "episode": [
        "line 42: FORMAT_VERSION 2 -> 3: written, never read back (the reader does not branch on it)",
        "lines 211, 212: `reshape(-1)` -> `reshape(-2)`: numpy reads any negative size as 'infer'",
        "lines 255, 259, 262: datasets created with 1 row instead of 0: the first write resizes to its own count "
        "before writing, so the extra row never survives a write",
        "lines 255, 258, 261 (4 mutants): HDF5 chunk sizes and the gzip level: storage layout only, the data read "
        "back is identical",
        "line 162: the first flush time 0.0 -> 1.0: overwritten when the file opens, before it is read",
        "line 170: a queue of at least 2 frames instead of 1: differs only for queue_frames <= 1, and then only "
        "in when a frame is dropped under a race the tests cannot pace",
        "line 171: daemon writer thread -> non-daemon: every path joins it; only an interpreter exit with a "
        "forgotten writer differs",
        "line 369: `umask(1)` -> the previous mask is read and restored at once; the argument never applies",
    ],
    "normalize": [
        "line 15 (`EPS = 1.000001`): killed since by test_a_small_but_real_range_is_not_swallowed_by_the_floor "
        "(added after this run)",
    ],
}

CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
       ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult}


@dataclass
class Site:
    """One place to mutate: the path of the node in the tree and what to do to it."""

    path: tuple
    kind: str
    line: int


def _children(node):
    for field, value in ast.iter_fields(node):
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield (field, i), item
        elif isinstance(value, ast.AST):
            yield (field, None), value


def _skip(node) -> bool:
    """Docstrings, annotations, messages and imports carry no logic worth mutating."""
    return isinstance(node, (ast.JoinedStr, ast.Import, ast.ImportFrom, ast.Assert)) or (
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))


def sites(tree) -> list[Site]:
    """Every mutation site, in source order."""
    out = []

    def walk(node, path):
        if _skip(node):
            return
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            out.extend(Site(path, f"cmp{i}", line) for i, op in enumerate(node.ops) if type(op) in CMP)
        elif isinstance(node, ast.BinOp) and type(node.op) in BIN:
            out.append(Site(path, "binop", line))
        elif isinstance(node, ast.AugAssign) and type(node.op) in BIN:
            out.append(Site(path, "augop", line))
        elif isinstance(node, ast.BoolOp):
            out.append(Site(path, "boolop", line))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            out.append(Site(path, "unary", line))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
            out.append(Site(path, "const", line))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append(Site(path, "bool", line))
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("min", "max"):
                out.append(Site(path, "minmax", line))
            elif name in ("clip", "abs") and node.args:
                out.append(Site(path, "dropcall", line))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
            out.append(Site(path, "negate", line))
        for key, child in _children(node):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and key[0] in ("returns", "decorator_list"):
                continue
            if isinstance(node, (ast.AnnAssign, ast.arg)) and key[0] == "annotation":
                continue
            walk(child, path + (key,))

    walk(tree, ())
    return out


def _get(tree, path):
    node = tree
    for field, index in path:
        node = getattr(node, field) if index is None else getattr(node, field)[index]
    return node


def _set(tree, path, new):
    parent = _get(tree, path[:-1])
    field, index = path[-1]
    if index is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[index] = new


def mutate(tree, site: Site):
    """A copy of ``tree`` with ``site`` mutated."""
    tree = copy.deepcopy(tree)
    node = _get(tree, site.path)
    k = site.kind
    if k.startswith("cmp"):
        i = int(k[3:])
        node.ops[i] = CMP[type(node.ops[i])]()
    elif k in ("binop", "augop"):
        node.op = BIN[type(node.op)]()
    elif k == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif k == "unary":
        _set(tree, site.path, node.operand)
    elif k == "const":
        node.value = node.value + 1
    elif k == "bool":
        node.value = not node.value
    elif k == "minmax":
        if isinstance(node.func, ast.Attribute):
            node.func.attr = "max" if node.func.attr == "min" else "min"
        else:
            node.func.id = "max" if node.func.id == "min" else "min"
    elif k == "dropcall":
        _set(tree, site.path, node.args[0])
    elif k == "negate":
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    return ast.fix_missing_locations(tree)


def run_tests(tests: list[str], select: str, timeout: float) -> bool:
    """True when the tests pass (the mutant survived)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "--no-header", *tests]
    if select:
        cmd += ["-k", select]
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def test_module(name: str, timeout: float, limit: int = 0) -> dict:
    """Run every mutant of one module; returns counts and the survivors (line, kind, diff)."""
    source_file, tests, select = MODULES[name]
    path = ROOT / source_file
    original = path.read_text()
    tree = ast.parse(original)
    baseline = ast.unparse(tree)
    if not run_tests(tests, select, timeout * 3):
        raise SystemExit(f"{name}: the tests fail on the unmutated module; fix them first")
    every = sites(tree)
    # --limit: a seeded uniform sample of the sites (not the first N: those would all sit at the top of the file)
    found = sorted(random.Random(0).sample(every, limit), key=lambda site: site.line) if 0 < limit < len(every) else every
    survivors, killed, t0 = [], 0, time.perf_counter()
    try:
        for i, site in enumerate(found):
            mutant = ast.unparse(mutate(tree, site))
            if mutant == baseline:
                continue
            path.write_text(mutant)
            if run_tests(tests, select, timeout):
                diff = [d for d in difflib.unified_diff(baseline.splitlines(), mutant.splitlines(), lineterm="", n=0)
                        if d.startswith(("+", "-")) and not d.startswith(("+++", "---"))]
                survivors.append({"line": site.line, "kind": site.kind, "diff": diff})
                # printed as found, so that an interrupted run still tells what to look at
                print(f"\n  survivor: line {site.line} ({site.kind}): " + " | ".join(diff)[:300], file=sys.stderr, flush=True)
            else:
                killed += 1
            print(f"\r{name}: {i + 1}/{len(found)} mutants, {len(survivors)} survived", end="", file=sys.stderr, flush=True)
    finally:
        path.write_text(original)
    print(file=sys.stderr)
    total = killed + len(survivors)
    return {"module": name, "file": source_file, "tests": tests, "mutants": total, "killed": killed, "sites": len(every),
            "score": round(killed / total, 3) if total else None, "survivors": survivors,
            "minutes": round((time.perf_counter() - t0) / 60, 1)}


def main() -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--module", action="append", choices=sorted(MODULES), help="default: all")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per test run (a timeout kills the mutant)")
    p.add_argument("--limit", type=int, default=0, help="a seeded random sample of this many mutants per module (0: all)")
    p.add_argument("--out", default="docs/mutation.json", help="results (JSON); the table goes to docs/mutation.md")
    args = p.parse_args()
    results = [test_module(m, args.timeout, args.limit) for m in (args.module or list(MODULES))]
    for r in results:
        print(f"{r['module']}: {r['killed']}/{r['mutants']} killed ({100 * (r['score'] or 0):.0f} %)")
        for s in r["survivors"]:
            print(f"  line {s['line']} ({s['kind']}): " + " | ".join(s["diff"])[:300])
    out = ROOT / args.out
    old = json.loads(out.read_text()) if out.is_file() else {}
    old.update({r["module"]: r for r in results})
    out.write_text(json.dumps(old, indent=2))
    write_table(old)
    return 0


def write_table(results: dict) -> None:
    """docs/mutation.md from the JSON results."""
    lines = ["# Mutation testing", "",
             "Small deliberate bugs in each module with logic, one at a time; a mutant is killed when the module's unit",
             "tests fail. Command: `python scripts/mutation_test.py` (operators in its docstring). Surviving mutants",
             "are listed below with the reason they are equivalent to the original, or fixed by a new test.", "",
             "| module | file | mutants | killed | score |", "|---|---|---|---|---|"]
    for r in results.values():
        sample = f" (a seeded sample of {r['sites']})" if r.get("sites", r["mutants"]) > r["mutants"] + 5 else ""
        lines.append(f"| {r['module']} | `{r['file']}` | {r['mutants']}{sample} | {r['killed']} | **{100 * r['score']:.0f} %** |")
    for module, notes in EQUIVALENT.items():
        if module in results and results[module]["survivors"]:
            lines += ["", f"Survivors in `{module}`, and what became of them:", ""] + [f"- {n}" for n in notes]
    (ROOT / "docs" / "mutation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
