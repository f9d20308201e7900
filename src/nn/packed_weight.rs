//! A layer's weight in the element type its device's convolution kernels read: the f32 tensor, or at
//! the bf16 / fp16 precisions a 16-bit copy rounded once, on the first forward at that precision, and
//! kept beside it. The tensor-core kernels then copy weight tiles into shared memory as they are
//! (cp.async) and read half the bytes; without the copy every call would cast them again.

use std::sync::OnceLock;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::{Storage, Tensor};

/// The 16-bit copies of one weight, made on first use (a precision is a device-wide setting that may
/// change between calls, so each type has its own; boxed, so a layer without them stays small).
#[derive(Debug, Default)]
pub struct PackedWeight {
    bf16: OnceLock<Box<Tensor>>,
    f16: OnceLock<Box<Tensor>>,
}

impl PackedWeight {
    /// `weight` as the kernels of its device's current precision read it: itself on the CPU, at the
    /// fp32 precisions and where `f32_only` (the depthwise kernel), else its bf16 or fp16 copy.
    pub fn operand<'a>(&'a self, weight: &'a Tensor, f32_only: bool) -> Result<&'a Tensor> {
        let dtype = match weight.storage() {
            Storage::Cuda(_) if !f32_only => weight.device().precision().weight_dtype(),
            _ => return Ok(weight),
        };
        let cell = match dtype {
            DType::F32 => return Ok(weight),
            DType::BF16 => &self.bf16,
            DType::F16 => &self.f16,
        };
        if let Some(t) = cell.get() {
            return Ok(&**t);
        }
        // Two threads may both cast; one copy is kept, the other dropped.
        let _ = cell.set(Box::new(ops::cast(weight, dtype)?));
        cell.get().map(|t| &**t).ok_or(Error::InvalidParam {
            op: "packed weight",
            what: "16-bit copy",
            rule: "kept once made",
            found: "none".into(),
        })
    }
}
