//! Which CUDA driver this process uses: a real one, or the engine's driver emulator (`crates/cuda-emu`),
//! which runs the engine's own kernels, host-compiled, on the CPU behind the same driver API.
//!
//! `TRILEMMA_CUDA` decides, before the first CUDA call of the process:
//! - `emulator`: the emulated GPU (every command and test);
//! - `driver`: only a real driver (the GPU check sets it, so an emulated pass cannot stand in for a GPU);
//! - unset: a real driver where one is installed; where none is, the CLI has no GPU, and the test suite
//!   (which calls [`allow_emulator_fallback`]) gets the emulator, so every GPU test runs everywhere.
//!
//! The emulator is selected in-process: its driver library is opened by path and cudarc's later
//! `dlopen("libcuda.so")` returns it (the SONAME rule of glibc), so nothing on LD_LIBRARY_PATH changes
//! and a real driver is never shadowed unless the emulator was asked for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};

static FALLBACK: AtomicBool = AtomicBool::new(false);
static DECIDED: Mutex<Option<Choice>> = Mutex::new(None);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Driver,
    Emulator,
}

/// The test suite's rule for an unset `TRILEMMA_CUDA`: the emulator where no real driver is installed.
/// Call before the first CUDA call; the CLI never does.
pub fn allow_emulator_fallback() {
    FALLBACK.store(true, Ordering::Relaxed);
}

/// Whether the CUDA device of this process is the emulator.
pub fn is_emulated() -> bool {
    trilemma_cuda_emu::installed()
}

fn real_driver_present() -> bool {
    // SAFETY: `is_culib_present` only tries to dlopen the candidate names of libcuda and drops the
    // handle; it runs no code of the library beyond its initialisers and touches no shared state of ours.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

fn install_emulator() -> std::result::Result<Choice, String> {
    trilemma_cuda_emu::install(crate::kernels::emulated::modules())
        .map(|()| Choice::Emulator)
        .map_err(|e| format!("the CUDA emulator could not start: {e}"))
}

fn decide() -> std::result::Result<Choice, String> {
    match std::env::var("TRILEMMA_CUDA").as_deref() {
        Ok("emulator") => install_emulator(),
        Ok("driver") => {
            if is_emulated() {
                Err("TRILEMMA_CUDA=driver, but this process already uses the CUDA emulator".into())
            } else if real_driver_present() {
                Ok(Choice::Driver)
            } else {
                Err(
                    "TRILEMMA_CUDA=driver but the CUDA driver library (libcuda.so) was not found: \
                     no NVIDIA driver is installed"
                        .into(),
                )
            }
        }
        Ok("") | Err(_) => {
            if is_emulated() {
                Ok(Choice::Emulator)
            } else if real_driver_present() {
                Ok(Choice::Driver)
            } else if FALLBACK.load(Ordering::Relaxed) {
                install_emulator()
            } else {
                Err(
                    "the CUDA driver library (libcuda.so) was not found: no NVIDIA driver is installed \
                     (TRILEMMA_CUDA=emulator runs the CUDA path on the CPU emulator)"
                        .into(),
                )
            }
        }
        Ok(other) => Err(format!(
            "TRILEMMA_CUDA must be `emulator` or `driver` (or unset), got `{other}`"
        )),
    }
}

/// The driver this process uses, decided once (the first CUDA call of the process asks).
pub fn choose() -> Result<Choice> {
    // Only a success is kept: a process whose first attempt failed (say, before the test suite allowed
    // the fallback) may still choose later.
    let mut d = DECIDED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = *d {
        return Ok(c);
    }
    let c = decide().map_err(Error::NoCuda)?;
    *d = Some(c);
    Ok(c)
}
