//! What the network ops' backends are told: activations, op kinds and geometry structs. Activations
//! are NHWC (`[batch, height, width, channels]`, channels fastest) on every backend; convolution weights
//! are HWIO `[kh, kw, in/groups, out]`, re-laid out from PyTorch's `[out, in/groups, kh, kw]` at load
//! time. The structs are filled and validated by the ops layer, so a backend can trust them.

use crate::error::{Error, Result};

/// Pointwise activations, applied in fp32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    /// x·σ(x) (SiLU, "swish").
    Silu,
    /// x for x > 0, eˣ − 1 otherwise (α = 1).
    Elu,
    Relu,
    /// max(x, 0) + slope·min(x, 0).
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
    /// tanh(x / a)·a, NVAE's soft clamp of posterior parameters.
    SoftClamp(f32),
    Exp,
}

impl Activation {
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s * x
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::SoftClamp(a) => (x / a).tanh() * a,
            Activation::Exp => x.exp(),
        }
    }
}

/// Elementwise binary ops on equal shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
}

/// 2-D convolution over NHWC input; output `[n, ho, wo, co]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub ci: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    /// Zeros added above and left of the input (below/right padding only shows in `ho`/`wo`).
    pub pad_top: usize,
    pub pad_left: usize,
    pub ho: usize,
    pub wo: usize,
    pub groups: usize,
}

impl Conv2dGeometry {
    pub fn input(&self) -> Nhwc {
        Nhwc {
            n: self.n,
            h: self.h,
            w: self.w,
            c: self.ci,
        }
    }
}

/// `[rows, in_f]` · `[out_f, in_f]`ᵀ (+ bias `[out_f]`) → `[rows, out_f]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearGeometry {
    pub rows: usize,
    pub in_f: usize,
    pub out_f: usize,
}

/// Group normalisation of `[n, pixels, c]` with `groups` groups of `c / groups` channels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNormGeometry {
    pub n: usize,
    pub pixels: usize,
    pub c: usize,
    pub groups: usize,
    pub eps: f32,
}

/// A per-channel vector `[c]` or a per-sample one `[n, c]`.
#[derive(Debug)]
pub struct ChannelVector<'a, S> {
    pub data: &'a S,
    pub per_sample: bool,
}

// Manual impls: a derive would demand `S: Copy`, but only the reference is copied.
impl<S> Clone for ChannelVector<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for ChannelVector<'_, S> {}

/// y = act((x − center)·scale + shift) over `[n, pixels, c]`; any of the three may be absent.
#[derive(Debug)]
pub struct ChannelAffine<'a, S> {
    pub n: usize,
    pub pixels: usize,
    pub c: usize,
    pub center: Option<ChannelVector<'a, S>>,
    pub scale: Option<ChannelVector<'a, S>>,
    pub shift: Option<ChannelVector<'a, S>>,
    pub act: Activation,
}

/// upfirdn2d per channel over NHWC: zero-insert by `up`, pad `pad0` before and `pad1` after (negative
/// crops), true convolution with the `k`×`k` kernel, keep every `down`-th sample. Same on both axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpFirDnGeometry {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub up: usize,
    pub down: usize,
    pub pad0: isize,
    pub pad1: isize,
    pub k: usize,
    pub ho: usize,
    pub wo: usize,
}

impl UpFirDnGeometry {
    pub fn input(&self) -> Nhwc {
        Nhwc {
            n: self.n,
            h: self.h,
            w: self.w,
            c: self.c,
        }
    }
}

/// Fixed 2× resamplers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample2x {
    /// Nearest-neighbour repeat (F.interpolate mode="nearest").
    NearestUp,
    /// Mean of 2×2 blocks.
    MeanDown,
    /// Bilinear with align_corners=True.
    BilinearUpAligned,
}

/// Shape of an NHWC activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nhwc {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Nhwc {
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }
    pub fn len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `ho`×`wo` window at (`top`, `left`) of every image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub top: usize,
    pub left: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Window {
    /// The window lies inside the images of `s`.
    pub fn check(&self, op: &'static str, s: &Nhwc) -> Result<()> {
        if self.top + self.ho > s.h || self.left + self.wo > s.w {
            return Err(Error::InvalidParam {
                op,
                what: "window",
                rule: "inside the image",
                found: format!(
                    "{}x{} at ({}, {}) of {}x{}",
                    self.ho, self.wo, self.top, self.left, s.h, s.w
                ),
            });
        }
        Ok(())
    }
}
