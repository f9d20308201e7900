//! Launches of `kernels/pointwise.cu`: activations, binary ops and the per-channel affine map (whose
//! parameter struct group_norm shares).

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::launch::{check, check_as, check_placed, for_dtype, launch_1d, launch_error, output, u32_of};
use super::CudaStorage;
use crate::backend::geometry::{Activation, BinaryOp, ChannelAffine, ChannelVector};
use crate::backend::PointwiseOps;
use crate::device::CudaDevice;
use crate::error::Result;
use crate::kernels::names;
use crate::kernels::params::{
    TriActivationParams, TriBinaryParams, TriChannelAffineParams, TRI_BINARY_ADD, TRI_BINARY_MUL,
    TRI_BINARY_SUB,
};

pub(super) fn activation_code(a: Activation) -> (i32, f32) {
    use crate::kernels::params as k;
    let (k, arg) = match a {
        Activation::Identity => (k::TRI_ACT_IDENTITY, 0.0),
        Activation::Silu => (k::TRI_ACT_SILU, 0.0),
        Activation::Elu => (k::TRI_ACT_ELU, 0.0),
        Activation::Relu => (k::TRI_ACT_RELU, 0.0),
        Activation::LeakyRelu(s) => (k::TRI_ACT_LEAKY_RELU, s),
        Activation::Tanh => (k::TRI_ACT_TANH, 0.0),
        Activation::Sigmoid => (k::TRI_ACT_SIGMOID, 0.0),
        Activation::SoftClamp(b) => (k::TRI_ACT_SOFT_CLAMP, b),
        Activation::Exp => (k::TRI_ACT_EXP, 0.0),
    };
    (k as i32, arg)
}

/// Checks one optional affine vector ([c] or [n, c]); returns (present, per_sample).
fn vector_flags(
    op: &'static str,
    tensor: &'static str,
    v: Option<ChannelVector<'_, CudaStorage>>,
    n: usize,
    c: usize,
    dev: &Arc<CudaDevice>,
) -> Result<(u32, u32)> {
    match v {
        None => Ok((0, 0)),
        Some(v) => {
            check(
                op,
                tensor,
                v.data,
                if v.per_sample { n * c } else { c },
                dev,
            )?;
            Ok((1, v.per_sample as u32))
        }
    }
}

pub(super) fn affine_params(
    op: &'static str,
    a: &ChannelAffine<'_, CudaStorage>,
    dev: &Arc<CudaDevice>,
) -> Result<TriChannelAffineParams> {
    let (has_center, center_per_sample) = vector_flags(op, "center", a.center, a.n, a.c, dev)?;
    let (has_scale, scale_per_sample) = vector_flags(op, "scale", a.scale, a.n, a.c, dev)?;
    let (has_shift, shift_per_sample) = vector_flags(op, "shift", a.shift, a.n, a.c, dev)?;
    let (act, act_arg) = activation_code(a.act);
    Ok(TriChannelAffineParams {
        rows: (a.n * a.pixels) as u64,
        pixels: u32_of(op, "pixels", a.pixels)?,
        c: u32_of(op, "channels", a.c)?,
        has_center,
        center_per_sample,
        has_scale,
        scale_per_sample,
        has_shift,
        shift_per_sample,
        act,
        act_arg,
    })
}

impl PointwiseOps for CudaStorage {
    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "channel_affine (cuda)";
        let dev = Arc::clone(x.device());
        let len = a.n * a.pixels * a.c;
        check_placed(OP, "x", x, len, &dev)?;
        let p = affine_params(OP, a, &dev)?;
        let (mut out, cfg) = output(&dev, len, x.dtype())?;
        let Some(cfg) = cfg else { return Ok(out) };
        use names::pointwise as k;
        let kernel = [k::CHANNEL_AFFINE_F32, k::CHANNEL_AFFINE_BF16, k::CHANNEL_AFFINE_F16];
        let f = dev.function(for_dtype(kernel, x.dtype()))?;
        let xv = x.view();
        let cv = a.center.map_or(x, |v| v.data).view();
        let sv = a.scale.map_or(x, |v| v.data).view();
        let bv = a.shift.map_or(x, |v| v.data).view();
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&cv).arg(&sv).arg(&bv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument in `launch.rs`.
        unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        Ok(out)
    }

    fn activation(x: &Self, act: Activation) -> Result<Self> {
        const OP: &str = "activation (cuda)";
        let dev = Arc::clone(x.device());
        check_placed(OP, "x", x, x.len(), &dev)?;
        let (code, arg) = activation_code(act);
        let p = TriActivationParams {
            n: x.len() as u64,
            act: code,
            arg,
        };
        use names::pointwise as k;
        let kernel = for_dtype([k::ACTIVATION_F32, k::ACTIVATION_BF16, k::ACTIVATION_F16], x.dtype());
        launch_1d(OP, kernel, &[x], x.len(), &p)
    }

    fn binary(a: &Self, b: &Self, op: BinaryOp) -> Result<Self> {
        const OP: &str = "binary (cuda)";
        let dev = Arc::clone(a.device());
        check_placed(OP, "a", a, a.len(), &dev)?;
        check_as(OP, "b", b, a.len(), &dev, a.dtype())?;
        let p = TriBinaryParams {
            n: a.len() as u64,
            op: match op {
                BinaryOp::Add => TRI_BINARY_ADD,
                BinaryOp::Sub => TRI_BINARY_SUB,
                BinaryOp::Mul => TRI_BINARY_MUL,
            } as i32,
            pad: 0,
        };
        use names::pointwise as k;
        let kernel = for_dtype([k::BINARY_F32, k::BINARY_BF16, k::BINARY_F16], a.dtype());
        launch_1d(OP, kernel, &[a, b], a.len(), &p)
    }
}
