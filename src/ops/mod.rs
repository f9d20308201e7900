//! Ops: argument validation, then dispatch to the backend that holds the tensors. A bad argument is an
//! [`crate::Error`] here, on every backend, before anything is launched. Each op X lives in `X.rs`,
//! named after its kernel file `kernels/X.cu` and its backend files `backend/{cpu,cuda}/X.rs`.

mod attention;
mod checks;
mod cld_draw;
mod cld_em;
mod cld_sscs;
mod conv2d;
mod ddgan_posterior;
mod dispatch;
mod elementwise;
mod finite;
mod flops;
mod group_norm;
mod layout;
pub mod ode;
mod ode_drift;
mod philox_normal;
mod pointwise;
mod readback;
mod resample;

pub use attention::attention;
pub use cld_draw::UDraw;
pub use cld_em::{cld_em_step, CldEmCoefficients};
pub use cld_sscs::cld_sscs_half_step;
pub use crate::backend::conv_plan::{ConvGemm, ConvPlan, ConvTile};
pub use conv2d::{
    conv2d, conv2d_fused, conv2d_residual, conv2d_weight_from_oihw, linear, Conv2dParams, ConvFusion,
    Padding,
};
pub use ddgan_posterior::{
    ddgan_posterior_step, ddgan_posterior_step_philox, PosteriorCoefficients, MAX_STEPS,
};
pub use elementwise::{axpby, cast};
pub use finite::{check_finite, judge_slots, FiniteWatch};
pub use flops::{flops_counted, reset_flop_count};
pub use group_norm::{group_norm, group_norm_fold, NormFold};
pub use layout::{
    channel_mean, concat_channels, crop, nchw_to_nhwc, nhwc_to_nchw, pixel_norm, slice_channels,
};
pub use ode_drift::{cld_ode_drift, lsgm_ode_drift, CldOdeDrift, LsgmOdeDrift};
pub use philox_normal::{randn, randn_into};
pub use pointwise::{activation, add, binary, channel_affine, mul, AffineArgs};
pub use readback::{read_back, Readback};
pub use resample::{
    fir_conv_downsample2x, fir_downsample2x, fir_kernel_2d, fir_upsample2x, resample2x, upfirdn2d,
};

pub use crate::backend::geometry::{Activation, BinaryOp, Resample2x};
pub use crate::rng::MAX_ELEMS_PER_SAMPLE;
