//! Devices: the CPU, or one CUDA GPU with its context, stream, kernel modules and memory pool.

pub mod allocator;
mod cuda;
mod driver_choice;
mod graph;
mod interop;
mod precision;
mod spec;
mod staging;

use std::sync::Arc;

pub use cuda::{cuda_devices, driver_version, CudaDevice, CudaDeviceInfo, CudaRaw};
pub use driver_choice::{allow_emulator_fallback, is_emulated};
pub use graph::DeviceGraph;
pub use precision::Precision;
pub use spec::{DeviceSpec, OpenedDevices};
pub use staging::Staged;

use crate::error::Result;

#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    Cuda(Arc<CudaDevice>),
}

impl Device {
    /// Opens GPU `ordinal`. Every way this can fail (no driver library, no device, a driver too old,
    /// kernels not compiled, no kernel image for this GPU) is an [`crate::Error`], never a panic.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        Ok(Device::Cuda(CudaDevice::open(ordinal)?))
    }

    pub fn is_cuda(&self) -> bool {
        matches!(self, Device::Cuda(_))
    }

    /// Waits for all queued work on this device (a no-op on the CPU).
    pub fn synchronize(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(d) => d.synchronize(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(d) => format!("cuda:{} ({})", d.ordinal(), d.name()),
        }
    }
}
