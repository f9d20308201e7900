//! A stream-ordered caching allocator: device memory is taken from the driver once and then recycled,
//! so a sampling loop that frees and re-allocates the same shapes makes no driver allocation after its
//! first step.
//!
//! Blocks are returned to the cache when their handle drops, possibly while kernels that use them are
//! still queued. That is safe because every kernel, copy and allocation of a device goes through its
//! one stream: a later user of a recycled block is queued behind the earlier ones. Memory is handed
//! back to the driver only by [`CachingAllocator::release_cached`] (also tried once when the driver
//! reports out-of-memory), through the driver's stream-ordered free.
//!
//! The pool logic is generic over a [`RawAllocator`], so it is tested on the CPU with a counting mock.

use std::collections::BTreeMap;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Requests up to this size are rounded to a multiple of [`SMALL_GRANULE`], larger ones to a multiple
/// of [`LARGE_GRANULE`]: coarse enough that activations of nearby sizes share blocks, fine enough that
/// rounding wastes at most 1/2048 of a large block.
pub const SMALL_LIMIT: usize = 1 << 20;
pub const SMALL_GRANULE: usize = 512;
pub const LARGE_GRANULE: usize = 1 << 20;
/// A cached block is reused for a request only if it is at most this many times larger.
pub const MAX_REUSE_RATIO: usize = 2;

/// Why a raw allocation failed: out-of-memory is retried after releasing the cache.
#[derive(Debug)]
pub enum RawAllocError {
    OutOfMemory,
    Other(Error),
}

/// The driver-facing half: allocate exactly `bytes`; dropping a block frees it (stream-ordered).
pub trait RawAllocator: Send + Sync {
    type Block: Send;
    fn alloc(&self, bytes: usize) -> Result<Self::Block, RawAllocError>;
    /// (free, total) bytes on the device, for out-of-memory messages.
    fn mem_info(&self) -> (usize, usize);
    /// `block` (of `capacity` bytes) is handed out for a request of `used` bytes. The CUDA emulator
    /// makes only those bytes addressable, so its memcheck is byte-exact inside pooled blocks.
    fn on_handout(&self, _block: &Self::Block, _used: usize, _capacity: usize) {}
    /// `block` went back to the cache: no kernel may touch it until its next handout.
    fn on_return(&self, _block: &Self::Block, _capacity: usize) {}
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Allocations that went to the driver.
    pub driver_allocs: u64,
    /// Allocations served from the cache.
    pub cache_hits: u64,
    /// Bytes (rounded) held by live blocks.
    pub bytes_in_use: usize,
    /// Bytes held by cached, free blocks.
    pub bytes_cached: usize,
    pub peak_bytes_in_use: usize,
}

struct PoolState<B> {
    /// Free blocks by rounded size.
    free: BTreeMap<usize, Vec<B>>,
    /// While a CUDA graph is captured: the blocks freed during the capture, by rounded size. They serve
    /// the capture's later requests (stream order holds inside a graph as on a stream) and then belong
    /// to the graph, whose nodes address them on every replay, so no one outside it may get them.
    capture: Option<BTreeMap<usize, Vec<B>>>,
    stats: AllocStats,
}

/// Pops the smallest block of `size..=max` bytes from `free`: (its size, the block).
fn take_fitting<B>(
    free: &mut BTreeMap<usize, Vec<B>>,
    size: usize,
    max: usize,
) -> Option<(usize, B)> {
    let hit = free
        .range_mut(size..=max)
        .find_map(|(&k, v)| v.pop().map(|b| (k, b)));
    if let Some((k, _)) = &hit {
        if free.get(k).is_some_and(Vec::is_empty) {
            free.remove(k);
        }
    }
    hit
}

pub struct CachingAllocator<A: RawAllocator> {
    raw: A,
    state: Mutex<PoolState<A::Block>>,
}

/// The size class of a request.
pub fn rounded_size(bytes: usize) -> usize {
    let granule = if bytes <= SMALL_LIMIT {
        SMALL_GRANULE
    } else {
        LARGE_GRANULE
    };
    bytes.max(1).div_ceil(granule).saturating_mul(granule)
}

impl<A: RawAllocator> CachingAllocator<A> {
    pub fn new(raw: A) -> Arc<Self> {
        Arc::new(CachingAllocator {
            raw,
            state: Mutex::new(PoolState {
                free: BTreeMap::new(),
                capture: None,
                stats: AllocStats::default(),
            }),
        })
    }

    pub fn raw(&self) -> &A {
        &self.raw
    }

    // A poisoned lock only means another thread panicked while holding it; the map and counters are
    // updated in single statements, so the state is still consistent.
    fn lock(&self) -> MutexGuard<'_, PoolState<A::Block>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> AllocStats {
        self.lock().stats
    }

    /// A block of at least `bytes` bytes, from the cache when one of a close size is free. During a
    /// graph capture only cached blocks are handed out (a driver allocation would break the capture):
    /// the capture's own freed blocks first, then the cache; none fitting is an error.
    pub fn alloc(self: &Arc<Self>, op: &'static str, bytes: usize) -> Result<PooledBlock<A>> {
        let size = rounded_size(bytes);
        {
            let mut st = self.lock();
            let capturing = st.capture.is_some();
            // First a block of a close size, as outside a capture: the capture's own freed blocks,
            // then the cache. A capture cannot fall back on the driver, so it then takes any block
            // that is large enough (the memory is allocated already; the blocks go back to the cache
            // with the graph). Trying close sizes first keeps a small request from taking the large
            // block a later request of the same capture needs, which the uncaptured run before it
            // (whose allocations filled the cache) would not have done either.
            let close = size.saturating_mul(MAX_REUSE_RATIO);
            let tries: &[usize] = if capturing {
                &[close, usize::MAX]
            } else {
                &[close]
            };
            let mut from_cache = None;
            for &max in tries {
                if let Some(hit) = st.capture.as_mut().and_then(|c| take_fitting(c, size, max)) {
                    from_cache = Some(hit);
                    break;
                }
                if let Some(hit) = take_fitting(&mut st.free, size, max) {
                    st.stats.bytes_cached -= hit.0;
                    from_cache = Some(hit);
                    break;
                }
            }
            if let Some((k, block)) = from_cache {
                st.stats.cache_hits += 1;
                Self::note_in_use(&mut st.stats, k);
                // A captured block is addressed whole by the graph's nodes, whatever request it
                // serves at a given node.
                self.raw
                    .on_handout(&block, if capturing { k } else { bytes }, k);
                return Ok(PooledBlock {
                    block: ManuallyDrop::new(block),
                    bytes: k,
                    pool: Arc::clone(self),
                });
            }
            if capturing {
                return Err(Error::InvalidParam {
                    op,
                    what: "memory during a CUDA graph capture",
                    rule: "a block the pool has cached (a driver allocation cannot be captured)",
                    found: format!("a request of {bytes} bytes with no cached block of that size"),
                });
            }
        }
        let block = match self.raw.alloc(size) {
            Ok(b) => b,
            Err(RawAllocError::OutOfMemory) => {
                let cached = self.release_cached();
                match self.raw.alloc(size) {
                    Ok(b) => b,
                    Err(RawAllocError::OutOfMemory) => {
                        let (free, total) = self.raw.mem_info();
                        return Err(Error::OutOfMemory {
                            op,
                            requested: size,
                            in_use: self.stats().bytes_in_use,
                            cached,
                            free,
                            total,
                        });
                    }
                    Err(RawAllocError::Other(e)) => return Err(e),
                }
            }
            Err(RawAllocError::Other(e)) => return Err(e),
        };
        let mut st = self.lock();
        st.stats.driver_allocs += 1;
        Self::note_in_use(&mut st.stats, size);
        self.raw.on_handout(&block, bytes, size);
        Ok(PooledBlock {
            block: ManuallyDrop::new(block),
            bytes: size,
            pool: Arc::clone(self),
        })
    }

    fn note_in_use(stats: &mut AllocStats, bytes: usize) {
        stats.bytes_in_use += bytes;
        stats.peak_bytes_in_use = stats.peak_bytes_in_use.max(stats.bytes_in_use);
    }

    /// Hands every cached block back to the driver; returns how many bytes that was.
    /// Starts a new peak: `peak_bytes_in_use` becomes the bytes in use now.
    pub fn reset_peak(&self) {
        let mut st = self.lock();
        st.stats.peak_bytes_in_use = st.stats.bytes_in_use;
    }

    pub fn release_cached(&self) -> usize {
        let free = {
            let mut st = self.lock();
            st.stats.bytes_cached = 0;
            std::mem::take(&mut st.free)
        };
        let bytes = free.iter().map(|(k, v)| k * v.len()).sum();
        drop(free);
        bytes
    }

    fn give_back(&self, bytes: usize, block: A::Block) {
        let mut st = self.lock();
        st.stats.bytes_in_use -= bytes;
        if let Some(c) = st.capture.as_mut() {
            // Kept for the capture (and then its graph): still addressable, not cached.
            c.entry(bytes).or_default().push(block);
            return;
        }
        drop(st);
        self.raw.on_return(&block, bytes);
        let mut st = self.lock();
        st.stats.bytes_cached += bytes;
        st.free.entry(bytes).or_default().push(block);
    }

    /// Starts keeping the blocks freed from now on for a graph capture ([`Self::end_capture`]).
    pub fn begin_capture(&self) -> Result<()> {
        let mut st = self.lock();
        if st.capture.is_some() {
            return Err(Error::InvalidParam {
                op: "graph capture",
                what: "pool",
                rule: "one capture at a time",
                found: "a capture already in progress".into(),
            });
        }
        st.capture = Some(BTreeMap::new());
        Ok(())
    }

    /// Ends the capture: the blocks it freed, as live blocks for the graph to hold (back to the cache
    /// when the graph drops them).
    pub fn end_capture(self: &Arc<Self>) -> Vec<PooledBlock<A>> {
        let kept = self.lock().capture.take().unwrap_or_default();
        let mut st = self.lock();
        kept.into_iter()
            .flat_map(|(k, v)| v.into_iter().map(move |b| (k, b)))
            .map(|(k, block)| {
                Self::note_in_use(&mut st.stats, k);
                PooledBlock {
                    block: ManuallyDrop::new(block),
                    bytes: k,
                    pool: Arc::clone(self),
                }
            })
            .collect()
    }
}

/// A live block; returns to its pool's cache on drop.
pub struct PooledBlock<A: RawAllocator> {
    /// Taken out exactly once, in `drop`, to be handed back to the pool.
    block: ManuallyDrop<A::Block>,
    bytes: usize,
    pool: Arc<CachingAllocator<A>>,
}

impl<A: RawAllocator> PooledBlock<A> {
    /// Capacity in bytes (the request rounded up to its size class).
    pub fn capacity(&self) -> usize {
        self.bytes
    }

    pub fn block(&self) -> &A::Block {
        &self.block
    }

    pub fn block_mut(&mut self) -> &mut A::Block {
        &mut self.block
    }
}

impl<A: RawAllocator> Drop for PooledBlock<A> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and `self.block` is not touched after this take, so the block is
        // moved out exactly once and never dropped in place.
        let block = unsafe { ManuallyDrop::take(&mut self.block) };
        self.pool.give_back(self.bytes, block);
    }
}

impl<A: RawAllocator> std::fmt::Debug for PooledBlock<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PooledBlock({} bytes)", self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts live bytes like a device would and fails beyond a capacity.
    struct Mock {
        capacity: usize,
        live: Arc<AtomicUsize>,
    }
    struct MockBlock {
        bytes: usize,
        live: Arc<AtomicUsize>,
    }
    impl Drop for MockBlock {
        fn drop(&mut self) {
            self.live.fetch_sub(self.bytes, Ordering::SeqCst);
        }
    }
    impl RawAllocator for Mock {
        type Block = MockBlock;
        fn alloc(&self, bytes: usize) -> Result<MockBlock, RawAllocError> {
            if self.live.load(Ordering::SeqCst) + bytes > self.capacity {
                return Err(RawAllocError::OutOfMemory);
            }
            self.live.fetch_add(bytes, Ordering::SeqCst);
            Ok(MockBlock {
                bytes,
                live: Arc::clone(&self.live),
            })
        }
        fn mem_info(&self) -> (usize, usize) {
            (
                self.capacity - self.live.load(Ordering::SeqCst),
                self.capacity,
            )
        }
    }

    fn pool(capacity: usize) -> (Arc<CachingAllocator<Mock>>, Arc<AtomicUsize>) {
        let live = Arc::new(AtomicUsize::new(0));
        (
            CachingAllocator::new(Mock {
                capacity,
                live: Arc::clone(&live),
            }),
            live,
        )
    }

    #[test]
    fn reset_peak_starts_a_new_peak_from_the_bytes_in_use() {
        let (p, _) = pool(1 << 30);
        let held = p.alloc("test", 4 << 20).unwrap();
        drop(p.alloc("test", 8 << 20).unwrap());
        assert_eq!(p.stats().peak_bytes_in_use, 12 << 20);
        p.reset_peak();
        assert_eq!(p.stats().peak_bytes_in_use, 4 << 20);
        let a = p.alloc("test", 1 << 20).unwrap();
        assert_eq!(p.stats().peak_bytes_in_use, 5 << 20);
        drop((a, held));
        assert_eq!(p.stats().peak_bytes_in_use, 5 << 20);
    }

    #[test]
    fn a_capture_reuses_its_own_blocks_and_keeps_them_for_its_graph() {
        let (p, _) = pool(1 << 30);
        // Warm the cache with two blocks of one size class.
        drop((
            p.alloc("test", 4096).unwrap(),
            p.alloc("test", 4096).unwrap(),
        ));
        let drivers = p.stats().driver_allocs;
        p.begin_capture().unwrap();
        assert!(p.begin_capture().is_err(), "one capture at a time");
        let a = p.alloc("test", 4096).unwrap();
        drop(a);
        // The capture's freed block serves its next request of that class (b), the cache the one
        // after (c); then no cached block is left: an error, not a driver allocation (which would
        // break the capture).
        let b = p.alloc("test", 4000).unwrap();
        let c = p.alloc("test", 4096).unwrap();
        let err = p.alloc("test", 4096).unwrap_err();
        assert!(err.to_string().contains("graph capture"), "{err}");
        assert_eq!(p.stats().driver_allocs, drivers);
        drop(b);
        let kept = p.end_capture();
        assert_eq!(
            kept.len(),
            1,
            "the block freed during the capture belongs to the graph"
        );
        // Outside the capture, b's block is not handed out while the graph holds it.
        let d = p.alloc("test", 4096).unwrap();
        assert_eq!(p.stats().driver_allocs, drivers + 1);
        drop((c, d, kept));
        assert_eq!(p.stats().bytes_in_use, 0);
        assert_eq!(p.stats().bytes_cached, 3 * rounded_size(4096));
    }

    /// A small request during a capture takes a cached block of its own size before the capture's
    /// freed large block, which a later large request of the same capture then finds (as the
    /// uncaptured run that warmed the cache did).
    #[test]
    fn a_capture_takes_close_sizes_before_large_blocks() {
        let (p, _) = pool(1 << 30);
        drop((
            p.alloc("test", 64 << 10).unwrap(),
            p.alloc("test", 256 << 10).unwrap(),
        ));
        p.begin_capture().unwrap();
        let x = p.alloc("test", 256 << 10).unwrap();
        drop(x);
        let small = p.alloc("test", 64 << 10).unwrap();
        let large = p
            .alloc("test", 256 << 10)
            .expect("the capture's freed large block is still there");
        drop((small, large));
        let kept = p.end_capture();
        assert_eq!(kept.len(), 2);
        drop(kept);
        assert_eq!(p.stats().bytes_in_use, 0);
    }

    #[test]
    fn size_classes_round_up() {
        assert_eq!(rounded_size(0), 512);
        assert_eq!(rounded_size(1), 512);
        assert_eq!(rounded_size(512), 512);
        assert_eq!(rounded_size(513), 1024);
        assert_eq!(rounded_size(SMALL_LIMIT), SMALL_LIMIT);
        assert_eq!(rounded_size(SMALL_LIMIT + 1), 2 * LARGE_GRANULE);
    }

    #[test]
    fn a_loop_of_same_shapes_hits_the_driver_only_in_its_first_step() {
        let (p, _) = pool(1 << 30);
        for _ in 0..100 {
            let a = p.alloc("test", 4 * 3 * 32 * 32).unwrap();
            let b = p.alloc("test", 4 * 128 * 32 * 32).unwrap();
            let c = p.alloc("test", 4 * 3 * 32 * 32).unwrap();
            drop((a, b, c));
        }
        let s = p.stats();
        assert_eq!(s.driver_allocs, 3, "{s:?}");
        assert_eq!(s.cache_hits, 297, "{s:?}");
        assert_eq!(s.bytes_in_use, 0);
        assert_eq!(
            s.bytes_cached,
            2 * rounded_size(4 * 3 * 32 * 32) + rounded_size(4 * 128 * 32 * 32)
        );
    }

    #[test]
    fn reuse_is_bounded_by_size_ratio() {
        let (p, _) = pool(1 << 30);
        drop(p.alloc("test", 8 << 20).unwrap());
        // 1 MiB must not take the cached 8 MiB block.
        let small = p.alloc("test", 1 << 20).unwrap();
        assert_eq!(small.capacity(), 1 << 20);
        assert_eq!(p.stats().driver_allocs, 2);
        // 5 MiB may (8 <= 2 * 5).
        let mid = p.alloc("test", 5 << 20).unwrap();
        assert_eq!(mid.capacity(), 8 << 20);
        assert_eq!(p.stats().cache_hits, 1);
    }

    #[test]
    fn out_of_memory_releases_the_cache_then_retries() {
        let (p, live) = pool(10 << 20);
        drop(p.alloc("test", 6 << 20).unwrap()); // cached, still held from the device
        assert_eq!(live.load(Ordering::SeqCst), 6 << 20);
        // 7 MiB cannot reuse the smaller cached block and does not fit beside it: the pool must hand
        // the cached 6 MiB back to the driver and retry.
        let big = p.alloc("test", 7 << 20).unwrap();
        assert_eq!(big.capacity(), 7 << 20);
        assert_eq!(live.load(Ordering::SeqCst), 7 << 20);
        assert_eq!(p.stats().bytes_cached, 0);
    }

    #[test]
    fn out_of_memory_after_release_is_a_clear_error() {
        let (p, _) = pool(10 << 20);
        let _held = p.alloc("test", 6 << 20).unwrap();
        let err = p.alloc("sampler step", 6 << 20).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::OutOfMemory { requested, in_use, .. } if requested == 6 << 20 && in_use == 6 << 20),
            "{msg}"
        );
        assert!(
            msg.contains("sampler step") && msg.contains("out of memory"),
            "{msg}"
        );
    }

    #[test]
    fn release_cached_returns_memory_to_the_driver() {
        let (p, live) = pool(1 << 30);
        drop(p.alloc("test", 3 << 20).unwrap());
        drop(p.alloc("test", 1000).unwrap());
        assert_eq!(live.load(Ordering::SeqCst), (3 << 20) + 1024);
        assert_eq!(p.release_cached(), (3 << 20) + 1024);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }
}
