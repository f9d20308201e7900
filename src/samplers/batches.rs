//! One device's share of a run: its batches in order, overlapped. Batch b's work is queued (a graph
//! replay or its kernels, then the copy of its images into page-locked memory) *before* the host
//! waits for batch b−1's copy, so while the host waits for, maps and hands on batch b−1 (and the
//! writer encodes it), the device already runs batch b: the run's wall time is the device's time plus
//! what the host cannot hide, not their sum.
//!
//! A batch that runs out of device memory is retried as two halves (recursively, down to one image)
//! after the run's graphs and the pool's cache are handed back. The images are the same as a run with
//! the smaller batches from the start: every sample's noise is keyed by its index, and the fixed-step
//! samplers treat samples independently (the adaptive ODE samplers solve a batch as one system, so
//! their step sizes follow the batch, as in the official code).

use std::ops::Range;

use super::graph::GraphRuns;
use super::noise::Noise;
use super::run::{PendingBatch, Plan, SampledBatch};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::models::Model;

/// What a device's share of a run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchesDone {
    /// Network evaluations, summed over batches.
    pub nfe: usize,
    /// Batches handed to `deliver`.
    pub batches: usize,
}

/// Runs `batches` (global sample ranges) of `plan` on `device` in order, each batch's work queued
/// before the previous batch is waited for, and hands every finished batch with the global index of
/// its first sample to `deliver`, in order. `deliver` returns false to stop the run early (the batch
/// in flight is waited for and dropped).
pub fn run_batches<'n>(
    plan: &Plan,
    model: &Model,
    batches: &[Range<usize>],
    noise_for: &dyn Fn(usize) -> Noise<'n>,
    device: &Device,
    graphs: &mut GraphRuns,
    deliver: &mut dyn FnMut(usize, SampledBatch) -> Result<bool>,
) -> Result<BatchesDone> {
    let mut done = BatchesDone::default();
    let mut in_flight: Option<(usize, PendingBatch)> = None;
    for r in batches {
        let pending = enqueue_halving_on_oom(plan, model, r.clone(), noise_for, device, graphs)?;
        if let Some((first, prev)) = in_flight.replace((r.start, pending)) {
            let b = prev.wait()?;
            done.nfe += b.nfe;
            done.batches += 1;
            if !deliver(first, b)? {
                if let Some((_, last)) = in_flight.take() {
                    last.wait()?;
                }
                return Ok(done);
            }
        }
    }
    if let Some((first, last)) = in_flight {
        let b = last.wait()?;
        done.nfe += b.nfe;
        done.batches += 1;
        deliver(first, b)?;
    }
    Ok(done)
}

/// The samples `r` as one queued batch, or as halves after an out-of-memory error (see the module
/// comment).
fn enqueue_halving_on_oom<'n>(
    plan: &Plan,
    model: &Model,
    r: Range<usize>,
    noise_for: &dyn Fn(usize) -> Noise<'n>,
    device: &Device,
    graphs: &mut GraphRuns,
) -> Result<PendingBatch> {
    match plan.enqueue(model, r.len(), &noise_for(r.start), device, graphs) {
        Ok(p) => Ok(p),
        Err(e @ Error::OutOfMemory { .. }) if r.len() > 1 && device.is_cuda() => {
            // The graphs' memory first (they are captured again at the new batch sizes), then the
            // pool's cache.
            graphs.clear();
            if let Device::Cuda(d) = device {
                d.release_cached_memory()?;
            }
            let mid = r.start + r.len() / 2;
            eprintln!(
                "sample: batch of {} at sample {}: {e}; retrying as {} + {}",
                r.len(),
                r.start,
                mid - r.start,
                r.end - mid
            );
            let a = enqueue_halving_on_oom(plan, model, r.start..mid, noise_for, device, graphs)?;
            let b = enqueue_halving_on_oom(plan, model, mid..r.end, noise_for, device, graphs)?;
            Ok(a.join(b))
        }
        Err(e) => Err(e),
    }
}
