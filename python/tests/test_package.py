"""The Python package as a user calls it: load, sample (the CLI's images for the same seed),
forward (the reference outputs of the test models), errors as exception classes, DLPack both ways,
and the GIL released while the engine works. torch tests run where torch is installed."""

import json
import os
import struct
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import trilemma

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "models"


def read_safetensors(path):
    """{name: float32 array} of a safetensors file (F32/F64/I64/I32 tensors)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=kinds[e["dtype"]]).reshape(e["shape"])
    return out


def cli():
    exe = os.environ.get("TRILEMMA_CLI", str(ROOT / "target" / "debug" / "trilemma"))
    if not Path(exe).is_file():
        pytest.skip(f"no trilemma CLI at {exe} (set TRILEMMA_CLI)")
    return exe


def test_sample_equals_the_cli_for_the_same_seed(tmp_path):
    m = trilemma.load("ddgan-digits", device="cpu")
    assert m.family == "ddgan" and m.image_shape == (1, 16, 16)
    x = m.sample(6, seed=7, batch=4)
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (6, 1, 16, 16)
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0.01
    out = tmp_path / "x.npz"
    subprocess.run(
        [cli(), "sample", "--model", "ddgan-digits", "--num", "6", "--batch", "4",
         "--seed", "7", "--device", "cpu", "--out", str(out)],
        check=True, capture_output=True,
    )
    with zipfile.ZipFile(out) as z, z.open("arr_0.npy") as f:
        cli_images = np.lib.format.read_array(f)  # uint8 NHWC
    ours = np.floor(255.0 * x.transpose(0, 2, 3, 1) + 0.5).clip(0, 255).astype(np.uint8)
    assert cli_images.shape == ours.shape
    assert np.abs(cli_images.astype(int) - ours.astype(int)).max() <= 1
    # Same seed, same images; another seed, others.
    assert np.array_equal(m.sample(6, seed=7, batch=4), x)
    assert not np.array_equal(m.sample(6, seed=8, batch=4), x)


def rel_err(out, ref):
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize(
    "model,part,stem",
    [
        ("ddgan_small", None, "forward_generator"),
        ("lsgm_small", "score", "forward_score"),
        ("lsgm_small", "encoder", "forward_encoder"),
        ("lsgm_small", "decoder", "forward_decoder"),
    ],
)
def test_forward_matches_the_reference_outputs(model, part, stem):
    m = trilemma.load(str(MODELS / model), device="cpu")
    inputs = read_safetensors(MODELS / model / f"{stem}.inputs.safetensors")
    expected = read_safetensors(MODELS / model / f"{stem}.expected.safetensors")
    out = m.forward(inputs, part=part)
    assert set(out) == set(expected)
    for name, ref in expected.items():
        got = out[name]
        assert got.dtype == np.float32 and got.shape == ref.shape, name
        # fp32 on the CPU against the float64-checked PyTorch reference.
        assert rel_err(got, ref.astype(np.float32)) <= 1e-5, name


def test_inputs_in_any_layout_and_dtype_give_the_same_outputs():
    m = trilemma.load(str(MODELS / "ddgan_small"), device="cpu")
    inputs = read_safetensors(MODELS / "ddgan_small" / "forward_generator.inputs.safetensors")
    base = m.forward(inputs)["x0"]
    # A non-contiguous view (strides), float64, and integer step indices read as the same values.
    x = inputs["x_t"]
    strided = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not strided.flags["C_CONTIGUOUS"]
    t = inputs["t"]
    variants = dict(inputs, x_t=strided, z=inputs["z"].astype(np.float64), t=t.astype(np.int64))
    assert np.array_equal(m.forward(variants)["x0"], base)
    # Lists become arrays.
    listed = dict(inputs, t=[float(v) for v in t])
    assert np.array_equal(m.forward(listed)["x0"], base)


def test_errors_are_exception_classes_with_the_engines_messages():
    m = trilemma.load("ddgan-digits", device="cpu")
    with pytest.raises(trilemma.BadSettingError, match="sampler"):
        m.sample(2, sampler="sscs")
    with pytest.raises(trilemma.BadSettingError, match="sampler"):
        m.sample(2, sampler="heun")
    with pytest.raises(trilemma.BadSettingError, match="num"):
        m.sample(0)
    with pytest.raises(trilemma.BadModelError, match="ddgan-digits"):
        trilemma.load("no-such-model", device="cpu")
    with pytest.raises(trilemma.BadInputError, match="`z`"):
        m.forward({"x_t": np.ones((1, 1, 16, 16), np.float32), "t": np.zeros(1, np.float32)})
    with pytest.raises(trilemma.BadInputError, match="not an array"):
        m.forward({"x_t": object()})
    assert issubclass(trilemma.NoGpuError, trilemma.TrilemmaError)
    assert "ddgan-digits" in trilemma.embedded_models()


def test_outputs_are_dlpack_producers_viewed_without_a_copy():
    m = trilemma.load("ddgan-digits", device="cpu")
    native = m._native.sample(2, 3, None, None, None, False)
    assert native.__dlpack_device__() == (1, 0)
    a = np.from_dlpack(native)
    b = np.from_dlpack(native)
    # Two views of one buffer, which outlives the producer.
    assert a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    del native
    assert a.shape == (2, 1, 16, 16) and a.dtype == np.float32
    assert np.array_equal(a, b) and 0.0 <= a.min() and a.max() <= 1.0


def test_the_gil_is_released_while_sampling():
    m = trilemma.load("ddgan-digits", device="cpu")
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=count)
    t.start()
    before = len(ticks)
    m.sample(4, seed=1)
    during = len(ticks) - before
    done.set()
    t.join()
    assert during > 100, f"the other thread ran {during} times while sampling"


def test_torch_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    m = trilemma.load(str(MODELS / "ddgan_small"), device="cpu")
    inputs = read_safetensors(MODELS / "ddgan_small" / "forward_generator.inputs.safetensors")
    base = m.forward(inputs)["x0"]
    out = m.forward({k: torch.from_numpy(np.array(v)) for k, v in inputs.items()})
    assert np.array_equal(out["x0"], base)
    x0 = torch.from_dlpack(out["x0"])
    assert tuple(x0.shape) == base.shape and x0.dtype == torch.float32
