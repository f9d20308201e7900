//! The speed model of the GPU kernels at the main NCSN++ CIFAR-10 shapes: per convolution and the
//! attention, the work (FLOPs), the least memory traffic, the arithmetic intensity, the launch the
//! engine chooses (tile, split-K, CTAs, waves on an H100's 132 SMs) and the time that predicts against
//! the measured H100 peaks. `docs/kernels.md` holds the table (`markdown`) and `benches/speed_model.tsv`
//! the rows (`tsv`), both checked fresh by `tests/speed_model.rs`; the GPU check times the same ids
//! (`benches/speed_model.rs`, the engine at bf16; `tools/bench_pytorch.py`, cuDNN and SDPA through
//! PyTorch at bf16 channels_last) and reports both beside the prediction (`scripts/gpu_report.py`).

use std::fmt::Write as _;

use crate::backend::conv_plan::{ConvGemm, ConvPlan, ConvTile};

/// The H100 the model predicts for: what the project measured on its card, not the datasheet.
pub const H100_SMS: usize = 132;
/// Dense bf16 GEMM through PyTorch on the project's H100 (TFLOP/s).
pub const H100_BF16_TFLOPS: f64 = 790.0;
/// fp32 FFMA peak (datasheet, TFLOP/s): the rate of the SIMT kernels (the fp32 attention).
pub const H100_FP32_TFLOPS: f64 = 67.0;
/// Device-to-device copy bandwidth measured on the project's H100 (TB/s).
pub const H100_COPY_TBS: f64 = 3.0;

/// A convolution of the NCSN++ CIFAR-10 network at one batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// What it is in the network.
    pub role: &'static str,
    pub batch: usize,
    /// Square image side.
    pub hw: usize,
    pub cin: usize,
    pub cout: usize,
    /// Square kernel side (3 or 1), "same" padding, stride 1.
    pub k: usize,
}

impl ConvShape {
    /// The benchmark id: `model/conv<k>x<k>_<cin>to<cout>_<hw>x<hw>/b<batch>`.
    pub fn id(&self) -> String {
        format!(
            "model/conv{k}x{k}_{}to{}_{hw}x{hw}/b{}",
            self.cin,
            self.cout,
            self.batch,
            k = self.k,
            hw = self.hw
        )
    }

    pub fn gemm(&self) -> ConvGemm {
        ConvGemm {
            m: self.batch * self.hw * self.hw,
            cog: self.cout,
            k: self.k * self.k * self.cin,
            groups: 1,
        }
    }
}

/// The attention of the 16² level (sequence 256, one head, head dim = channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    pub batch: usize,
    pub hw: usize,
    pub channels: usize,
}

impl AttentionShape {
    /// The benchmark id: `model/attention_c<channels>_<hw>x<hw>/b<batch>`.
    pub fn id(&self) -> String {
        format!(
            "model/attention_c{}_{hw}x{hw}/b{}",
            self.channels,
            self.batch,
            hw = self.hw
        )
    }
}

const fn conv(role: &'static str, batch: usize, hw: usize, cin: usize, cout: usize, k: usize) -> ConvShape {
    ConvShape {
        role,
        batch,
        hw,
        cin,
        cout,
        k,
    }
}

/// The main CIFAR-10 convolutions (`../shared/specs/performance.md` §2), at the throughput batch 256
/// and at batch 1 (the latency case).
pub const CONV_SHAPES: [ConvShape; 13] = [
    conv("ResBlock conv, 32² level", 256, 32, 128, 128, 3),
    conv("ResBlock conv, 16² level", 256, 16, 256, 256, 3),
    conv("up-path conv after concat, 16²", 256, 16, 512, 256, 3),
    conv("ResBlock conv, 8² level", 256, 8, 256, 256, 3),
    conv("ResBlock conv, 4² level", 256, 4, 256, 256, 3),
    conv("1×1 shortcut, 16²", 256, 16, 512, 256, 1),
    conv("attention q, k, v projection, 16²", 256, 16, 256, 768, 1),
    conv("ResBlock conv, 32² level", 1, 32, 128, 128, 3),
    conv("ResBlock conv, 16² level", 1, 16, 256, 256, 3),
    conv("up-path conv after concat, 16²", 1, 16, 512, 256, 3),
    conv("ResBlock conv, 8² level", 1, 8, 256, 256, 3),
    conv("ResBlock conv, 4² level", 1, 4, 256, 256, 3),
    conv("1×1 shortcut, 16²", 1, 16, 512, 256, 1),
];

pub const ATTENTION_SHAPES: [AttentionShape; 2] = [
    AttentionShape {
        batch: 256,
        hw: 16,
        channels: 256,
    },
    AttentionShape {
        batch: 1,
        hw: 16,
        channels: 256,
    },
];

/// CTAs of one tile an SM holds at once (the kernels' `__launch_bounds__` minimum, which
/// `tests/kernel_resources.rs` checks ptxas reaches).
pub fn resident_ctas(tile: ConvTile) -> usize {
    match tile {
        ConvTile::T64x64 => 4,
        ConvTile::T128x128 => 2,
    }
}

/// CTAs of the tensor-core attention (`kernels/attention_tc.cu`) an SM holds at once: its
/// `__launch_bounds__` minimum, checked by `tests/kernel_resources.rs`.
pub const FLASH_ATTENTION_RESIDENT_CTAS: usize = 3;
/// Queries and output columns per CTA of the tensor-core attention (FA_BQ, FA_DV).
pub const FLASH_ATTENTION_QUERIES: usize = 64;
pub const FLASH_ATTENTION_COLUMNS: usize = 128;

/// One row of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub id: String,
    pub what: String,
    /// 2 per multiply-add.
    pub flops: f64,
    /// The least traffic of the kernel as a `--precision bf16` network stores tensors (bf16
    /// activations, a convolution's weights as their packed bf16 copy, each read once; output
    /// written once; split-K's fp32 partials written and read once more).
    pub bytes: f64,
    /// The launch: tile and split-K for a convolution, the kernel's layout for attention.
    pub launch: String,
    pub ctas: usize,
    /// CTAs ÷ (132 SMs × resident CTAs per SM).
    pub waves: f64,
    /// The fraction of the peak the last, partial wave leaves usable: CTAs ÷ (whole waves × slots).
    pub wave_efficiency: f64,
    /// The peak the kernel's arithmetic runs at (TFLOP/s).
    pub peak_tflops: f64,
    /// max(FLOPs ÷ (peak × wave efficiency), bytes ÷ bandwidth), in µs.
    pub predicted_us: f64,
    pub bound: &'static str,
}

impl Prediction {
    pub fn intensity(&self) -> f64 {
        self.flops / self.bytes
    }
}

/// How a kernel runs: its launch in words, CTAs, the CTAs an SM holds, the peak of its arithmetic.
struct Launch {
    text: String,
    ctas: usize,
    slots_per_sm: usize,
    peak_tflops: f64,
    /// The arithmetic the kernel executes per FLOP of the problem (above 1 where it recomputes).
    executed_per_flop: f64,
}

fn predict(id: String, what: String, flops: f64, bytes: f64, launch: Launch) -> Prediction {
    let Launch {
        text,
        ctas,
        slots_per_sm,
        peak_tflops,
        executed_per_flop,
    } = launch;
    let slots = H100_SMS * slots_per_sm;
    let waves = ctas as f64 / slots as f64;
    let wave_efficiency = ctas as f64 / (ctas.div_ceil(slots) * slots) as f64;
    let compute_us = flops * executed_per_flop / (peak_tflops * 1e12 * wave_efficiency) * 1e6;
    let memory_us = bytes / (H100_COPY_TBS * 1e12) * 1e6;
    Prediction {
        id,
        what,
        flops,
        bytes,
        launch: text,
        ctas,
        waves,
        wave_efficiency,
        peak_tflops,
        predicted_us: compute_us.max(memory_us),
        bound: if compute_us >= memory_us {
            "compute"
        } else {
            "memory"
        },
    }
}

/// The model of one convolution on the tensor-core (bf16) path, with the plan the launcher chooses
/// on 132 SMs.
pub fn conv_prediction(s: &ConvShape) -> Prediction {
    let g = s.gemm();
    let plan = ConvPlan::choose(g, H100_SMS, true);
    let flops = 2.0 * (g.m * g.cog * g.k) as f64;
    let x = s.batch * s.hw * s.hw * s.cin;
    let w = g.k * s.cout;
    let y = g.m * s.cout;
    let partials = if plan.splits > 1 {
        2 * plan.splits * y
    } else {
        0
    };
    // bf16 activations and weights (the layer's packed copy); fp32 partials.
    let bytes = 2.0 * (x + w + y) as f64 + 4.0 * partials as f64;
    let launch = if plan.splits > 1 {
        format!("{}, split-K {}", plan.tile.name(), plan.splits)
    } else {
        plan.tile.name().to_string()
    };
    predict(
        s.id(),
        format!(
            "{}×{} {}→{} @{}², batch {} ({})",
            s.k, s.k, s.cin, s.cout, s.hw, s.batch, s.role
        ),
        flops,
        bytes,
        Launch {
            text: launch,
            ctas: g.tiles(plan.tile) * plan.splits,
            slots_per_sm: resident_ctas(plan.tile),
            peak_tflops: H100_BF16_TFLOPS,
            executed_per_flop: 1.0,
        },
    )
}

/// The model of the bf16 attention (`kernels/attention_tc.cu`, FlashAttention-2 style on mma): a CTA
/// of 4 warps per 64 queries of an image and 128 output columns, reading q, k, v once from memory
/// (re-reads hit L2) and writing the output. A head dimension above 128 recomputes the scores once per
/// column slice: Q·Kᵀ runs `slices` times, P·V once.
pub fn attention_prediction(s: &AttentionShape) -> Prediction {
    let l = s.hw * s.hw;
    let flops = 2.0 * 2.0 * (s.batch * l * l * s.channels) as f64;
    // q, k, v and the output in bf16.
    let bytes = 2.0 * (4 * s.batch * l * s.channels) as f64;
    let slices = s.channels.div_ceil(FLASH_ATTENTION_COLUMNS);
    predict(
        s.id(),
        format!(
            "attention, sequence {l}, head dim {}, batch {}",
            s.channels, s.batch
        ),
        flops,
        bytes,
        Launch {
            text: format!(
                "flash {FLASH_ATTENTION_QUERIES}q × {FLASH_ATTENTION_COLUMNS} cols (S × {slices})"
            ),
            ctas: l.div_ceil(FLASH_ATTENTION_QUERIES) * s.batch * slices,
            slots_per_sm: FLASH_ATTENTION_RESIDENT_CTAS,
            peak_tflops: H100_BF16_TFLOPS,
            executed_per_flop: (slices + 1) as f64 / 2.0,
        },
    )
}

/// Every row of the model, convolutions first.
pub fn predictions() -> Vec<Prediction> {
    CONV_SHAPES
        .iter()
        .map(conv_prediction)
        .chain(ATTENTION_SHAPES.iter().map(attention_prediction))
        .collect()
}

/// The table of `docs/kernels.md`.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str(
        "| id | shape | GFLOP | MB moved | FLOP/B | launch | CTAs | waves | wave eff. | bound | predicted µs |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in predictions() {
        let _ = writeln!(
            s,
            "| `{}` | {} | {:.3} | {:.2} | {:.0} | {} | {} | {:.2} | {:.0}% | {} | {:.1} |",
            p.id,
            p.what,
            p.flops / 1e9,
            p.bytes / 1e6,
            p.intensity(),
            p.launch,
            p.ctas,
            p.waves,
            100.0 * p.wave_efficiency,
            p.bound,
            p.predicted_us
        );
    }
    s
}

/// `benches/speed_model.tsv`: the rows the GPU check's benchmarks and report read (the PyTorch
/// baseline builds its cases from the shape columns).
pub fn tsv() -> String {
    let mut s = String::from(
        "# Generated from src/speed_model.rs by tests/speed_model.rs; TRILEMMA_BLESS=1 regenerates it.\n\
         # id\tkind\tbatch\thw\tcin\tcout\tk\tgflop\tpredicted_us\n",
    );
    for c in &CONV_SHAPES {
        let p = conv_prediction(c);
        let _ = writeln!(
            s,
            "{}\tconv\t{}\t{}\t{}\t{}\t{}\t{:.6}\t{:.3}",
            p.id,
            c.batch,
            c.hw,
            c.cin,
            c.cout,
            c.k,
            p.flops / 1e9,
            p.predicted_us
        );
    }
    for a in &ATTENTION_SHAPES {
        let p = attention_prediction(a);
        let _ = writeln!(
            s,
            "{}\tattention\t{}\t{}\t{}\t{}\t0\t{:.6}\t{:.3}",
            p.id,
            a.batch,
            a.hw,
            a.channels,
            a.channels,
            p.flops / 1e9,
            p.predicted_us
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_32x32_conv_at_batch_256_is_compute_bound_on_big_tiles() {
        let p = conv_prediction(&CONV_SHAPES[0]);
        // 256·1024 pixels × 128 × 1152, 2 FLOPs each.
        assert_eq!(p.flops, 2.0 * 262144.0 * 128.0 * 1152.0);
        assert_eq!(p.launch, "128x128");
        assert_eq!(p.ctas, 2048);
        assert_eq!(p.bound, "compute");
        // 77.3 GFLOP at 790 TFLOP/s and 2048 of 2112 slots: about 101 µs.
        assert!((p.predicted_us - 100.8).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn the_c256_attention_recomputes_its_scores_once_per_column_slice() {
        let p = attention_prediction(&ATTENTION_SHAPES[0]);
        // 4 query blocks × 256 images × 2 column slices; Q·Kᵀ twice and P·V once: 1.5× the work.
        assert_eq!(p.ctas, 2048);
        let flops = 4.0 * 256.0 * 256.0 * 256.0 * 256.0;
        assert_eq!(p.flops, flops);
        let slots = (H100_SMS * FLASH_ATTENTION_RESIDENT_CTAS) as f64;
        let eff = 2048.0 / ((2048.0 / slots).ceil() * slots);
        let compute = 1.5 * flops / (H100_BF16_TFLOPS * 1e12 * eff) * 1e6;
        // q, k, v read and the output written once in bf16: 134 MB, more time than the arithmetic.
        let memory = p.bytes / (H100_COPY_TBS * 1e12) * 1e6;
        assert!(compute < memory, "{p:?}");
        assert_eq!(p.bound, "memory");
        assert!((p.predicted_us - memory).abs() < 1e-6, "{p:?}");
    }

    /// At batch 1 a 3×3 conv's arithmetic intensity lies below the ridge (bf16 peak ÷ bandwidth), yet
    /// even split over K its grid fills under a third of the GPU's CTA slots.
    #[test]
    fn batch_1_convs_split_k_below_the_ridge_on_a_mostly_idle_gpu() {
        let ridge = H100_BF16_TFLOPS / H100_COPY_TBS;
        for s in CONV_SHAPES.iter().filter(|s| s.batch == 1 && s.k == 3) {
            let p = conv_prediction(s);
            assert!(p.launch.contains("split-K"), "{p:?}");
            assert!(p.intensity() < ridge, "{p:?}");
            assert!(p.wave_efficiency < 1.0 / 3.0, "{p:?}");
        }
    }
}
