"""upfirdn2d: the CPU stand-in of tests/official.py and the reference's own implementation
(reference/layers.py) against a brute-force loop over the definition, plus the FIR closed forms.

Definition (per axis, same on both): zero insertion (sample n at index n*up), pad p0 before and p1
after (negative pads crop), true convolution with the kernel (flipped), keep every `down`-th valid
output starting at 0.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference import layers  # noqa: E402

from .official import upfirdn2d as standin_upfirdn2d  # noqa: E402

torch.set_num_threads(1)


def brute_upfirdn2d(x, k, up, down, pad):
    """Loop-by-loop evaluation of the definition, float64 numpy."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    n, c, h, w = x.shape
    kh, kw = k.shape
    p0, p1 = pad

    def padded(b, ch, qy, qx):
        # Index into the zero-inserted signal shifted by p0; outside it is zero. A negative p0
        # shifts the other way, which crops.
        my, mx = qy - p0, qx - p0
        if my < 0 or mx < 0 or my >= h * up or mx >= w * up:
            return 0.0
        if my % up or mx % up:
            return 0.0
        return x[b, ch, my // up, mx // up]

    lh = h * up + p0 + p1
    lw = w * up + p0 + p1
    oh = (lh - kh) // down + 1
    ow = (lw - kw) // down + 1
    out = np.zeros((n, c, oh, ow))
    for b in range(n):
        for ch in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    s = 0.0
                    for jy in range(kh):
                        for jx in range(kw):
                            # true convolution: the kernel runs backwards over the window
                            s += padded(b, ch, oy * down + jy, ox * down + jx) * k[kh - 1 - jy, kw - 1 - jx]
                    out[b, ch, oy, ox] = s
    return out


CASES = [
    # (up, down, pad, kernel shape)
    (2, 1, (2, 1), (4, 4)),     # FIR upsample as used by the networks
    (1, 2, (1, 1), (4, 4)),     # FIR downsample
    (1, 1, (2, 2), (4, 4)),     # pyramid down-conv prefilter
    (2, 1, (0, -1), (4, 4)),    # negative pad after
    (2, 1, (-1, 2), (3, 3)),    # negative pad before
    (1, 2, (-1, 2), (4, 4)),
    (1, 2, (2, -2), (3, 5)),    # non-square kernel
    (2, 2, (1, -1), (4, 4)),
    (3, 1, (1, 1), (2, 2)),
]


@pytest.mark.parametrize("up,down,pad,kshape", CASES)
@pytest.mark.parametrize("impl", ["standin", "reference"])
def test_upfirdn2d_against_loop(impl, up, down, pad, kshape):
    g = torch.Generator().manual_seed(1000 * up + 100 * down + 10 * pad[0] + pad[1])
    x = torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64)
    k = torch.randn(*kshape, generator=g, dtype=torch.float64)  # asymmetric: checks the flip
    fn = standin_upfirdn2d if impl == "standin" else layers.upfirdn2d
    got = fn(x, k, up=up, down=down, pad=pad).numpy()
    want = brute_upfirdn2d(x.numpy(), k.numpy(), up, down, pad)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("up,down,pad,kshape", CASES)
def test_standin_equals_reference_fp32(up, down, pad, kshape):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 4, 8, 6, generator=g)
    k = torch.randn(*kshape, generator=g)
    a = standin_upfirdn2d(x, k, up=up, down=down, pad=pad)
    b = layers.upfirdn2d(x, k, up=up, down=down, pad=pad)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_fir_closed_forms():
    """FIR up/down with [1,3,3,1] on a ramp and on ones (zero borders), per the specs."""
    x = torch.arange(1.0, 7.0, dtype=torch.float64)
    img = torch.outer(x, torch.ones(6, dtype=torch.float64))[None, None]  # varies along H only
    up = layers.fir_upsample_2d(img)[0, 0, :, 2]  # an interior column: the W filter sums to 1
    xp = torch.cat([torch.zeros(1, dtype=x.dtype), x, torch.zeros(1, dtype=x.dtype)])
    want = torch.empty(12, dtype=x.dtype)
    want[0::2] = 0.25 * xp[:-2] + 0.75 * xp[1:-1]
    want[1::2] = 0.75 * xp[1:-1] + 0.25 * xp[2:]
    torch.testing.assert_close(up, want)
    down = layers.fir_downsample_2d(img)[0, 0, :, 1]
    xq = torch.cat([torch.zeros(1, dtype=x.dtype), x, torch.zeros(1, dtype=x.dtype)])
    want = torch.stack([(xq[2 * i] + 3 * xq[2 * i + 1] + 3 * xq[2 * i + 2] + xq[2 * i + 3]) / 8
                        for i in range(3)])
    torch.testing.assert_close(down, want)
    ones = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    u = layers.fir_upsample_2d(ones)
    assert u[0, 0, 0, 5].item() == pytest.approx(0.75) and u[0, 0, 0, 0].item() == pytest.approx(0.5625)
    d = layers.fir_downsample_2d(ones)
    assert d[0, 0, 0, 2].item() == pytest.approx(0.875) and d[0, 0, 0, 0].item() == pytest.approx(0.765625)
