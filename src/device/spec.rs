//! Which devices a command runs on, as a user writes it: `auto` (a GPU where there is one, else the
//! CPU), `cpu`, `cuda` (GPU 0), `cuda:N`, or `cuda:all` (every GPU, one worker each).

use std::str::FromStr;

use super::{cuda_devices, Device};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// GPU 0 when one opens, else the CPU; the choice and its reason are reported.
    #[default]
    Auto,
    Cpu,
    /// GPU N (`cuda` is `cuda:0`).
    Cuda(usize),
    /// Every GPU the driver reports.
    AllCuda,
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<DeviceSpec> {
        let bad = || Error::InvalidParam {
            op: "device",
            what: "device",
            rule: "auto, cpu, cuda, cuda:N (a GPU index) or cuda:all",
            found: s.to_string(),
        };
        Ok(match s {
            "auto" => DeviceSpec::Auto,
            "cpu" => DeviceSpec::Cpu,
            "cuda" => DeviceSpec::Cuda(0),
            "cuda:all" => DeviceSpec::AllCuda,
            _ => match s.strip_prefix("cuda:") {
                Some(n) => DeviceSpec::Cuda(n.parse().map_err(|_| bad())?),
                None => return Err(bad()),
            },
        })
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::AllCuda => write!(f, "cuda:all"),
        }
    }
}

/// The devices a spec opened, and a line saying what `auto` chose and why (None otherwise).
#[derive(Debug)]
pub struct OpenedDevices {
    pub devices: Vec<Device>,
    pub note: Option<String>,
}

impl DeviceSpec {
    /// Opens the devices. `cuda:N` and `cuda:all` fail with the driver's reason when there is no GPU
    /// (the same reason `trilemma info` gives); `auto` falls back to the CPU and says why.
    pub fn open(self) -> Result<OpenedDevices> {
        let one = |d: Device| OpenedDevices {
            devices: vec![d],
            note: None,
        };
        match self {
            DeviceSpec::Cpu => Ok(one(Device::Cpu)),
            DeviceSpec::Cuda(n) => Device::cuda(n).map(one),
            DeviceSpec::Auto => Ok(match Device::cuda(0) {
                Ok(d) => OpenedDevices {
                    note: Some(format!("device auto: {}", d.describe())),
                    devices: vec![d],
                },
                Err(e) => OpenedDevices {
                    devices: vec![Device::Cpu],
                    note: Some(format!("device auto: cpu ({e})")),
                },
            }),
            DeviceSpec::AllCuda => {
                let n = cuda_devices()?.len();
                let devices = (0..n).map(Device::cuda).collect::<Result<Vec<_>>>()?;
                Ok(OpenedDevices {
                    note: Some(format!("device cuda:all: {n} GPU(s)")),
                    devices,
                })
            }
        }
    }

    /// Opens exactly one device: `cuda:all` is refused for commands that run on one (`what` names
    /// the command).
    pub fn open_one(self, what: &'static str) -> Result<OpenedDevices> {
        if self == DeviceSpec::AllCuda {
            return Err(Error::InvalidParam {
                op: what,
                what: "device",
                rule: "one device (auto, cpu, cuda or cuda:N); cuda:all is for `sample`",
                found: self.to_string(),
            });
        }
        self.open()
    }
}
