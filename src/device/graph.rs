//! CUDA graphs of a sampling loop on one device: [`CudaDevice::capture_graph`] records a closure's
//! device work on the device's stream (nothing runs), [`DeviceGraph::replay`] runs it again for another
//! batch with one graph launch.
//!
//! What a capture fixes and how the engine keeps it right:
//! - **Arguments** are fixed at capture. The only per-batch argument of a fixed-step sampler is the
//!   first global sample index of its Philox draws; during a capture every Philox launch is rebased
//!   ([`CudaDevice::philox_params`]) to read that index from a device word ([`DeviceGraph::replay`]
//!   writes it), so a replay draws exactly the normals an uncaptured run of that batch would.
//! - **Memory** is fixed at capture. The pool hands out only cached blocks while capturing and keeps
//!   every block freed during the capture for the graph ([`crate::device::allocator`]); the graph
//!   holds them (and the closure's outputs, which the caller keeps with it) until it drops.
//! - **Host work** cannot be captured: a copy to or from pageable memory, a synchronize or an
//!   allocation inside the closure breaks the capture, which is then an error (the caller runs the
//!   batch uncaptured instead).
//!
//! Captures use CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, so the other GPUs' workers of a `cuda:all` run
//! (other threads) are not restricted by this one's capture.

use std::sync::Arc;

use cudarc::driver::{sys, CudaGraph};

use super::allocator::PooledBlock;
use super::{CudaDevice, CudaRaw};
use crate::error::{Error, Result};
use crate::kernels::params::TriRandnParams;

/// cudarc's graph, which holds raw driver handles and so is not `Send` by itself.
struct SendGraph(CudaGraph);

// SAFETY: a CUgraphExec may be used from any thread as long as uses are not concurrent (CUDA's graph
// thread-safety rules). A DeviceGraph is only replayed through `&mut self` or by its one owner, and
// cudarc's launch binds the context to the calling thread first.
unsafe impl Send for SendGraph {}

/// A captured sampling loop. Fields drop in order: the executable graph before the memory its nodes
/// address.
pub struct DeviceGraph {
    graph: SendGraph,
    /// The blocks freed during the capture, which the nodes use on every replay.
    _arena: Vec<PooledBlock<CudaRaw>>,
    /// One u32: the batch's first global sample index, read by every rebased Philox launch.
    base: PooledBlock<CudaRaw>,
    device: Arc<CudaDevice>,
}

impl std::fmt::Debug for DeviceGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceGraph(cuda:{})", self.device.ordinal())
    }
}

fn capture_error(call: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> Error {
    Error::driver("graph capture", call)
}

impl CudaDevice {
    /// `p` as a launch must pass it now: unchanged, or during a capture rebased onto the capture's
    /// sample-base word (first_sample made relative to the captured batch's first sample).
    pub(crate) fn philox_params(&self, p: &TriRandnParams) -> TriRandnParams {
        let base = *self.capture_base.lock().unwrap_or_else(|e| e.into_inner());
        match base {
            Some((first, at)) if p.first_sample >= first => TriRandnParams {
                first_sample: p.first_sample - first,
                first_sample_at: at,
                ..*p
            },
            _ => *p,
        }
    }

    /// Records the device work of `body` (which sees Philox draws for a batch starting at sample
    /// `first_sample`) as a graph; nothing runs until [`DeviceGraph::replay`]. Returns the graph and
    /// what `body` returned (its outputs' storage is the graph's: replays overwrite it). Any error in
    /// the body, a call the capture cannot hold, or a request the pool has no cached block for ends
    /// the capture with an error and no graph.
    pub fn capture_graph<T>(
        self: &Arc<Self>,
        first_sample: u32,
        body: impl FnOnce() -> Result<T>,
    ) -> Result<(DeviceGraph, T)> {
        let mut base = self.alloc("graph capture", 4)?;
        write_word(self, &mut base, first_sample)?;
        let at = {
            use cudarc::driver::DevicePtr;
            let (ptr, _sync) = base.block().device_ptr(self.stream());
            ptr
        };
        self.stream()
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(capture_error("cuStreamBeginCapture"))?;
        let pool_ok = self.pool.begin_capture();
        *self.capture_base.lock().unwrap_or_else(|e| e.into_inner()) = Some((first_sample, at));
        let out = pool_ok.and_then(|()| body());
        *self.capture_base.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let arena = self.pool.end_capture();
        let ended = self
            .stream()
            .end_capture(sys::CUgraphInstantiate_flags(0))
            .map_err(capture_error("cuStreamEndCapture"));
        let out = out?;
        let graph = ended?.ok_or_else(|| Error::InvalidParam {
            op: "graph capture",
            what: "captured work",
            rule: "at least one operation",
            found: "an empty capture".into(),
        })?;
        Ok((
            DeviceGraph {
                graph: SendGraph(graph),
                _arena: arena,
                base,
                device: Arc::clone(self),
            },
            out,
        ))
    }
}

/// Sets the first four bytes of `block` to `v`: a memset queued on the stream (no host buffer, so
/// nothing to wait for; stream order puts it between the replays that read the word).
fn write_word(dev: &CudaDevice, block: &mut PooledBlock<CudaRaw>, v: u32) -> Result<()> {
    use cudarc::driver::DevicePtrMut;
    let stream = dev.stream();
    let (ptr, _sync) = block.block_mut().device_ptr_mut(stream);
    // SAFETY: `ptr` is the start of a live pool block of at least 4 bytes (allocated for this word)
    // on this device, allocated on `stream`; one 4-byte element is written.
    unsafe { sys::cuMemsetD32Async(ptr, v, 1, stream.cu_stream()) }
        .result()
        .map_err(Error::driver("graph replay", "cuMemsetD32Async"))
}

impl DeviceGraph {
    /// Runs the captured work once more, for the batch starting at global sample `first_sample`: one
    /// 4-byte memset (the sample base) and one graph launch, queued on the device's stream.
    pub fn replay(&mut self, first_sample: u32) -> Result<()> {
        write_word(&self.device, &mut self.base, first_sample)?;
        self.graph
            .0
            .launch()
            .map_err(Error::driver("graph replay", "cuGraphLaunch"))
    }
}
