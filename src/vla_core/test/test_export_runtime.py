"""ONNX export of every head, parity with PyTorch through the one runtime interface, refusals."""

import json
import shutil

import numpy as np
import onnxruntime  # noqa: F401 - required: a missing install fails, never skips
import pytest
import torch

from vla_core.checkpoint import save_checkpoint
from vla_core.data.dataset import dataset_stats, load_episodes, spec_from_episodes
from vla_core.errors import VLAError
from vla_core.export import export_onnx
from vla_core.policy import HEADS, make_policy
from vla_core.runtime.backends import load_runtime

# Stated tolerance: ONNX Runtime and eager PyTorch agree to 1e-4 in robot units (float32).
ATOL = 1e-4


@pytest.fixture(scope="module")
def exported(tiny_data, tmp_path_factory):
    from conftest import TINY

    from vla_core.config import ExperimentConfig

    root = tmp_path_factory.mktemp("export")
    eps = load_episodes(tiny_data).episodes
    out = {}
    for head in sorted(HEADS):
        cfg = ExperimentConfig.load(None, [*TINY, f"--policy.head={head}", "--policy.n_obs_steps=2"])
        policy = make_policy(cfg.policy, spec_from_episodes(eps), dataset_stats(eps)).eval()
        ckpt = save_checkpoint(root / head, policy, cfg)
        out[head] = (ckpt, export_onnx(ckpt, root / f"{head}_onnx"))
    return out, eps


def _obs(eps, b=2):
    ep = eps[0]
    return {"images": {"front": np.stack([ep.images["front"][3:5]] * b)}, "proprio": np.stack([ep.proprio[3:5]] * b),
            "instruction": [eps[i].instruction for i in range(b)]}


@pytest.mark.parametrize("head", sorted(HEADS))
def test_onnxruntime_matches_torch(exported, head):
    heads, eps = exported
    ckpt, onnx_dir = heads[head]
    torch_rt, ort_rt = load_runtime(ckpt, "torch"), load_runtime(onnx_dir, "onnxruntime")
    obs = _obs(eps)
    noise = np.random.default_rng(1).standard_normal((2, torch_rt.horizon, 4)).astype(np.float32)
    a, b = torch_rt.predict_chunk(obs, noise), ort_rt.predict_chunk(obs, noise)
    assert a.shape == b.shape == (2, torch_rt.horizon, 4)
    if head == "tokens":
        # Decoding is an argmax: a near-tie may flip to the neighbouring bin, so the honest bound is one bin.
        stats = torch_rt.policy.normalizer.stats()
        bin_width = (stats["action_max"] - stats["action_min"]) / (torch_rt.policy.config.tokens.bins - 1)
        assert (np.abs(a - b) <= bin_width + ATOL).all()
        assert np.mean(np.abs(a - b) <= ATOL) > 0.95
    else:
        np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
    np.testing.assert_allclose(torch_rt.instruction_embedding("move the block left"),
                               ort_rt.instruction_embedding("move the block left"), atol=ATOL)
    meta = json.loads((onnx_dir / "export.json").read_text())
    assert meta["cached"] == ["language"]
    assert set(meta["graphs"]) == ({"encoder", "denoise_step", "language"} if head in ("diffusion", "flow")
                                   else {"policy", "language"})


def test_instruction_embedding_is_cached(exported):
    heads, eps = exported
    rt = load_runtime(heads["regression"][1], "onnxruntime")
    calls = []
    original = rt._embed
    rt._embed = lambda text: calls.append(text) or original(text)
    for _ in range(3):
        rt.predict_chunk(_obs(eps, 1))
    assert calls == [eps[0].instruction]


def test_corrupt_and_mismatched_exports_are_refused(exported, tmp_path):
    heads, eps = exported
    ckpt, onnx_dir = heads["flow"]
    with pytest.raises(VLAError, match="runs an export directory"):
        load_runtime(ckpt, "onnxruntime")
    with pytest.raises(VLAError, match="unknown back end 'tflite'"):
        load_runtime(onnx_dir, "tflite")
    broken = tmp_path / "broken"
    shutil.copytree(onnx_dir, broken)
    (broken / "denoise_step.onnx").unlink()
    with pytest.raises(VLAError, match="incomplete: missing denoise_step.onnx"):
        load_runtime(broken, "onnxruntime")
    (broken / "export.json").write_text("{not json")
    with pytest.raises(VLAError, match="export.json' is corrupt"):
        load_runtime(broken, "onnxruntime")
    rt = load_runtime(onnx_dir, "onnxruntime")
    bad = _obs(eps, 1)
    bad["images"]["front"] = bad["images"]["front"][:, :, :16, :16]
    with pytest.raises(VLAError, match=r"camera 'front': expected \[32, 32\] pixels, got \[16, 16\]"):
        rt.predict_chunk(bad)
    with pytest.raises(VLAError, match="lacks camera 'front'"):
        rt.predict_chunk({"images": {"wrist": bad["images"]["front"]}, "proprio": bad["proprio"], "instruction": "x"})


def test_tensorrt_absence_is_a_clear_error(exported):
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    with pytest.raises(VLAError, match="needs NVIDIA TensorRT's Python package"):
        load_runtime(exported[0]["regression"][1], "tensorrt")


def test_fp16_export_runs(exported, tmp_path):
    heads, eps = exported
    out = export_onnx(heads["regression"][0], tmp_path / "fp16", fp16=True)
    assert json.loads((out / "export.json").read_text())["fp16"] is True
    fp32 = load_runtime(heads["regression"][1], "onnxruntime").predict_chunk(_obs(eps))
    fp16 = load_runtime(out, "onnxruntime").predict_chunk(_obs(eps))
    np.testing.assert_allclose(fp16, fp32, atol=5e-2)
    # The frozen language model is shared process-wide: an fp16 export must leave it float32.
    from vla_core.config import LanguageConfig
    from vla_core.policy.encoders import LanguageEncoder

    assert next(LanguageEncoder(LanguageConfig()).model.parameters()).dtype == torch.float32


def test_tensorrt_build_commands(exported, capsys):
    from vla_core.tensorrt_build import main

    _, flow_dir = exported[0]["flow"]
    assert main([str(flow_dir), "--dry-run", "--fp16"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3  # encoder, denoise_step, language
    enc = next(line for line in lines if "encoder.onnx" in line)
    assert "image_front:1x2x32x32x3" in enc and "proprio:1x2x4" in enc and "language:1x384" in enc
    assert "--fp16" in enc and "--saveEngine=" in enc and enc.split("--saveEngine=")[1].split()[0].endswith("encoder.engine")
    step = next(line for line in lines if "denoise_step.onnx" in line)
    assert "x_t:1x8x4" in step and "t:1," in step and "memory:1x" in step
    assert main([str(flow_dir / "nope")]) == 2


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("head", ["diffusion", "flow"])
def test_real_time_chunking_guidance_pulls_the_chunk_onto_the_plan(exported, head, backend):
    from vla_core.runtime.scheduler import guidance_for

    heads, eps = exported
    ckpt, onnx_dir = heads[head]
    rt = load_runtime(ckpt if backend == "torch" else onnx_dir, backend)
    assert rt.supports_guidance
    obs = _obs(eps, b=1)
    noise = np.random.default_rng(3).standard_normal((1, rt.horizon, 4)).astype(np.float32)
    free = rt.predict_chunk(obs, noise)[0]
    # A plan unlike anything the untrained policy would produce; 2 frozen steps, the rest decays.
    stats = load_runtime(ckpt, "torch").policy.normalizer.stats()
    lo, hi = stats["action_min"], stats["action_max"]
    plan = np.tile(lo + 0.8 * (hi - lo), (rt.horizon, 1)).astype(np.float32)
    targets, weights = guidance_for(plan, frozen=2, offset=0, horizon=rt.horizon)
    guided = rt.predict_chunk(obs, noise, guidance=(targets, weights))[0]
    err_free, err_guided = np.abs(free - plan).mean(1), np.abs(guided - plan).mean(1)
    # The frozen steps come out much closer to the plan; steps with no weight are left alone (nearly).
    assert (err_guided[:2] < 0.5 * err_free[:2]).all(), (err_guided[:2], err_free[:2])
    assert err_guided[weights > 0].mean() < err_free[weights > 0].mean()
    assert rt.predict_chunk(obs, noise, guidance=None)[0] == pytest.approx(free, abs=1e-5)


def test_guidance_is_ignored_by_deterministic_heads_and_checked(exported):
    heads, eps = exported
    rt = load_runtime(heads["regression"][0], "torch")
    obs = _obs(eps, b=1)
    plan = np.zeros((rt.horizon, 4), np.float32)
    assert not rt.supports_guidance
    np.testing.assert_array_equal(rt.predict_chunk(obs, guidance=(plan, np.ones(rt.horizon, np.float32))),
                                  rt.predict_chunk(obs))
    flow = load_runtime(heads["flow"][0], "torch")
    with pytest.raises(VLAError, match="guidance must be targets"):
        flow.predict_chunk(obs, guidance=(plan[:3], np.ones(3, np.float32)))


def test_torch_compile_matches_eager(exported):
    heads, eps = exported
    obs = _obs(eps, b=1)
    eager = load_runtime(heads["regression"][0], "torch").predict_chunk(obs)
    compiled = load_runtime(heads["regression"][0], "torch", compile=True)
    assert compiled._encode is not compiled.policy.encode  # really compiled (an OptimizedModule wrapper)
    np.testing.assert_allclose(compiled.predict_chunk(obs), eager, atol=ATOL, rtol=0)


def test_execution_providers_are_used_in_order_and_refused_when_absent(exported):
    import onnxruntime as ort

    from vla_core.runtime.backends import runtime_options

    heads, eps = exported
    onnx_dir = heads["flow"][1]
    rt = load_runtime(onnx_dir, "onnxruntime", **runtime_options("onnxruntime", providers=["CUDAExecutionProvider",
                                                                                            "CPUExecutionProvider"]))
    expected = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    assert rt.providers == expected
    assert all(s.get_providers()[0] == expected[0] for s in rt.sessions.values())
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(VLAError, match=r"none of the requested ONNX Runtime execution providers \['CUDAExecutionProvider'\]"):
            load_runtime(onnx_dir, "onnxruntime", providers=["CUDAExecutionProvider"])
    with pytest.raises(VLAError, match="torch.compile applies to the torch back end, not 'onnxruntime'"):
        runtime_options("onnxruntime", compile=True)
    with pytest.raises(VLAError, match="execution providers apply to the onnxruntime back end, not 'torch'"):
        runtime_options("torch", providers=["CPUExecutionProvider"])


def test_the_torch_back_end_runs_where_device_says_and_refuses_a_device_it_cannot_use(exported):
    import torch

    from vla_core.runtime.backends import runtime_options

    heads, eps = exported
    ckpt = heads["regression"][0]
    assert runtime_options("torch") == {}
    with pytest.raises(VLAError, match="--device applies to the torch back end, not 'onnxruntime'"):
        runtime_options("onnxruntime", device="cuda")
    with pytest.raises(VLAError, match="device 'gpu' is not cpu, cuda or cuda:N"):
        runtime_options("torch", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(VLAError, match="device 'cuda' was asked for but torch sees no CUDA device"):
            runtime_options("torch", device="cuda")
        return
    cpu = load_runtime(ckpt, "torch")
    gpu = load_runtime(ckpt, "torch", **runtime_options("torch", device="cuda"))
    assert next(gpu.policy.parameters()).is_cuda
    np.testing.assert_allclose(gpu.predict_chunk(_obs(eps)), cpu.predict_chunk(_obs(eps)), atol=1e-3)
