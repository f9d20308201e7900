"""The package on a GPU: a real one, or the engine's CUDA driver emulator (``TRILEMMA_CUDA=emulator``,
the engine's kernels host-compiled, with memcheck), so these run on every CI run. Host inputs give
host outputs; GPU inputs are read in place (or, strided or of another dtype, copied once) and the
outputs stay on the GPU as DLPack producers with the protocol's stream handling. Without a GPU they
skip, unless ``TRILEMMA_REQUIRE_GPU=1``."""

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest

import trilemma

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "models"

from test_package import read_safetensors, rel_err  # noqa: E402


def on_gpu(name_or_dir):
    try:
        return trilemma.load(str(name_or_dir), device="cuda")
    except trilemma.NoGpuError as e:
        if os.environ.get("TRILEMMA_REQUIRE_GPU") == "1":
            raise
        pytest.skip(f"no GPU: {e}")


def generator_inputs():
    return read_safetensors(MODELS / "ddgan_small" / "forward_generator.inputs.safetensors")


def test_host_inputs_give_host_outputs_equal_to_the_reference():
    m = on_gpu(MODELS / "ddgan_small")
    assert m.device.startswith("cuda:0")
    expected = read_safetensors(MODELS / "ddgan_small" / "forward_generator.expected.safetensors")
    out = m.forward(generator_inputs())["x0"]
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    # fp32 on a GPU against the PyTorch reference.
    assert rel_err(out, expected["x0"].astype(np.float32)) <= 1e-4


def test_gpu_inputs_are_read_in_place_and_outputs_stay_on_the_gpu():
    m = on_gpu(MODELS / "ddgan_small")
    inputs = generator_inputs()
    base = m.forward(inputs)["x0"]
    x_t, z = m.to_device(inputs["x_t"]), m.to_device(inputs["z"])
    assert isinstance(x_t, trilemma.Array) and x_t.device == "cuda:0"
    assert x_t.__dlpack_device__() == (2, 0) and list(x_t.shape) == list(inputs["x_t"].shape)
    out = m.forward({"x_t": x_t, "t": inputs["t"], "z": z})["x0"]
    assert isinstance(out, trilemma.Array) and out.device == "cuda:0"
    host = np.from_dlpack(out.to_host())
    # The same kernels on the same values: the same bits as the host-input call.
    assert np.array_equal(host, base)
    # A GPU output is a GPU input of the next call (the chain a sampler written in Python makes).
    again = m.forward({"x_t": out, "t": inputs["t"], "z": z})["x0"]
    host_again = m.forward({"x_t": base, "t": inputs["t"], "z": inputs["z"]})["x0"]
    assert np.array_equal(np.from_dlpack(again.to_host()), host_again)


class Relabelled:
    """A DLPack producer that re-describes another's GPU memory (shape, strides, dtype), as a
    framework's strided view or integer tensor would: the capsule's DLTensor is patched in place."""

    class DLTensor(ctypes.Structure):
        _fields_ = [
            ("data", ctypes.c_void_p),
            ("device_type", ctypes.c_int32),
            ("device_id", ctypes.c_int32),
            ("ndim", ctypes.c_int32),
            ("code", ctypes.c_uint8),
            ("bits", ctypes.c_uint8),
            ("lanes", ctypes.c_uint16),
            ("shape", ctypes.POINTER(ctypes.c_int64)),
            ("strides", ctypes.POINTER(ctypes.c_int64)),
            ("byte_offset", ctypes.c_uint64),
        ]

    def __init__(self, base, shape, strides=None, code=2, bits=32):
        self.base, self.code, self.bits = base, code, bits
        self.shape = (ctypes.c_int64 * len(shape))(*shape)
        self.strides = None if strides is None else (ctypes.c_int64 * len(strides))(*strides)
        self.ndim = len(shape)

    def __dlpack_device__(self):
        return self.base.__dlpack_device__()

    def __dlpack__(self, stream=None, max_version=None):
        capsule = self.base.__dlpack__(stream=stream)
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        t = self.DLTensor.from_address(get(capsule, b"dltensor"))
        t.ndim, t.code, t.bits = self.ndim, self.code, self.bits
        t.shape = ctypes.cast(self.shape, ctypes.POINTER(ctypes.c_int64))
        if self.strides is not None:
            t.strides = ctypes.cast(self.strides, ctypes.POINTER(ctypes.c_int64))
        return capsule


def test_strided_and_integer_gpu_inputs_are_copied_once_and_read_right():
    m = on_gpu(MODELS / "ddgan_small")
    inputs = generator_inputs()
    base = m.forward(inputs)["x0"]
    b, c, h, w = inputs["x_t"].shape
    # NHWC memory viewed as NCHW through strides (a permuted tensor of another framework).
    nhwc = m.to_device(np.ascontiguousarray(inputs["x_t"].transpose(0, 2, 3, 1)))
    strided = Relabelled(nhwc, (b, c, h, w), (h * w * c, 1, w * c, c))
    # int64 step indices: their bytes uploaded as float32 pairs, then described as int64.
    t64 = np.asarray(inputs["t"]).astype(np.int64)
    t_dev = Relabelled(m.to_device(t64.view(np.float32)), (b,), code=0, bits=64)
    out = m.forward({"x_t": strided, "t": t_dev, "z": m.to_device(inputs["z"])})["x0"]
    assert np.array_equal(np.from_dlpack(out.to_host()), base)


def test_gpu_arrays_follow_the_dlpack_stream_rules():
    m = on_gpu(MODELS / "ddgan_small")
    a = m.to_device(np.arange(32, dtype=np.float32).reshape(2, 16))
    # None (legacy default stream), 1, 2 and -1 (no ordering) are taken; 0 is ambiguous.
    for stream in (None, 1, 2, -1):
        assert type(a.__dlpack__(stream=stream)).__name__ == "PyCapsule"
    with pytest.raises(ValueError, match="ambiguous"):
        a.__dlpack__(stream=0)
    with pytest.raises(BufferError, match="to_host"):
        a.__dlpack__(dl_device=(1, 0))
    assert np.array_equal(np.from_dlpack(a.to_host()), np.arange(32, dtype=np.float32).reshape(2, 16))


def test_a_gpu_array_for_a_model_elsewhere_is_refused_by_name():
    gpu = on_gpu(MODELS / "ddgan_small")
    x = gpu.to_device(generator_inputs()["x_t"])
    cpu = trilemma.load(str(MODELS / "ddgan_small"), device="cpu")
    inputs = dict(generator_inputs(), x_t=x)
    with pytest.raises(trilemma.BadInputError, match="`x_t` is on cuda:0, but the model is on cpu"):
        cpu.forward(inputs)


def test_sampling_on_the_gpu_matches_the_cpu():
    gpu = on_gpu("ddgan-digits")
    cpu = trilemma.load("ddgan-digits", device="cpu")
    g, c = gpu.sample(4, seed=7), cpu.sample(4, seed=7)
    assert g.shape == (4, 1, 16, 16)
    # Within one level of 255 (fp32 sums in another order on the GPU).
    assert np.abs(g - c).max() <= 1.0 / 255.0


def test_precision_on_the_gpu_and_its_refusal_on_the_cpu():
    gpu = on_gpu(MODELS / "ddgan_small")
    fp32 = gpu.sample(1, seed=3)
    bf16 = gpu.sample(1, seed=3, precision="bf16")
    # bf16 convolutions: close to fp32 (1e-2 relative), not the same bits.
    assert rel_err(bf16, fp32) <= 1e-2 and not np.array_equal(bf16, fp32)
    cpu = trilemma.load(str(MODELS / "ddgan_small"), device="cpu")
    with pytest.raises(trilemma.BadSettingError, match="precision"):
        cpu.sample(1, precision="bf16")
    with pytest.raises(trilemma.BadSettingError, match="fp8"):
        cpu.sample(1, precision="fp8")


def test_torch_cuda_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    m = on_gpu(MODELS / "ddgan_small")
    inputs = generator_inputs()
    base = m.forward(inputs)["x0"]
    cuda = {k: torch.from_numpy(np.array(v)).cuda() for k, v in inputs.items()}
    out = m.forward(cuda)["x0"]
    x0 = torch.from_dlpack(out)
    assert x0.is_cuda and x0.dtype == torch.float32
    assert np.array_equal(x0.cpu().numpy(), base)
