//! The emulated CUDA driver functions (csrc/supported.def lists them with their C prototypes; the shim
//! forwards each to the function of the same name here, found through [`resolve`]).
//!
//! Semantics kept from the real driver: a current context per OS thread; streams run their work at
//! once, in call order (so stream order is trivially kept); a kernel fault is asynchronous: the launch
//! returns success and the fault becomes the context's sticky error, returned by every later call on
//! that context until the primary context is released by its last user (which frees its memory).
//! Errors a real driver reports at the call (bad launch configuration, bad handles, out of memory) are
//! reported at the call, with the same codes.

#![allow(non_snake_case)] // the driver API's own names

use std::collections::HashSet;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::codes::*;
use crate::config;
use crate::exec::{self, Fault, FaultKind, Launch};
use crate::graph::{self, Capture, ExecHandle, GraphHandle, Node};
use crate::host;
use crate::memory;
use crate::registry::{self, KernelInfo, Module};
use crate::stats::{self, Dir};

struct Context {
    device: u32,
    refcount: AtomicU32,
    sticky: AtomicI32,
    /// Held across retain and across the last release with its frees, so a retain on another thread
    /// cannot slip between the refcount reaching 0 and the context's memory being freed.
    lifecycle: Mutex<()>,
}

struct Stream {
    ctx: *const Context,
    /// The capture in progress on this stream (graph.rs).
    capture: Mutex<Option<Capture>>,
}

struct ModuleHandle {
    module: Arc<Module>,
    functions: Mutex<Vec<(String, usize)>>,
}

struct FunctionHandle {
    kernel: Arc<KernelInfo>,
    /// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES (48 KiB minus static until opted in).
    max_dynamic_shared: AtomicI32,
}

const SHARED_DEFAULT: i32 = 48 << 10;
/// The largest grid the emulator runs (its block order is a vector of this many u32).
const MAX_BLOCKS: u64 = 1 << 26;
const SHARED_OPTIN: i32 = 227 << 10;

static CONTEXTS: OnceLock<Vec<Context>> = OnceLock::new();
static STREAMS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
static MODULES: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
static FUNCTIONS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
static LAUNCH_COUNT: AtomicU64 = AtomicU64::new(0);
static LAST_FAULT: Mutex<Option<String>> = Mutex::new(None);

pub fn last_fault() -> Option<String> {
    LAST_FAULT.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

thread_local! {
    static CURRENT: std::cell::Cell<*const Context> = const { std::cell::Cell::new(std::ptr::null()) };
}

fn contexts() -> &'static [Context] {
    CONTEXTS.get_or_init(|| {
        (0..config::get().devices)
            .map(|device| Context {
                device,
                refcount: AtomicU32::new(0),
                sticky: AtomicI32::new(SUCCESS),
                lifecycle: Mutex::new(()),
            })
            .collect()
    })
}

fn live(set: &Mutex<Option<HashSet<usize>>>, h: usize) -> bool {
    set.lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&h))
}

fn insert(set: &Mutex<Option<HashSet<usize>>>, h: usize) {
    set.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(h);
}

fn remove(set: &Mutex<Option<HashSet<usize>>>, h: usize) -> bool {
    set.lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
        .is_some_and(|s| s.remove(&h))
}

/// The current context, or the code to return: INVALID_CONTEXT without one, its sticky error.
fn current() -> Result<&'static Context, i32> {
    let c = CURRENT.get();
    if c.is_null() {
        return Err(INVALID_CONTEXT);
    }
    // SAFETY: CURRENT only ever holds pointers into CONTEXTS, which lives for the process.
    let ctx = unsafe { &*c };
    if ctx.refcount.load(Ordering::Acquire) == 0 {
        return Err(INVALID_CONTEXT);
    }
    match ctx.sticky.load(Ordering::Acquire) {
        SUCCESS => Ok(ctx),
        e => Err(e),
    }
}

/// The context a stream belongs to (0 is the current context's default stream).
/// `CU_STREAM_LEGACY` (1) and `CU_STREAM_PER_THREAD` (2): handles the driver takes for the default
/// streams (other frameworks pass them, e.g. through DLPack). The emulator runs work at the call, so
/// both are the legacy stream here.
fn is_default_stream(stream: *mut c_void) -> bool {
    stream.is_null() || stream as usize == 1 || stream as usize == 2
}

fn stream_ctx(stream: *mut c_void) -> Result<&'static Context, i32> {
    let cur = current()?;
    if is_default_stream(stream) {
        return Ok(cur);
    }
    if !live(&STREAMS, stream as usize) {
        return Err(INVALID_HANDLE);
    }
    // SAFETY: a live stream handle is a Box<Stream> we created and have not freed.
    let ctx = unsafe { &*(*(stream as *const Stream)).ctx };
    match ctx.sticky.load(Ordering::Acquire) {
        SUCCESS => Ok(ctx),
        e => Err(e),
    }
}

/// The live stream behind a non-null handle (None: the legacy stream, or not a stream).
fn stream_of(s: *mut c_void) -> Option<&'static Stream> {
    if is_default_stream(s) || !live(&STREAMS, s as usize) {
        return None;
    }
    // SAFETY: a live stream handle is a Box<Stream> we created and have not freed.
    Some(unsafe { &*(s as *const Stream) })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Invalidates the captures of `streams` (a call on this thread broke them) and returns `code`.
fn break_captures(streams: &[usize], code: i32, why: &str) -> i32 {
    for &h in streams {
        if let Some(st) = stream_of(h as *mut c_void) {
            if let Some(c) = lock(&st.capture).as_mut() {
                graph::broken(c, code, why.to_string());
            }
        }
    }
    code
}

/// A call the driver forbids while a capture it collides with is active (an allocation, a context
/// synchronize): the capture's code, after invalidating it; None: allowed.
fn unsafe_during_capture(what: &str) -> Option<i32> {
    let hit = graph::colliding_captures();
    (!hit.is_empty()).then(|| break_captures(&hit, STREAM_CAPTURE_UNSUPPORTED, what))
}

/// How work queued on stream `s` proceeds: `Some(code)` when it was recorded into, refused by or
/// breaks a capture (`record` decides for a capturing stream; the legacy stream may not join a
/// capture that forbids it); None: run it now.
fn captured(s: *mut c_void, what: &str, record: impl FnOnce(&mut Capture) -> i32) -> Option<i32> {
    match stream_of(s) {
        Some(st) => lock(&st.capture).as_mut().map(record),
        None if is_default_stream(s) => {
            let hit = graph::colliding_captures();
            (!hit.is_empty()).then(|| break_captures(&hit, STREAM_CAPTURE_IMPLICIT, what))
        }
        None => None,
    }
}

macro_rules! check {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}

/// An output parameter: INVALID_VALUE when null. Every `unsafe extern "C" fn` below relies on the
/// driver API's contract that a non-null output pointer points at writable memory of its type, and an
/// input pointer at the documented amount of readable memory; nothing else is assumed about them.
macro_rules! out {
    ($p:expr) => {{
        if $p.is_null() {
            return INVALID_VALUE;
        }
        &mut *$p
    }};
}

unsafe extern "C" fn cuInit(flags: u32) -> i32 {
    if flags != 0 {
        return INVALID_VALUE;
    }
    contexts();
    SUCCESS
}

unsafe extern "C" fn cuDriverGetVersion(v: *mut i32) -> i32 {
    *out!(v) = 13000;
    SUCCESS
}

unsafe extern "C" fn cuGetErrorString(e: i32, s: *mut *const c_char) -> i32 {
    let s = out!(s);
    match c_strings(e) {
        Some((_, d)) => {
            *s = d.as_ptr().cast();
            SUCCESS
        }
        None => {
            *s = std::ptr::null();
            INVALID_VALUE
        }
    }
}

unsafe extern "C" fn cuGetErrorName(e: i32, s: *mut *const c_char) -> i32 {
    let s = out!(s);
    match c_strings(e) {
        Some((n, _)) => {
            *s = n.as_ptr().cast();
            SUCCESS
        }
        None => {
            *s = std::ptr::null();
            INVALID_VALUE
        }
    }
}

unsafe extern "C" fn cuDeviceGetCount(n: *mut i32) -> i32 {
    *out!(n) = contexts().len() as i32;
    SUCCESS
}

fn device_ok(d: i32) -> bool {
    d >= 0 && (d as usize) < contexts().len()
}

unsafe extern "C" fn cuDeviceGet(d: *mut i32, ordinal: i32) -> i32 {
    let d = out!(d);
    if !device_ok(ordinal) {
        return INVALID_DEVICE;
    }
    *d = ordinal;
    SUCCESS
}

unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: i32, d: i32) -> i32 {
    if name.is_null() || len <= 0 {
        return INVALID_VALUE;
    }
    if !device_ok(d) {
        return INVALID_DEVICE;
    }
    let s = format!("{} {d}", crate::DEVICE_NAME);
    let bytes = s.as_bytes();
    let n = bytes.len().min(len as usize - 1);
    // SAFETY: the caller's buffer holds `len` bytes (driver contract); n + 1 <= len are written.
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), name.cast::<u8>(), n);
    *name.add(n) = 0;
    SUCCESS
}

/// Device attributes of a Hopper-class GPU (compute capability 9.0, its per-block and per-SM limits),
/// with the emulator's own multiprocessor count. Attributes not listed read 0.
fn attribute(a: i32) -> Option<i32> {
    Some(match a {
        1..=3 => 1024,  // max threads per block, max block dim x, y
        4 => 64,        // max block dim z
        5 => i32::MAX,  // max grid dim x
        6 | 7 => 65535, // max grid dim y, z
        8 => SHARED_DEFAULT,
        9 => 65536, // total constant memory
        10 => 32,   // warp size
        11 => i32::MAX,
        12 => 65536,   // registers per block
        13 => 1755000, // clock rate, kHz
        14 => 512,
        15 => 1,
        16 => config::get().multiprocessors as i32,
        17 | 18 => 0,
        19 => 1,
        20 => 0,
        31 => 1, // concurrent kernels
        36 => 2619000,
        37 => 5120,
        38 => 50 << 20, // L2 bytes
        39 => 2048,     // threads per SM
        40 => 2,
        41 => 1, // unified addressing
        75 => 9, // compute capability major
        76 => 0, // minor
        81 => 233472,
        82 => 65536,
        97 => SHARED_OPTIN,
        115 => 1, // memory pools supported: cudarc uses cuMemAllocAsync / cuMemFreeAsync
        a if (0..=150).contains(&a) => 0,
        _ => return None,
    })
}

unsafe extern "C" fn cuDeviceGetAttribute(v: *mut i32, a: i32, d: i32) -> i32 {
    let v = out!(v);
    if !device_ok(d) {
        return INVALID_DEVICE;
    }
    match attribute(a) {
        Some(x) => {
            *v = x;
            SUCCESS
        }
        None => INVALID_VALUE,
    }
}

unsafe extern "C" fn cuDeviceTotalMem_v2(b: *mut usize, d: i32) -> i32 {
    let b = out!(b);
    if !device_ok(d) {
        return INVALID_DEVICE;
    }
    *b = config::get().memory_bytes as usize;
    SUCCESS
}

unsafe extern "C" fn cuDeviceGetUuid(u: *mut u8, d: i32) -> i32 {
    if u.is_null() {
        return INVALID_VALUE;
    }
    if !device_ok(d) {
        return INVALID_DEVICE;
    }
    let mut id = *b"trilemma-emu-gpu";
    id[15] = b'0' + d as u8;
    std::ptr::copy_nonoverlapping(id.as_ptr(), u, 16);
    SUCCESS
}

unsafe extern "C" fn cuDeviceGetUuid_v2(u: *mut u8, d: i32) -> i32 {
    cuDeviceGetUuid(u, d)
}

unsafe extern "C" fn cuDevicePrimaryCtxRetain(c: *mut *mut c_void, d: i32) -> i32 {
    let c = out!(c);
    if !device_ok(d) {
        return INVALID_DEVICE;
    }
    let ctx = &contexts()[d as usize];
    let _life = ctx.lifecycle.lock().unwrap_or_else(|p| p.into_inner());
    ctx.refcount.fetch_add(1, Ordering::AcqRel);
    *c = ctx as *const Context as *mut c_void;
    SUCCESS
}

/// The last release destroys the primary context: its memory is freed and its sticky error cleared,
/// as a real driver does, so the next retain starts clean.
unsafe extern "C" fn cuDevicePrimaryCtxRelease_v2(d: i32) -> i32 {
    if !device_ok(d) {
        return INVALID_DEVICE;
    }
    let ctx = &contexts()[d as usize];
    let _life = ctx.lifecycle.lock().unwrap_or_else(|p| p.into_inner());
    let prev = ctx
        .refcount
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1));
    match prev {
        Err(_) => INVALID_CONTEXT,
        Ok(1) => {
            memory::free_device(ctx.device);
            ctx.sticky.store(SUCCESS, Ordering::Release);
            SUCCESS
        }
        Ok(_) => SUCCESS,
    }
}

unsafe extern "C" fn cuCtxGetCurrent(c: *mut *mut c_void) -> i32 {
    *out!(c) = CURRENT.get() as *mut c_void;
    SUCCESS
}

unsafe extern "C" fn cuCtxSetCurrent(c: *mut c_void) -> i32 {
    if !c.is_null()
        && !contexts()
            .iter()
            .any(|x| std::ptr::eq(x, c as *const Context))
    {
        return INVALID_CONTEXT;
    }
    CURRENT.set(c as *const Context);
    SUCCESS
}

unsafe extern "C" fn cuCtxGetDevice(d: *mut i32) -> i32 {
    let d = out!(d);
    let c = CURRENT.get();
    if c.is_null() {
        return INVALID_CONTEXT;
    }
    // SAFETY: CURRENT holds only pointers into CONTEXTS, which lives for the process.
    *d = (*c).device as i32;
    SUCCESS
}

unsafe extern "C" fn cuCtxSynchronize() -> i32 {
    check!(current());
    if let Some(code) = unsafe_during_capture("cuCtxSynchronize") {
        return code;
    }
    host::land_all();
    stats::synchronization();
    SUCCESS
}

unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> i32 {
    let (free, total) = (out!(free), out!(total));
    let ctx = check!(current());
    *total = config::get().memory_bytes as usize;
    *free = memory::capacity().saturating_sub(memory::used(ctx.device));
    SUCCESS
}

unsafe extern "C" fn cuStreamCreate(s: *mut *mut c_void, flags: u32) -> i32 {
    let s = out!(s);
    let ctx = check!(current());
    if flags > 1 {
        return INVALID_VALUE;
    }
    let h = Box::into_raw(Box::new(Stream {
        ctx,
        capture: Mutex::new(None),
    })) as usize;
    insert(&STREAMS, h);
    *s = h as *mut c_void;
    SUCCESS
}

unsafe extern "C" fn cuStreamSynchronize(s: *mut c_void) -> i32 {
    check!(stream_ctx(s));
    let refuse = |c: &mut Capture| {
        let why = "cuStreamSynchronize of the capturing stream".to_string();
        graph::broken(c, STREAM_CAPTURE_UNSUPPORTED, why)
    };
    if let Some(code) = captured(s, "cuStreamSynchronize of the legacy stream", refuse) {
        return code;
    }
    land_before(s, u64::MAX);
    stats::synchronization();
    SUCCESS
}

/// The page-locked copies queued on stream `s` before point `upto` land; the legacy stream (null)
/// waits for every stream's work.
fn land_before(s: *mut c_void, upto: u64) {
    if is_default_stream(s) {
        host::land_all()
    } else if upto == u64::MAX {
        host::land_stream(s as usize)
    } else {
        host::land(s as usize, upto)
    }
}

unsafe extern "C" fn cuStreamQuery(s: *mut c_void) -> i32 {
    check!(stream_ctx(s));
    let refuse = |c: &mut Capture| {
        let why = "cuStreamQuery of the capturing stream".to_string();
        graph::broken(c, STREAM_CAPTURE_UNSUPPORTED, why)
    };
    if let Some(code) = captured(s, "cuStreamQuery of the legacy stream", refuse) {
        return code;
    }
    // The stream's work ran at the call: it is complete, and so are its copies.
    land_before(s, u64::MAX);
    SUCCESS
}

unsafe extern "C" fn cuStreamDestroy_v2(s: *mut c_void) -> i32 {
    if s.is_null() || !remove(&STREAMS, s as usize) {
        return INVALID_HANDLE;
    }
    graph::deactivate(s as usize);
    host::land_stream(s as usize);
    // SAFETY: the handle was live (just removed from the set), so it is our Box, freed once.
    drop(Box::from_raw(s as *mut Stream));
    SUCCESS
}

unsafe extern "C" fn cuMemHostAlloc(p: *mut *mut c_void, bytes: usize, flags: u32) -> i32 {
    let p = out!(p);
    check!(current());
    // CU_MEMHOSTALLOC_PORTABLE | DEVICEMAP | WRITECOMBINED; page-locking is all the emulator models.
    if flags & !0x7 != 0 {
        return INVALID_VALUE;
    }
    if let Some(code) = unsafe_during_capture("cuMemHostAlloc") {
        return code;
    }
    stats::pinned_allocation();
    *p = check!(host::alloc(bytes)) as *mut c_void;
    SUCCESS
}

unsafe extern "C" fn cuMemAllocHost_v2(p: *mut *mut c_void, bytes: usize) -> i32 {
    cuMemHostAlloc(p, bytes, 0)
}

unsafe extern "C" fn cuMemFreeHost(p: *mut c_void) -> i32 {
    check!(current());
    if let Some(code) = unsafe_during_capture("cuMemFreeHost") {
        return code;
    }
    host::free(p as *mut u8)
}

/// The live event behind a handle.
fn event_of(e: *mut c_void) -> Result<&'static host::Event, i32> {
    if e.is_null() || !live(&host::EVENTS, e as usize) {
        return Err(INVALID_HANDLE);
    }
    // SAFETY: a live event handle is a Box<host::Event> we created and have not freed.
    Ok(unsafe { &*(e as *const host::Event) })
}

unsafe extern "C" fn cuEventCreate(e: *mut *mut c_void, flags: u32) -> i32 {
    let e = out!(e);
    check!(current());
    // CU_EVENT_BLOCKING_SYNC | DISABLE_TIMING | INTERPROCESS (the last only with DISABLE_TIMING).
    if flags & !0x7 != 0 || (flags & 0x4 != 0 && flags & 0x2 == 0) {
        return INVALID_VALUE;
    }
    let h = Box::into_raw(Box::new(host::Event {
        recorded: Mutex::new(None),
    })) as usize;
    insert(&host::EVENTS, h);
    *e = h as *mut c_void;
    SUCCESS
}

unsafe extern "C" fn cuEventDestroy_v2(e: *mut c_void) -> i32 {
    if e.is_null() || !remove(&host::EVENTS, e as usize) {
        return INVALID_HANDLE;
    }
    // SAFETY: the handle was live (just removed from the set), so it is our Box, freed once.
    drop(Box::from_raw(e as *mut host::Event));
    SUCCESS
}

unsafe extern "C" fn cuEventRecord(e: *mut c_void, s: *mut c_void) -> i32 {
    let ev = check!(event_of(e));
    check!(stream_ctx(s));
    let refuse = |c: &mut Capture| {
        let why = "an event record in a capture (event nodes are not emulated)".to_string();
        graph::broken(c, NOT_SUPPORTED, why)
    };
    if let Some(code) = captured(s, "an event record on the legacy stream", refuse) {
        return code;
    }
    *lock(&ev.recorded) = Some((s as usize, host::mark()));
    stats::event_record(e as usize);
    SUCCESS
}

/// Lands the copies queued before the event's record (its work ran at the calls that queued it).
fn complete(ev: &host::Event) {
    if let Some((stream, seq)) = *lock(&ev.recorded) {
        land_before(stream as *mut c_void, seq);
    }
}

unsafe extern "C" fn cuEventQuery(e: *mut c_void) -> i32 {
    let ev = check!(event_of(e));
    check!(current());
    complete(ev);
    SUCCESS
}

unsafe extern "C" fn cuEventSynchronize(e: *mut c_void) -> i32 {
    let ev = check!(event_of(e));
    check!(current());
    complete(ev);
    stats::event_synchronization(e as usize);
    SUCCESS
}

unsafe extern "C" fn cuStreamWaitEvent(s: *mut c_void, e: *mut c_void, flags: u32) -> i32 {
    check!(event_of(e));
    check!(stream_ctx(s));
    if flags > 1 {
        return INVALID_VALUE;
    }
    // The event's work has run (work runs at the call): nothing to wait for, on a capturing stream
    // too (a dependency on finished work adds no node).
    SUCCESS
}

fn alloc_on(ctx: &Context, bytes: usize) -> Result<u64, i32> {
    stats::allocation();
    memory::alloc(ctx.device, bytes).map_err(|_| OUT_OF_MEMORY)
}

unsafe extern "C" fn cuMemAlloc_v2(p: *mut u64, bytes: usize) -> i32 {
    let p = out!(p);
    let ctx = check!(current());
    if let Some(code) = unsafe_during_capture("cuMemAlloc") {
        return code;
    }
    if bytes == 0 {
        return INVALID_VALUE;
    }
    *p = check!(alloc_on(ctx, bytes));
    SUCCESS
}

unsafe extern "C" fn cuMemAllocAsync(p: *mut u64, bytes: usize, s: *mut c_void) -> i32 {
    let p = out!(p);
    let ctx = check!(stream_ctx(s));
    if let Some(code) = captured(s, "cuMemAllocAsync on the legacy stream", no_memory_nodes) {
        return code;
    }
    *p = check!(alloc_on(ctx, bytes));
    SUCCESS
}

fn free_ptr(p: u64) -> i32 {
    match memory::free(p) {
        Ok(()) => SUCCESS,
        Err(()) => {
            eprintln!("cuda-emu: free of {p:#x}, which is not the start of a live allocation");
            INVALID_VALUE
        }
    }
}

unsafe extern "C" fn cuMemFree_v2(p: u64) -> i32 {
    check!(current());
    if let Some(code) = unsafe_during_capture("cuMemFree") {
        return code;
    }
    free_ptr(p)
}

/// A stream-ordered allocation or free on a capturing stream (the driver makes a memory node; the
/// emulator does not emulate those).
fn no_memory_nodes(c: &mut Capture) -> i32 {
    let why = "a stream-ordered allocation or free (memory nodes are not emulated)".to_string();
    graph::broken(c, NOT_SUPPORTED, why)
}

unsafe extern "C" fn cuMemFreeAsync(p: u64, s: *mut c_void) -> i32 {
    check!(stream_ctx(s));
    if let Some(code) = captured(s, "cuMemFreeAsync on the legacy stream", no_memory_nodes) {
        return code;
    }
    free_ptr(p)
}

/// A copy or memset touching [p, p + n) of device memory that is not all addressable is refused with
/// INVALID_VALUE and a memcheck report.
fn device_range(what: &str, p: u64, n: usize) -> Result<(), i32> {
    if n == 0 {
        return Ok(());
    }
    match memory::check_range(p, n) {
        None => Ok(()),
        Some(why) => {
            eprintln!("cuda-emu memcheck: {what} of {n} bytes at {p:#x}: {why}");
            Err(INVALID_VALUE)
        }
    }
}

unsafe fn memset(p: u64, value: u8, n: usize, s: *mut c_void) -> i32 {
    check!(stream_ctx(s));
    check!(device_range("memset", p, n));
    let record = |c: &mut Capture| {
        c.nodes.push(Node::Memset {
            ptr: p,
            value: value as u32,
            elem: 1,
            count: n,
        });
        SUCCESS
    };
    if let Some(code) = captured(s, "a memset on the legacy stream", record) {
        return code;
    }
    // SAFETY: device_range checked that [p, p + n) is addressable device memory in the reserve.
    std::ptr::write_bytes(p as *mut u8, value, n);
    SUCCESS
}

unsafe extern "C" fn cuMemsetD8_v2(p: u64, v: u8, n: usize) -> i32 {
    memset(p, v, n, std::ptr::null_mut())
}

unsafe extern "C" fn cuMemsetD8Async(p: u64, v: u8, n: usize, s: *mut c_void) -> i32 {
    memset(p, v, n, s)
}

unsafe extern "C" fn cuMemsetD32Async(p: u64, v: u32, n: usize, s: *mut c_void) -> i32 {
    check!(stream_ctx(s));
    let Some(bytes) = n.checked_mul(4).filter(|_| p % 4 == 0) else {
        return INVALID_VALUE;
    };
    check!(device_range("memset", p, bytes));
    let record = |c: &mut Capture| {
        c.nodes.push(Node::Memset {
            ptr: p,
            value: v,
            elem: 4,
            count: n,
        });
        SUCCESS
    };
    if let Some(code) = captured(s, "a memset on the legacy stream", record) {
        return code;
    }
    // SAFETY: [p, p + 4n) is addressable device memory (checked above) and p is 4-byte aligned.
    std::slice::from_raw_parts_mut(p as *mut u32, n).fill(v);
    SUCCESS
}

/// A copy on stream `s`; `asynchronous`: an `*Async` call, which may return before it is done.
unsafe fn copy(dir: Dir, dst: u64, src: u64, n: usize, s: *mut c_void, asynchronous: bool) -> i32 {
    check!(stream_ctx(s));
    match dir {
        Dir::HtoD => check!(device_range("host-to-device copy", dst, n)),
        Dir::DtoH => check!(device_range("device-to-host copy", src, n)),
        Dir::DtoD => {
            check!(device_range("device-to-device copy (source)", src, n));
            check!(device_range("device-to-device copy (destination)", dst, n));
        }
    }
    if n > 0 && (dst == 0 || src == 0) {
        return INVALID_VALUE;
    }
    // An asynchronous copy into page-locked memory is queued (host.rs); one into pageable memory, or
    // a synchronous one, returns when it is done, after the stream's earlier work and copies.
    let queued = matches!(dir, Dir::DtoH) && asynchronous && host::is_pinned(dst as usize, n);
    let record = |c: &mut Capture| match dir {
        Dir::DtoD => {
            c.nodes.push(Node::CopyDtoD { dst, src, bytes: n });
            SUCCESS
        }
        _ if queued => graph::broken(
            c,
            NOT_SUPPORTED,
            "a copy to page-locked host memory (host memcpy nodes are not emulated)".to_string(),
        ),
        _ => graph::broken(
            c,
            STREAM_CAPTURE_UNSUPPORTED,
            "a copy to or from pageable host memory".to_string(),
        ),
    };
    if let Some(code) = captured(s, "a copy on the legacy stream", record) {
        return code;
    }
    stats::copy(dir, n, queued);
    if n == 0 {
        return SUCCESS;
    }
    if queued {
        // SAFETY: the device side was checked above to be n addressable bytes of the reserve; dst is n
        // bytes of one page-locked block (is_pinned).
        let bytes = std::slice::from_raw_parts(src as *const u8, n).to_vec();
        stats::dtoh_content(&bytes);
        host::queue_copy(s as usize, dst as *mut u8, bytes);
        return SUCCESS;
    }
    if let Dir::DtoH = dir {
        land_before(s, u64::MAX);
    }
    // SAFETY: the device side was checked above to be n addressable bytes of the reserve; the host
    // side is n bytes the caller owns (the driver's contract; it cannot be checked). `copy` allows
    // overlap, as device-to-device copies within one allocation may.
    std::ptr::copy(src as *const u8, dst as *mut u8, n);
    if let Dir::DtoH = dir {
        // SAFETY: dst now holds the n bytes just copied.
        stats::dtoh_content(std::slice::from_raw_parts(dst as *const u8, n));
    }
    SUCCESS
}

unsafe extern "C" fn cuMemcpyHtoD_v2(d: u64, h: *const c_void, n: usize) -> i32 {
    copy(Dir::HtoD, d, h as u64, n, std::ptr::null_mut(), false)
}
unsafe extern "C" fn cuMemcpyDtoH_v2(h: *mut c_void, d: u64, n: usize) -> i32 {
    copy(Dir::DtoH, h as u64, d, n, std::ptr::null_mut(), false)
}
unsafe extern "C" fn cuMemcpyDtoD_v2(d: u64, s: u64, n: usize) -> i32 {
    copy(Dir::DtoD, d, s, n, std::ptr::null_mut(), false)
}
unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    d: u64,
    h: *const c_void,
    n: usize,
    s: *mut c_void,
) -> i32 {
    copy(Dir::HtoD, d, h as u64, n, s, true)
}
unsafe extern "C" fn cuMemcpyDtoHAsync_v2(h: *mut c_void, d: u64, n: usize, s: *mut c_void) -> i32 {
    copy(Dir::DtoH, h as u64, d, n, s, true)
}
unsafe extern "C" fn cuMemcpyDtoDAsync_v2(d: u64, src: u64, n: usize, s: *mut c_void) -> i32 {
    copy(Dir::DtoD, d, src, n, s, true)
}

/// Accepts only a fatbin that was registered (byte for byte what the build embedded).
unsafe extern "C" fn cuModuleLoadData(m: *mut *mut c_void, image: *const c_void) -> i32 {
    let m = out!(m);
    check!(current());
    if image.is_null() {
        return INVALID_VALUE;
    }
    let Some(len) = registry::fatbin_len(image.cast()) else {
        eprintln!("cuda-emu: cuModuleLoadData: the image is not a fatbin (PTX and cubin images are not emulated)");
        return INVALID_IMAGE;
    };
    // SAFETY: a fatbin image is `len` bytes long by its own header (the driver's contract: `image`
    // points at a complete image).
    let bytes = std::slice::from_raw_parts(image.cast::<u8>(), len);
    let Some(module) = registry::find_module(bytes) else {
        eprintln!(
            "cuda-emu: cuModuleLoadData: this {len}-byte fatbin is not one the build embedded (no host build of its kernels)"
        );
        return INVALID_IMAGE;
    };
    let h = Box::into_raw(Box::new(ModuleHandle {
        module,
        functions: Mutex::new(Vec::new()),
    })) as usize;
    insert(&MODULES, h);
    *m = h as *mut c_void;
    SUCCESS
}

unsafe extern "C" fn cuModuleUnload(m: *mut c_void) -> i32 {
    if m.is_null() || !remove(&MODULES, m as usize) {
        return INVALID_HANDLE;
    }
    // SAFETY: the handle was live, so it is our Box, freed once; its functions go with it.
    let mh = Box::from_raw(m as *mut ModuleHandle);
    for (_, f) in mh
        .functions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
    {
        if remove(&FUNCTIONS, f) {
            // SAFETY: each function handle is a Box created by cuModuleGetFunction, freed once here.
            drop(Box::from_raw(f as *mut FunctionHandle));
        }
    }
    SUCCESS
}

/// Resolves only names that the image holds and that have a host build.
unsafe extern "C" fn cuModuleGetFunction(
    f: *mut *mut c_void,
    m: *mut c_void,
    name: *const c_char,
) -> i32 {
    let f = out!(f);
    check!(current());
    if name.is_null() {
        return INVALID_VALUE;
    }
    if m.is_null() || !live(&MODULES, m as usize) {
        return INVALID_HANDLE;
    }
    // SAFETY: live module handle (our Box).
    let mh = &*(m as *const ModuleHandle);
    // SAFETY: a NUL-terminated kernel name (driver contract), checked non-null above.
    let name = CStr::from_ptr(name).to_string_lossy().into_owned();
    let mut fns = mh.functions.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, h)) = fns.iter().find(|(n, _)| *n == name) {
        *f = *h as *mut c_void;
        return SUCCESS;
    }
    let Some(kernel) = mh.module.kernels.iter().find(|k| k.name == name) else {
        return NOT_FOUND;
    };
    if !registry::image_names(mh.module.fatbin, &name) {
        return NOT_FOUND;
    }
    let h = Box::into_raw(Box::new(FunctionHandle {
        kernel: Arc::clone(kernel),
        max_dynamic_shared: AtomicI32::new(SHARED_DEFAULT - kernel.res.static_shared_bytes as i32),
    })) as usize;
    insert(&FUNCTIONS, h);
    fns.push((name, h));
    *f = h as *mut c_void;
    SUCCESS
}

fn function(f: *mut c_void) -> Result<&'static FunctionHandle, i32> {
    if f.is_null() || !live(&FUNCTIONS, f as usize) {
        return Err(INVALID_HANDLE);
    }
    // SAFETY: a live function handle is our Box; it is freed only by cuModuleUnload. A caller that
    // unloads a module while launching its functions on another thread breaks the driver's contract.
    Ok(unsafe { &*(f as *const FunctionHandle) })
}

unsafe extern "C" fn cuFuncGetAttribute(v: *mut i32, a: i32, f: *mut c_void) -> i32 {
    let v = out!(v);
    let fh = check!(function(f));
    let r = &fh.kernel.res;
    *v = match a {
        0 => {
            if r.max_threads > 0 {
                r.max_threads as i32
            } else {
                1024
            }
        }
        1 => r.static_shared_bytes as i32,
        2 => 0,
        3 => r.local_bytes as i32,
        4 => r.registers as i32,
        5 => 80,
        6 => 90,
        7 => 0,
        8 => fh.max_dynamic_shared.load(Ordering::Relaxed),
        9 => -1,
        _ => return INVALID_VALUE,
    };
    SUCCESS
}

unsafe extern "C" fn cuFuncSetAttribute(f: *mut c_void, a: i32, v: i32) -> i32 {
    let fh = check!(function(f));
    match a {
        8 => {
            if v < 0 || v as i64 + fh.kernel.res.static_shared_bytes as i64 > SHARED_OPTIN as i64 {
                return INVALID_VALUE;
            }
            fh.max_dynamic_shared.store(v, Ordering::Relaxed);
            SUCCESS
        }
        9 => SUCCESS,
        _ => INVALID_VALUE,
    }
}

/// The launch checks a driver makes before it queues a kernel.
fn check_launch(
    fh: &FunctionHandle,
    grid: [u32; 3],
    block: [u32; 3],
    shared: u32,
) -> Result<(), (i32, String)> {
    let k = &fh.kernel;
    let r = &k.res;
    let threads = block[0] as u64 * block[1] as u64 * block[2] as u64;
    let bad = |what: String| Err((INVALID_VALUE, format!("launch of {}: {what}", k.name)));
    if block.contains(&0) || grid.contains(&0) {
        return bad(format!(
            "zero grid or block dimension (grid {grid:?}, block {block:?})"
        ));
    }
    if block[0] > 1024 || block[1] > 1024 || block[2] > 64 || threads > 1024 {
        return bad(format!(
            "block {block:?} exceeds 1024 threads (x, y <= 1024, z <= 64)"
        ));
    }
    if r.max_threads > 0 && threads > r.max_threads as u64 {
        return bad(format!(
            "block of {threads} threads exceeds the kernel's __launch_bounds__ of {}",
            r.max_threads
        ));
    }
    if grid[1] > 65535 || grid[2] > 65535 || grid[0] > i32::MAX as u32 {
        return bad(format!("grid {grid:?} exceeds (2^31 - 1, 65535, 65535)"));
    }
    if grid[0] as u64 * grid[1] as u64 * grid[2] as u64 > MAX_BLOCKS {
        return Err((
            NOT_SUPPORTED,
            format!(
                "launch of {}: grids of more than {MAX_BLOCKS} blocks are not emulated (the block order \
                 is materialised)",
                k.name
            ),
        ));
    }
    let max_dyn = fh.max_dynamic_shared.load(Ordering::Relaxed) as u64;
    let total_shared = r.static_shared_bytes as u64 + shared as u64;
    if shared as u64 > max_dyn || total_shared > SHARED_OPTIN as u64 {
        return bad(format!(
            "{} bytes of static + {shared} bytes of dynamic shared memory exceed the limit ({} bytes \
             dynamic; raise it with CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES up to {SHARED_OPTIN} in all)",
            r.static_shared_bytes, max_dyn
        ));
    }
    // Registers are allocated per warp.
    let warps = threads.div_ceil(32);
    if r.registers as u64 * warps * 32 > 65536 {
        return Err((
            LAUNCH_OUT_OF_RESOURCES,
            format!(
                "launch of {}: {} registers per thread x {threads} threads exceed the 65536 registers of an SM",
                k.name, r.registers
            ),
        ));
    }
    Ok(())
}

/// Pointer parameters must be null or device memory: a host pointer would fault on the GPU.
///
/// # Safety
/// `params` holds one readable pointer per kernel parameter (the driver's contract).
unsafe fn check_pointer_params(k: &KernelInfo, params: *mut *mut c_void) -> Result<(), Fault> {
    for (i, &is_ptr) in k.param_is_pointer.iter().enumerate() {
        if !is_ptr {
            continue;
        }
        let p = *params.add(i);
        if p.is_null() {
            return Err(bad_param(format!(
                "kernel parameter {i} of {} is a null parameter pointer",
                k.name
            )));
        }
        let v = *(p as *const u64);
        if v != 0 && memory::heap_offset(v).is_none() {
            return Err(bad_param(format!(
                "kernel parameter {i} of {} is {v:#x}, which is not device memory",
                k.name
            )));
        }
    }
    Ok(())
}

fn bad_param(what: String) -> Fault {
    Fault {
        kind: FaultKind::BadParam(what),
        addr: 0,
        bytes: 0,
        write: false,
        block: [0; 3],
        thread: [0; 3],
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn cuLaunchKernel(
    f: *mut c_void,
    gx: u32,
    gy: u32,
    gz: u32,
    bx: u32,
    by: u32,
    bz: u32,
    shared: u32,
    s: *mut c_void,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> i32 {
    let ctx = check!(stream_ctx(s));
    let fh = check!(function(f));
    let k = &fh.kernel;
    if !extra.is_null() {
        eprintln!("cuda-emu: cuLaunchKernel: `extra` parameter buffers are not emulated");
        return NOT_SUPPORTED;
    }
    if params.is_null() && !k.param_sizes.is_empty() {
        return INVALID_VALUE;
    }
    let (grid, block) = ([gx, gy, gz], [bx, by, bz]);
    if let Err((code, why)) = check_launch(fh, grid, block, shared) {
        eprintln!("cuda-emu: {why}");
        return code;
    }
    if let Err(fault) = check_pointer_params(k, params) {
        fail(ctx, &k.name, fault);
        return SUCCESS;
    }
    let record = |c: &mut Capture| {
        c.nodes.push(Node::Kernel {
            function: f as usize,
            grid,
            block,
            shared,
            params: graph::copy_params(params, &k.param_sizes),
        });
        SUCCESS
    };
    if let Some(code) = captured(s, "a launch on the legacy stream", record) {
        return code;
    }
    stats::launch(&k.name);
    execute(ctx, k, grid, block, shared, params);
    SUCCESS
}

/// A kernel fault, asynchronous as on a GPU: the launch was queued; the fault is the context's from
/// now on.
fn fail(ctx: &Context, kernel: &str, fault: Fault) {
    let report = fault.report(kernel);
    eprintln!("{report}");
    *LAST_FAULT.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
    let _ = ctx
        .sticky
        .compare_exchange(SUCCESS, fault.code(), Ordering::AcqRel, Ordering::Acquire);
}

/// Runs kernel `k` now (a launch, or a graph's kernel node), its pointer parameters already checked.
///
/// # Safety
/// `params` holds one readable pointer per parameter, to that parameter's bytes.
unsafe fn execute(
    ctx: &Context,
    k: &KernelInfo,
    grid: [u32; 3],
    block: [u32; 3],
    shared: u32,
    params: *mut *mut c_void,
) {
    let cfg = config::get();
    let result = exec::run(
        &Launch {
            kernel: k,
            grid,
            block,
            dynamic_shared: shared,
            params,
            checked: cfg.memcheck,
            schedule: cfg.schedule(),
            salt: LAUNCH_COUNT.fetch_add(1, Ordering::Relaxed),
        },
        cfg.initcheck,
    );
    if let Err(fault) = result {
        fail(ctx, &k.name, fault);
    }
}

unsafe extern "C" fn cuStreamBeginCapture_v2(s: *mut c_void, mode: u32) -> i32 {
    check!(stream_ctx(s));
    if mode > graph::MODE_RELAXED {
        return INVALID_VALUE;
    }
    // The legacy stream cannot be captured.
    let Some(st) = stream_of(s) else {
        return STREAM_CAPTURE_UNSUPPORTED;
    };
    let mut c = lock(&st.capture);
    if c.is_some() {
        return ILLEGAL_STATE;
    }
    *c = Some(Capture {
        mode,
        thread: std::thread::current().id(),
        nodes: Vec::new(),
        invalidated: None,
    });
    graph::activate(s as usize, mode);
    SUCCESS
}

unsafe extern "C" fn cuStreamEndCapture(s: *mut c_void, g: *mut *mut c_void) -> i32 {
    let g = out!(g);
    check!(stream_ctx(s));
    let Some(st) = stream_of(s) else {
        return ILLEGAL_STATE;
    };
    let mut guard = lock(&st.capture);
    let Some(c) = guard.as_ref() else {
        return ILLEGAL_STATE;
    };
    // A capture that is not RELAXED ends on the thread that began it.
    if c.mode != graph::MODE_RELAXED && c.thread != std::thread::current().id() {
        return STREAM_CAPTURE_WRONG_THREAD;
    }
    let Some(c) = guard.take() else {
        return ILLEGAL_STATE;
    };
    drop(guard);
    graph::deactivate(s as usize);
    *g = std::ptr::null_mut();
    if c.invalidated.is_some() {
        return STREAM_CAPTURE_INVALIDATED;
    }
    let h = Box::into_raw(Box::new(GraphHandle { nodes: c.nodes })) as usize;
    graph::insert(&graph::GRAPHS, h);
    *g = h as *mut c_void;
    SUCCESS
}

unsafe extern "C" fn cuStreamIsCapturing(s: *mut c_void, status: *mut u32) -> i32 {
    let status = out!(status);
    check!(stream_ctx(s));
    *status =
        match stream_of(s).map(|st| lock(&st.capture).as_ref().map(|c| c.invalidated.is_some())) {
            Some(Some(false)) => 1,
            Some(Some(true)) => 2,
            _ => 0,
        };
    SUCCESS
}

unsafe extern "C" fn cuGraphInstantiateWithFlags(
    e: *mut *mut c_void,
    g: *mut c_void,
    _flags: u64,
) -> i32 {
    let e = out!(e);
    check!(current());
    if !graph::live(&graph::GRAPHS, g as usize) {
        return INVALID_HANDLE;
    }
    // SAFETY: a live graph handle is a Box<GraphHandle> we created and have not freed.
    let nodes = (*(g as *const GraphHandle)).nodes.clone();
    let h = Box::into_raw(Box::new(ExecHandle { nodes })) as usize;
    graph::insert(&graph::EXECS, h);
    *e = h as *mut c_void;
    SUCCESS
}

unsafe extern "C" fn cuGraphUpload(e: *mut c_void, s: *mut c_void) -> i32 {
    check!(stream_ctx(s));
    if !graph::live(&graph::EXECS, e as usize) {
        return INVALID_HANDLE;
    }
    SUCCESS
}

/// Replays the graph's nodes in capture order, each with the checks of its direct call.
unsafe extern "C" fn cuGraphLaunch(e: *mut c_void, s: *mut c_void) -> i32 {
    let ctx = check!(stream_ctx(s));
    if !graph::live(&graph::EXECS, e as usize) {
        return INVALID_HANDLE;
    }
    let refuse = |c: &mut Capture| {
        let why = "a graph launch into a capture (child graphs are not emulated)".to_string();
        graph::broken(c, NOT_SUPPORTED, why)
    };
    if let Some(code) = captured(s, "a graph launch on the legacy stream", refuse) {
        return code;
    }
    stats::graph_launch();
    // SAFETY: a live exec handle is a Box<ExecHandle> we created and have not freed; graph objects
    // are not thread-safe in the driver either (the caller serialises their use).
    let nodes = &(*(e as *const ExecHandle)).nodes;
    for node in nodes {
        match node {
            Node::Kernel {
                function: f,
                grid,
                block,
                shared,
                params,
            } => {
                let fh = check!(function(*f as *mut c_void));
                let mut ptrs: Vec<*mut c_void> =
                    params.iter().map(|p| p.as_ptr() as *mut c_void).collect();
                if let Err(fault) = check_pointer_params(&fh.kernel, ptrs.as_mut_ptr()) {
                    fail(ctx, &fh.kernel.name, fault);
                    return SUCCESS;
                }
                execute(ctx, &fh.kernel, *grid, *block, *shared, ptrs.as_mut_ptr());
            }
            Node::Memset {
                ptr,
                value,
                elem,
                count,
            } => {
                let bytes = count * elem;
                check!(device_range("memset (graph node)", *ptr, bytes));
                // SAFETY: [ptr, ptr + bytes) is addressable device memory (checked above); a 4-byte
                // memset was checked to be aligned when it was recorded.
                if *elem == 4 {
                    std::slice::from_raw_parts_mut(*ptr as *mut u32, *count).fill(*value);
                } else {
                    std::ptr::write_bytes(*ptr as *mut u8, *value as u8, bytes);
                }
            }
            Node::CopyDtoD { dst, src, bytes } => {
                check!(device_range(
                    "device-to-device copy (graph node, source)",
                    *src,
                    *bytes
                ));
                check!(device_range(
                    "device-to-device copy (graph node, destination)",
                    *dst,
                    *bytes
                ));
                stats::graph_copy(*bytes);
                // SAFETY: both ranges are addressable device memory (checked above); overlap allowed.
                std::ptr::copy(*src as *const u8, *dst as *mut u8, *bytes);
            }
        }
        if ctx.sticky.load(Ordering::Acquire) != SUCCESS {
            // A node faulted: the rest of the graph does not run, as on a GPU after a fault.
            break;
        }
    }
    SUCCESS
}

unsafe extern "C" fn cuGraphDestroy(g: *mut c_void) -> i32 {
    if g.is_null() || !graph::remove(&graph::GRAPHS, g as usize) {
        return INVALID_HANDLE;
    }
    // SAFETY: the handle was live (just removed from the set), so it is our Box, freed once.
    drop(Box::from_raw(g as *mut GraphHandle));
    SUCCESS
}

unsafe extern "C" fn cuGraphExecDestroy(e: *mut c_void) -> i32 {
    if e.is_null() || !graph::remove(&graph::EXECS, e as usize) {
        return INVALID_HANDLE;
    }
    // SAFETY: as in cuGraphDestroy.
    drop(Box::from_raw(e as *mut ExecHandle));
    SUCCESS
}

/// The Rust implementation of driver function `name`, for the shim (null: not supported).
pub extern "C" fn resolve(name: *const c_char) -> *const c_void {
    if name.is_null() {
        return std::ptr::null();
    }
    // SAFETY: the shim passes the literal name of one of its functions.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    macro_rules! table {
        ($($f:ident),* $(,)?) => {
            match name {
                $(n if n == stringify!($f).as_bytes() => $f as *const c_void,)*
                _ => std::ptr::null(),
            }
        };
    }
    table!(
        cuInit,
        cuDriverGetVersion,
        cuGetErrorString,
        cuGetErrorName,
        cuDeviceGetCount,
        cuDeviceGet,
        cuDeviceGetName,
        cuDeviceGetAttribute,
        cuDeviceTotalMem_v2,
        cuDeviceGetUuid,
        cuDeviceGetUuid_v2,
        cuDevicePrimaryCtxRetain,
        cuDevicePrimaryCtxRelease_v2,
        cuCtxGetCurrent,
        cuCtxSetCurrent,
        cuCtxGetDevice,
        cuCtxSynchronize,
        cuMemGetInfo_v2,
        cuStreamCreate,
        cuStreamSynchronize,
        cuStreamQuery,
        cuStreamDestroy_v2,
        cuMemHostAlloc,
        cuMemAllocHost_v2,
        cuMemFreeHost,
        cuEventCreate,
        cuEventDestroy_v2,
        cuEventRecord,
        cuEventQuery,
        cuEventSynchronize,
        cuStreamWaitEvent,
        cuMemAlloc_v2,
        cuMemFree_v2,
        cuMemAllocAsync,
        cuMemFreeAsync,
        cuMemsetD8_v2,
        cuMemsetD8Async,
        cuMemsetD32Async,
        cuMemcpyHtoD_v2,
        cuMemcpyDtoH_v2,
        cuMemcpyDtoD_v2,
        cuMemcpyHtoDAsync_v2,
        cuMemcpyDtoHAsync_v2,
        cuMemcpyDtoDAsync_v2,
        cuModuleLoadData,
        cuModuleUnload,
        cuModuleGetFunction,
        cuFuncGetAttribute,
        cuFuncSetAttribute,
        cuLaunchKernel,
        cuStreamBeginCapture_v2,
        cuStreamEndCapture,
        cuStreamIsCapturing,
        cuGraphInstantiateWithFlags,
        cuGraphUpload,
        cuGraphLaunch,
        cuGraphDestroy,
        cuGraphExecDestroy,
    )
}
