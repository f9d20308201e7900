//! One CUDA GPU: its context, the one stream all its work goes through, lazily loaded kernel modules
//! and the caching allocator.
//!
//! The driver library is opened at run time (cudarc's dynamic loading), so this module builds and its
//! callers run on machines without CUDA: every missing piece is an [`Error`], never a panic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    sys, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError, LaunchConfig,
};

use super::allocator::{AllocStats, CachingAllocator, PooledBlock, RawAllocError, RawAllocator};
use crate::error::{Error, Result};
use crate::kernels::{self, Kernel};

/// Chooses the driver (a real one or the emulator, `TRILEMMA_CUDA`), opens it and initialises it
/// (cuInit), or says why that is impossible. cudarc's loader panics when no driver library is present,
/// so the choice, which checks that, precedes every other driver call.
fn init_driver() -> Result<()> {
    super::driver_choice::choose()?;
    cudarc::driver::result::init().map_err(|e| Error::NoCuda(format!("cuInit failed: {e}")))
}

/// The driver's CUDA version as 1000 * major + 10 * minor (e.g. 13000 for CUDA 13.0).
pub fn driver_version() -> Result<i32> {
    init_driver()?;
    let mut v: std::ffi::c_int = 0;
    // SAFETY: cuDriverGetVersion writes one int through the pointer, which points at a live local.
    unsafe { sys::cuDriverGetVersion(&mut v) }
        .result()
        .map_err(Error::driver("driver_version", "cuDriverGetVersion"))?;
    Ok(v)
}

/// The driver version the embedded kernels need: the CUDA release of the nvcc that built them.
fn required_driver_version() -> Option<i32> {
    let release = kernels::NVCC_RELEASE?;
    let mut parts = release.split('.').map(|p| p.parse::<i32>().ok());
    let major = parts.next().flatten()?;
    let minor = parts.next().flatten().unwrap_or(0);
    Some(major * 1000 + minor * 10)
}

/// What `trilemma info` prints for one GPU.
#[derive(Clone, Debug)]
pub struct CudaDeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub multiprocessors: i32,
    pub total_memory: usize,
    pub free_memory: usize,
    /// The embedded kernel image that would run on it (`sm_90a`, or `compute_80` for PTX JIT).
    pub kernel_image: Option<&'static str>,
    /// The CUDA driver emulator's GPU (host-compiled kernels on the CPU), not a real one.
    pub emulated: bool,
}

/// Every visible GPU. No driver or no device is an error (`trilemma info` reports it as such).
pub fn cuda_devices() -> Result<Vec<CudaDeviceInfo>> {
    init_driver()?;
    let count =
        CudaContext::device_count().map_err(Error::driver("cuda_devices", "cuDeviceGetCount"))?;
    if count == 0 {
        return Err(Error::NoCuda(
            "the driver is installed but reports no CUDA device".into(),
        ));
    }
    (0..count as usize)
        .map(|ordinal| {
            let ctx = CudaContext::new(ordinal)
                .map_err(Error::driver("cuda_devices", "cuDevicePrimaryCtxRetain"))?;
            device_info(&ctx)
        })
        .collect()
}

fn device_info(ctx: &Arc<CudaContext>) -> Result<CudaDeviceInfo> {
    let op = "device_info";
    let cc = ctx
        .compute_capability()
        .map_err(Error::driver(op, "cuDeviceGetAttribute"))?;
    let (free, total) = ctx
        .mem_get_info()
        .map_err(Error::driver(op, "cuMemGetInfo"))?;
    Ok(CudaDeviceInfo {
        ordinal: ctx.ordinal(),
        name: ctx.name().map_err(Error::driver(op, "cuDeviceGetName"))?,
        compute_capability: cc,
        multiprocessors: ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(Error::driver(op, "cuDeviceGetAttribute"))?,
        total_memory: total,
        free_memory: free,
        kernel_image: kernels::image_for(cc, kernels::CUDA_ARCHS),
        emulated: super::driver_choice::is_emulated(),
    })
}

/// Device memory straight from the driver, allocated and freed on the device's stream.
pub struct CudaRaw {
    stream: Arc<CudaStream>,
    /// The emulator is told each pooled block's used extent (byte-exact memcheck).
    emulated: bool,
}

impl CudaRaw {
    fn block_ptr(&self, block: &CudaSlice<u8>) -> u64 {
        use cudarc::driver::DevicePtr;
        let (ptr, _sync) = block.device_ptr(&self.stream);
        ptr
    }
}

impl RawAllocator for CudaRaw {
    type Block = CudaSlice<u8>;

    fn alloc(&self, bytes: usize) -> Result<CudaSlice<u8>, RawAllocError> {
        // SAFETY: the memory is uninitialised. Blocks are handed out only as tensor storage that an op
        // or copy writes before anything reads it (`Tensor::uninit` is crate-private and each caller
        // writes every element); reading unwritten device memory is garbage, not undefined behaviour
        // on the host, and the tests poison outputs to catch it.
        match unsafe { self.stream.alloc::<u8>(bytes) } {
            Ok(s) => Ok(s),
            Err(DriverError(sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY)) => {
                Err(RawAllocError::OutOfMemory)
            }
            Err(e) => Err(RawAllocError::Other(Error::driver(
                "alloc",
                "cuMemAllocAsync",
            )(e))),
        }
    }

    fn mem_info(&self) -> (usize, usize) {
        self.stream.context().mem_get_info().unwrap_or((0, 0))
    }

    fn on_handout(&self, block: &CudaSlice<u8>, used: usize, capacity: usize) {
        if self.emulated {
            trilemma_cuda_emu::pool_handout(self.block_ptr(block), used, capacity);
        }
    }

    fn on_return(&self, block: &CudaSlice<u8>, capacity: usize) {
        if self.emulated {
            trilemma_cuda_emu::pool_return(self.block_ptr(block), capacity);
        }
    }
}

pub type DeviceBlock = PooledBlock<CudaRaw>;

pub struct CudaDevice {
    info: CudaDeviceInfo,
    pub(super) ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<Kernel, CudaFunction>>,
    pub(super) pool: Arc<CachingAllocator<CudaRaw>>,
    /// During a graph capture: (the captured batch's first sample, the device address of the graph's
    /// sample-base word); see graph.rs.
    pub(super) capture_base: Mutex<Option<(u32, u64)>>,
    /// Page-locked buffers for copies the host collects later (staging.rs).
    pub(super) staging: Arc<super::staging::StagingPool>,
    /// The convolutions' arithmetic ([`super::Precision`], by its index in `Precision::ALL`).
    pub(super) precision: std::sync::atomic::AtomicU8,
    /// A convolution launch plan every convolution takes instead of its own choice (tests name one to
    /// run each kernel variant; see `Device::force_conv_plan`).
    pub(super) conv_plan: Mutex<Option<crate::backend::conv_plan::ConvPlan>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Drop for CudaDevice {
    /// Queued work may still use pooled blocks and loaded modules: wait for it before the fields (the
    /// pool's frees, the module unloads) are dropped, with the context current on this thread. Errors
    /// cannot be returned from drop; cudarc records them on the context.
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            let _ = self.stream.synchronize();
        }
        self.pool.release_cached();
    }
}

impl CudaDevice {
    pub(crate) fn open(ordinal: usize) -> Result<Arc<CudaDevice>> {
        if kernels::FATBINS.is_empty() {
            return Err(Error::KernelsNotCompiled);
        }
        let found = driver_version()?;
        if let Some(required) = required_driver_version() {
            if found < required {
                return Err(Error::DriverTooOld {
                    found,
                    required,
                    built_with: kernels::NVCC_RELEASE.unwrap_or("?").to_string(),
                });
            }
        }
        let count = CudaContext::device_count()
            .map_err(Error::driver("Device::cuda", "cuDeviceGetCount"))?;
        if ordinal >= count.max(0) as usize {
            return Err(Error::NoCuda(format!(
                "GPU {ordinal} requested but the driver reports {count} device(s)"
            )));
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(Error::driver("Device::cuda", "cuDevicePrimaryCtxRetain"))?;
        let info = device_info(&ctx)?;
        if info.kernel_image.is_none() {
            let (major, minor) = info.compute_capability;
            return Err(Error::NoKernelForDevice {
                major,
                minor,
                archs: kernels::CUDA_ARCHS.iter().map(|s| s.to_string()).collect(),
            });
        }
        // SAFETY: with tracking off, cudarc no longer orders buffer uses across streams or delays frees
        // until other streams finish. We use exactly one stream per device (`stream` below) for every
        // allocation, copy, launch and free, so stream order alone gives: no use before allocation
        // completes, no free before the last use, no concurrent writers. It also makes CUDA-graph
        // capture possible (per-buffer event records are not capturable).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(Error::driver("Device::cuda", "cuStreamCreate"))?;
        let pool = CachingAllocator::new(CudaRaw {
            stream: Arc::clone(&stream),
            emulated: info.emulated,
        });
        Ok(Arc::new(CudaDevice {
            info,
            staging: super::staging::StagingPool::new(Arc::clone(&ctx)),
            ctx,
            stream,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            pool,
            capture_base: Mutex::new(None),
            precision: std::sync::atomic::AtomicU8::new(0),
            conv_plan: Mutex::new(None),
        }))
    }

    pub fn ordinal(&self) -> usize {
        self.info.ordinal
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn info(&self) -> &CudaDeviceInfo {
        &self.info
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub fn pool_stats(&self) -> AllocStats {
        self.pool.stats()
    }

    /// (free, total) bytes of device memory as the driver reports them ((0, 0) if it cannot).
    pub fn memory_info(&self) -> (usize, usize) {
        self.pool.raw().mem_info()
    }

    /// Hands cached device memory back to the driver.
    pub fn release_cached_memory(&self) -> Result<usize> {
        // The frees are driver calls: make this device's context current on the calling thread.
        self.ctx
            .bind_to_thread()
            .map_err(Error::driver("release_cached_memory", "cuCtxSetCurrent"))?;
        Ok(self.pool.release_cached())
    }

    /// Starts a new peak of the memory pool (`pool_stats().peak_bytes_in_use` = the bytes in use now),
    /// so the next peak read measures what runs from here.
    pub fn reset_peak_memory(&self) {
        self.pool.reset_peak();
    }

    /// Waits for the stream and reports any error a queued operation raised.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(Error::driver("synchronize", "cuStreamSynchronize"))?;
        self.ctx
            .check_err()
            .map_err(Error::driver("synchronize", "asynchronous CUDA operation"))
    }

    pub(crate) fn alloc(&self, op: &'static str, bytes: usize) -> Result<DeviceBlock> {
        self.pool.alloc(op, bytes)
    }

    /// Kernel `k` (of its `kernels/<module>.cu` file); its module is loaded on first use, then cached.
    pub(crate) fn function(&self, k: Kernel) -> Result<CudaFunction> {
        let (module, name) = (k.module, k.name);
        let key = k;
        let mut functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = functions.get(&key) {
            return Ok(f.clone());
        }
        let m = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            match modules.get(module) {
                Some(m) => Arc::clone(m),
                None => {
                    let image = kernels::fatbin(module).ok_or(Error::KernelsNotCompiled)?;
                    // `from_binary` copies into a Vec, whose heap buffer meets the driver's 8-byte
                    // alignment for fatbin images (include_bytes! data has alignment 1).
                    let m = self
                        .ctx
                        .load_module(cudarc::nvrtc::Ptx::from_binary(image.to_vec()))
                        .map_err(Error::driver("load kernels", "cuModuleLoadData"))?;
                    modules.insert(module, Arc::clone(&m));
                    m
                }
            }
        };
        let f = m
            .load_function(name)
            .map_err(|source| Error::MissingKernel {
                module,
                kernel: name.to_string(),
                source: crate::error::CudaError::from_driver(source),
            })?;
        functions.insert(key, f.clone());
        Ok(f)
    }

    /// A 1-D grid-stride launch over `items` work items: 256 threads per CTA and at most 32 CTAs per
    /// SM, enough to hide latency in memory-bound loops without launching idle CTAs.
    pub(crate) fn launch_1d(&self, items: u64) -> LaunchConfig {
        const THREADS: u32 = 256;
        let max_blocks = (self.info.multiprocessors.max(1) as u64) * 32;
        let blocks = items.div_ceil(THREADS as u64).clamp(1, max_blocks) as u32;
        LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}
