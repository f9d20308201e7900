//! Launch of the fused single-head attention: `kernels/attention_tc.cu` (FlashAttention-2 style on
//! tensor cores) at the bf16 and fp16 precisions where the channel count is a multiple of 8,
//! `kernels/attention.cu` (one query row per warp, fp32 FFMA) otherwise: the fp32 and TF32
//! precisions keep the exact-fp32 kernel, as the scores' softmax is where rounding shows first.

use std::sync::Arc;

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::launch::{check_placed, for_dtype, launch_error, u32_of};
use super::CudaStorage;
use crate::backend::AttentionOps;
use crate::device::Precision;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::{TriAttentionParams, TRI_ATTENTION_MAX_C};

/// Queries per CTA of the tensor-core kernel (4 warps of 16 rows): FA_BQ in attention_tc.cu.
pub(crate) const FLASH_QUERIES: usize = 64;
/// Output columns per CTA of the tensor-core kernel: FA_DV.
pub(crate) const FLASH_COLUMNS: usize = 128;
/// The tensor-core kernel loads rows in 8-float vectors.
pub(crate) const FLASH_C_MULTIPLE: usize = 8;

impl AttentionOps for CudaStorage {
    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self> {
        const OP: &str = "attention (cuda)";
        let dev = Arc::clone(qkv.device());
        check_placed(OP, "qkv", qkv, n * positions * 3 * c, &dev)?;
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
        let dtype = qkv.dtype();
        let mut out = CudaStorage::alloc(&dev, n * positions * c, dtype)?;
        if n * positions == 0 {
            return Ok(out);
        }
        // The tensor-core kernel over fp32 activations, or over its own 16-bit type (_io16); other
        // storage (fp16 activations at bf16, say) takes the FFMA kernel of that type.
        use names::attention_tc as tc;
        let flash = match (dev.precision(), dtype) {
            _ if c % FLASH_C_MULTIPLE != 0 => None,
            (Precision::Bf16, DType::F32) => Some(tc::ATTENTION_FLASH_BF16),
            (Precision::Fp16, DType::F32) => Some(tc::ATTENTION_FLASH_F16),
            (Precision::Bf16, DType::BF16) => Some(tc::ATTENTION_FLASH_BF16_IO16),
            (Precision::Fp16, DType::F16) => Some(tc::ATTENTION_FLASH_F16_IO16),
            _ => None,
        };
        let xv = qkv.view();
        let mut yv = out.view_mut();
        if let Some(kernel) = flash {
            let f = dev.function(kernel)?;
            let blocks = positions.div_ceil(FLASH_QUERIES) * n;
            let cfg = LaunchConfig {
                grid_dim: (
                    u32_of(OP, "query blocks x batch", blocks)?,
                    c.div_ceil(FLASH_COLUMNS) as u32,
                    1,
                ),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut l = dev.stream().launch_builder(&f);
            l.arg(&xv).arg(&mut yv).arg(&p);
            // SAFETY: see the shared argument in `launch.rs`; qkv holds n·positions rows of 3c elements
            // and out n·positions rows of c (both checked above, of the type the kernel reads), c is a
            // multiple of 8 so every row's 8-element vector loads and the 2-element stores stay
            // aligned and inside their row; the grid has one CTA
            // per 64 queries of each image (x) and per 128 output columns (y), the 128 threads the
            // kernel's __launch_bounds__ and its 4 x 16-row warp mapping; its shared memory is static.
            unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        } else {
            use names::attention as k;
            let kernel = for_dtype([k::ATTENTION_F32, k::ATTENTION_BF16, k::ATTENTION_F16], dtype);
            let f = dev.function(kernel)?;
            // Four warps per CTA, one query row per warp.
            let cfg = LaunchConfig {
                grid_dim: (u32_of(OP, "rows / 4", (n * positions).div_ceil(4))?, 1, 1),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut l = dev.stream().launch_builder(&f);
            l.arg(&xv).arg(&mut yv).arg(&p);
            // SAFETY: see the shared argument in `launch.rs`; 128 threads match the kernel's __launch_bounds__ and
            // its one-row-per-warp mapping, rows past n·positions exit as whole warps before any shuffle.
            unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
        }
        Ok(out)
    }
}
