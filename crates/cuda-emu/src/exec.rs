//! Running one launch: blocks in parallel over the cores (rayon), each block on one OS thread, its
//! threads either as a plain loop (kernels whose PTX has no barrier and no warp collective) or as fibers
//! (corosensei), so `__syncthreads` is a real block barrier and every warp collective an exact exchange
//! among the lanes named by its mask.
//!
//! synccheck is built into the fiber scheduler: a barrier that the live threads of a block reach at
//! different call sites, a warp collective whose mask names a lane that exited, does not exist, is not
//! the caller, or waits elsewhere (a deadlock), fails the launch with CUDA_ERROR_LAUNCH_FAILED and a
//! report naming the kernel, the block and the threads.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::codes;
use crate::config::Schedule;
use crate::memory;
use crate::registry::{KernelInfo, LaunchFn};

/// `TriEmuThread` of include/tri_emu.h.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ThreadCtx {
    thread_idx: [u32; 3],
    block_idx: [u32; 3],
    block_dim: [u32; 3],
    grid_dim: [u32; 3],
    linear: u32,
    lane: u32,
    warp: u32,
    on_fiber: u32,
    block: *mut c_void,
    dynamic_shared: *mut u8,
}

extern "C" {
    fn tri_emu_race_epoch();
    fn tri_emu_set_current(t: *mut ThreadCtx);
    fn tri_emu_run_plain(
        launch: LaunchFn,
        params: *mut *mut c_void,
        t: *mut ThreadCtx,
        order: *const u32,
        n: u32,
    ) -> u32;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    OutOfBounds,
    UseAfterFree,
    Misaligned,
    Null,
    Trap,
    /// A synccheck error (barrier divergence, bad warp mask, deadlock), described.
    Sync(String),
    /// A kernel parameter declared as a pointer that does not point at device memory.
    BadParam(String),
    /// Shared memory beyond the arena (more than a CTA can have).
    SharedExhausted,
    /// A shared-memory hazard (racecheck): two threads of different warps touched one word in the same
    /// barrier interval, at least one writing. `other` is the earlier thread's index in the block.
    Race {
        hazard: &'static str,
        other: u32,
    },
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    pub addr: u64,
    pub bytes: u64,
    pub write: bool,
    pub block: [u32; 3],
    pub thread: [u32; 3],
}

impl Fault {
    /// The result code the driver reports for it (sticky, from the next call on).
    pub fn code(&self) -> i32 {
        match self.kind {
            FaultKind::OutOfBounds
            | FaultKind::UseAfterFree
            | FaultKind::Null
            | FaultKind::BadParam(_) => codes::ILLEGAL_ADDRESS,
            FaultKind::Misaligned => codes::MISALIGNED_ADDRESS,
            FaultKind::Trap => codes::ILLEGAL_INSTRUCTION,
            FaultKind::Sync(_) | FaultKind::SharedExhausted | FaultKind::Race { .. } => {
                codes::LAUNCH_FAILED
            }
        }
    }

    /// A report in the manner of compute-sanitizer's.
    pub fn report(&self, kernel: &str) -> String {
        let at = format!(
            "in kernel {kernel}, block ({},{},{}), thread ({},{},{})",
            self.block[0],
            self.block[1],
            self.block[2],
            self.thread[0],
            self.thread[1],
            self.thread[2]
        );
        let rw = if self.write { "write" } else { "read" };
        match &self.kind {
            FaultKind::OutOfBounds | FaultKind::UseAfterFree | FaultKind::Null => {
                let what = match self.kind {
                    FaultKind::UseAfterFree => "use after free",
                    FaultKind::Null => "null-page access",
                    _ => "out-of-bounds access",
                };
                format!(
                    "cuda-emu memcheck: invalid {rw} of {} bytes at {:#x} ({what}: {}) {at}",
                    self.bytes,
                    self.addr,
                    memory::describe(self.addr as usize)
                )
            }
            FaultKind::Misaligned => format!(
                "cuda-emu memcheck: misaligned {rw} of {} bytes at {:#x} (needs {}-byte alignment) {at}",
                self.bytes, self.addr, self.bytes
            ),
            FaultKind::Trap => format!("cuda-emu: __trap() {at}"),
            FaultKind::Sync(what) => format!("cuda-emu synccheck: {what} {at}"),
            FaultKind::BadParam(what) => format!("cuda-emu memcheck: {what} (launch of {kernel})"),
            FaultKind::Race { hazard, other } => format!(
                "cuda-emu racecheck: {hazard} hazard on shared memory at {:#x} ({} of 4 bytes by this \
                 thread after an access by thread {other} of another warp in the same barrier interval) {at}",
                self.addr,
                if self.write { "a write" } else { "a read" }
            ),
            FaultKind::SharedExhausted => format!(
                "cuda-emu: shared memory beyond the {} bytes of a block's arena {at}",
                memory::SHARED_ARENA_BYTES
            ),
        }
    }
}

fn fault_kind(kind: i32, bytes: u64) -> FaultKind {
    match kind {
        7 => FaultKind::Race {
            hazard: "read-after-write",
            other: bytes as u32,
        },
        8 => FaultKind::Race {
            hazard: "write-after-read",
            other: bytes as u32,
        },
        9 => FaultKind::Race {
            hazard: "write-after-write",
            other: bytes as u32,
        },
        1 => FaultKind::OutOfBounds,
        2 => FaultKind::UseAfterFree,
        3 => FaultKind::Misaligned,
        4 => FaultKind::Null,
        _ => FaultKind::Trap,
    }
}

// ---- per-block state ------------------------------------------------------------------------------------

const FIBER_STACK_BYTES: usize = 128 << 10;
const MAX_POOLED_STACKS: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    NotStarted,
    Ready,
    Barrier,
    Warp,
    Done,
    Faulted,
}

#[derive(Clone, Copy)]
struct WarpReq {
    op: i32,
    mask: u32,
    value: u64,
    arg: i32,
    width: i32,
    file: *const c_char,
    line: i32,
}

struct Slot {
    ctx: ThreadCtx,
    state: State,
    co: Option<Coroutine<(), (), (), DefaultStack>>,
    yielder: *const Yielder<(), ()>,
    site: (*const c_char, i32),
    req: WarpReq,
    result: u64,
}

struct Block {
    slots: Vec<Slot>,
    /// Lanes of each warp waiting at a warp collective (any mask): a completion check is worth making
    /// only once as many lanes wait as the mask names.
    warp_waiting: Vec<u32>,
    /// Lanes of each warp that exist and have not exited.
    warp_live: Vec<u32>,
    live: u32,
    at_barrier: u32,
    fault: Option<Fault>,
    shared: SharedArena,
}

struct SharedArena {
    base: *mut u8,
    cursor: usize,
    decls: Vec<(*const c_void, usize)>,
}

thread_local! {
    /// The fiber running now on this OS thread (null in the plain loop).
    static CURRENT: Cell<*mut Slot> = const { Cell::new(std::ptr::null_mut()) };
    /// The block running now on this OS thread.
    static BLOCK: Cell<*mut Block> = const { Cell::new(std::ptr::null_mut()) };
    /// The plain loop's context (its coordinates name a faulting thread).
    static PLAIN_CTX: Cell<*mut ThreadCtx> = const { Cell::new(std::ptr::null_mut()) };
    static PLAIN_FAULT: RefCell<Option<Fault>> = const { RefCell::new(None) };
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
    /// Bytes of this OS thread's shared arena the previous block touched.
    static ARENA_USED: Cell<usize> = const { Cell::new(0) };
}

fn take_stack() -> Option<DefaultStack> {
    match STACKS.with_borrow_mut(|s| s.pop()) {
        Some(s) => Some(s),
        None => DefaultStack::new(FIBER_STACK_BYTES).ok(),
    }
}

fn give_stack(s: DefaultStack) {
    STACKS.with_borrow_mut(|v| {
        if v.len() < MAX_POOLED_STACKS {
            v.push(s)
        }
    });
}

fn ctx_coords(ctx: &ThreadCtx) -> ([u32; 3], [u32; 3]) {
    (ctx.block_idx, ctx.thread_idx)
}

/// The fault of the running thread, with its coordinates.
fn fault_here(kind: FaultKind, addr: u64, bytes: u64, write: bool) -> Fault {
    let slot = CURRENT.get();
    let ctx = if !slot.is_null() {
        // SAFETY: CURRENT points at the slot of the fiber running on this OS thread; the block owning it
        // outlives the fiber's run.
        unsafe { (*slot).ctx }
    } else {
        let p = PLAIN_CTX.get();
        if p.is_null() {
            return Fault {
                kind,
                addr,
                bytes,
                write,
                block: [0; 3],
                thread: [0; 3],
            };
        }
        // SAFETY: PLAIN_CTX points at the context of the plain loop running on this thread.
        unsafe { *p }
    };
    let (block, thread) = ctx_coords(&ctx);
    Fault {
        kind,
        addr,
        bytes,
        write,
        block,
        thread,
    }
}

/// Records `f` for the running thread. On a fiber the thread is abandoned: this never returns. In the
/// plain loop it returns (the C++ caller jumps out; a Rust caller carries on, its launch already failed).
fn raise(f: Fault) {
    let slot = CURRENT.get();
    if slot.is_null() {
        PLAIN_FAULT.with_borrow_mut(|p| {
            if p.is_none() {
                *p = Some(f)
            }
        });
        return;
    }
    // SAFETY: CURRENT and BLOCK point at the running fiber's slot and block (see `run_fibers`), which
    // stay alive and unmoved while any of the block's fibers runs.
    unsafe {
        let block = &mut *BLOCK.get();
        if block.fault.is_none() {
            block.fault = Some(f);
        }
        (*slot).state = State::Faulted;
        loop {
            (*(*slot).yielder).suspend(());
        }
    }
}

/// Raises a synccheck fault of the running thread (see [`raise`]).
fn raise_sync(what: String) {
    raise(fault_here(FaultKind::Sync(what), 0, 0, false));
}

#[no_mangle]
extern "C" fn tri_emu_report(kind: i32, addr: u64, bytes: u64, is_write: i32) {
    raise(fault_here(
        fault_kind(kind, bytes),
        addr,
        bytes,
        is_write != 0,
    ));
}

/// Suspends the running fiber until the scheduler resumes it, which it does once its state is Ready.
///
/// # Safety
/// `slot` is the running fiber's slot.
unsafe fn wait(slot: *mut Slot) {
    (*(*slot).yielder).suspend(());
    if (*slot).state == State::Faulted {
        loop {
            (*(*slot).yielder).suspend(());
        }
    }
}

fn site(file: *const c_char, line: i32) -> String {
    if file.is_null() {
        return "?".into();
    }
    // SAFETY: sites are __builtin_FILE() literals.
    let f = unsafe { CStr::from_ptr(file) }.to_string_lossy();
    let short = f.rsplit('/').next().unwrap_or(&f).to_string();
    format!("{short}:{line}")
}

fn same_site(a: (*const c_char, i32), b: (*const c_char, i32)) -> bool {
    if a.1 != b.1 {
        return false;
    }
    if a.0 == b.0 {
        return true;
    }
    if a.0.is_null() || b.0.is_null() {
        return false;
    }
    // SAFETY: both are NUL-terminated literals.
    unsafe { CStr::from_ptr(a.0) == CStr::from_ptr(b.0) }
}

/// Releases the block barrier once every live thread waits at it; divergent sites are a fault.
fn try_release_barrier(block: &mut Block) -> Option<FaultKind> {
    if block.at_barrier == 0 || block.at_barrier < block.live {
        return None;
    }
    let mut first: Option<(usize, (*const c_char, i32))> = None;
    for (i, s) in block.slots.iter().enumerate() {
        if s.state != State::Barrier {
            continue;
        }
        match first {
            None => first = Some((i, s.site)),
            Some((j, f)) if !same_site(f, s.site) => {
                let t = |k: usize| block.slots[k].ctx.thread_idx;
                return Some(FaultKind::Sync(format!(
                    "barrier divergence: thread {:?} waits at __syncthreads {} while thread {:?} waits at {}",
                    t(j),
                    site(f.0, f.1),
                    t(i),
                    site(s.site.0, s.site.1)
                )));
            }
            _ => {}
        }
    }
    for s in block.slots.iter_mut() {
        if s.state == State::Barrier {
            s.state = State::Ready;
        }
    }
    block.at_barrier = 0;
    // SAFETY: bumps this OS thread's racecheck interval counter (a plain thread-local integer).
    unsafe { tri_emu_race_epoch() };
    None
}

const OP_SHFL: i32 = 0;
const OP_SHFL_UP: i32 = 1;
const OP_SHFL_DOWN: i32 = 2;
const OP_SHFL_XOR: i32 = 3;
const OP_BALLOT: i32 = 4;
const OP_ANY: i32 = 5;
const OP_ALL: i32 = 6;
const OP_SYNCWARP: i32 = 7;
const OP_ACTIVEMASK: i32 = 8;

fn op_name(op: i32) -> &'static str {
    match op {
        OP_SHFL => "__shfl_sync",
        OP_SHFL_UP => "__shfl_up_sync",
        OP_SHFL_DOWN => "__shfl_down_sync",
        OP_SHFL_XOR => "__shfl_xor_sync",
        OP_BALLOT => "__ballot_sync",
        OP_ANY => "__any_sync",
        OP_ALL => "__all_sync",
        OP_SYNCWARP => "__syncwarp",
        _ => "__activemask",
    }
}

/// Completes warp `warp`'s collective named by `mask` once all its lanes wait at it.
fn try_complete_warp(block: &mut Block, warp: u32, mask: u32) -> Option<FaultKind> {
    let n = block.slots.len() as u32;
    let base = warp * 32;
    let mut first: Option<WarpReq> = None;
    for l in 0..32u32 {
        if mask & (1 << l) == 0 {
            continue;
        }
        let idx = base + l;
        if idx >= n {
            return Some(FaultKind::Sync(format!(
                "warp collective mask {mask:#010x} names lane {l} of warp {warp}, which does not exist in a block of {n} threads"
            )));
        }
        let s = &block.slots[idx as usize];
        match s.state {
            State::Done => {
                let r = first.map(|r| (r.op, r.file, r.line));
                let (op, f, line) = r.unwrap_or((OP_SYNCWARP, std::ptr::null(), 0));
                return Some(FaultKind::Sync(format!(
                    "{} at {} with mask {mask:#010x} names lane {l} of warp {warp}, which has exited",
                    op_name(op),
                    site(f, line)
                )));
            }
            State::Warp => {}
            _ => return None,
        }
        match first {
            None => first = Some(s.req),
            Some(f) => {
                // sm_70+: the lanes may reach the collective from different instructions; the op, mask
                // and width must agree.
                if f.op != s.req.op || f.mask != s.req.mask || f.width != s.req.width {
                    return Some(FaultKind::Sync(format!(
                        "lanes of warp {warp} disagree: one waits at {} {} with mask {:#010x}, lane {l} at {} {} with mask {:#010x}",
                        op_name(f.op),
                        site(f.file, f.line),
                        f.mask,
                        op_name(s.req.op),
                        site(s.req.file, s.req.line),
                        s.req.mask
                    )));
                }
            }
        }
    }
    let req = first?;
    let value = |l: u32| block.slots[(base + l) as usize].req.value;
    let preds: u32 = (0..32u32)
        .filter(|&l| mask & (1 << l) != 0 && value(l) != 0)
        .fold(0, |m, l| m | (1 << l));
    let mut results = [0u64; 32];
    for l in (0..32u32).filter(|l| mask & (1 << l) != 0) {
        let w = req.width.clamp(1, 32) as u32;
        let seg = l & !(w - 1);
        let own = value(l);
        let pick = |src: Option<u32>| match src {
            Some(s) if mask & (1 << s) != 0 => value(s),
            _ => own,
        };
        // Each lane's own source lane or delta (they may differ: ldmatrix-style gathers shuffle with
        // lane-dependent sources). The delta is an unsigned PTX operand: a negative C int is a huge
        // one (the caller's own value).
        let arg = block.slots[(base + l) as usize].req.arg as u32;
        let r = match req.op {
            OP_SHFL => pick(Some(seg + (arg & (w - 1)))),
            OP_SHFL_UP => pick(((l - seg) >= arg).then(|| l - arg)),
            OP_SHFL_DOWN => pick((((l - seg) as u64 + arg as u64) < w as u64).then(|| l + arg)),
            // PTX's butterfly reads lane j = l ^ delta when j <= the segment's last lane (an earlier
            // segment included).
            OP_SHFL_XOR => {
                let s = l ^ arg;
                pick((s < seg + w).then_some(s))
            }
            OP_BALLOT => preds as u64,
            OP_ANY => (preds != 0) as u64,
            OP_ALL => (preds == mask) as u64,
            _ => 0,
        };
        results[l as usize] = r;
    }
    for l in (0..32u32).filter(|l| mask & (1 << l) != 0) {
        let s = &mut block.slots[(base + l) as usize];
        s.result = results[l as usize];
        s.state = State::Ready;
    }
    block.warp_waiting[warp as usize] -= mask.count_ones();
    None
}

#[no_mangle]
extern "C" fn tri_emu_rs_syncthreads(file: *const c_char, line: i32) {
    let slot = CURRENT.get();
    if slot.is_null() {
        raise_sync(format!(
                "__syncthreads at {} in a kernel whose device code has no barrier (the host and device builds differ)",
                site(file, line)
            ));
        return;
    }
    // SAFETY: CURRENT/BLOCK are the running fiber's slot and block (see `run_fibers`).
    unsafe {
        let block = &mut *BLOCK.get();
        (*slot).state = State::Barrier;
        (*slot).site = (file, line);
        block.at_barrier += 1;
        if let Some(k) = try_release_barrier(block) {
            raise(fault_here(k, 0, 0, false));
        }
        wait(slot);
    }
}

#[no_mangle]
extern "C" fn tri_emu_rs_warp_op(
    op: i32,
    mask: u32,
    value: u64,
    arg: i32,
    width: i32,
    file: *const c_char,
    line: i32,
) -> u64 {
    let slot = CURRENT.get();
    if slot.is_null() {
        if op == OP_ACTIVEMASK {
            return 1 << (unsafe_plain_lane() & 31);
        }
        raise_sync(format!(
                "{} at {} in a kernel whose device code has no warp collective (the host and device builds differ)",
                op_name(op),
                site(file, line)
            ));
        return value;
    }
    // SAFETY: CURRENT/BLOCK are the running fiber's slot and block (see `run_fibers`).
    unsafe {
        let block = &mut *BLOCK.get();
        let lane = (*slot).ctx.lane;
        let warp = (*slot).ctx.warp;
        if op == OP_ACTIVEMASK {
            return block.warp_live[warp as usize] as u64;
        }
        if mask & (1 << lane) == 0 {
            raise_sync(format!(
                "{} at {} with mask {mask:#010x} does not include the calling lane {lane}",
                op_name(op),
                site(file, line)
            ));
        }
        (*slot).req = WarpReq {
            op,
            mask,
            value,
            arg,
            width,
            file,
            line,
        };
        let dead = mask & !block.warp_live[warp as usize];
        if dead != 0 {
            let l = dead.trailing_zeros();
            let why = if warp * 32 + l >= block.slots.len() as u32 {
                "does not exist in this block"
            } else {
                "has exited"
            };
            raise_sync(format!(
                "{} at {} with mask {mask:#010x} names lane {l} of warp {warp}, which {why}",
                op_name(op),
                site(file, line)
            ));
        }
        (*slot).state = State::Warp;
        block.warp_waiting[warp as usize] += 1;
        if block.warp_waiting[warp as usize] >= mask.count_ones() {
            if let Some(k) = try_complete_warp(block, warp, mask) {
                raise(fault_here(k, 0, 0, false));
            }
        }
        wait(slot);
        (*slot).result
    }
}

/// Whether the plain loop's running thread faulted in a Rust-side call (csrc/runtime.cpp then jumps out
/// of the kernel instead of letting it carry on).
#[no_mangle]
extern "C" fn tri_emu_rs_plain_faulted() -> i32 {
    PLAIN_FAULT.with_borrow(|f| f.is_some()) as i32
}

fn unsafe_plain_lane() -> u32 {
    let p = PLAIN_CTX.get();
    if p.is_null() {
        0
    } else {
        // SAFETY: PLAIN_CTX points at the running plain loop's context.
        unsafe { (*p).lane }
    }
}

/// The block-arena address of the shared declaration `tag` (every thread of the block gets the same).
#[no_mangle]
extern "C" fn tri_emu_rs_shared(tag: *const c_void, bytes: usize, align: usize) -> *mut c_void {
    let b = BLOCK.get();
    if b.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: BLOCK is the block running on this OS thread; its arena is this thread's.
    let arena = unsafe { &mut (*b).shared };
    if let Some(&(_, off)) = arena.decls.iter().find(|(t, _)| *t == tag) {
        // SAFETY: off is inside the arena.
        return unsafe { arena.base.add(off) }.cast();
    }
    let align = align.max(16);
    let off = arena.cursor.div_ceil(align) * align;
    if off + bytes + memory::SHARED_REDZONE_BYTES > memory::SHARED_ARENA_BYTES {
        raise(fault_here(
            FaultKind::SharedExhausted,
            0,
            bytes as u64,
            false,
        ));
        return std::ptr::null_mut();
    }
    // SAFETY: [off, off + bytes) is inside the arena.
    let p = unsafe { arena.base.add(off) };
    memory::mark_shared(p, bytes, true);
    arena.cursor = off + bytes + memory::SHARED_REDZONE_BYTES;
    ARENA_USED.set(ARENA_USED.get().max(arena.cursor));
    arena.decls.push((tag, off));
    p.cast()
}

// ---- a launch -------------------------------------------------------------------------------------------

pub struct Launch<'a> {
    pub kernel: &'a KernelInfo,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub dynamic_shared: u32,
    pub params: *mut *mut c_void,
    pub checked: bool,
    pub schedule: Schedule,
    pub salt: u64,
}

// SAFETY: the launch is read by the worker threads while the launching thread waits for them in
// `run`; the parameter array it points at is the launcher's and outlives `run`.
unsafe impl Sync for Launch<'_> {}

/// Prepares this OS thread's shared arena for a new block: the previous block's bytes are refilled with
/// the NaN pattern (initcheck) and made a redzone; `dynamic` bytes at the start become addressable.
fn reset_arena(dynamic: usize, initcheck: bool) -> Result<SharedArena, FaultKind> {
    let base = memory::shared_arena().ok_or(FaultKind::SharedExhausted)?;
    let used = ARENA_USED.get().max(dynamic);
    if used > 0 {
        memory::mark_shared(base, used, false);
        if initcheck {
            // SAFETY: the arena is this OS thread's, SHARED_ARENA_BYTES long, used <= that.
            unsafe { std::ptr::write_bytes(base, 0xff, used.min(memory::SHARED_ARENA_BYTES)) };
        }
    }
    if dynamic > 0 {
        memory::mark_shared(base, dynamic, true);
    }
    let cursor = dynamic.div_ceil(16) * 16
        + if dynamic > 0 {
            memory::SHARED_REDZONE_BYTES
        } else {
            0
        };
    ARENA_USED.set(cursor);
    Ok(SharedArena {
        base,
        cursor,
        decls: Vec::new(),
    })
}

fn run_block(l: &Launch, b: u64, initcheck: bool) -> Result<(), Fault> {
    let [gx, gy, _] = l.grid;
    let block_idx = [
        (b % gx as u64) as u32,
        ((b / gx as u64) % gy as u64) as u32,
        (b / (gx as u64 * gy as u64)) as u32,
    ];
    let fail = |kind| Fault {
        kind,
        addr: 0,
        bytes: 0,
        write: false,
        block: block_idx,
        thread: [0; 3],
    };
    let arena = reset_arena(l.dynamic_shared as usize, initcheck).map_err(fail)?;
    // SAFETY: a new block starts a new racecheck interval on this OS thread.
    unsafe { tri_emu_race_epoch() };
    let n = l.block[0] * l.block[1] * l.block[2];
    let order = l
        .schedule
        .permutation(n, l.salt ^ b.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let launch = if l.checked {
        l.kernel.checked
    } else {
        l.kernel.plain
    };
    let ctx = ThreadCtx {
        thread_idx: [0; 3],
        block_idx,
        block_dim: l.block,
        grid_dim: l.grid,
        linear: 0,
        lane: 0,
        warp: 0,
        on_fiber: 0,
        block: std::ptr::null_mut(),
        dynamic_shared: arena.base,
    };
    // One raw pointer to the block serves the scheduler and the fibers (through BLOCK): no reference
    // to it is held across a fiber's run.
    let block: *mut Block = Box::into_raw(Box::new(Block {
        slots: Vec::new(),
        warp_waiting: vec![0; n.div_ceil(32) as usize],
        warp_live: (0..n.div_ceil(32))
            .map(|w| {
                let lanes = (n - w * 32).min(32);
                if lanes == 32 {
                    u32::MAX
                } else {
                    (1u32 << lanes) - 1
                }
            })
            .collect(),
        live: n,
        at_barrier: 0,
        fault: None,
        shared: arena,
    }));
    BLOCK.set(block);
    let r = if l.kernel.res.needs_fibers {
        // SAFETY: `block` is the live allocation made above, freed below after the run.
        unsafe { run_fibers(block, ctx, launch, l.params, &order) }
    } else {
        run_plain(ctx, launch, l.params, &order)
    };
    BLOCK.set(std::ptr::null_mut());
    // SAFETY: made by Box::into_raw above; no fiber or pointer uses it any more.
    drop(unsafe { Box::from_raw(block) });
    r
}

fn run_plain(
    mut ctx: ThreadCtx,
    launch: LaunchFn,
    params: *mut *mut c_void,
    order: &[u32],
) -> Result<(), Fault> {
    let ctx_ptr: *mut ThreadCtx = &mut ctx;
    PLAIN_CTX.set(ctx_ptr);
    // SAFETY: `launch` is a host-compiled kernel launcher taking the driver's parameter array, which
    // the launching thread keeps alive; ctx and order outlive the call; run_plain runs each thread to
    // completion on this stack and returns (a faulting thread longjmps back into it, crossing only C++
    // frames).
    unsafe { tri_emu_run_plain(launch, params, ctx_ptr, order.as_ptr(), order.len() as u32) };
    // SAFETY: clears this thread's current-thread pointer, which pointed at the local ctx.
    unsafe { tri_emu_set_current(std::ptr::null_mut()) };
    PLAIN_CTX.set(std::ptr::null_mut());
    match PLAIN_FAULT.with_borrow_mut(|f| f.take()) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Runs the block's threads as fibers until all finish or one faults.
///
/// # Safety
/// `block` points at a live Block that nothing else uses during the call except the fibers, which
/// reach it through BLOCK on this OS thread.
unsafe fn run_fibers(
    block: *mut Block,
    ctx: ThreadCtx,
    launch: LaunchFn,
    params: *mut *mut c_void,
    order: &[u32],
) -> Result<(), Fault> {
    let n = order.len();
    let [bx, by, _] = ctx.block_dim;
    let slots: *mut Vec<Slot> = &mut (*block).slots;
    (*slots).reserve_exact(n);
    for lin in 0..n as u32 {
        let mut c = ctx;
        c.linear = lin;
        c.lane = lin & 31;
        c.warp = lin >> 5;
        c.thread_idx = [lin % bx, (lin / bx) % by, lin / (bx * by)];
        c.on_fiber = 1;
        c.block = block.cast();
        (*slots).push(Slot {
            ctx: c,
            state: State::NotStarted,
            co: None,
            yielder: std::ptr::null(),
            site: (std::ptr::null(), 0),
            req: WarpReq {
                op: 0,
                mask: 0,
                value: 0,
                arg: 0,
                width: 32,
                file: std::ptr::null(),
                line: 0,
            },
            result: 0,
        });
    }
    // The slots are never pushed to again, so pointers to them stay valid for the whole run.
    let base: *mut Slot = (*slots).as_mut_ptr();
    let params_addr = params as usize;
    loop {
        let mut progressed = false;
        for &t in order {
            if (*block).fault.is_some() {
                break;
            }
            let slot = base.add(t as usize);
            // The fiber writes only its own slot and (through BLOCK) the block, on this OS thread,
            // while the scheduler is suspended in `resume`.
            match (*slot).state {
                State::NotStarted => {
                    let Some(stack) = take_stack() else {
                        record(
                            block,
                            &(*slot).ctx,
                            FaultKind::Sync("cannot map a fiber stack (out of memory)".into()),
                        );
                        break;
                    };
                    let slot_addr = slot as usize;
                    (*slot).co = Some(Coroutine::with_stack(
                        stack,
                        move |y: &Yielder<(), ()>, ()| {
                            let s = slot_addr as *mut Slot;
                            // SAFETY: the slot outlives its fiber (see above); `launch` is the
                            // kernel's host launcher and the parameter array outlives the launch.
                            unsafe {
                                (*s).yielder = y;
                                launch(params_addr as *mut *mut c_void);
                            }
                        },
                    ));
                    (*slot).state = State::Ready;
                }
                State::Ready => {}
                _ => continue,
            }
            progressed = true;
            CURRENT.set(slot);
            tri_emu_set_current(&mut (*slot).ctx);
            let r = (*slot).co.as_mut().expect("started fiber").resume(());
            CURRENT.set(std::ptr::null_mut());
            if let CoroutineResult::Return(()) = r {
                (*slot).state = State::Done;
                give_stack((*slot).co.take().expect("finished fiber").into_stack());
                let (warp, lane) = ((*slot).ctx.warp, (*slot).ctx.lane);
                (*block).live -= 1;
                let live = &mut (*block).warp_live;
                live[warp as usize] &= !(1u32 << lane);
                if let Some(k) = try_release_barrier(&mut *block) {
                    record(block, &(*slot).ctx, k);
                }
                if let Some(k) = exit_breaks_warp(&mut *block, warp, lane) {
                    record(block, &(*slot).ctx, k);
                }
            }
        }
        if (*block).fault.is_some() || (*block).live == 0 {
            break;
        }
        if !progressed {
            let b = &*block;
            let waits: Vec<String> = b
                .slots
                .iter()
                .filter(|s| matches!(s.state, State::Barrier | State::Warp))
                .take(4)
                .map(|s| {
                    let what = if s.state == State::Barrier {
                        format!("__syncthreads at {}", site(s.site.0, s.site.1))
                    } else {
                        format!(
                            "{} at {} (mask {:#010x})",
                            op_name(s.req.op),
                            site(s.req.file, s.req.line),
                            s.req.mask
                        )
                    };
                    format!("thread {:?} waits at {what}", s.ctx.thread_idx)
                })
                .collect();
            let first = b
                .slots
                .iter()
                .find(|s| matches!(s.state, State::Barrier | State::Warp))
                .map(|s| s.ctx)
                .unwrap_or(ctx);
            record(
                block,
                &first,
                FaultKind::Sync(format!("deadlock: {}", waits.join("; "))),
            );
            break;
        }
    }
    // Clears this thread's current-thread pointer before the slots it points into are dropped.
    tri_emu_set_current(std::ptr::null_mut());
    for i in 0..n {
        if let Some(mut co) = (*base.add(i)).co.take() {
            // An abandoned fiber's stack holds C++ frames of the kernel and Rust frames of the closure
            // and of raise/wait; resetting discards them without running anything (a value they own,
            // such as a fault's message that lost the race to be recorded first, is leaked, not
            // dropped), after which the stack can be reused.
            co.force_reset();
            give_stack(co.into_stack());
        }
    }
    (*block).fault.take().map_or(Ok(()), Err)
}

/// Records the block's first fault.
///
/// # Safety
/// `block` is the live block of the running scheduler, with no reference to it held elsewhere.
unsafe fn record(block: *mut Block, ctx: &ThreadCtx, kind: FaultKind) {
    let block = &mut *block;
    if block.fault.is_none() {
        block.fault = Some(Fault {
            kind,
            addr: 0,
            bytes: 0,
            write: false,
            block: ctx.block_idx,
            thread: ctx.thread_idx,
        });
    }
}

/// A lane that exits while lanes of its warp wait at a collective whose mask names it.
fn exit_breaks_warp(block: &mut Block, warp: u32, lane: u32) -> Option<FaultKind> {
    let n = block.slots.len() as u32;
    for l in 0..32u32 {
        let idx = warp * 32 + l;
        if idx >= n {
            break;
        }
        let s = &block.slots[idx as usize];
        if s.state == State::Warp && s.req.mask & (1 << lane) != 0 {
            return Some(FaultKind::Sync(format!(
                "{} at {} with mask {:#010x} names lane {lane} of warp {warp}, which has exited",
                op_name(s.req.op),
                site(s.req.file, s.req.line),
                s.req.mask
            )));
        }
    }
    None
}

/// Runs every block of the launch; the first fault stops the rest (a GPU would have run some of them,
/// but the launch is failed either way).
pub fn run(l: &Launch, initcheck: bool) -> Result<(), Fault> {
    let blocks = l.grid[0] as u64 * l.grid[1] as u64 * l.grid[2] as u64;
    let order = l.schedule.permutation(blocks as u32, l.salt);
    let workers = rayon::current_num_threads().min(blocks as usize).max(1);
    if workers == 1 {
        for &b in &order {
            run_block(l, b as u64, initcheck)?;
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let first: Mutex<Option<Fault>> = Mutex::new(None);
    rayon::scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| {
                while !abort.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= order.len() {
                        break;
                    }
                    if let Err(f) = run_block(l, order[i] as u64, initcheck) {
                        abort.store(true, Ordering::Relaxed);
                        let mut g = first.lock().unwrap_or_else(|p| p.into_inner());
                        if g.is_none() {
                            *g = Some(f);
                        }
                    }
                }
            });
        }
    });
    match first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
