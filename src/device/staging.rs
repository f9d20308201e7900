//! Copies from a GPU that the host collects later, so the device can run the next batch meanwhile:
//! the copies go into one page-locked staging buffer (a device-to-host copy into pageable memory
//! returns only when it is done, one into page-locked memory is queued like a kernel), an event is
//! recorded after them, and [`Staged::wait`] blocks on that event only, not on the stream: work queued
//! after the copies (the next batch's graph replay or kernels) keeps the device busy while the host
//! waits, encodes and writes.
//!
//! Staging buffers are page-locked once and reused: `cuMemHostAlloc` is slow (it pins pages), and a
//! run needs two at a time (the batch whose copy is in flight and the one being read).

use std::sync::{Arc, Mutex};

use cudarc::driver::{sys, CudaContext, CudaView, DevicePtr};

use super::CudaDevice;
use crate::error::{Error, Result};

/// The alignment of each copy's place in a staging buffer.
const ALIGN: usize = 256;

/// Free staging buffers kept per device (more are freed when handed back).
const KEPT: usize = 4;

/// A page-locked host block from `cuMemHostAlloc`, freed with `cuMemFreeHost` by its owner.
struct PinnedBlock {
    ptr: *mut u8,
    bytes: usize,
}

// SAFETY: the block is plain host memory owned by exactly one PinnedBlock; the driver writes it only
// through copies whose completion the owner waits for (an event) before reading or freeing it.
unsafe impl Send for PinnedBlock {}

/// A device's free staging buffers.
pub(crate) struct StagingPool {
    ctx: Arc<CudaContext>,
    free: Mutex<Vec<PinnedBlock>>,
}

impl StagingPool {
    pub(crate) fn new(ctx: Arc<CudaContext>) -> Arc<StagingPool> {
        Arc::new(StagingPool {
            ctx,
            free: Mutex::new(Vec::new()),
        })
    }

    /// The smallest free buffer of at least `bytes`, or a new one.
    fn take(&self, bytes: usize) -> Result<PinnedBlock> {
        {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.bytes >= bytes)
                .min_by_key(|(_, b)| b.bytes)
                .map(|(i, _)| i);
            if let Some(i) = best {
                return Ok(free.swap_remove(i));
            }
        }
        self.bind()?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: cuMemHostAlloc writes one pointer through `ptr`, a live local; flags 0 (page-locked,
        // this context only). The context is current on this thread (bind).
        unsafe { sys::cuMemHostAlloc(&mut ptr, bytes.max(1), 0) }
            .result()
            .map_err(|e| match e.0 {
                sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => Error::InvalidParam {
                    op: "stage",
                    what: "page-locked host memory",
                    rule: "available",
                    found: format!("cuMemHostAlloc of {bytes} bytes failed: out of memory"),
                },
                _ => Error::driver("stage", "cuMemHostAlloc")(e),
            })?;
        Ok(PinnedBlock {
            ptr: ptr as *mut u8,
            bytes: bytes.max(1),
        })
    }

    fn give_back(&self, block: PinnedBlock) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < KEPT {
            free.push(block);
            return;
        }
        drop(free);
        self.release(block);
    }

    fn release(&self, block: PinnedBlock) {
        if self.bind().is_ok() {
            // SAFETY: the block came from cuMemHostAlloc in this context and is freed once (the
            // PinnedBlock is consumed); no copy into it is in flight (a Staged waits before giving
            // its block back, and a Staged dropped unwaited synchronizes its event first).
            let r = unsafe { sys::cuMemFreeHost(block.ptr as *mut std::ffi::c_void) }.result();
            self.ctx.record_err(r);
        }
    }

    fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(Error::driver("stage", "cuCtxSetCurrent"))
    }
}

impl Drop for StagingPool {
    fn drop(&mut self) {
        let free = std::mem::take(self.free.get_mut().unwrap_or_else(|p| p.into_inner()));
        for b in free {
            self.release(b);
        }
    }
}

/// An event that blocks the waiting host thread (it sleeps, leaving the core to the encoder) and
/// keeps no timestamps.
struct HostEvent {
    ctx: Arc<CudaContext>,
    event: sys::CUevent,
}

// SAFETY: a CUevent handle may be used from any thread of the process with its context current;
// every use below binds the context first.
unsafe impl Send for HostEvent {}

impl HostEvent {
    fn record(ctx: &Arc<CudaContext>, stream: sys::CUstream) -> Result<HostEvent> {
        let flags = sys::CUevent_flags::CU_EVENT_BLOCKING_SYNC as u32
            | sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32;
        let mut event = std::ptr::null_mut();
        // SAFETY: cuEventCreate writes one handle through `event`, a live local; the flags are a
        // combination the driver documents. The context is current (the caller bound it).
        unsafe { sys::cuEventCreate(&mut event, flags) }
            .result()
            .map_err(Error::driver("stage", "cuEventCreate"))?;
        let ev = HostEvent {
            ctx: Arc::clone(ctx),
            event,
        };
        // SAFETY: both handles are live: the event was just created, the stream is the device's.
        unsafe { sys::cuEventRecord(ev.event, stream) }
            .result()
            .map_err(Error::driver("stage", "cuEventRecord"))?;
        Ok(ev)
    }

    fn synchronize(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(Error::driver("stage", "cuCtxSetCurrent"))?;
        // SAFETY: the event is live until drop.
        unsafe { sys::cuEventSynchronize(self.event) }
            .result()
            .map_err(Error::driver("stage", "cuEventSynchronize"))?;
        self.ctx
            .check_err()
            .map_err(Error::driver("stage", "asynchronous CUDA operation"))
    }
}

impl Drop for HostEvent {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: the event is live and destroyed once; the driver allows destroying an event
            // whose work has not completed.
            let r = unsafe { sys::cuEventDestroy_v2(self.event) }.result();
            self.ctx.record_err(r);
        }
    }
}

/// Copies queued into one staging buffer, with the event after them.
pub struct Staged {
    pool: Arc<StagingPool>,
    block: Option<PinnedBlock>,
    event: HostEvent,
    /// Each copy's (offset, bytes) in the block.
    parts: Vec<(usize, usize)>,
    waited: bool,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("parts", &self.parts)
            .finish()
    }
}

impl CudaDevice {
    /// Queues the copy of every view of `sources` (device memory of this device, allocated on its
    /// stream) into one staging buffer and records an event after them; nothing waits. The memory
    /// may be freed (or rewritten by later work) at once: blocks are reused in stream order, after
    /// the copies.
    pub(crate) fn stage(&self, sources: &[CudaView<'_, u8>]) -> Result<Staged> {
        let mut parts = Vec::with_capacity(sources.len());
        let mut end = 0usize;
        for s in sources {
            let at = end.next_multiple_of(ALIGN);
            parts.push((at, s.len()));
            end = at + s.len();
        }
        let block = self.staging.take(end)?;
        self.ctx
            .bind_to_thread()
            .map_err(Error::driver("stage", "cuCtxSetCurrent"))?;
        let stream = self.stream();
        for (view, &(at, n)) in sources.iter().zip(&parts) {
            if n == 0 {
                continue;
            }
            let (src, _sync) = view.device_ptr(stream);
            // SAFETY: the destination is n bytes at offset `at` of a page-locked block of at least
            // `end` bytes that nothing else uses until this Staged waits for its event; the source is
            // the storage's n live bytes on this device's stream, read before any later work on it.
            let r = unsafe {
                sys::cuMemcpyDtoHAsync_v2(
                    block.ptr.add(at) as *mut std::ffi::c_void,
                    src,
                    n,
                    stream.cu_stream(),
                )
            }
            .result();
            if let Err(e) = r {
                self.staging.give_back(block);
                return Err(Error::driver("stage", "cuMemcpyDtoHAsync")(e));
            }
        }
        let event = match HostEvent::record(&self.ctx, stream.cu_stream()) {
            Ok(ev) => ev,
            Err(e) => {
                // The copies were queued: wait for them before the block can be reused.
                let _ = self.synchronize();
                self.staging.give_back(block);
                return Err(e);
            }
        };
        Ok(Staged {
            pool: Arc::clone(&self.staging),
            block: Some(block),
            event,
            parts,
            waited: false,
        })
    }
}

impl Staged {
    /// Waits for the copies (the host thread sleeps; the device goes on with later work) and reports
    /// any error of the work queued before them.
    pub fn wait(&mut self) -> Result<()> {
        if !self.waited {
            self.event.synchronize()?;
            self.waited = true;
        }
        Ok(())
    }

    /// The bytes of copy `i`, after [`Staged::wait`].
    pub fn part(&self, i: usize) -> Result<&[u8]> {
        let (Some(block), Some(&(at, n)), true) = (&self.block, self.parts.get(i), self.waited)
        else {
            return Err(Error::InvalidParam {
                op: "stage",
                what: "part",
                rule: "one of the staged copies, read after wait",
                found: format!("part {i} of {} (waited: {})", self.parts.len(), self.waited),
            });
        };
        // SAFETY: [at, at + n) lies in the block (stage laid the parts out inside `end` bytes) and the
        // copy into it completed (the event was synchronized); the block lives as long as self.
        Ok(unsafe { std::slice::from_raw_parts(block.ptr.add(at), n) })
    }

    pub fn parts(&self) -> usize {
        self.parts.len()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(block) = self.block.take() {
            // A copy may still be writing the block if nobody waited: wait before it is reused.
            if self.waited || self.event.synchronize().is_ok() {
                self.pool.give_back(block);
            } else {
                // The wait failed (a sticky error): the copies will never land; the block is
                // released without reuse.
                self.pool.release(block);
            }
        }
    }
}
