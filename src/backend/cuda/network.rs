//! The CUDA side of [`NetworkOps`]. The network kernels are not written yet: every op reports
//! [`Error::NotOnDevice`] so a CUDA run fails with a clear message before any work is queued, and the
//! CPU backend stays usable.

use super::CudaStorage;
use crate::backend::network::{
    Activation, BinaryOp, ChannelAffine, Conv2dGeometry, GroupNormGeometry, NetworkOps, Nhwc,
    Resample2x, UpFirDnGeometry,
};
use crate::error::{Error, Result};

fn pending<T>(op: &'static str) -> Result<T> {
    Err(Error::NotOnDevice { op, device: "CUDA" })
}

impl NetworkOps for CudaStorage {
    fn conv2d(_: &Self, _: &Self, _: Option<&Self>, _: &Conv2dGeometry) -> Result<Self> {
        pending("conv2d")
    }
    fn linear(_: &Self, _: &Self, _: Option<&Self>, _: usize, _: usize, _: usize) -> Result<Self> {
        pending("linear")
    }
    fn group_norm(_: &Self, _: &GroupNormGeometry, _: &ChannelAffine<'_, Self>) -> Result<Self> {
        pending("group_norm")
    }
    fn channel_affine(_: &Self, _: &ChannelAffine<'_, Self>) -> Result<Self> {
        pending("channel_affine")
    }
    fn activation(_: &Self, _: Activation) -> Result<Self> {
        pending("activation")
    }
    fn binary(_: &Self, _: &Self, _: BinaryOp) -> Result<Self> {
        pending("binary")
    }
    fn attention(_: &Self, _: usize, _: usize, _: usize) -> Result<Self> {
        pending("attention")
    }
    fn upfirdn2d(_: &Self, _: &UpFirDnGeometry, _: &[f32]) -> Result<Self> {
        pending("upfirdn2d")
    }
    fn resample2x(_: &Self, _: &Nhwc, _: Resample2x) -> Result<Self> {
        pending("resample2x")
    }
    fn concat_channels(_: &Self, _: &Self, _: usize, _: usize, _: usize) -> Result<Self> {
        pending("concat_channels")
    }
    fn slice_channels(_: &Self, _: usize, _: usize, _: usize, _: usize) -> Result<Self> {
        pending("slice_channels")
    }
    fn crop(_: &Self, _: &Nhwc, _: usize, _: usize, _: usize, _: usize) -> Result<Self> {
        pending("crop")
    }
    fn channel_mean(_: &Self, _: usize, _: usize, _: usize) -> Result<Self> {
        pending("channel_mean")
    }
    fn permute_nchw(_: &Self, _: &Nhwc, _: bool) -> Result<Self> {
        pending("permute_nchw")
    }
}
