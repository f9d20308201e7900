//! How a GPU computes the matrix products of the networks (convolutions, linear layers): the default
//! fp32 FFMA kernels, or tensor-core kernels on rounded operands with fp32 accumulators.

use std::str::FromStr;
use std::sync::atomic::Ordering;

use super::{CudaDevice, Device};
use crate::backend::conv_plan::ConvPlan;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The arithmetic of a GPU's convolutions and linear layers (`kernels/conv2d.cu`,
/// `kernels/conv2d_tc.cu`). Every variant accumulates in fp32; they differ in how the operands enter
/// the products. The CPU always computes in fp32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// fp32 operands on the fp32 units (FFMA): the reference path, within 1e-4 of the CPU.
    #[default]
    Fp32,
    /// fp32-accurate on tensor cores: each operand split into two TF32 halves, three products.
    Tf32x3,
    /// Operands rounded to TF32 (10 mantissa bits): about 1e-3 relative.
    Tf32,
    /// Operands rounded to bfloat16 (7 mantissa bits): within 1e-2 on networks.
    Bf16,
    /// Operands rounded to fp16 (10 mantissa bits, a narrower range): within 1e-2 on networks.
    Fp16,
}

impl Precision {
    pub const ALL: [Precision; 5] = [
        Precision::Fp32,
        Precision::Tf32x3,
        Precision::Tf32,
        Precision::Bf16,
        Precision::Fp16,
    ];

    /// The name `FromStr` takes: `fp32`, `3xtf32`, `tf32`, `bf16`, `fp16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32x3 => "3xtf32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// The element type the tensor-core kernels of this precision read a convolution's or linear
    /// layer's weights in: bf16 / fp16 bits for the 16-bit products (rounded once, by a layer's
    /// packed copy or a cast at the call, instead of in every CTA), fp32 otherwise.
    pub fn weight_dtype(self) -> DType {
        match self {
            Precision::Bf16 => DType::BF16,
            Precision::Fp16 => DType::F16,
            Precision::Fp32 | Precision::Tf32x3 | Precision::Tf32 => DType::F32,
        }
    }

    /// The storage type of a network's activations between its ops at this precision: the 16-bit
    /// precisions keep them in their own type (half the bytes of every pass; the kernels widen on
    /// load, compute in fp32 and round once on store), the others in fp32. Inputs and outputs of a
    /// network call stay fp32.
    pub fn activation_dtype(self) -> DType {
        self.weight_dtype()
    }

    fn code(self) -> u8 {
        Precision::ALL.iter().position(|&p| p == self).unwrap_or(0) as u8
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Precision> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| Error::setting("precision", "fp32, 3xtf32, tf32, bf16 or fp16", s))
    }
}

impl CudaDevice {
    pub(crate) fn precision(&self) -> Precision {
        let code = self.precision.load(Ordering::Relaxed) as usize;
        Precision::ALL.get(code).copied().unwrap_or_default()
    }

    /// The plan a test forced on this device's convolutions, if any.
    pub(crate) fn forced_conv_plan(&self) -> Option<ConvPlan> {
        *self.conv_plan.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Device {
    /// Sets how this GPU computes convolutions and linear layers from now on, for every model and
    /// tensor on it (a device-wide setting: the device is shared by clones). The CPU takes only
    /// [`Precision::Fp32`].
    pub fn set_precision(&self, precision: Precision) -> Result<()> {
        match self {
            Device::Cuda(d) => {
                d.precision.store(precision.code(), Ordering::Relaxed);
                Ok(())
            }
            Device::Cpu if precision == Precision::Fp32 => Ok(()),
            Device::Cpu => Err(Error::setting(
                "precision",
                "fp32 on the CPU (the tensor-core precisions need a GPU)",
                precision.name(),
            )),
        }
    }

    /// Makes every convolution on this GPU run with `plan` (its CTA tile and split-K) instead of the
    /// one chosen for its shape, or with its own choice again for `None`: the tests run each kernel
    /// variant this way on small shapes. A tile the device's precision has no kernel for (128 × 128
    /// at fp32) is an error at the convolution. The CPU takes only `None`.
    #[doc(hidden)]
    pub fn force_conv_plan(&self, plan: Option<ConvPlan>) -> Result<()> {
        match self {
            Device::Cuda(d) => {
                *d.conv_plan.lock().unwrap_or_else(|e| e.into_inner()) = plan;
                Ok(())
            }
            Device::Cpu if plan.is_none() => Ok(()),
            Device::Cpu => Err(Error::setting(
                "convolution plan",
                "none on the CPU (plans are GPU launch shapes)",
                format!("{plan:?}"),
            )),
        }
    }

    /// How this device computes convolutions and linear layers.
    pub fn precision(&self) -> Precision {
        match self {
            Device::Cuda(d) => d.precision(),
            Device::Cpu => Precision::Fp32,
        }
    }
}
