//! Ops: argument validation, then dispatch to the backend that holds the tensors. A bad argument is an
//! [`crate::Error`] here, on every backend, before anything is launched.

mod axpby;
mod cast;
mod checks;
mod cld_steps;
mod ddgan_posterior;
mod network;
mod randn;

pub use axpby::axpby;
pub use cast::cast;
pub use cld_steps::{cld_em_step, cld_sscs_half_step, CldEmCoefficients, UDraw};
pub use ddgan_posterior::{ddgan_posterior_step, ddgan_posterior_step_philox};
pub use network::*;
pub use randn::{randn, randn_into};

pub use crate::backend::network::{Activation, BinaryOp, Resample2x};

use crate::error::{Error, Result};
use crate::tensor::{Storage, Tensor};

/// Both tensors on the CPU or both on the same GPU.
pub(crate) fn check_same_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    let same = match (a.storage(), b.storage()) {
        (Storage::Cpu(_), Storage::Cpu(_)) => true,
        (Storage::Cuda(x), Storage::Cuda(y)) => std::sync::Arc::ptr_eq(x.device(), y.device()),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(Error::DeviceMismatch {
            op,
            a: a.device().describe(),
            b: b.device().describe(),
        })
    }
}
