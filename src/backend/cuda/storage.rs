//! Device storage: a block of the device's caching allocator holding `len` elements of `dtype`, or
//! memory another framework owns, borrowed without a copy (a DLPack import; device/interop.rs).

use std::mem::ManuallyDrop;
use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, CudaView, CudaViewMut};

use crate::backend::cpu::CpuStorage;
use crate::device::{allocator::PooledBlock, CudaDevice};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// `len` elements of `size` bytes, in bytes, or the error for a count too large.
pub(super) fn byte_len(len: usize, size: usize) -> Result<usize> {
    len.checked_mul(size).ok_or_else(|| Error::InvalidParam {
        op: "alloc",
        what: "element count",
        rule: "small enough that its size in bytes fits in usize",
        found: len.to_string(),
    })
}

/// Where a storage's bytes are.
enum Block {
    Pooled(PooledBlock<crate::device::CudaRaw>),
    Borrowed(Borrowed),
}

/// Device memory of another owner. It is never freed here: when the storage drops, the device's
/// stream is synchronized (no queued kernel reads it any more) and then `owner` is dropped, which
/// hands the memory back (a DLPack deleter).
struct Borrowed {
    slice: ManuallyDrop<CudaSlice<u8>>,
    stream: Arc<CudaStream>,
    owner: Option<Box<dyn Send + Sync>>,
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        // Errors cannot be returned from drop; cudarc records them on the context. The memory goes
        // back to its owner only after the wait, whatever it returned: a failed synchronize means the
        // context is lost and nothing will run on it again.
        let _ = self.stream.synchronize();
        // SAFETY: `slice` is taken once, here; leaking it returns the pointer without freeing it
        // (the owner frees it).
        let _ = unsafe { ManuallyDrop::take(&mut self.slice) }.leak();
        drop(self.owner.take());
    }
}

impl Block {
    fn slice(&self) -> &CudaSlice<u8> {
        match self {
            Block::Pooled(b) => b.block(),
            Block::Borrowed(b) => &b.slice,
        }
    }

    fn slice_mut(&mut self) -> &mut CudaSlice<u8> {
        match self {
            Block::Pooled(b) => b.block_mut(),
            Block::Borrowed(b) => &mut b.slice,
        }
    }
}

pub struct CudaStorage {
    block: Block,
    len: usize,
    dtype: DType,
    device: Arc<CudaDevice>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage({} x {} on cuda:{})",
            self.len,
            self.dtype,
            self.device.ordinal()
        )
    }
}

impl CudaStorage {
    /// Uninitialised storage; crate-private callers write every element before it is read.
    pub(crate) fn alloc(device: &Arc<CudaDevice>, len: usize, dtype: DType) -> Result<CudaStorage> {
        let block = device.alloc("alloc", byte_len(len, dtype.size_in_bytes())?)?;
        Ok(CudaStorage {
            block: Block::Pooled(block),
            len,
            dtype,
            device: Arc::clone(device),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }

    pub fn num_bytes(&self) -> usize {
        self.len * self.dtype.size_in_bytes()
    }

    /// The tensor's bytes (the block may be larger).
    pub(crate) fn view(&self) -> CudaView<'_, u8> {
        self.block.slice().slice(0..self.num_bytes())
    }

    pub(crate) fn view_mut(&mut self) -> CudaViewMut<'_, u8> {
        let n = self.num_bytes();
        self.block.slice_mut().slice_mut(0..n)
    }

    /// `len` elements of `dtype` at device address `ptr`, owned by another framework; `owner` is
    /// dropped (and the memory with it) once this device's stream no longer uses it.
    ///
    /// # Safety
    /// `ptr` addresses at least `len * dtype.size_in_bytes()` bytes of device memory in `device`'s
    /// context, readable and writable by its stream, and stays allocated until `owner` drops.
    pub(crate) unsafe fn borrow(
        device: &Arc<CudaDevice>,
        ptr: u64,
        len: usize,
        dtype: DType,
        owner: Box<dyn Send + Sync>,
    ) -> Result<CudaStorage> {
        let bytes = byte_len(len, dtype.size_in_bytes())?;
        let stream = Arc::clone(device.stream());
        // SAFETY: the caller's contract: `bytes` live bytes at `ptr` in this context. The slice is
        // never dropped as a CudaSlice (Borrowed::drop leaks it), so cudarc never frees it, and event
        // tracking is off on the engine's contexts, so no event is attached to it.
        let slice = unsafe { stream.upgrade_device_ptr::<u8>(ptr, bytes) };
        Ok(CudaStorage {
            block: Block::Borrowed(Borrowed {
                slice: ManuallyDrop::new(slice),
                stream,
                owner: Some(owner),
            }),
            len,
            dtype,
            device: Arc::clone(device),
        })
    }

    /// The device address of the first element.
    pub(crate) fn device_ptr(&self) -> u64 {
        use cudarc::driver::DevicePtr;
        let (ptr, _sync) = self.block.slice().device_ptr(self.device.stream());
        ptr
    }

    /// Zero-filled storage (a memset queued on the stream).
    pub(crate) fn zeros(device: &Arc<CudaDevice>, len: usize, dtype: DType) -> Result<CudaStorage> {
        let mut s = CudaStorage::alloc(device, len, dtype)?;
        if !s.is_empty() {
            let stream = Arc::clone(device.stream());
            stream
                .memset_zeros(&mut s.view_mut())
                .map_err(Error::driver("zeros", "cuMemsetD8Async"))?;
        }
        Ok(s)
    }

    /// Every byte set to `value` (a memset queued on the stream; inside a graph capture, a memset node
    /// that runs on every replay).
    pub(crate) fn fill_bytes(&mut self, value: u8) -> Result<()> {
        use cudarc::driver::DevicePtrMut;
        let n = self.num_bytes();
        if n == 0 {
            return Ok(());
        }
        let stream = Arc::clone(self.device.stream());
        let mut view = self.view_mut();
        let (ptr, _sync) = view.device_ptr_mut(&stream);
        // SAFETY: `ptr` is the start of this storage's n live bytes on this device (the view above),
        // allocated on `stream`; any byte pattern is a valid value of the storage's element types (f32
        // and 16-bit floats are plain bits to the engine).
        unsafe { cudarc::driver::result::memset_d8_async(ptr, value, n, stream.cu_stream()) }
            .map_err(Error::driver("fill", "cuMemsetD8Async"))
    }

    /// Host to device. Waits for the copy: CUDA documents pageable-memory copies only as "might be
    /// synchronous", and `src` may be freed as soon as this returns. Uploads happen at load time, not
    /// in sampling loops, so the wait costs nothing that matters.
    pub(crate) fn from_cpu(device: &Arc<CudaDevice>, src: &CpuStorage) -> Result<CudaStorage> {
        let mut dst = CudaStorage::alloc(device, src.len(), src.dtype())?;
        if !src.is_empty() {
            let stream = Arc::clone(device.stream());
            stream
                .memcpy_htod(src.as_bytes(), &mut dst.view_mut())
                .map_err(Error::driver("to_device", "cuMemcpyHtoDAsync"))?;
            device.synchronize()?;
        }
        Ok(dst)
    }

    /// Device to host; waits for the stream, so it also reports errors of queued kernels.
    pub(crate) fn to_cpu(&self) -> Result<CpuStorage> {
        let mut out = CpuStorage::zeros(self.len, self.dtype);
        if !self.is_empty() {
            self.device
                .stream()
                .memcpy_dtoh(&self.view(), out.as_bytes_mut())
                .map_err(Error::driver("to_cpu", "cuMemcpyDtoHAsync"))?;
        }
        self.device.synchronize()?;
        Ok(out)
    }

    /// A device-to-device copy, queued on the stream.
    pub(crate) fn try_clone(&self) -> Result<CudaStorage> {
        let mut dst = CudaStorage::alloc(&self.device, self.len, self.dtype)?;
        if !self.is_empty() {
            self.device
                .stream()
                .memcpy_dtod(&self.view(), &mut dst.view_mut())
                .map_err(Error::driver("copy", "cuMemcpyDtoDAsync"))?;
        }
        Ok(dst)
    }
}
