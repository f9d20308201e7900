"""trilemma: fast diffusion-model sampling (CLD-SGM, DDGAN, LSGM) on hand-written CUDA kernels.

>>> import trilemma
>>> m = trilemma.load("ddgan-digits")          # an embedded model, or a converted model directory
>>> x = m.sample(4, seed=7)                     # numpy float32 (4, 1, 16, 16) in [0, 1]
>>> out = m.forward({"x_t": x_t, "t": t, "z": z})   # {"x0": array}

Arrays go in as numpy arrays or any DLPack producer (torch tensors, CPU or CUDA, ...). Host inputs
give numpy outputs (DLPack producers themselves: ``torch.from_dlpack(out)`` works). Inputs on the
model's GPU are read there without a copy (contiguous float32; other layouts are copied once), and
then the outputs stay on the GPU as ``trilemma.Array`` (``torch.from_dlpack(out)`` views it, streams
ordered as the DLPack protocol says; ``out.to_host()`` copies it). Errors raise
``trilemma.TrilemmaError`` subclasses with the engine's messages. The GIL is released while the
engine works.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from . import _native
from ._native import (
    Array,
    BadInputError,
    BadModelError,
    BadSettingError,
    CudaError,
    NoGpuError,
    NonFiniteError,
    OutOfMemoryError,
    TrilemmaError,
)

__all__ = [
    "load",
    "Array",
    "embedded_models",
    "Model",
    "TrilemmaError",
    "BadSettingError",
    "BadModelError",
    "BadInputError",
    "NoGpuError",
    "OutOfMemoryError",
    "NonFiniteError",
    "CudaError",
]


class Model:
    """A loaded model: its weights on one device, ready to sample or to run one network call."""

    def __init__(self, native: "_native.Model") -> None:
        self._native = native

    @property
    def family(self) -> str:
        """``cld``, ``ddgan`` or ``lsgm``."""
        return self._native.family

    @property
    def device(self) -> str:
        """The device holding the weights, described."""
        return self._native.device

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """The shape (C, H, W) of one sampled image."""
        return self._native.image_shape

    def sample(
        self,
        num: int,
        seed: int = 0,
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        batch: Optional[int] = None,
        progress: bool = False,
        precision: str = "fp32",
    ) -> np.ndarray:
        """``num`` images, float32 (N, C, H, W) in [0, 1]: the CLI's images for the same seed.

        ``sampler``: ``ddgan``, ``sscs``, ``em``, ``ode`` or ``rk4`` (None: the model's own);
        ``steps``: SSCS/EM/RK4 steps (None: the default); ``batch``: images per batch (None: the
        largest that fits the GPU, 16 on the CPU); ``progress``: a line on stderr per batch;
        ``precision``: how a GPU computes convolutions: ``fp32`` (the reference), ``3xtf32``
        (fp32-accurate on tensor cores), ``tf32``, ``bf16`` or ``fp16`` (within 1e-2).
        """
        return np.from_dlpack(
            self._native.sample(num, seed, sampler, steps, batch, progress, precision)
        )

    def forward(
        self, inputs: Mapping[str, Any], part: Optional[str] = None
    ) -> Dict[str, Union[np.ndarray, Array]]:
        """One network call on named arrays (official names, NCHW; docs/model-format.md).

        ``part`` picks an LSGM network: ``score``, ``encoder`` or ``decoder``. Outputs are numpy
        arrays when every input is on the host; when an input is on the model's GPU they stay on
        the GPU as ``trilemma.Array`` (a DLPack producer: ``torch.from_dlpack``).
        """
        prepared = {name: _as_array(value) for name, value in inputs.items()}
        outputs = self._native.forward(prepared, part)
        return {name: _host_as_numpy(a) for name, a in outputs.items()}

    def to_device(self, array: Any) -> Union[np.ndarray, Array]:
        """``array`` as float32 on the model's device: a ``trilemma.Array`` on the GPU for a model
        on a GPU (an input ``forward`` reads without a copy), a numpy array on the CPU."""
        return _host_as_numpy(self._native.to_device(_as_array(array)))

    def __repr__(self) -> str:
        return f"trilemma.Model(family={self.family!r}, device={self.device!r})"


def _host_as_numpy(a: Array) -> Union[np.ndarray, Array]:
    """Host arrays as numpy arrays (no copy); GPU arrays as they are."""
    return np.from_dlpack(a) if a.device == "cpu" else a


def _as_array(value: Any) -> Any:
    """DLPack producers as they are; lists and numbers as numpy arrays; anything else unchanged (the
    engine names it in its error)."""
    if hasattr(value, "__dlpack__"):
        return value
    a = np.asarray(value)
    return value if a.dtype == object else a


def load(name_or_dir: str, device: str = "auto") -> Model:
    """Loads a converted model directory or an embedded model (``cld-digits``, ``ddgan-digits``,
    ``lsgm-digits``) onto ``device``: ``auto`` (a GPU where there is one), ``cpu``, ``cuda`` or
    ``cuda:N``."""
    return Model(_native.load(str(name_or_dir), device))


def embedded_models() -> list:
    """The names of the models embedded in this build."""
    return list(_native.embedded_models())
