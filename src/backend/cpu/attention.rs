//! CPU single-head self-attention over all positions of an image, from packed q|k|v rows. Two GEMMs
//! per block of queries (logits, then the weighted sum of values) with a row softmax between.

use rayon::prelude::*;

use super::gemm::{rows_per_task, sgemm, MatRef};
use super::CpuStorage;
use crate::backend::AttentionOps;
use crate::error::Result;

/// `qkv` [n, p, 3c] → [n, p, c]: o[i] = Σ_j softmax_j(q_i·k_j / √c)·v_j.
fn attention(qkv: &[f32], n: usize, p: usize, c: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; n * p * c];
    if out.is_empty() {
        return Ok(out);
    }
    let scale = (c as f32).powf(-0.5);
    let rows = rows_per_task(n * p, 8, 128).min(p);
    // Tasks never straddle two samples: each sample's queries are split into blocks of `rows`.
    let blocks_per_sample = p.div_ceil(rows);
    let tasks: Vec<(usize, usize)> = (0..n)
        .flat_map(|s| (0..blocks_per_sample).map(move |b| (s, b * rows)))
        .collect();
    let results: Vec<Result<Vec<f32>>> = tasks
        .par_iter()
        .map(|&(s, q0)| {
            let m = rows.min(p - q0);
            let base = s * p * 3 * c;
            let sample = &qkv[base..base + p * 3 * c];
            let mut logits = vec![0.0f32; m * p];
            // logits[i, j] = scale · Σ_d q[q0 + i, d]·k[j, d]; k is read transposed by strides.
            let q = MatRef {
                data: &sample[q0 * 3 * c..],
                rs: 3 * c,
                cs: 1,
            };
            let kt = MatRef {
                data: &sample[c..],
                rs: 1,
                cs: 3 * c,
            };
            sgemm(m, c, p, scale, q, kt, 0.0, &mut logits, p, 1)?;
            for row in logits.chunks_exact_mut(p) {
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let mut sum = 0.0f64;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v as f64;
                }
                let inv = (1.0 / sum) as f32;
                row.iter_mut().for_each(|v| *v *= inv);
            }
            let a = MatRef {
                data: &logits,
                rs: p,
                cs: 1,
            };
            let v = MatRef {
                data: &sample[2 * c..],
                rs: 3 * c,
                cs: 1,
            };
            let mut o = vec![0.0f32; m * c];
            sgemm(m, p, c, 1.0, a, v, 0.0, &mut o, c, 1)?;
            Ok(o)
        })
        .collect();
    for (&(s, q0), r) in tasks.iter().zip(results) {
        let o = r?;
        let start = (s * p + q0) * c;
        out[start..start + o.len()].copy_from_slice(&o);
    }
    Ok(out)
}

impl AttentionOps for CpuStorage {
    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self> {
        attention(qkv.f32s("attention")?, n, positions, c).map(CpuStorage::F32)
    }
}
