//! Dense, contiguous, row-major tensors on a [`Device`]. Layout conventions (NHWC for activations)
//! belong to the ops that read them; a tensor is a shape, a dtype and storage.

use crate::dtype::DType;

mod wide;
pub use wide::{WideStorage, WideVec};

use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::CudaStorage;
use std::sync::Arc;

use crate::device::{CudaDevice, Device};
use crate::error::{Error, Result};

/// Where a tensor's elements live. Each backend implements every op on its own storage type
/// ([`crate::backend::BackendStorage`]).
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    Cuda(CudaStorage),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            Storage::Cuda(s) => s.dtype(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            Storage::Cuda(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Storage,
}

/// Number of elements of `shape`, or an error naming the op when the product overflows.
pub(crate) fn elem_count(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::InvalidParam {
            op,
            what: "shape",
            rule: "a shape whose element count fits in usize",
            found: format!("{shape:?}"),
        })
}

impl Tensor {
    /// Wraps storage whose length must equal the shape's element count.
    pub fn from_storage(storage: Storage, shape: &[usize]) -> Result<Tensor> {
        let n = elem_count("Tensor::from_storage", shape)?;
        if n != storage.len() {
            return Err(Error::InvalidParam {
                op: "Tensor::from_storage",
                what: "storage length",
                rule: "equal to the shape's element count",
                found: format!(
                    "{} elements for shape {shape:?} ({n} elements)",
                    storage.len()
                ),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            storage,
        })
    }

    /// A tensor from host data, stored as `dtype` (rounded to nearest even) on `device`.
    pub fn from_f32(
        data: &[f32],
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let cpu = Tensor::from_storage(Storage::Cpu(CpuStorage::from_f32(data, dtype)), shape)?;
        cpu.to_device(device)
    }

    /// A tensor of `dtype` from its little-endian bytes (a file's raw data), on `device`.
    pub fn from_le_bytes(
        bytes: &[u8],
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let n = elem_count("Tensor::from_le_bytes", shape)?;
        if Some(bytes.len()) != n.checked_mul(dtype.size_in_bytes()) {
            return Err(Error::InvalidParam {
                op: "Tensor::from_le_bytes",
                what: "byte length",
                rule: "the shape's element count × the dtype's size",
                found: format!("{} bytes for {shape:?} of {dtype}", bytes.len()),
            });
        }
        let cpu = Storage::Cpu(CpuStorage::from_le_bytes(bytes, dtype));
        Tensor::from_storage(cpu, shape)?.to_device(device)
    }

    /// A tensor filled with `value` (zeros, or a NaN poison in tests).
    pub fn full(value: f32, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let n = elem_count("Tensor::full", shape)?;
        Tensor::from_f32(&vec![value; n], shape, dtype, device)
    }

    /// A tensor of zeros, made on the device itself (no host buffer of its size).
    pub fn zeros(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::fresh("Tensor::zeros", shape, dtype, device, CudaStorage::zeros)
    }

    /// Storage for `shape` whose contents are unspecified: only for ops that write every element.
    pub(crate) fn uninit(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::fresh("Tensor::uninit", shape, dtype, device, CudaStorage::alloc)
    }

    /// A new tensor: zeros on the CPU, `cuda_new` (zeroed or not) on a GPU.
    fn fresh(
        op: &'static str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
        cuda_new: fn(&Arc<CudaDevice>, usize, DType) -> Result<CudaStorage>,
    ) -> Result<Tensor> {
        let n = elem_count(op, shape)?;
        let storage = match device {
            Device::Cpu => Storage::Cpu(CpuStorage::zeros(n, dtype)),
            Device::Cuda(dev) => Storage::Cuda(cuda_new(dev, n, dtype)?),
        };
        Ok(Tensor {
            shape: shape.to_vec(),
            storage,
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The shape as `N` dimensions, or the error of `op` naming the tensor (`what`) and the layout it
    /// must have (`rule`).
    pub fn dims<const N: usize>(
        &self,
        op: &'static str,
        what: &'static str,
        rule: &'static str,
    ) -> Result<[usize; N]> {
        self.shape
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidParam {
                op,
                what,
                rule,
                found: format!("shape {:?}", self.shape),
            })
    }

    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    pub fn elem_count(&self) -> usize {
        self.storage.len()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(crate) fn storage_mut(&mut self) -> &mut Storage {
        &mut self.storage
    }

    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(s) => Device::Cuda(s.device().clone()),
        }
    }

    /// Copies to `device` (host to device, device to host, or a device-to-device copy on the same GPU).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        let storage = match (&self.storage, device) {
            (Storage::Cpu(s), Device::Cpu) => Storage::Cpu(s.clone()),
            (Storage::Cpu(s), Device::Cuda(dev)) => Storage::Cuda(CudaStorage::from_cpu(dev, s)?),
            (Storage::Cuda(s), Device::Cpu) => Storage::Cpu(s.to_cpu()?),
            (Storage::Cuda(s), Device::Cuda(dev)) => {
                if !std::sync::Arc::ptr_eq(s.device(), dev) {
                    return Err(Error::DeviceMismatch {
                        op: "Tensor::to_device",
                        a: self.device().describe(),
                        b: device.describe(),
                    });
                }
                Storage::Cuda(s.try_clone()?)
            }
        };
        Ok(Tensor {
            shape: self.shape.clone(),
            storage,
        })
    }

    /// The elements as fp32 on the host (widening bf16/f16 exactly).
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        Ok(match &self.storage {
            Storage::Cpu(s) => s.to_f32_vec(),
            Storage::Cuda(s) => s.to_cpu()?.to_f32_vec(),
        })
    }
}
