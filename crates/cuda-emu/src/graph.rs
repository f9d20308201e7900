//! CUDA graphs by stream capture, with the driver's rules: between `cuStreamBeginCapture_v2` and
//! `cuStreamEndCapture` a stream records its kernels, memsets and device-to-device copies as graph
//! nodes instead of running them; what a capture cannot hold (a copy to or from pageable host memory,
//! a synchronize or query of the capturing stream, an allocation, work on the legacy stream that would
//! join it) fails with the driver's code and invalidates the capture, so `cuStreamEndCapture` then
//! returns CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and no graph. `cuGraphInstantiateWithFlags` copies the
//! nodes into an executable graph; `cuGraphLaunch` replays them in capture order on a stream (counted
//! in the stats' `graph_launches`, its kernels not in `launches`, which counts host launches).
//!
//! Capture modes as the driver's: GLOBAL forbids the unsafe calls (allocation, context synchronize,
//! legacy-stream work) on every thread while it lasts, THREAD_LOCAL on the capturing thread only,
//! RELAXED nowhere. A capture is a linear chain (one stream, no events), which is what stream order
//! makes of it.

use std::collections::HashSet;
use std::ffi::c_void;
use std::sync::Mutex;
use std::thread::ThreadId;

use crate::codes::*;

pub const MODE_GLOBAL: u32 = 0;
pub const MODE_THREAD_LOCAL: u32 = 1;
pub const MODE_RELAXED: u32 = 2;

/// One recorded operation.
#[derive(Clone)]
pub enum Node {
    Kernel {
        /// The FunctionHandle's address (driver.rs); functions live as long as their module.
        function: usize,
        grid: [u32; 3],
        block: [u32; 3],
        shared: u32,
        /// The parameters' bytes, one vector per parameter, copied at capture (as the driver does).
        params: Vec<Vec<u8>>,
    },
    Memset {
        ptr: u64,
        value: u32,
        /// 1 or 4 bytes per element.
        elem: usize,
        count: usize,
    },
    CopyDtoD {
        dst: u64,
        src: u64,
        bytes: usize,
    },
}

/// A stream's capture in progress.
pub struct Capture {
    pub mode: u32,
    pub thread: ThreadId,
    pub nodes: Vec<Node>,
    /// Why the capture was invalidated, if it was.
    pub invalidated: Option<String>,
}

/// The streams capturing now, with their mode and thread (for the unsafe-call rules).
static ACTIVE: Mutex<Vec<(usize, u32, ThreadId)>> = Mutex::new(Vec::new());

pub fn activate(stream: usize, mode: u32) {
    lock(&ACTIVE).push((stream, mode, std::thread::current().id()));
}

pub fn deactivate(stream: usize) {
    lock(&ACTIVE).retain(|(s, _, _)| *s != stream);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The capturing streams an unsafe call on this thread collides with: every GLOBAL capture, and the
/// THREAD_LOCAL captures of this thread. Empty: the call is allowed.
pub fn colliding_captures() -> Vec<usize> {
    let me = std::thread::current().id();
    lock(&ACTIVE)
        .iter()
        .filter(|(_, mode, t)| *mode == MODE_GLOBAL || (*mode == MODE_THREAD_LOCAL && *t == me))
        .map(|(s, _, _)| *s)
        .collect()
}

/// A graph made by a capture, and an executable graph instantiated from one.
pub struct GraphHandle {
    pub nodes: Vec<Node>,
}

pub struct ExecHandle {
    pub nodes: Vec<Node>,
}

pub static GRAPHS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
pub static EXECS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

pub fn insert(set: &Mutex<Option<HashSet<usize>>>, h: usize) {
    lock(set).get_or_insert_with(HashSet::new).insert(h);
}

pub fn live(set: &Mutex<Option<HashSet<usize>>>, h: usize) -> bool {
    lock(set).as_ref().is_some_and(|s| s.contains(&h))
}

pub fn remove(set: &Mutex<Option<HashSet<usize>>>, h: usize) -> bool {
    lock(set).as_mut().is_some_and(|s| s.remove(&h))
}

/// The parameters of a kernel launch, copied: `sizes[i]` bytes behind `params[i]`.
///
/// # Safety
/// `params` holds one readable pointer per parameter, each to `sizes[i]` readable bytes (the driver's
/// contract for cuLaunchKernel).
pub unsafe fn copy_params(params: *mut *mut c_void, sizes: &[u32]) -> Vec<Vec<u8>> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| std::slice::from_raw_parts(*params.add(i) as *const u8, n as usize).to_vec())
        .collect()
}

/// The code a capture-breaking call returns, after invalidating the capture it broke.
pub fn broken(capture: &mut Capture, code: i32, why: String) -> i32 {
    eprintln!("cuda-emu: {why} during stream capture: {}", name(code));
    capture.invalidated.get_or_insert(why);
    code
}

fn name(code: i32) -> &'static str {
    error_name(code).unwrap_or("CUDA_ERROR_UNKNOWN")
}
