//! An ODE solver's state vector in f64 on a device: the official probability-flow samplers integrate
//! in float64 (SciPy's RK45 on NumPy arrays), so the state keeps that precision wherever it lives, while
//! the networks it feeds see it rounded to f32 tensors. Only the solver ops (`ops::ode`,
//! `ops::ode_drift`) make and read one; it has no shape, only a length.

use crate::backend::cuda::CudaWide;
use crate::device::Device;
use crate::error::Result;

#[derive(Debug)]
pub enum WideStorage {
    Cpu(Vec<f64>),
    Cuda(CudaWide),
}

#[derive(Debug)]
pub struct WideVec {
    storage: WideStorage,
}

impl WideVec {
    pub fn from_storage(storage: WideStorage) -> WideVec {
        WideVec { storage }
    }

    /// A vector of `data` on `device`.
    pub fn from_f64(data: &[f64], device: &Device) -> Result<WideVec> {
        Ok(WideVec {
            storage: match device {
                Device::Cpu => WideStorage::Cpu(data.to_vec()),
                Device::Cuda(dev) => WideStorage::Cuda(CudaWide::from_host(dev, data)?),
            },
        })
    }

    pub fn storage(&self) -> &WideStorage {
        &self.storage
    }

    pub fn len(&self) -> usize {
        match &self.storage {
            WideStorage::Cpu(v) => v.len(),
            WideStorage::Cuda(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn device(&self) -> Device {
        match &self.storage {
            WideStorage::Cpu(_) => Device::Cpu,
            WideStorage::Cuda(s) => Device::Cuda(s.device().clone()),
        }
    }

    /// The values on the host (a device-to-host copy from a GPU).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        match &self.storage {
            WideStorage::Cpu(v) => Ok(v.clone()),
            WideStorage::Cuda(s) => s.to_host(),
        }
    }
}
