//! The floating-point work counter of the matrix ops, for benchmark rates.

use std::sync::atomic::{AtomicU64, Ordering};

static FLOPS: AtomicU64 = AtomicU64::new(0);

/// Floating-point work of the matrix ops (conv2d, linear, attention) run since the last
/// [`reset_flop_count`], at 2 FLOPs per multiply-add: the count torch.utils.flop_counter reports, so
/// benchmark rates compare with the PyTorch baseline's. Process-wide.
pub fn flops_counted() -> u64 {
    FLOPS.load(Ordering::Relaxed)
}

pub fn reset_flop_count() {
    FLOPS.store(0, Ordering::Relaxed);
}

pub(super) fn count_flops(macs: usize) {
    FLOPS.fetch_add(2 * macs as u64, Ordering::Relaxed);
}
