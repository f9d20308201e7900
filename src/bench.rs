//! `trilemma bench`: times network calls and whole sampling runs under the ids of the PyTorch baseline
//! (`tools/bench_pytorch.py`: `net/<family>/<preset>/b<batch>/fp32`, `sample/ddgan/<preset>/b<batch>/fp32`)
//! and prints them beside a baseline file measured on the same machine, so that the speed-up is a
//! ratio of two measurements on one device.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops;

/// One benchmark's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub id: String,
    /// Median wall time of one call, device work included (each call ends with a device sync).
    pub median_ms: f64,
    pub reps: usize,
    /// Matrix-op work of one call (2 FLOPs per multiply-add, as torch.utils.flop_counter counts).
    pub gflop: f64,
    /// Peak device memory one call takes beyond what was held before it (the memory pool's measure;
    /// None on the CPU).
    pub peak_device_bytes: Option<usize>,
}

impl Timing {
    pub fn gflop_per_s(&self) -> f64 {
        if self.median_ms > 0.0 {
            self.gflop / (self.median_ms / 1e3)
        } else {
            0.0
        }
    }
}

/// Times `run`: one warm-up call (which also counts its FLOPs), then calls until `min_seconds` have
/// passed and at least three were made (at most 1000).
pub fn time(
    id: &str,
    device: &Device,
    min_seconds: f64,
    run: &mut dyn FnMut() -> Result<()>,
) -> Result<Timing> {
    ops::reset_flop_count();
    let held = match device {
        Device::Cuda(d) => {
            device.synchronize()?;
            d.reset_peak_memory();
            Some(d.pool_stats().bytes_in_use)
        }
        Device::Cpu => None,
    };
    run()?;
    device.synchronize()?;
    let gflop = ops::flops_counted() as f64 / 1e9;
    let peak_device_bytes = match (device, held) {
        (Device::Cuda(d), Some(held)) => {
            Some(d.pool_stats().peak_bytes_in_use.saturating_sub(held))
        }
        _ => None,
    };
    let start = Instant::now();
    let mut ms = Vec::new();
    while ms.len() < 3 || (start.elapsed().as_secs_f64() < min_seconds && ms.len() < 1000) {
        let t = Instant::now();
        run()?;
        device.synchronize()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(Timing {
        id: id.to_string(),
        median_ms: ms[ms.len() / 2],
        reps: ms.len(),
        gflop,
        peak_device_bytes,
    })
}

/// A baseline file of `tools/bench_pytorch.py`: the device it ran on and the median per id.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub path: PathBuf,
    pub device: String,
    pub torch: String,
    pub median_ms: BTreeMap<String, f64>,
}

/// Reads a baseline JSON (`{"device", "torch", "results": [{"id", "median_ms"}, ...]}`).
pub fn read_baseline(path: &Path) -> Result<Baseline> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    let bad = |what: String| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a PyTorch baseline (JSON): {e}")))?;
    let results = v
        .get("results")
        .and_then(|r| r.as_array())
        .ok_or_else(|| bad("no `results` list: not a tools/bench_pytorch.py baseline".into()))?;
    let mut median_ms = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        let id = r.get("id").and_then(|x| x.as_str());
        let ms = r.get("median_ms").and_then(|x| x.as_f64());
        match (id, ms) {
            (Some(id), Some(ms)) if ms.is_finite() && ms > 0.0 => {
                median_ms.insert(id.to_string(), ms);
            }
            _ => {
                return Err(bad(format!(
                    "results[{i}] needs a string `id` and a positive `median_ms`"
                )))
            }
        }
    }
    let text_of = |k: &str| {
        v.get(k)
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .unwrap_or_else(|| "unknown".into())
    };
    Ok(Baseline {
        path: path.to_path_buf(),
        device: text_of("device"),
        torch: text_of("torch"),
        median_ms,
    })
}

/// The side-by-side table: engine median, GFLOP/s, the baseline's median for the same id and the
/// speed-up (baseline time / engine time; above 1 the engine is faster).
pub fn table(device: &str, timings: &[Timing], baseline: Option<&Baseline>) -> String {
    let mut out = format!("engine on {device}");
    if let Some(b) = baseline {
        out += &format!(
            "; PyTorch baseline {} (device {}, torch {})",
            b.path.display(),
            b.device,
            b.torch
        );
    }
    out += "\n";
    let w = timings.iter().map(|t| t.id.len()).max().unwrap_or(2).max(2);
    out += &format!(
        "{:<w$}  {:>11}  {:>9}  {:>11}  {:>8}\n",
        "id", "engine ms", "GFLOP/s", "PyTorch ms", "speed-up"
    );
    for t in timings {
        let base = baseline.and_then(|b| b.median_ms.get(&t.id));
        let (b_ms, ratio) = match base {
            Some(&ms) => (format!("{ms:.3}"), format!("{:.2}x", ms / t.median_ms)),
            None => ("-".into(), "-".into()),
        };
        out += &format!(
            "{:<w$}  {:>11.3}  {:>9.1}  {:>11}  {:>8}\n",
            t.id,
            t.median_ms,
            t.gflop_per_s(),
            b_ms,
            ratio
        );
    }
    out
}

/// The engine's results as JSON, in the baseline's shape (`{"device", "results": [...]}`).
pub fn to_json(device: &str, timings: &[Timing]) -> String {
    let results: Vec<serde_json::Value> = timings
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "median_ms": t.median_ms,
                "reps": t.reps,
                "gflop": t.gflop,
                "gflop_per_s": t.gflop_per_s(),
                "peak_device_bytes": t.peak_device_bytes,
            })
        })
        .collect();
    let v = serde_json::json!({ "device": device, "engine": "trilemma", "results": results });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}
