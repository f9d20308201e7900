//! Counters of what the emulated driver was asked to do, so tests can assert facts such as "a DDGAN run
//! copies nothing device-to-host per step". `TRILEMMA_EMU_STATS=FILE` writes them at process exit:
//! `{"launches": {KERNEL: N, ...}, "copies": {"htod": {"count": N, "bytes": N}, "dtoh": {...},
//! "dtod": {...}, "dtoh_pinned": {...}}, "allocations": N, "pinned_allocations": N, "synchronizations": N,
//! "event_synchronizations": N, "graph_launches": N, "dtoh_digest": HEX}`. In-process, [`set_trace`]
//! also keeps the order of what the host asked ([`TraceOp`]), so a test can check that work was queued
//! before the host waited.
//! `{exe}` and `{pid}` in FILE are replaced by the executable's name and the process id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub count: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub launches: BTreeMap<String, u64>,
    pub htod: CopyStats,
    pub dtoh: CopyStats,
    pub dtod: CopyStats,
    /// The device-to-host copies (counted in `dtoh` too) that went to page-locked memory, queued
    /// without waiting (host.rs).
    pub dtoh_pinned: CopyStats,
    pub allocations: u64,
    /// `cuMemHostAlloc`/`cuMemAllocHost` calls.
    pub pinned_allocations: u64,
    /// Stream and context synchronizes.
    pub synchronizations: u64,
    /// `cuEventSynchronize` calls (the host waiting for a point in a stream).
    pub event_synchronizations: u64,
    pub graph_launches: u64,
    /// An order-independent digest of the bytes of every device-to-host copy (the sum of one hash per
    /// copy): two runs of the same tests under different thread orders must agree on it.
    pub dtoh_digest: u64,
}

impl Stats {
    pub fn total_launches(&self) -> u64 {
        self.launches.values().sum()
    }

    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Stats) -> Stats {
        let sub = |a: CopyStats, b: CopyStats| CopyStats {
            count: a.count - b.count,
            bytes: a.bytes - b.bytes,
        };
        Stats {
            launches: self
                .launches
                .iter()
                .map(|(k, &v)| (k.clone(), v - earlier.launches.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect(),
            htod: sub(self.htod, earlier.htod),
            dtoh: sub(self.dtoh, earlier.dtoh),
            dtod: sub(self.dtod, earlier.dtod),
            dtoh_pinned: sub(self.dtoh_pinned, earlier.dtoh_pinned),
            allocations: self.allocations - earlier.allocations,
            pinned_allocations: self.pinned_allocations - earlier.pinned_allocations,
            synchronizations: self.synchronizations - earlier.synchronizations,
            event_synchronizations: self.event_synchronizations - earlier.event_synchronizations,
            graph_launches: self.graph_launches - earlier.graph_launches,
            dtoh_digest: self.dtoh_digest.wrapping_sub(earlier.dtoh_digest),
        }
    }

    pub fn to_json(&self) -> String {
        let launches: Vec<String> = self
            .launches
            .iter()
            .map(|(k, v)| format!("\"{}\": {v}", k.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        let c = |s: CopyStats| format!("{{\"count\": {}, \"bytes\": {}}}", s.count, s.bytes);
        format!(
            "{{\"launches\": {{{}}}, \"copies\": {{\"htod\": {}, \"dtoh\": {}, \"dtod\": {}, \"dtoh_pinned\": {}}}, \
             \"allocations\": {}, \"pinned_allocations\": {}, \"synchronizations\": {}, \"event_synchronizations\": {}, \
             \"graph_launches\": {}, \"dtoh_digest\": \"{:016x}\"}}\n",
            launches.join(", "),
            c(self.htod),
            c(self.dtoh),
            c(self.dtod),
            c(self.dtoh_pinned),
            self.allocations,
            self.pinned_allocations,
            self.synchronizations,
            self.event_synchronizations,
            self.graph_launches,
            self.dtoh_digest
        )
    }
}

static LAUNCHES: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static COPIES: [[AtomicU64; 2]; 4] = [
    [AtomicU64::new(0), AtomicU64::new(0)],
    [AtomicU64::new(0), AtomicU64::new(0)],
    [AtomicU64::new(0), AtomicU64::new(0)],
    [AtomicU64::new(0), AtomicU64::new(0)],
];
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static PINNED_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static SYNCS: AtomicU64 = AtomicU64::new(0);
static EVENT_SYNCS: AtomicU64 = AtomicU64::new(0);
static TRACE: Mutex<Option<Vec<TraceOp>>> = Mutex::new(None);

/// What the host asked of the driver, in order, while a trace is on ([`set_trace`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceOp {
    /// A kernel launched from the host (by name).
    Launch(String),
    GraphLaunch,
    HtoD {
        bytes: usize,
    },
    /// `pinned`: into page-locked memory, queued without waiting.
    DtoH {
        bytes: usize,
        pinned: bool,
    },
    DtoD {
        bytes: usize,
    },
    /// An event (by handle) recorded into a stream.
    EventRecord(usize),
    /// The host waited for an event (by handle).
    EventSync(usize),
    /// A stream or context synchronize.
    Sync,
}

/// Starts (clearing it) or stops the trace of this process's driver calls.
pub fn set_trace(on: bool) {
    *TRACE.lock().unwrap_or_else(|p| p.into_inner()) = on.then(Vec::new);
}

/// The trace so far, emptied (empty when no trace is on).
pub fn take_trace() -> Vec<TraceOp> {
    TRACE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
        .map(std::mem::take)
        .unwrap_or_default()
}

/// Adds `op` to the trace when one is on.
pub fn trace(op: impl FnOnce() -> TraceOp) {
    if let Some(t) = TRACE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        t.push(op());
    }
}
static GRAPH_LAUNCHES: AtomicU64 = AtomicU64::new(0);
static DTOH_DIGEST: AtomicU64 = AtomicU64::new(0);

/// A 64-bit hash of `bytes` (8 bytes at a time, multiply-xorshift mixing; not cryptographic).
fn hash(bytes: &[u8]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 32;
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    }
    h ^ (h >> 29)
}

/// Adds one device-to-host copy's bytes to the digest.
pub fn dtoh_content(bytes: &[u8]) {
    DTOH_DIGEST.fetch_add(hash(bytes), Ordering::Relaxed);
}

#[derive(Clone, Copy)]
pub enum Dir {
    HtoD = 0,
    DtoH = 1,
    DtoD = 2,
}

/// The slot of the page-locked device-to-host copies in COPIES.
const DTOH_PINNED: usize = 3;

pub fn launch(kernel: &str) {
    trace(|| TraceOp::Launch(kernel.to_string()));
    let mut l = LAUNCHES.lock().unwrap_or_else(|p| p.into_inner());
    match l.get_mut(kernel) {
        Some(n) => *n += 1,
        None => {
            l.insert(kernel.to_string(), 1);
        }
    }
}

/// A copy the host asked for (`pinned`: a device-to-host copy into page-locked memory).
pub fn copy(dir: Dir, bytes: usize, pinned: bool) {
    let add = |slot: usize| {
        COPIES[slot][0].fetch_add(1, Ordering::Relaxed);
        COPIES[slot][1].fetch_add(bytes as u64, Ordering::Relaxed);
    };
    add(dir as usize);
    if pinned {
        add(DTOH_PINNED);
    }
    trace(|| match dir {
        Dir::HtoD => TraceOp::HtoD { bytes },
        Dir::DtoH => TraceOp::DtoH { bytes, pinned },
        Dir::DtoD => TraceOp::DtoD { bytes },
    });
}

/// A device-to-device copy a graph replay ran (counted, not traced: the host asked for the replay).
pub fn graph_copy(bytes: usize) {
    COPIES[Dir::DtoD as usize][0].fetch_add(1, Ordering::Relaxed);
    COPIES[Dir::DtoD as usize][1].fetch_add(bytes as u64, Ordering::Relaxed);
}

pub fn allocation() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

pub fn pinned_allocation() {
    PINNED_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

pub fn synchronization() {
    SYNCS.fetch_add(1, Ordering::Relaxed);
    trace(|| TraceOp::Sync);
}

pub fn event_record(event: usize) {
    trace(|| TraceOp::EventRecord(event));
}

pub fn event_synchronization(event: usize) {
    EVENT_SYNCS.fetch_add(1, Ordering::Relaxed);
    trace(|| TraceOp::EventSync(event));
}

pub fn graph_launch() {
    GRAPH_LAUNCHES.fetch_add(1, Ordering::Relaxed);
    trace(|| TraceOp::GraphLaunch);
}

pub fn snapshot() -> Stats {
    let c = |d: Dir| CopyStats {
        count: COPIES[d as usize][0].load(Ordering::Relaxed),
        bytes: COPIES[d as usize][1].load(Ordering::Relaxed),
    };
    Stats {
        launches: LAUNCHES.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        htod: c(Dir::HtoD),
        dtoh: c(Dir::DtoH),
        dtod: c(Dir::DtoD),
        dtoh_pinned: CopyStats {
            count: COPIES[DTOH_PINNED][0].load(Ordering::Relaxed),
            bytes: COPIES[DTOH_PINNED][1].load(Ordering::Relaxed),
        },
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        pinned_allocations: PINNED_ALLOCATIONS.load(Ordering::Relaxed),
        synchronizations: SYNCS.load(Ordering::Relaxed),
        event_synchronizations: EVENT_SYNCS.load(Ordering::Relaxed),
        graph_launches: GRAPH_LAUNCHES.load(Ordering::Relaxed),
        dtoh_digest: DTOH_DIGEST.load(Ordering::Relaxed),
    }
}

/// `TRILEMMA_EMU_STATS` with `{exe}` replaced by the executable's file name and `{pid}` by the
/// process id, so the test binaries of one `cargo test` each write their own file.
fn expand(path: &std::path::Path) -> std::path::PathBuf {
    let s = path.to_string_lossy();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into());
    std::path::PathBuf::from(
        s.replace("{exe}", &exe)
            .replace("{pid}", &std::process::id().to_string()),
    )
}

extern "C" fn write_at_exit() {
    if let Some(path) = crate::config::get().stats_path.as_ref() {
        let path = &expand(path);
        // Written whole to a temporary name, then renamed: never a half-written file.
        let tmp = path.with_extension("tmp-emu");
        let ok =
            std::fs::write(&tmp, snapshot().to_json()).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = ok {
            eprintln!(
                "cuda-emu: cannot write TRILEMMA_EMU_STATS={}: {e}",
                path.display()
            );
        }
    }
}

pub fn register_exit_writer() {
    if crate::config::get().stats_path.is_some() {
        // SAFETY: atexit with a function that lives for the whole process.
        unsafe { libc::atexit(write_at_exit) };
    }
}
