//! What every launch wrapper in `backend/cuda/` shares: the checks an `unsafe` launch relies on, the
//! checked conversions to the kernels' u32 fields, fresh outputs, and the 1-D launches of the
//! one-input and two-input kernels. The SAFETY argument below is the one each wrapper's launch leans
//! on; a wrapper states only what is its own (grid shape, which pointers a flag keeps unread).

use std::sync::Arc;

use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};

use super::CudaStorage;
use crate::backend::geometry::Nhwc;
use crate::device::CudaDevice;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::params::TriNhwc;
use crate::kernels::Kernel;

/// `s` is an f32 storage of exactly `len` elements on `dev`.
pub(super) fn check(
    op: &'static str,
    tensor: &'static str,
    s: &CudaStorage,
    len: usize,
    dev: &Arc<CudaDevice>,
) -> Result<()> {
    check_as(op, tensor, s, len, dev, DType::F32)
}

/// `s` is a storage of `dtype` with exactly `len` elements on `dev`: a network op's activations are
/// all in one storage type, that of its first input (f32, or bf16 / fp16 at those precisions).
pub(super) fn check_as(
    op: &'static str,
    tensor: &'static str,
    s: &CudaStorage,
    len: usize,
    dev: &Arc<CudaDevice>,
    dtype: DType,
) -> Result<()> {
    if s.dtype() != dtype {
        return Err(Error::DTypeMismatch {
            op,
            tensor,
            expected: dtype,
            found: s.dtype(),
        });
    }
    check_placed(op, tensor, s, len, dev)
}

/// The kernel of a per-storage-type triple (`<op>_f32`, `_bf16`, `_f16`) for activations of `dtype`.
pub(super) fn for_dtype(kernels: [Kernel; 3], dtype: DType) -> Kernel {
    match dtype {
        DType::F32 => kernels[0],
        DType::BF16 => kernels[1],
        DType::F16 => kernels[2],
    }
}

/// `s` holds exactly `len` elements, of any dtype, on `dev`.
pub(super) fn check_placed(
    op: &'static str,
    tensor: &'static str,
    s: &CudaStorage,
    len: usize,
    dev: &Arc<CudaDevice>,
) -> Result<()> {
    if s.len() != len {
        return Err(Error::ShapeMismatch {
            op,
            tensor,
            expected: vec![len],
            found: vec![s.len()],
        });
    }
    if !Arc::ptr_eq(s.device(), dev) {
        return Err(Error::DeviceMismatch {
            op,
            a: format!("cuda:{}", dev.ordinal()),
            b: format!("cuda:{}", s.device().ordinal()),
        });
    }
    Ok(())
}

/// A count that the kernel's u32 fields hold.
pub(super) fn u32_of(op: &'static str, what: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::InvalidParam {
        op,
        what,
        rule: "below 2^32 for the CUDA kernels",
        found: v.to_string(),
    })
}

pub(super) fn nhwc(op: &'static str, s: &Nhwc) -> Result<TriNhwc> {
    Ok(TriNhwc {
        n: u32_of(op, "batch", s.n)?,
        h: u32_of(op, "height", s.h)?,
        w: u32_of(op, "width", s.w)?,
        c: u32_of(op, "channels", s.c)?,
    })
}

/// A fresh output of `len` elements of `dtype` and the 1-D launch over it, or None for an empty output.
pub(super) fn output(
    dev: &Arc<CudaDevice>,
    len: usize,
    dtype: DType,
) -> Result<(CudaStorage, Option<LaunchConfig>)> {
    let out = CudaStorage::alloc(dev, len, dtype)?;
    let cfg = (len > 0).then(|| dev.launch_1d(len as u64));
    Ok((out, cfg))
}

pub(super) fn launch_error(op: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> Error {
    Error::driver(op, "cuLaunchKernel")
}

/// Launches `module::kernel(const T* inputs..., T* y, P p)` over a fresh output of `out_len` values in
/// the first input's dtype, 1-D grid-stride; the caller has checked every input against what `p`
/// describes, all in that dtype, and chose the kernel of that type.
pub(super) fn launch_1d<P: DeviceRepr>(
    op: &'static str,
    kernel: Kernel,
    inputs: &[&CudaStorage],
    out_len: usize,
    p: &P,
) -> Result<CudaStorage> {
    let Some(first) = inputs.first() else {
        return Err(Error::InvalidParam {
            op,
            what: "inputs",
            rule: "at least one",
            found: "none".into(),
        });
    };
    let dev = Arc::clone(first.device());
    let (mut out, cfg) = output(&dev, out_len, first.dtype())?;
    let Some(cfg) = cfg else { return Ok(out) };
    let f = dev.function(kernel)?;
    let views: Vec<_> = inputs.iter().map(|t| t.view()).collect();
    let mut yv = out.view_mut();
    let mut l = dev.stream().launch_builder(&f);
    for v in &views {
        l.arg(v);
    }
    l.arg(&mut yv).arg(p);
    // SAFETY: see the shared argument below; `out` holds exactly the `out_len` values the kernel
    // writes and every input the count `p` describes (checked by every caller before this call).
    unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    Ok(out)
}

// The SAFETY argument shared by every launch in `backend/cuda/`, stated once:
// - Signature: each kernel's parameter list (kernels/*.cu) is matched by the order and types of the
//   `arg` calls next to it; every tensor is f32 (checked), or for the network ops' per-storage-type
//   kernels (`for_dtype`) every activation in the one dtype checked and the kernel of that type
//   chosen, and a wrapper states any other case (the tensor-core convolutions' 16-bit weights); the
//   params struct is the bindgen twin of the header's.
// - Bounds: every input was checked to hold exactly the element count the params describe, and the
//   output was allocated with the count the kernel writes; indices are computed in u64.
// - Aliasing: outputs are fresh blocks, distinct from every input, so the kernels' __restrict__ holds;
//   inputs are only read. An absent optional vector is replaced by a valid pointer (x) that the
//   kernel never reads, as its flag is 0.
// - Ordering and lifetime: one stream per device; blocks return to the pool only in stream order,
//   after the kernels that use them.
