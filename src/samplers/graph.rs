//! CUDA graphs of the fixed-step samplers (DDGAN's T steps, CLD's SSCS and Euler–Maruyama): a batch's
//! whole loop, captured once per batch size and replayed for every later batch of that size with one
//! graph launch (`--graph on`, the default where supported).
//!
//! Per batch size: the first batch runs as it always does (it fills the pool's cache and the networks'
//! input caches, which a capture draws on: a capture can neither allocate from the driver nor copy from
//! the host), the second is captured and then replayed, every later one is a replay. A capture that
//! fails (something in the loop a graph cannot hold) leaves that batch size uncaptured for the rest of
//! the run; the images are the same either way. Graphs need the GPU and Philox noise (a replay file is
//! read from the host).
//!
//! A replay gives the bits of an uncaptured run: the same kernels with the same arguments, the
//! Philox sample index read from the graph's per-batch word (`device::graph`).

use std::collections::HashMap;

use crate::device::{Device, DeviceGraph};
use crate::error::Result;
use crate::ops::FiniteWatch;
use crate::tensor::Tensor;

/// The work of one batch up to its finished state: its output on the device and the watch whose
/// slots say whether the state stayed finite (read back by the caller with the output).
pub type Watched = (Tensor, FiniteWatch);

enum Entry {
    /// A batch of this size ran uncaptured (the caches are warm); `failures` captures failed since.
    Warm { failures: usize },
    /// The captured loop, its output buffer and its watch.
    Graph(Box<Captured>),
    /// The capture failed; this size runs uncaptured.
    Uncaptured,
}

/// Captures tried per batch size before it runs uncaptured for the rest of the run.
const MAX_CAPTURE_FAILURES: usize = 2;

struct Captured {
    graph: DeviceGraph,
    out: Tensor,
    watch: FiniteWatch,
}

/// What the graphs of a run did, for the run summary and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GraphStats {
    pub captured: usize,
    pub replays: usize,
    pub failed_captures: usize,
}

/// One device's graphs for one run (model and plan fixed), by batch size.
pub struct GraphRuns {
    enabled: bool,
    entries: HashMap<usize, Entry>,
    stats: GraphStats,
}

impl GraphRuns {
    /// `enabled`: `--graph on`. Off, every batch runs uncaptured.
    pub fn new(enabled: bool) -> GraphRuns {
        GraphRuns {
            enabled,
            entries: HashMap::new(),
            stats: GraphStats::default(),
        }
    }

    pub fn stats(&self) -> GraphStats {
        self.stats
    }

    /// Drops every graph with the memory it holds (before an out-of-memory retry); later batches
    /// warm up and capture again.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The batch of `batch` samples starting at global sample `first_sample`: `body` (the batch's
    /// device work, which may run once uncaptured and once under capture) run, captured or replayed
    /// as above; then `collect` given its output and watch (for a replay, the graph's own buffers:
    /// what `collect` queues on the stream runs before the next replay rewrites them).
    pub fn run<R>(
        &mut self,
        device: &Device,
        batch: usize,
        first_sample: u32,
        body: &dyn Fn() -> Result<Watched>,
        collect: &dyn Fn(&Tensor, &FiniteWatch) -> Result<R>,
    ) -> Result<R> {
        let uncaptured = || -> Result<R> {
            let (out, watch) = body()?;
            collect(&out, &watch)
        };
        let Device::Cuda(dev) = device else {
            return uncaptured();
        };
        if !self.enabled {
            return uncaptured();
        }
        match self.entries.get(&batch) {
            None => {
                self.entries.insert(batch, Entry::Warm { failures: 0 });
                return uncaptured();
            }
            Some(Entry::Uncaptured) => return uncaptured(),
            Some(&Entry::Warm { failures }) => match dev.capture_graph(first_sample, body) {
                Ok((graph, (out, watch))) => {
                    self.stats.captured += 1;
                    let captured = Captured { graph, out, watch };
                    self.entries.insert(batch, Entry::Graph(Box::new(captured)));
                }
                Err(e) => {
                    // The first batch fills the networks' input caches, which then hold blocks its
                    // own later steps had taken from the pool; the pool may lack a block of some size
                    // for the capture after one batch, never after two. So one failure means: run
                    // this batch uncaptured and capture the next.
                    self.stats.failed_captures += 1;
                    let entry = if failures + 1 < MAX_CAPTURE_FAILURES {
                        Entry::Warm {
                            failures: failures + 1,
                        }
                    } else {
                        eprintln!(
                            "sample: batch size {batch} runs without a CUDA graph (capture failed: {e})"
                        );
                        Entry::Uncaptured
                    };
                    self.entries.insert(batch, entry);
                    return uncaptured();
                }
            },
            Some(Entry::Graph(_)) => {}
        }
        let Some(Entry::Graph(c)) = self.entries.get_mut(&batch) else {
            return uncaptured();
        };
        c.graph.replay(first_sample)?;
        self.stats.replays += 1;
        collect(&c.out, &c.watch)
    }
}
