//! Device storage of an ODE solver's f64 vector: a block of the device's caching allocator holding
//! `len` doubles. Not a tensor dtype: only the solver arithmetic of `kernels/ode.cu` reads it.

use std::sync::Arc;

use cudarc::driver::{CudaView, CudaViewMut};

use crate::device::{allocator::PooledBlock, CudaDevice};
use crate::error::{Error, Result};

pub struct CudaWide {
    block: PooledBlock<crate::device::CudaRaw>,
    len: usize,
    device: Arc<CudaDevice>,
}

impl std::fmt::Debug for CudaWide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaWide({} x f64 on cuda:{})",
            self.len,
            self.device.ordinal()
        )
    }
}

impl CudaWide {
    /// Uninitialised; crate-private callers write every element before it is read.
    pub(crate) fn alloc(device: &Arc<CudaDevice>, len: usize) -> Result<CudaWide> {
        Ok(CudaWide {
            block: device.alloc("ode state", super::storage::byte_len(len, 8)?)?,
            len,
            device: Arc::clone(device),
        })
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

    pub(crate) fn view(&self) -> CudaView<'_, u8> {
        self.block.block().slice(0..self.len * 8)
    }

    pub(crate) fn view_mut(&mut self) -> CudaViewMut<'_, u8> {
        let n = self.len * 8;
        self.block.block_mut().slice_mut(0..n)
    }

    /// Host to device; waits for the copy (`src` may be freed on return).
    pub(crate) fn from_host(device: &Arc<CudaDevice>, src: &[f64]) -> Result<CudaWide> {
        let mut dst = CudaWide::alloc(device, src.len())?;
        if !src.is_empty() {
            device
                .stream()
                .memcpy_htod(bytemuck::cast_slice::<f64, u8>(src), &mut dst.view_mut())
                .map_err(Error::driver("to_device", "cuMemcpyHtoDAsync"))?;
            device.synchronize()?;
        }
        Ok(dst)
    }

    /// Device to host; waits for the stream, so it also reports errors of queued kernels.
    pub(crate) fn to_host(&self) -> Result<Vec<f64>> {
        let mut out = vec![0.0f64; self.len];
        if !self.is_empty() {
            self.device
                .stream()
                .memcpy_dtoh(&self.view(), bytemuck::cast_slice_mut::<f64, u8>(&mut out))
                .map_err(Error::driver("to_cpu", "cuMemcpyDtoHAsync"))?;
        }
        self.device.synchronize()?;
        Ok(out)
    }
}
