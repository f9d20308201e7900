//! Host storage, one vector per element type.

use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum CpuStorage {
    F32(Vec<f32>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::F16(_) => DType::F16,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn zeros(n: usize, dtype: DType) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::BF16 => CpuStorage::BF16(vec![bf16::ZERO; n]),
            DType::F16 => CpuStorage::F16(vec![f16::ZERO; n]),
        }
    }

    /// `data` stored as `dtype`, rounded to nearest even.
    pub fn from_f32(data: &[f32], dtype: DType) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(data.to_vec()),
            DType::BF16 => CpuStorage::BF16(data.iter().map(|&x| bf16::from_f32(x)).collect()),
            DType::F16 => CpuStorage::F16(data.iter().map(|&x| f16::from_f32(x)).collect()),
        }
    }

    /// The elements widened to fp32 (exact).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self {
            CpuStorage::F32(v) => v.clone(),
            CpuStorage::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            CpuStorage::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
        }
    }

    /// The raw little-endian bytes, as the device and safetensors files hold them.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CpuStorage::F32(v) => bytemuck::cast_slice(v),
            CpuStorage::BF16(v) => bytemuck::cast_slice(v),
            CpuStorage::F16(v) => bytemuck::cast_slice(v),
        }
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        match self {
            CpuStorage::F32(v) => bytemuck::cast_slice_mut(v),
            CpuStorage::BF16(v) => bytemuck::cast_slice_mut(v),
            CpuStorage::F16(v) => bytemuck::cast_slice_mut(v),
        }
    }

    /// Storage from little-endian bytes; `bytes.len()` must be a multiple of the element size.
    pub(crate) fn from_le_bytes(bytes: &[u8], dtype: DType) -> CpuStorage {
        let n = bytes.len() / dtype.size_in_bytes();
        let mut s = CpuStorage::zeros(n, dtype);
        s.as_bytes_mut()
            .copy_from_slice(&bytes[..n * dtype.size_in_bytes()]);
        s
    }
}

impl CpuStorage {
    /// The fp32 elements, or an error naming the op: the CPU network ops compute in fp32 only.
    pub(crate) fn f32s(&self, op: &'static str) -> Result<&[f32]> {
        match self {
            CpuStorage::F32(v) => Ok(v),
            other => Err(Error::DTypeMismatch {
                op,
                tensor: "input (the CPU backend runs networks in f32)",
                expected: DType::F32,
                found: other.dtype(),
            }),
        }
    }
}
