//! Sharing device memory and stream order with other frameworks (PyTorch, CuPy, JAX through DLPack):
//! a tensor can borrow another owner's device memory without a copy ([`Tensor::from_cuda_memory`]),
//! expose its own address ([`Tensor::cuda_ptr`]), and the device's stream can be ordered before or
//! after a stream of the other framework ([`Device::order_before`], [`Device::order_after`]): an
//! event recorded on one stream that the other waits for, never a host wait.
//!
//! Stream handles are raw `CUstream` values; `1` (`CU_STREAM_LEGACY`) and `2`
//! (`CU_STREAM_PER_THREAD`) are the driver's own, as in the DLPack protocol.

use cudarc::driver::sys;

use super::{CudaDevice, Device};
use crate::backend::cuda::CudaStorage;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{elem_count, Storage, Tensor};

impl CudaDevice {
    /// Work queued on `from` before this call completes before work queued on `to` after it.
    ///
    /// # Safety
    /// Both handles are streams of this device's context (or the driver's `1`/`2`), live for the call.
    unsafe fn order(&self, op: &'static str, from: sys::CUstream, to: sys::CUstream) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(Error::driver(op, "cuCtxSetCurrent"))?;
        let mut event = std::ptr::null_mut();
        // SAFETY: cuEventCreate writes one handle through `event`, a live local; the context is
        // current (bound above).
        unsafe {
            sys::cuEventCreate(
                &mut event,
                sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32,
            )
        }
        .result()
        .map_err(Error::driver(op, "cuEventCreate"))?;
        // SAFETY: the event was just created; the streams are live (the caller's contract).
        let recorded = unsafe { sys::cuEventRecord(event, from) }
            .result()
            .map_err(Error::driver(op, "cuEventRecord"))
            // SAFETY: as above; flags 0 is the documented default.
            .and_then(|()| {
                unsafe { sys::cuStreamWaitEvent(to, event, 0) }
                    .result()
                    .map_err(Error::driver(op, "cuStreamWaitEvent"))
            });
        // SAFETY: the event is live and destroyed once; the driver allows destroying an event that a
        // stream still waits for (its resources go when the wait completes).
        let destroyed = unsafe { sys::cuEventDestroy_v2(event) }
            .result()
            .map_err(Error::driver(op, "cuEventDestroy"));
        recorded.and(destroyed)
    }
}

impl Device {
    /// The raw `CUstream` of a GPU device (every kernel and copy of the engine on it is queued
    /// there); None for the CPU.
    pub fn cuda_stream(&self) -> Option<u64> {
        match self {
            Device::Cpu => None,
            Device::Cuda(d) => Some(d.stream().cu_stream() as u64),
        }
    }

    /// Work queued on this device so far completes before work queued on `consumer` from now on
    /// (the producer's side of DLPack's `__dlpack__(stream=consumer)`). A no-op for the CPU.
    ///
    /// # Safety
    /// `consumer` is a live `CUstream` of this GPU's primary context, or `1`/`2` (the legacy and
    /// per-thread default streams).
    pub unsafe fn order_before(&self, consumer: u64) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            // SAFETY: the caller's contract; the device's own stream is live while `d` is.
            Device::Cuda(d) => unsafe {
                d.order("order_before", d.stream().cu_stream(), consumer as sys::CUstream)
            },
        }
    }

    /// Work queued on `producer` so far completes before work this device queues from now on (so
    /// memory another framework wrote, or is still reading, is safe to use or to recycle).
    ///
    /// # Safety
    /// As for [`Device::order_before`].
    pub unsafe fn order_after(&self, producer: u64) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            // SAFETY: the caller's contract; the device's own stream is live while `d` is.
            Device::Cuda(d) => unsafe {
                d.order("order_after", producer as sys::CUstream, d.stream().cu_stream())
            },
        }
    }

    /// Copies `bytes` bytes at device address `ptr` to the host, queued on this device's stream
    /// (after its earlier work) and waited for. For memory another framework owns, in a layout the
    /// engine does not take as it is (strided, another dtype).
    ///
    /// # Safety
    /// `ptr` addresses at least `bytes` readable bytes of device memory in this GPU's context, live
    /// until the call returns.
    pub unsafe fn copy_to_host(&self, ptr: u64, bytes: usize) -> Result<Vec<u8>> {
        let Device::Cuda(d) = self else {
            return Err(Error::InvalidParam {
                op: "copy_to_host",
                what: "device",
                rule: "a GPU (the CPU has no device memory)",
                found: "cpu".into(),
            });
        };
        let mut out = vec![0u8; bytes];
        if bytes == 0 {
            return Ok(out);
        }
        d.ctx
            .bind_to_thread()
            .map_err(Error::driver("copy_to_host", "cuCtxSetCurrent"))?;
        // SAFETY: `out` holds `bytes` writable bytes; the source is the caller's contract. The copy
        // is waited for below before `out` is read or freed.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(&mut out, ptr, d.stream().cu_stream())
        }
        .map_err(Error::driver("copy_to_host", "cuMemcpyDtoHAsync"))?;
        d.synchronize()?;
        Ok(out)
    }
}

impl Tensor {
    /// A tensor over device memory another framework owns (a DLPack import), without a copy: `ptr`
    /// holds the elements of `shape` in `dtype`, C-contiguous. `owner` is dropped, handing the memory
    /// back, when the tensor drops and the device's stream has finished with it.
    ///
    /// The other framework's writes must be ordered before the engine's stream (give the engine's
    /// [`Device::cuda_stream`] to its `__dlpack__(stream=...)`, or call [`Device::order_after`]).
    ///
    /// # Safety
    /// `ptr` addresses `shape`'s element count times `dtype`'s size of device memory in `device`'s
    /// context, 16-byte aligned, readable by its stream and not written by anyone else while the
    /// tensor lives, and allocated until `owner` drops.
    pub unsafe fn from_cuda_memory(
        ptr: u64,
        shape: &[usize],
        dtype: DType,
        device: &Device,
        owner: Box<dyn Send + Sync>,
    ) -> Result<Tensor> {
        let Device::Cuda(d) = device else {
            return Err(Error::InvalidParam {
                op: "from_cuda_memory",
                what: "device",
                rule: "a GPU",
                found: "cpu".into(),
            });
        };
        if ptr % 16 != 0 {
            return Err(Error::InvalidParam {
                op: "from_cuda_memory",
                what: "address",
                rule: "16-byte aligned (the kernels load 16 bytes at a time)",
                found: format!("{ptr:#x}"),
            });
        }
        let n = elem_count("from_cuda_memory", shape)?;
        // SAFETY: the caller's contract covers CudaStorage::borrow's.
        let s = unsafe { CudaStorage::borrow(d, ptr, n, dtype, owner) }?;
        Tensor::from_storage(Storage::Cuda(s), shape)
    }

    /// The device address of the first element, for a tensor on a GPU (None on the CPU). Valid while
    /// the tensor lives; the engine's writes to it are ordered on [`Device::cuda_stream`].
    pub fn cuda_ptr(&self) -> Option<u64> {
        match self.storage() {
            Storage::Cpu(_) => None,
            Storage::Cuda(s) => Some(s.device_ptr()),
        }
    }
}
