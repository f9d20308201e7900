//! Launch of `kernels/attention.cu`: fused single-head attention, one query row per warp.

use std::sync::Arc;

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::launch::{check, launch_error, u32_of};
use super::CudaStorage;
use crate::backend::AttentionOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::{TriAttentionParams, TRI_ATTENTION_MAX_C};

impl AttentionOps for CudaStorage {
    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self> {
        const OP: &str = "attention (cuda)";
        let dev = Arc::clone(qkv.device());
        check(OP, "qkv", qkv, n * positions * 3 * c, &dev)?;
        if c == 0 || c > TRI_ATTENTION_MAX_C as usize {
            return Err(Error::InvalidParam {
                op: OP,
                what: "channels",
                rule: "1 to 1024 (the fused kernel keeps a query row in registers)",
                found: c.to_string(),
            });
        }
        let p = TriAttentionParams {
            n: u32_of(OP, "batch", n)?,
            positions: u32_of(OP, "positions", positions)?,
            c: c as u32,
            // The CPU twin's scale, rounded the same way.
            scale: (c as f32).powf(-0.5),
        };
        let mut out = CudaStorage::alloc(&dev, n * positions * c, DType::F32)?;
        if n * positions == 0 {
            return Ok(out);
        }
        let f = dev.function(names::attention::ATTENTION_F32)?;
        // Four warps per CTA, one query row per warp.
        let cfg = LaunchConfig {
            grid_dim: (u32_of(OP, "rows / 4", (n * positions).div_ceil(4))?, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        let xv = qkv.view();
        let mut yv = out.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&mut yv).arg(&p);
        // SAFETY: see the shared argument in `launch.rs`; 128 threads match the kernel's __launch_bounds__ and
        // its one-row-per-warp mapping, rows past n·positions exit as whole warps before any shuffle.
        unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        Ok(out)
    }
}
