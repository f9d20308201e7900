//! Emulated device memory: one reserved virtual range (never reused by the host allocator) holding the
//! device heap of every emulated GPU and the per-OS-thread shared-memory arenas, with a shadow byte per
//! 8-byte granule in ASan's encoding (0: addressable; k in 1..=7: only the first k bytes; >= 0xf0: not
//! addressable, for the reason the value names). The checked kernel build consults the shadow on every
//! access (csrc/runtime.cpp), the driver on every copy and memset.
//!
//! Allocations are 256-byte aligned (as cudaMalloc's). Freed ranges sit in a quarantine before they can
//! be reused, so a use after free is caught rather than landing in a newer allocation.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::config;

pub const ALIGN: usize = 256;
const GRANULE: usize = 8;

/// Shadow values (csrc/runtime.cpp treats every value >= 8 as not addressable; 0xfd as freed).
pub mod shadow {
    pub const UNALLOCATED: u8 = 0xfa;
    /// Past the bytes a tensor asked for, inside the caching allocator's block.
    pub const POOL_SLACK: u8 = 0xfb;
    /// Between and after the declarations of a block's shared memory.
    pub const SHARED_REDZONE: u8 = 0xfc;
    pub const FREED: u8 = 0xfd;
}

/// Shared-memory arena per OS thread that runs blocks: the 227 KiB a CTA may opt into, plus redzones.
pub const SHARED_ARENA_BYTES: usize = 512 << 10;
const SHARED_SLOTS: usize = 256;
/// Bytes of a redzone after each shared declaration.
pub const SHARED_REDZONE_BYTES: usize = 64;

pub struct Reserve {
    pub base: usize,
    pub size: usize,
    heap_size: usize,
    shadow: &'static [AtomicU8],
}

struct Allocation {
    device: u32,
    bytes: usize,
    span: usize,
}

struct Heap {
    bump: usize,
    /// Reusable ranges (offset -> length), coalesced.
    free: BTreeMap<usize, usize>,
    quarantine: VecDeque<(usize, usize)>,
    quarantined: usize,
    live: HashMap<usize, Allocation>,
    live_bytes: Vec<usize>,
}

static RESERVE: OnceLock<Reserve> = OnceLock::new();
static HEAP: Mutex<Option<Heap>> = Mutex::new(None);
static NEXT_SLOT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" {
    fn tri_emu_set_memory_map(
        base: usize,
        size: usize,
        shadow: *const u8,
        heap_size: usize,
        heap_marked: *const usize,
    );
    fn tri_emu_set_racecheck(on: i32, arena_bytes: usize);
}

/// Turns shared-memory hazard tracking on or off (csrc/runtime.cpp; only the checked build reports).
pub fn set_racecheck(on: bool) {
    // SAFETY: stores two integers the checked build's access hook reads.
    unsafe { tri_emu_set_racecheck(on as i32, SHARED_ARENA_BYTES) };
}

/// The OS page size (madvise works on whole pages).
fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the running system.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn round_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

pub fn init() -> Result<(), String> {
    let cfg = config::get();
    let per_device = round_up(cfg.memory_bytes as usize, 2 << 20);
    // Twice the capacity per device: room for the quarantine and fragmentation.
    let heap_size = 2 * per_device * cfg.devices as usize;
    let size = heap_size + SHARED_SLOTS * SHARED_ARENA_BYTES;
    let shadow_len = size / GRANULE;
    let map = |len: usize| -> Result<usize, String> {
        // SAFETY: an anonymous private mapping with no address hint; NORESERVE so only touched pages
        // cost memory. The result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            Err(format!(
                "cannot reserve {len} bytes of address space for the emulated device memory \
                 (TRILEMMA_EMU_MEMORY / TRILEMMA_EMU_DEVICES too large?)"
            ))
        } else {
            Ok(p as usize)
        }
    };
    let base = map(size)?;
    let shadow_ptr = map(shadow_len)?;
    // SAFETY: the shadow mapping is shadow_len bytes, zero-filled, lives for the whole process, and
    // AtomicU8 has the layout of u8.
    let shadow: &'static [AtomicU8] =
        unsafe { std::slice::from_raw_parts(shadow_ptr as *const AtomicU8, shadow_len) };
    let r = Reserve {
        base,
        size,
        heap_size,
        shadow,
    };
    // The shadow reads 0 (addressable) where it was never written. Writing it for the whole heap would
    // touch heap_size / 8 bytes, so it is written in 64 MiB windows ahead of the bump pointer, and the
    // checked build treats heap memory at or beyond `MARKED_UP_TO` as unallocated.
    // SAFETY: base..base+size and the shadow were mapped above and stay mapped.
    unsafe {
        tri_emu_set_memory_map(
            base,
            size,
            shadow_ptr as *const u8,
            heap_size,
            MARKED_UP_TO.as_ptr(),
        )
    };
    let _ = RESERVE.set(r);
    set_racecheck(cfg.racecheck);
    let mut heap = HEAP.lock().unwrap_or_else(|p| p.into_inner());
    *heap = Some(Heap {
        bump: 0,
        free: BTreeMap::new(),
        quarantine: VecDeque::new(),
        quarantined: 0,
        live: HashMap::new(),
        live_bytes: vec![0; cfg.devices as usize],
    });
    drop(heap);
    extend_marked(0);
    Ok(())
}

fn reserve() -> &'static Reserve {
    RESERVE
        .get()
        .expect("emulator memory is initialised at install")
}

/// Marks [off, off + len) of the reserve with shadow value `v`, respecting a partial last granule when
/// `v` is 0 (addressable): the granule holding the end gets the count of its addressable bytes.
fn set_shadow(off: usize, len: usize, v: u8) {
    let r = reserve();
    debug_assert_eq!(off % GRANULE, 0);
    let full = len / GRANULE;
    for g in &r.shadow[off / GRANULE..off / GRANULE + full] {
        g.store(v, Ordering::Relaxed);
    }
    let rem = len % GRANULE;
    if rem != 0 {
        let s = if v == 0 { rem as u8 } else { v };
        r.shadow[off / GRANULE + full].store(s, Ordering::Relaxed);
    }
}

/// Marks the heap unallocated from what is marked so far up to 64 MiB past `bump` (the first window at
/// init, then as the bump pointer advances).
fn extend_marked(bump: usize) {
    let marked = MARKED_UP_TO.load(Ordering::Relaxed);
    if marked > bump {
        return;
    }
    let end = (bump + (64 << 20)).min(reserve().heap_size);
    set_shadow(marked, end - marked, shadow::UNALLOCATED);
    MARKED_UP_TO.store(end, Ordering::Relaxed);
}

static MARKED_UP_TO: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Debug)]
pub enum AllocError {
    OutOfMemory,
}

/// Allocates `bytes` of device memory on `device`: addressable exactly, filled with the NaN pattern
/// (0xff bytes: a NaN as f32, f64, f16 and bf16) when initcheck is on.
pub fn alloc(device: u32, bytes: usize) -> Result<u64, AllocError> {
    let r = reserve();
    ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cap = capacity();
    if bytes > cap {
        return Err(AllocError::OutOfMemory);
    }
    let span = round_up(bytes.max(1), ALIGN);
    let mut guard = HEAP.lock().unwrap_or_else(|p| p.into_inner());
    let heap = guard.as_mut().expect("heap");
    if heap.live_bytes[device as usize] + span > cap {
        return Err(AllocError::OutOfMemory);
    }
    let off = match take_free(heap, span) {
        Some(off) => off,
        None => {
            if heap.bump + span > r.heap_size {
                // Release the whole quarantine and retry before giving up.
                while let Some((o, l)) = heap.quarantine.pop_front() {
                    release_range(heap, o, l);
                }
                heap.quarantined = 0;
                match take_free(heap, span) {
                    Some(off) => off,
                    None => return Err(AllocError::OutOfMemory),
                }
            } else {
                let off = heap.bump;
                heap.bump += span;
                extend_marked(heap.bump);
                off
            }
        }
    };
    heap.live_bytes[device as usize] += span;
    heap.live.insert(
        off,
        Allocation {
            device,
            bytes,
            span,
        },
    );
    drop(guard);
    set_shadow(off, bytes, 0);
    set_shadow(
        round_up(off + bytes, GRANULE),
        span - round_up(bytes, GRANULE),
        shadow::UNALLOCATED,
    );
    if config::get().initcheck {
        // SAFETY: [base + off, base + off + bytes) lies inside the reserve and belongs to this new
        // allocation only.
        unsafe { std::ptr::write_bytes((r.base + off) as *mut u8, 0xff, bytes) };
    }
    Ok((r.base + off) as u64)
}

fn take_free(heap: &mut Heap, span: usize) -> Option<usize> {
    let (&off, &len) = heap.free.iter().find(|(_, &l)| l >= span)?;
    heap.free.remove(&off);
    if len > span {
        heap.free.insert(off + span, len - span);
    }
    Some(off)
}

/// Makes a quarantined range reusable: its pages go back to the OS, its shadow says unallocated.
fn release_range(heap: &mut Heap, off: usize, len: usize) {
    let r = reserve();
    // Only the pages wholly inside the range: madvise rounds a length up to whole pages, and the
    // rest of a partly covered page belongs to a neighbouring allocation, which MADV_DONTNEED would
    // zero under it.
    let page = page_size();
    let start = round_up(r.base + off, page);
    let end = (r.base + off + len) / page * page;
    if end > start {
        // SAFETY: [start, end) is page-aligned and inside the range, which is inside the reserve and
        // owned by no allocation.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
    set_shadow(off, len, shadow::UNALLOCATED);
    let (mut off, mut len) = (off, len);
    if let Some((&prev, &plen)) = heap.free.range(..off).next_back() {
        if prev + plen == off {
            heap.free.remove(&prev);
            off = prev;
            len += plen;
        }
    }
    if let Some(&nlen) = heap.free.get(&(off + len)) {
        heap.free.remove(&(off + len));
        len += nlen;
    }
    heap.free.insert(off, len);
}

/// Frees the allocation that starts at `ptr`. Err if no live allocation starts there.
pub fn free(ptr: u64) -> Result<(), ()> {
    let r = reserve();
    let off = (ptr as usize).wrapping_sub(r.base);
    let mut guard = HEAP.lock().unwrap_or_else(|p| p.into_inner());
    let heap = guard.as_mut().expect("heap");
    let a = heap.live.remove(&off).ok_or(())?;
    heap.live_bytes[a.device as usize] -= a.span;
    set_shadow(off, a.span, shadow::FREED);
    heap.quarantine.push_back((off, a.span));
    heap.quarantined += a.span;
    let limit = (config::get().memory_bytes as usize / 4).min(256 << 20);
    while heap.quarantined > limit {
        let Some((o, l)) = heap.quarantine.pop_front() else {
            break;
        };
        heap.quarantined -= l;
        release_range(heap, o, l);
    }
    Ok(())
}

/// Frees every allocation of `device` (its context was destroyed).
pub fn free_device(device: u32) {
    let r = reserve();
    let ptrs: Vec<u64> = {
        let guard = HEAP.lock().unwrap_or_else(|p| p.into_inner());
        let heap = guard.as_ref().expect("heap");
        heap.live
            .iter()
            .filter(|(_, a)| a.device == device)
            .map(|(&off, _)| (r.base + off) as u64)
            .collect()
    };
    for p in ptrs {
        let _ = free(p);
    }
}

/// Live bytes (rounded to the allocation alignment) on `device`.
/// Allocations made so far (for `TRILEMMA_EMU_TAKEN_AFTER`).
static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The bytes each GPU has now: `TRILEMMA_EMU_MEMORY`, less what `TRILEMMA_EMU_TAKEN_AFTER` says
/// another process took once enough allocations were made.
pub fn capacity() -> usize {
    let cfg = config::get();
    let taken = match cfg.taken_after {
        Some((after, bytes)) if ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed) > after => {
            bytes
        }
        _ => 0,
    };
    cfg.memory_bytes.saturating_sub(taken) as usize
}

pub fn used(device: u32) -> usize {
    let guard = HEAP.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map_or(0, |h| h.live_bytes[device as usize])
}

/// Why [ptr, ptr + len) is not all addressable device memory, or None when it is.
pub fn check_range(ptr: u64, len: usize) -> Option<String> {
    let r = reserve();
    let off = (ptr as usize).wrapping_sub(r.base);
    if off >= r.heap_size || len > r.heap_size - off {
        return Some(format!("{ptr:#x} + {len} bytes is not device memory"));
    }
    let end = off + len;
    if end > MARKED_UP_TO.load(Ordering::Relaxed) {
        return Some(format!(
            "{ptr:#x} + {len} bytes reaches memory never allocated"
        ));
    }
    let mut p = off;
    while p < end {
        let s = r.shadow[p / GRANULE].load(Ordering::Relaxed);
        let last = if (p | 7) + 1 < end { 7 } else { (end - 1) & 7 };
        if s != 0 && (s >= 8 || last >= s as usize) {
            return Some(format!(
                "byte {:#x} is {} ({})",
                r.base + p,
                shadow_meaning(s),
                describe(r.base + p)
            ));
        }
        p = (p | 7) + 1;
    }
    None
}

fn shadow_meaning(s: u8) -> &'static str {
    match s {
        shadow::FREED => "freed",
        shadow::POOL_SLACK => "past the end of a pooled tensor",
        shadow::SHARED_REDZONE => "outside every shared-memory declaration",
        _ => "not allocated",
    }
}

/// Where `addr` is relative to the nearest allocation: "12 bytes past the end of the 4096-byte
/// allocation at 0x...", for fault reports.
pub fn describe(addr: usize) -> String {
    let r = reserve();
    if addr < r.base || addr >= r.base + r.size {
        return "outside the emulated device memory".into();
    }
    let off = addr - r.base;
    if off >= r.heap_size {
        return "in a shared-memory arena".into();
    }
    if r.shadow[off / GRANULE].load(Ordering::Relaxed) == shadow::POOL_SLACK {
        return "past the end of the tensor the caching allocator handed this block to".into();
    }
    let guard = HEAP.lock().unwrap_or_else(|p| p.into_inner());
    let Some(heap) = guard.as_ref() else {
        return String::new();
    };
    let nearest = heap
        .live
        .iter()
        .filter(|(&o, _)| o <= off)
        .max_by_key(|(&o, _)| o);
    match nearest {
        Some((&o, a)) if off < o + a.bytes => format!(
            "byte {} of the {}-byte allocation at {:#x}",
            off - o,
            a.bytes,
            r.base + o
        ),
        Some((&o, a)) => format!(
            "{} bytes past the end of the {}-byte allocation at {:#x}",
            off - o - a.bytes,
            a.bytes,
            r.base + o
        ),
        None => "before every live allocation".into(),
    }
}

pub fn base_ptr(off: usize) -> *mut u8 {
    (reserve().base + off) as *mut u8
}

/// Offset of a device pointer in the reserve, if it is device-heap memory.
pub fn heap_offset(ptr: u64) -> Option<usize> {
    let r = reserve();
    let off = (ptr as usize).wrapping_sub(r.base);
    (off < r.heap_size).then_some(off)
}

pub fn pool_handout(ptr: u64, used: usize, capacity: usize) {
    let Some(off) = heap_offset(ptr) else { return };
    if off % GRANULE != 0 || used > capacity {
        return;
    }
    set_shadow(off, used, 0);
    let tail = round_up(off + used, GRANULE);
    if off + capacity > tail {
        set_shadow(tail, off + capacity - tail, shadow::POOL_SLACK);
    }
    if config::get().initcheck {
        // SAFETY: the block is a live allocation of at least `capacity` bytes handed to one owner.
        unsafe { std::ptr::write_bytes(base_ptr(off), 0xff, used) };
    }
}

pub fn pool_return(ptr: u64, capacity: usize) {
    let Some(off) = heap_offset(ptr) else { return };
    if off % GRANULE == 0 {
        set_shadow(off, capacity, shadow::FREED);
    }
}

/// An arena slot held by an OS thread; handed back when the thread ends.
struct SlotGuard(std::cell::Cell<Option<usize>>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(s) = self.0.get() {
            FREE_SLOTS.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        }
    }
}

static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// This OS thread's shared-memory arena: its address, taken from the reserve's slots on first use and
/// handed back when the thread exits. None when all slots are held by live threads.
pub fn shared_arena() -> Option<*mut u8> {
    thread_local! {
        static SLOT: SlotGuard = const { SlotGuard(std::cell::Cell::new(None)) };
    }
    let r = reserve();
    let slot = match SLOT.with(|g| g.0.get()) {
        Some(s) => s,
        None => {
            let reused = FREE_SLOTS.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let s = match reused {
                Some(s) => s,
                None => {
                    let s = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
                    if s >= SHARED_SLOTS {
                        return None;
                    }
                    s
                }
            };
            let off = r.heap_size + s * SHARED_ARENA_BYTES;
            set_shadow(off, SHARED_ARENA_BYTES, shadow::SHARED_REDZONE);
            if config::get().initcheck {
                // The arena holds the NaN pattern at every block start: here once, then the bytes a
                // block used are refilled before the next (exec.rs `reset_arena`).
                // SAFETY: the slot's arena lies inside the reserve and belongs to this OS thread.
                unsafe { std::ptr::write_bytes(base_ptr(off), 0xff, SHARED_ARENA_BYTES) };
            }
            SLOT.with(|g| g.0.set(Some(s)));
            s
        }
    };
    Some((r.base + r.heap_size + slot * SHARED_ARENA_BYTES) as *mut u8)
}

/// Marks [ptr, ptr + len) of a shared arena addressable (`valid`) or a redzone.
pub fn mark_shared(ptr: *mut u8, len: usize, valid: bool) {
    let off = ptr as usize - reserve().base;
    set_shadow(off, len, if valid { 0 } else { shadow::SHARED_REDZONE });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Making a quarantined range reusable must not touch its neighbours: an allocation's span (256-byte
    /// aligned) shares its last page with the next allocation, and `madvise(MADV_DONTNEED)` over a
    /// partly covered page would zero the neighbour's bytes under it.
    #[test]
    fn releasing_a_range_keeps_the_neighbours_bytes() {
        init().unwrap();
        let a = alloc(0, 1000).unwrap();
        let b = alloc(0, 3000).unwrap();
        let (oa, ob) = (heap_offset(a).unwrap(), heap_offset(b).unwrap());
        assert_eq!(
            ob,
            oa + round_up(1000, ALIGN),
            "the two allocations are neighbours"
        );
        // SAFETY: b is a live allocation of 3000 bytes inside the reserve.
        let neighbour = unsafe { std::slice::from_raw_parts_mut(base_ptr(ob), 3000) };
        neighbour.fill(0x5a);
        free(a).unwrap();
        {
            let mut guard = HEAP.lock().unwrap_or_else(|p| p.into_inner());
            let heap = guard.as_mut().expect("heap");
            let (off, len) = heap.quarantine.pop_back().expect("a's span is quarantined");
            assert_eq!(off, oa);
            heap.quarantined -= len;
            release_range(heap, off, len);
        }
        assert!(
            neighbour.iter().all(|&v| v == 0x5a),
            "the neighbour was zeroed"
        );
        free(b).unwrap();
    }
}
