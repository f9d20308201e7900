//! A CUDA driver emulator. The engine's own kernels, compiled a second time as host C++ (with
//! `include/tri_emu.h` force-included), run on the CPU behind the CUDA driver API that cudarc calls, so
//! the whole CUDA path of the engine (allocator, module loading, launch wrappers and their parameter
//! structs, every kernel) executes and is tested where there is no GPU.
//!
//! - [`install`] writes the driver library (`libtrilemma_cuda_emu.so`, SONAME `libcuda.so`, built from
//!   `csrc/shim.c`) to an anonymous file and opens it by path, so cudarc's later `dlopen("libcuda.so")`
//!   returns it; a real driver is never shadowed unless the emulator was asked for.
//! - `src/driver.rs` implements the driver functions cudarc 0.19 calls on the engine's paths; the shim
//!   stubs every other one with `CUDA_ERROR_NOT_SUPPORTED`.
//! - `src/exec.rs` runs a launch: the driver's checks, blocks in parallel over the cores, the threads
//!   of a block as fibers (corosensei) so barriers and warp collectives are exact, or as a plain loop
//!   for kernels whose PTX has neither.
//! - `src/graph.rs` is stream capture and CUDA graphs, with the driver's capture rules.
//! - `src/memory.rs` is device memory: one reserved range with a byte-exact shadow that the checked
//!   kernel build consults on every access (memcheck), NaN-pattern fills (initcheck).
//! - `src/host.rs` is page-locked host memory, asynchronous copies into it and events.
//! - `src/stats.rs` counts launches, copies, allocations, synchronisations and graph replays.
//!
//! What it checks and what it cannot is in `docs/emulator.md`.

mod codes;
mod config;
mod driver;
mod exec;
mod graph;
mod host;
mod memory;
mod registry;
mod stats;

use std::ffi::{c_char, c_void, CString};
use std::sync::OnceLock;

pub use codes::error_name;
pub use config::{Config, Schedule};
pub use registry::{KernelResources, ModuleImage, TriEmuKernelEntry, TriEmuModuleTable};
pub use stats::{set_trace, take_trace, CopyStats, Stats, TraceOp};

/// The emulated GPU's name prefix, so reports can tell an emulated device from a real one.
pub const DEVICE_NAME: &str = "trilemma cuda-emu (emulated GPU)";

/// The driver library built from `csrc/shim.c`.
static SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libtrilemma_cuda_emu.so"));

static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Whether the emulator is this process's CUDA driver.
pub fn installed() -> bool {
    matches!(INSTALLED.get(), Some(Ok(())))
}

/// Makes the emulator this process's CUDA driver: reads the configuration (`TRILEMMA_EMU_*`), registers
/// `modules` (the fatbins it will accept and their host-compiled kernels), and opens the driver library
/// so cudarc's loader finds it. Must run before the process's first CUDA call; later calls return the
/// first call's result and ignore their arguments.
pub fn install(modules: Vec<ModuleImage>) -> Result<(), String> {
    INSTALLED
        .get_or_init(|| {
            let config = Config::from_env()?;
            registry::register(modules)?;
            config::set(config);
            memory::init()?;
            open_shim()?;
            stats::register_exit_writer();
            Ok(())
        })
        .clone()
}

/// Writes the shim to a file that can be opened by path (an anonymous memfd, else a file in the
/// temporary directory), opens it and hands it the resolver of the Rust implementations.
fn open_shim() -> Result<(), String> {
    let path = write_shim()?;
    let cpath = CString::new(path.clone()).map_err(|e| e.to_string())?;
    // SAFETY: dlopen of a library we built: its only initialisers are the C runtime's, it starts no
    // threads. The handle is never closed, so the library stays mapped for the life of the process
    // (cudarc keeps function pointers into it).
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let err = unsafe { libc::dlerror() };
        let msg = if err.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: non-null dlerror results are NUL-terminated strings valid until the next dl call.
            unsafe { std::ffi::CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(format!(
            "cannot open the emulator's driver library {path}: {msg}"
        ));
    }
    // SAFETY: the handle is live; the symbol name is a NUL-terminated literal.
    let sym = unsafe { libc::dlsym(handle, c"trilemma_emu_set_resolver".as_ptr()) };
    if sym.is_null() {
        return Err("the emulator's driver library has no trilemma_emu_set_resolver".into());
    }
    type SetResolver = unsafe extern "C" fn(extern "C" fn(*const c_char) -> *const c_void);
    // SAFETY: shim.c defines trilemma_emu_set_resolver with exactly this C signature.
    let set: SetResolver = unsafe { std::mem::transmute::<*mut c_void, SetResolver>(sym) };
    // SAFETY: `driver::resolve` lives for the whole process and is thread-safe.
    unsafe { set(driver::resolve) };
    Ok(())
}

fn write_shim() -> Result<String, String> {
    use std::io::Write;
    // SAFETY: memfd_create with a NUL-terminated name and no flags other than close-on-exec.
    let fd = unsafe { libc::memfd_create(c"libcuda.so".as_ptr(), libc::MFD_CLOEXEC) };
    if fd >= 0 {
        use std::os::fd::FromRawFd;
        // SAFETY: fd is a fresh descriptor we own; the File takes ownership of it. It is leaked below
        // so the path /proc/self/fd/N stays valid for dlopen (and any later re-open).
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        if f.write_all(SHIM).is_ok() {
            std::mem::forget(f);
            return Ok(format!("/proc/self/fd/{fd}"));
        }
    }
    let dir = std::env::temp_dir().join(format!("trilemma-cuda-emu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("libtrilemma_cuda_emu.so");
    std::fs::write(&path, SHIM).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

/// Registers more modules (the fatbins cuModuleLoadData will accept, with their host builds) after
/// [`install`]: the emulator's own test kernels, for instance.
pub fn register(modules: Vec<ModuleImage>) -> Result<(), String> {
    registry::register(modules)
}

/// The report of the most recent kernel fault (memcheck, synccheck, trap), as printed on stderr.
pub fn last_fault() -> Option<String> {
    driver::last_fault()
}

/// The thread and block order the emulator runs now (`TRILEMMA_EMU_SCHEDULE` at install).
pub fn schedule() -> Schedule {
    config::get().schedule()
}

/// Changes the thread and block order for later launches (tests compare results across orders).
pub fn set_schedule(s: Schedule) {
    config::get().set_schedule(s)
}

/// Whether kernels run in their memory-checked build (`TRILEMMA_EMU_MEMCHECK`, on by default).
pub fn memcheck() -> bool {
    config::get().memcheck
}

/// Turns racecheck (shared-memory hazards between warps within a barrier interval) on or off for later
/// launches; `TRILEMMA_EMU_RACECHECK=1` turns it on at install. It needs the checked build (memcheck).
pub fn set_racecheck(on: bool) {
    memory::set_racecheck(on)
}

/// The counters so far.
pub fn stats() -> Stats {
    stats::snapshot()
}

/// The counters as the JSON that `TRILEMMA_EMU_STATS` writes at exit.
pub fn stats_json() -> String {
    stats::snapshot().to_json()
}

/// A caching allocator hands out `used` bytes of the device block at `ptr` (of `capacity` bytes): only
/// those are addressable until the block is handed back, so memcheck is byte-exact inside pooled blocks;
/// with initcheck on they are filled with the NaN pattern.
pub fn pool_handout(ptr: u64, used: usize, capacity: usize) {
    memory::pool_handout(ptr, used, capacity)
}

/// The block at `ptr` went back to its pool's cache: any access to it is a use after free until the
/// next handout.
pub fn pool_return(ptr: u64, capacity: usize) {
    memory::pool_return(ptr, capacity)
}
