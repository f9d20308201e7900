//! Single-head self-attention over all positions of an NHWC activation (`kernels/attention.cu`).

use super::checks::nhwc;
use super::dispatch::{dispatch, wrap};
use super::flops::count_flops;
use crate::backend::AttentionOps;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Packed q|k|v `[n, h, w, 3c]` → softmax(q·kᵀ/√c)·v `[n, h, w, c]` over all h·w positions.
pub fn attention(qkv: &Tensor) -> Result<Tensor> {
    const OP: &str = "attention";
    let s = nhwc(OP, "qkv", qkv)?;
    if s.c % 3 != 0 || s.c == 0 {
        return Err(Error::InvalidParam {
            op: OP,
            what: "qkv channels",
            rule: "a positive multiple of 3 (q, k and v packed)",
            found: s.c.to_string(),
        });
    }
    let c = s.c / 3;
    count_flops(2 * s.n * s.pixels() * s.pixels() * c);
    let storage = dispatch!(OP, [qkv], |xs| S::attention(xs, s.n, s.pixels(), c)?);
    wrap(storage, &[s.n, s.h, s.w, c])
}
