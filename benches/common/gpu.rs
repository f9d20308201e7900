//! What the GPU benchmark executables share (included with `#[path]` by benches/gpu_kernels.rs and
//! benches/speed_model.rs).

use std::time::{Duration, Instant};

use trilemma::Device;

/// Times `iters` runs of `f` on the GPU: launches are queued back to back and the clock stops after the
/// stream drains, so launch overhead overlaps execution as it would inside a sampling loop.
pub fn time_gpu(dev: &Device, iters: u64, mut f: impl FnMut()) -> Duration {
    dev.synchronize().expect("sync before timing");
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    dev.synchronize().expect("sync after timing");
    start.elapsed()
}

/// The GPU, or None (with a note) where there is none; a failure under TRILEMMA_REQUIRE_GPU=1.
pub fn gpu_or_skip() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) if std::env::var("TRILEMMA_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("TRILEMMA_REQUIRE_GPU=1 but no usable GPU: {e}")
        }
        Err(e) => {
            eprintln!("SKIP GPU benchmarks: {e}");
            None
        }
    }
}
