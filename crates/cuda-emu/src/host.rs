//! Page-locked host memory (`cuMemHostAlloc`) and what makes it worth having: a device-to-host copy
//! into it is asynchronous. The emulator runs a stream's work at the call, so without more a copy
//! would land at once and a host that reads its buffer before waiting would never be caught. Here a
//! copy into page-locked memory reads the device bytes at the call (stream order: the work queued
//! before it has run) but *lands* only when the host waits for it: a synchronize of its stream or of
//! the context, an event recorded after it synchronized or queried, a blocking copy on its stream, or
//! the buffer's free. Until then the destination reads as 0xff bytes (a NaN in every float type), so
//! reading a staging buffer early gives NaN images, not a silently right answer.
//!
//! Events record a point in their stream's order (a sequence number); waiting on one lands the copies
//! of its stream queued before that point.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::codes::*;

/// Page-locked blocks by start address: (length, layout size).
static PINNED: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

/// The alignment of a page-locked block (the driver hands out page-aligned memory).
const PAGE: usize = 4096;

/// Copies queued into page-locked memory that have not landed, in queue order.
struct InFlight {
    stream: usize,
    seq: u64,
    dst: usize,
    bytes: Vec<u8>,
}

static IN_FLIGHT: Mutex<Vec<InFlight>> = Mutex::new(Vec::new());

/// The order of queued operations across all streams (only copies and event records take a number).
static SEQ: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn layout(bytes: usize) -> Option<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(bytes.max(1).next_multiple_of(PAGE), PAGE).ok()
}

/// A new page-locked block of `bytes`, or OUT_OF_MEMORY.
pub fn alloc(bytes: usize) -> Result<*mut u8, i32> {
    let layout = layout(bytes).ok_or(OUT_OF_MEMORY)?;
    // SAFETY: the layout has a non-zero size (at least one page).
    let p = unsafe { std::alloc::alloc(layout) };
    if p.is_null() {
        return Err(OUT_OF_MEMORY);
    }
    lock(&PINNED).insert(p as usize, bytes);
    Ok(p)
}

/// Frees a block [`alloc`] returned (its in-flight copies land first); INVALID_VALUE for any other
/// pointer.
pub fn free(p: *mut u8) -> i32 {
    let Some(bytes) = lock(&PINNED).get(&(p as usize)).copied() else {
        return INVALID_VALUE;
    };
    land_where(|c| c.dst >= p as usize && c.dst < p as usize + bytes.max(1));
    lock(&PINNED).remove(&(p as usize));
    let Some(layout) = layout(bytes) else {
        return INVALID_VALUE;
    };
    // SAFETY: p came from std::alloc::alloc with this layout (alloc above) and is freed once: it was
    // still in PINNED, and is removed from it here.
    unsafe { std::alloc::dealloc(p, layout) };
    SUCCESS
}

/// Whether [p, p + n) lies inside one page-locked block.
pub fn is_pinned(p: usize, n: usize) -> bool {
    let pinned = lock(&PINNED);
    pinned
        .range(..=p)
        .next_back()
        .is_some_and(|(&start, &len)| p + n <= start + len)
}

/// Queues the copy of `bytes` (already read from the device) to `dst` on `stream`; `dst` reads as
/// 0xff until the copy lands.
///
/// # Safety
/// `dst` is `bytes.len()` writable bytes of a page-locked block ([`is_pinned`]).
pub unsafe fn queue_copy(stream: usize, dst: *mut u8, bytes: Vec<u8>) {
    std::ptr::write_bytes(dst, 0xff, bytes.len());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    lock(&IN_FLIGHT).push(InFlight {
        stream,
        seq,
        dst: dst as usize,
        bytes,
    });
}

/// The point in the order that an event recorded now on a stream marks.
pub fn mark() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

fn land_where(pred: impl Fn(&InFlight) -> bool) {
    let landing: Vec<InFlight> = {
        let mut q = lock(&IN_FLIGHT);
        let (now, later): (Vec<_>, Vec<_>) = q.drain(..).partition(|c| pred(c));
        *q = later;
        now
    };
    for c in landing {
        // SAFETY: queue_copy's contract: dst is c.bytes.len() writable bytes of a page-locked block,
        // and the block is still allocated (free lands its copies before releasing it).
        unsafe { std::ptr::copy_nonoverlapping(c.bytes.as_ptr(), c.dst as *mut u8, c.bytes.len()) };
    }
}

/// The copies of `stream` queued before `upto` land.
pub fn land(stream: usize, upto: u64) {
    land_where(|c| c.stream == stream && c.seq < upto);
}

/// Every copy of `stream` lands.
pub fn land_stream(stream: usize) {
    land_where(|c| c.stream == stream);
}

/// Every copy lands (a context synchronize; the emulator's contexts share one queue).
pub fn land_all() {
    land_where(|_| true);
}

/// An event: the stream and point of its last record (None: never recorded, which counts as done).
pub struct Event {
    pub recorded: Mutex<Option<(usize, u64)>>,
}

/// Live event handles.
pub static EVENTS: Mutex<Option<std::collections::HashSet<usize>>> = Mutex::new(None);
