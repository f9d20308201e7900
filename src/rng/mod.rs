//! Counter-based noise: Philox4x32-10 with Box–Muller normals, from `kernels/common/philox.h`.
//!
//! The CPU path calls that header compiled as host C++ (csrc/host_math.cpp), the GPU path the same
//! header in `kernels/philox_normal.cu`: one implementation. Noise is a pure function of
//! (seed, stream, global sample index, step, element), so a batch split across processes or devices
//! reproduces the same images.

use crate::error::{Error, Result};
use crate::kernels::params::TriRandnParams;

/// Largest elements per sample: the Philox block index (4 elements each) is one 32-bit counter word.
pub const MAX_ELEMS_PER_SAMPLE: u64 = 4 << 32;

/// What a draw of noise is for. Each purpose has its own Philox counter space, so e.g. the prior sample
/// and the first step's noise of one sample never coincide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum NoiseStream {
    /// The initial sample from the prior (x_T, or CLD's (x, v) at t = 1).
    Prior = 0,
    /// Per-step sampler noise (SSCS, Euler–Maruyama, the DDGAN posterior draw).
    Step = 1,
    /// Generator latents (DDGAN's z).
    Latent = 2,
}

/// Identifies one draw of noise for a whole batch; the sample index and element complete the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoiseKey {
    pub seed: u64,
    pub stream: NoiseStream,
    pub step: u32,
}

impl NoiseKey {
    pub fn new(seed: u64, stream: NoiseStream, step: u32) -> Self {
        NoiseKey { seed, stream, step }
    }

    /// The draw of `num_samples` samples `first_sample ..` of `elems_per_sample` elements each, after
    /// checking that it fits the counter: sample indices and Philox block indices are one 32-bit
    /// counter word each. `op` names the op in the error.
    pub(crate) fn draw(
        &self,
        op: &'static str,
        num_samples: usize,
        first_sample: u32,
        elems_per_sample: u64,
    ) -> Result<TriRandnParams> {
        let n = u32::try_from(num_samples)
            .ok()
            .filter(|&n| first_sample.checked_add(n).is_some())
            .ok_or_else(|| Error::InvalidParam {
                op,
                what: "first_sample + num_samples",
                rule: "at most 2^32 (sample indices are one 32-bit counter word)",
                found: format!("{first_sample} + {num_samples}"),
            })?;
        if elems_per_sample > MAX_ELEMS_PER_SAMPLE {
            return Err(Error::InvalidParam {
                op,
                what: "elements per sample",
                rule: "at most 4 * 2^32 (Philox blocks are one 32-bit counter word)",
                found: elems_per_sample.to_string(),
            });
        }
        Ok(self.params(n, first_sample, elems_per_sample))
    }

    fn params(&self, num_samples: u32, first_sample: u32, elems_per_sample: u64) -> TriRandnParams {
        TriRandnParams {
            seed: self.seed,
            elems_per_sample,
            num_samples,
            first_sample,
            step: self.step,
            stream: self.stream as u32,
            first_sample_at: 0,
        }
    }
}

mod ffi {
    use crate::kernels::params::TriRandnParams;
    extern "C" {
        pub fn trilemma_philox4x32_10(ctr: *const u32, key: *const u32, out: *mut u32);
        pub fn trilemma_randn_f32(p: *const TriRandnParams, out: *mut f32);
    }
}

/// One Philox4x32-10 block, through the host build of the kernels' header.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut out = [0u32; 4];
    // SAFETY: the function reads 4 words from `ctr`, 2 from `key` and writes 4 to `out`; all three are
    // live arrays of exactly those lengths, and it keeps no pointer after returning.
    unsafe { ffi::trilemma_philox4x32_10(ctr.as_ptr(), key.as_ptr(), out.as_mut_ptr()) };
    out
}

/// Fills `out` (num_samples * elems_per_sample fp32 values) as `kernels/philox_normal.cu` does.
pub(crate) fn randn_f32_host(p: &TriRandnParams, out: &mut [f32]) {
    let needed = (p.num_samples as u64).checked_mul(p.elems_per_sample);
    assert_eq!(
        needed,
        Some(out.len() as u64),
        "randn_f32_host: output length must equal samples * elements"
    );
    if out.is_empty() {
        return;
    }
    // SAFETY: the C function writes exactly num_samples * elems_per_sample floats starting at `out`,
    // which the assertion above ties to out.len(); it reads only `*p` and keeps no pointer.
    unsafe { ffi::trilemma_randn_f32(p, out.as_mut_ptr()) };
}
