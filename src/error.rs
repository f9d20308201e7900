//! The crate's one error type. Every variant carries what a user needs to find the problem: the file
//! and tensor, the op and parameter, expected and found values, or how to fix a missing piece.

use std::fmt;
use std::path::PathBuf;

use crate::dtype::DType;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- CUDA availability ------------------------------------------------------------------------
    #[error("CUDA unavailable: {0}")]
    NoCuda(String),
    #[error(
        "CUDA driver too old: it supports CUDA {}, the kernels were built by nvcc {built_with} and need a \
         driver for CUDA {}. Update the driver, or rebuild with an older toolkit (NVCC=/path/to/nvcc)",
        fmt_cuda_version(*found), fmt_cuda_version(*required)
    )]
    DriverTooOld {
        found: i32,
        required: i32,
        built_with: String,
    },
    #[error(
        "CUDA kernels were not compiled into this build (no nvcc was found when it was built). Install a \
         CUDA toolkit or the pinned nvcc wheels (see README), set NVCC or CUDA_HOME, and rebuild; set \
         TRILEMMA_REQUIRE_NVCC=1 to make a missing nvcc a build error"
    )]
    KernelsNotCompiled,
    #[error(
        "no kernel image for this GPU (compute capability {major}.{minor}): built for {archs:?}. Rebuild with \
         TRILEMMA_CUDA_ARCHS including sm_{major}{minor}"
    )]
    NoKernelForDevice {
        major: i32,
        minor: i32,
        archs: Vec<String>,
    },
    /// A kernel the library names is missing from its module (a build that embedded other kernels).
    #[error("kernel `{kernel}` not found in module `{module}` ({source})")]
    MissingKernel {
        module: &'static str,
        kernel: String,
        #[source]
        source: CudaError,
    },
    /// A CUDA driver call failed: the call, the operation it served and the driver's code.
    #[error("{call} failed in {op}: {source}")]
    Driver {
        op: &'static str,
        call: &'static str,
        #[source]
        source: CudaError,
    },
    #[error(
        "GPU out of memory in {op}: asked for {requested} bytes with {in_use} bytes in use by tensors and \
         {cached} bytes cached (cache was released before retrying); device reports {free} of {total} bytes free"
    )]
    OutOfMemory {
        op: &'static str,
        requested: usize,
        in_use: usize,
        cached: usize,
        free: usize,
        total: usize,
    },

    // ---- Tensors and ops --------------------------------------------------------------------------
    #[error("{op}: {what} must be {rule}, got {found}")]
    InvalidParam {
        op: &'static str,
        what: &'static str,
        rule: &'static str,
        found: String,
    },
    #[error("{op}: `{tensor}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        op: &'static str,
        tensor: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{op}: `{tensor}` has dtype {found}, expected {expected}")]
    DTypeMismatch {
        op: &'static str,
        tensor: &'static str,
        expected: DType,
        found: DType,
    },
    #[error("{op}: operands live on different devices ({a} and {b})")]
    DeviceMismatch {
        op: &'static str,
        a: String,
        b: String,
    },
    /// An op with no kernel for the device its tensors are on.
    #[error("{op} has no {device} kernel in this build yet; run it on the CPU")]
    NotOnDevice {
        op: &'static str,
        device: &'static str,
    },
    /// A sampler's state turned NaN or infinite: the state and the step where it was first seen.
    #[error("non-finite value in `{tensor}` at sampler step {step}")]
    NonFinite { tensor: String, step: usize },
    /// A setting of a run (sampler, steps, batch, shard, ...) that the model or the run cannot take.
    #[error("{what} must be {rule}, got {found}")]
    BadSetting {
        what: &'static str,
        rule: String,
        found: String,
    },
    /// A model given by name or directory that is neither an embedded model nor a model directory.
    #[error(
        "no model `{name}`: not a directory holding config.json, nor an embedded model ({})",
        if embedded.is_empty() { "none in this build".to_string() } else { format!("embedded: {}", embedded.join(", ")) }
    )]
    UnknownModel { name: String, embedded: Vec<String> },
    /// An input of a network call: missing, of the wrong rank or values, or not an input at all.
    /// `origin` is the file it came from, or `inputs` for tensors passed in memory.
    #[error("{origin}: input `{tensor}` {reason}")]
    BadInput {
        origin: String,
        tensor: String,
        reason: String,
    },

    // ---- Files ------------------------------------------------------------------------------------
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what}: {reason}", file.display())]
    BadModel {
        file: PathBuf,
        what: String,
        reason: String,
    },
    #[error("{}: unexpected tensor{} {}: the config does not use {}", file.display(), if names.len() == 1 { "" } else { "s" }, names.join(", "), if names.len() == 1 { "it" } else { "them" })]
    UnexpectedTensors { file: PathBuf, names: Vec<String> },
    #[error("{}: truncated: {what} needs {expected} bytes, the file has {found}", file.display())]
    Truncated {
        file: PathBuf,
        what: String,
        expected: u64,
        found: u64,
    },
    #[error("{}: not a valid safetensors file: {reason}", file.display())]
    BadHeader { file: PathBuf, reason: String },
    #[error("{}: tensor `{tensor}` missing{}", file.display(), hint_suffix(hint))]
    MissingTensor {
        file: PathBuf,
        tensor: String,
        hint: String,
    },
    #[error("{}: tensor `{tensor}` has shape {found:?}, expected {expected:?}", file.display())]
    TensorShape {
        file: PathBuf,
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}: tensor `{tensor}` has dtype {found}, expected {expected}", file.display())]
    TensorDType {
        file: PathBuf,
        tensor: String,
        expected: String,
        found: String,
    },
}

fn fmt_cuda_version(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

/// What kind of failure an [`Error`] is, for callers that sort errors into fewer classes than the
/// variants (the C ABI's status codes, the Python package's exception classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No usable GPU, driver or kernel image.
    NoGpu,
    /// The GPU ran out of memory.
    OutOfMemory,
    /// A CUDA driver call failed.
    Cuda,
    /// A run setting the model or run cannot take.
    BadSetting,
    /// A network input (missing, wrong shape or values, not an input).
    BadInput,
    /// A sampler's state turned non-finite.
    NonFinite,
    /// The model: unknown, or a file or tensor of it missing, corrupt or mis-shaped.
    BadModel,
    /// A file could not be read or written.
    Io,
    /// An op's argument (shape, dtype, device, parameter).
    InvalidArgument,
    /// Anything else.
    Other,
}

/// A CUDA driver error code with the driver's name and description of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaError {
    /// The `CUresult` value.
    pub code: u32,
    /// Its name, e.g. `CUDA_ERROR_OUT_OF_MEMORY`.
    pub name: String,
    /// The driver's description of it.
    pub description: String,
}

impl fmt::Display for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.description)
    }
}

impl std::error::Error for CudaError {}

impl CudaError {
    pub(crate) fn from_driver(e: cudarc::driver::DriverError) -> CudaError {
        let text = |r: std::result::Result<&std::ffi::CStr, _>| {
            r.ok()
                .map(|s: &std::ffi::CStr| s.to_string_lossy().into_owned())
        };
        CudaError {
            code: e.0 as u32,
            name: text(e.error_name()).unwrap_or_else(|| format!("CUresult {}", e.0 as u32)),
            description: text(e.error_string()).unwrap_or_else(|| "no description".into()),
        }
    }
}

impl Error {
    /// The kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::NoCuda(_)
            | Error::DriverTooOld { .. }
            | Error::KernelsNotCompiled
            | Error::NoKernelForDevice { .. } => K::NoGpu,
            Error::OutOfMemory { .. } => K::OutOfMemory,
            Error::Driver { .. } | Error::MissingKernel { .. } => K::Cuda,
            Error::BadSetting { .. } => K::BadSetting,
            Error::BadInput { .. } => K::BadInput,
            Error::NonFinite { .. } => K::NonFinite,
            Error::Io { .. } => K::Io,
            Error::UnknownModel { .. }
            | Error::BadModel { .. }
            | Error::UnexpectedTensors { .. }
            | Error::Truncated { .. }
            | Error::BadHeader { .. }
            | Error::MissingTensor { .. }
            | Error::TensorShape { .. }
            | Error::TensorDType { .. } => K::BadModel,
            Error::InvalidParam { .. }
            | Error::ShapeMismatch { .. }
            | Error::DTypeMismatch { .. }
            | Error::DeviceMismatch { .. } => K::InvalidArgument,
            Error::NotOnDevice { .. } => K::Other,
        }
    }

    /// Wraps a driver error with the op and the driver call that failed.
    pub(crate) fn driver(
        op: &'static str,
        call: &'static str,
    ) -> impl FnOnce(cudarc::driver::DriverError) -> Error {
        move |e| Error::Driver {
            op,
            call,
            source: CudaError::from_driver(e),
        }
    }

    pub(crate) fn setting(
        what: &'static str,
        rule: impl Into<String>,
        found: impl ToString,
    ) -> Error {
        Error::BadSetting {
            what,
            rule: rule.into(),
            found: found.to_string(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
