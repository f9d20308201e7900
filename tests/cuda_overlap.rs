//! A run's batches overlap on a GPU (samplers/batches.rs): batch b's work (its graph replay, or its
//! kernels) is queued before the host waits for batch b−1's images, which come back through
//! page-locked memory behind an event, so the host never synchronizes the stream between batches.
//! Checked from the emulator's trace of driver calls, in order; the images are the bits of batches
//! run one at a time. The emulator lands a page-locked copy only when the host waits for it (before,
//! the buffer reads as NaN), so reading a batch early would fail here. A non-finite state found by a
//! batch's watch is still the run's error when the read-back is deferred.
//!
//! The emulator's counters and trace are global to the process, so these tests take one lock.

mod common;

use std::sync::Mutex;

use common::{gpu_or_skip, test_model, TempDir};
use trilemma::io::safetensors::{self, SafeTensors};
use trilemma::models::Model;
use trilemma::samplers::batches::run_batches;
use trilemma::samplers::graph::GraphRuns;
use trilemma::samplers::run::{Plan, SampledBatch};
use trilemma::samplers::Noise;
use trilemma::{Device, Error, Tensor};
use trilemma_cuda_emu::TraceOp;

static COUNTERS: Mutex<()> = Mutex::new(());

fn philox(first: usize) -> Noise<'static> {
    Noise::Philox {
        seed: 11,
        first_sample: first as u32,
    }
}

/// Runs `batches` of `plan` through [`run_batches`] and gives what was delivered, in order.
fn run(
    plan: &Plan,
    m: &Model,
    batches: &[std::ops::Range<usize>],
    dev: &Device,
    graphs: &mut GraphRuns,
) -> trilemma::Result<Vec<(usize, SampledBatch)>> {
    let mut got = Vec::new();
    let mut deliver = |first: usize, b: SampledBatch| {
        got.push((first, b));
        Ok(true)
    };
    run_batches(plan, m, batches, &philox, dev, graphs, &mut deliver)?;
    Ok(got)
}

/// Where in `trace` each kernel-or-graph submission and each event wait sits.
fn positions(trace: &[TraceOp], want: impl Fn(&TraceOp) -> bool) -> Vec<usize> {
    trace
        .iter()
        .enumerate()
        .filter(|(_, op)| want(op))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn each_batch_is_queued_before_the_previous_batch_is_waited_for() {
    let Some(dev) = gpu_or_skip("each_batch_is_queued_before_the_previous_batch_is_waited_for")
    else {
        return;
    };
    if !trilemma::device::is_emulated() {
        eprintln!("SKIP each_batch_is_queued_before_the_previous_batch_is_waited_for: reads the emulator's trace");
        return;
    }
    let _turn = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let batches: Vec<_> = (0..3).map(|b| 2 * b..2 * b + 2).collect();
    for (model, sampler, steps) in [
        ("ddgan_small", None, None),
        ("cld_small", Some(trilemma::Sampler::Sscs), Some(3)),
    ] {
        let m = Model::load(test_model(model), &dev).unwrap();
        let plan = Plan::new(&m, sampler, steps).unwrap();
        // One batch at a time: each waited for before the next is queued.
        let alone: Vec<SampledBatch> = batches
            .iter()
            .map(|r| {
                let mut g = GraphRuns::new(false);
                plan.enqueue(&m, r.len(), &philox(r.start), &dev, &mut g)
                    .unwrap()
                    .wait()
                    .unwrap()
            })
            .collect();
        for graph in [true, false] {
            let tag = format!("{model} graph {}", if graph { "on" } else { "off" });
            let mut graphs = GraphRuns::new(graph);
            let before = trilemma_cuda_emu::stats();
            trilemma_cuda_emu::set_trace(true);
            let got = run(&plan, &m, &batches, &dev, &mut graphs).unwrap();
            let trace = trilemma_cuda_emu::take_trace();
            trilemma_cuda_emu::set_trace(false);
            let d = trilemma_cuda_emu::stats().since(&before);
            // The images: delivered in order, the bits of the batches run alone, in [0, 1].
            assert_eq!(got.len(), 3, "{tag}");
            for ((first, b), (r, a)) in got.iter().zip(batches.iter().zip(&alone)) {
                assert_eq!(*first, r.start, "{tag}");
                assert_eq!(b.shape, a.shape, "{tag}");
                assert!(
                    b.values.iter().all(|v| (0.0..=1.0).contains(v)),
                    "{tag}: a value outside [0, 1] (read before its copy landed?)"
                );
                let same = b
                    .values
                    .iter()
                    .zip(&a.values)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same,
                    "{tag}: batch at {first} differs from the batch run alone"
                );
            }
            // The host waits for each batch once, on its event; the read-backs are page-locked.
            let waits = positions(&trace, |op| matches!(op, TraceOp::EventSync(_)));
            assert_eq!(waits.len(), 3, "{tag}: one wait per batch: {d:?}");
            let pageable = positions(&trace, |op| {
                matches!(op, TraceOp::DtoH { pinned: false, .. })
            });
            // Batch b+1's work is submitted before the host waits for batch b.
            let submits = positions(&trace, |op| {
                matches!(op, TraceOp::Launch(_) | TraceOp::GraphLaunch)
            });
            let batch_starts: Vec<usize> = {
                // A batch's submissions follow the previous batch's read-back record.
                let records = positions(&trace, |op| matches!(op, TraceOp::EventRecord(_)));
                assert_eq!(records.len(), 3, "{tag}");
                records[..2]
                    .iter()
                    .map(|&r| {
                        *submits
                            .iter()
                            .find(|&&s| s > r)
                            .unwrap_or_else(|| panic!("{tag}: no work after record {r}"))
                    })
                    .collect()
            };
            for b in 0..2 {
                assert!(
                    batch_starts[b] < waits[b],
                    "{tag}: batch {} was submitted (trace {}) after the wait for batch {b} (trace {})",
                    b + 1,
                    batch_starts[b],
                    waits[b]
                );
            }
            if graph {
                let graphs_at = positions(&trace, |op| matches!(op, TraceOp::GraphLaunch));
                assert_eq!(
                    graphs_at.len(),
                    2,
                    "{tag}: batches 1 and 2 are graph launches"
                );
                // Between the first replay and the end: no synchronize and no pageable copy.
                let first = graphs_at[0];
                assert!(
                    !trace[first..].iter().any(|op| matches!(op, TraceOp::Sync)),
                    "{tag}: a synchronize between replays"
                );
                assert!(
                    pageable.iter().all(|&p| p < first),
                    "{tag}: a pageable read-back between replays"
                );
            }
            println!(
                "{tag}: {} host launches, {} graph launches, {} device-to-host copies ({} page-locked), \
                 {} event waits, {} synchronizes, {} page-locked allocations",
                d.total_launches(),
                d.graph_launches,
                d.dtoh.count,
                d.dtoh_pinned.count,
                d.event_synchronizations,
                d.synchronizations,
                d.pinned_allocations
            );
            assert!(
                d.pinned_allocations <= 2,
                "{tag}: staging buffers are reused: {d:?}"
            );
        }
    }
}

#[test]
fn a_non_finite_batch_is_the_runs_error_with_the_read_back_deferred() {
    let Some(dev) = gpu_or_skip("a_non_finite_batch_is_the_runs_error_with_the_read_back_deferred")
    else {
        return;
    };
    let _turn = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    // ddgan_small with one weight tensor overflowing: every batch's state turns non-finite.
    let tmp = TempDir::new("overlap-nan");
    let src_dir = test_model("ddgan_small");
    std::fs::copy(src_dir.join("config.json"), tmp.path().join("config.json")).unwrap();
    let src = SafeTensors::open(src_dir.join("model.safetensors")).unwrap();
    let mut names: Vec<String> = src.names().map(|n| n.to_string()).collect();
    names.sort();
    let load = |n: &str| src.load_any_shape(n, &Device::Cpu).unwrap();
    let target = names
        .iter()
        .find(|n| n.ends_with("weight") && load(n).elem_count() > 16)
        .expect("a weight tensor")
        .clone();
    let tensors: Vec<(String, Tensor)> = names
        .iter()
        .map(|n| {
            let t = load(n);
            let t = if *n == target {
                let v = vec![f32::MAX; t.elem_count()];
                Tensor::from_f32(&v, t.shape(), t.dtype(), &Device::Cpu).unwrap()
            } else {
                t
            };
            (n.clone(), t)
        })
        .collect();
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    safetensors::save(tmp.path().join("model.safetensors"), &refs, src.metadata()).unwrap();
    let m = Model::load(tmp.path(), &dev).unwrap();
    let plan = Plan::new(&m, None, None).unwrap();
    let batches: Vec<_> = (0..3).map(|b| b..b + 1).collect();
    for graph in [true, false] {
        match run(&plan, &m, &batches, &dev, &mut GraphRuns::new(graph)) {
            Err(Error::NonFinite { tensor, step }) => {
                println!("graph {graph}: {target} overflowing: non-finite {tensor} at step {step}");
                assert_eq!(tensor, "x", "graph {graph}");
                assert!(step <= 4, "graph {graph}: step {step}");
            }
            Err(e) => panic!("graph {graph}: expected a non-finite error, got {e}"),
            Ok(got) => panic!(
                "graph {graph}: a run with an overflowing weight delivered {} batches",
                got.len()
            ),
        }
    }
}
