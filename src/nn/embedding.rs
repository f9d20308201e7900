//! Time embeddings and DDGAN's PixelNorm, on the host: they act on a batch of scalars, so they cost
//! nothing next to the network, and computing them here keeps the official float32 rounding exactly
//! (f64 evaluation of each elementary function, rounded to f32 where the official code holds f32).

/// exp(−j·ln(max_positions)/(half − 1)) for j < half, as both official codes build it in float32: the
/// step is rounded to f32, the product j·(−step) is an f32 product, the exponential is f32.
fn sinusoid_freqs(half: usize, max_positions: f64) -> Vec<f32> {
    let step = if half > 1 {
        (max_positions.ln() / (half - 1) as f64) as f32
    } else {
        0.0
    };
    (0..half)
        .map(|j| ((j as f32 * -step) as f64).exp() as f32)
        .collect()
}

/// sin(a), cos(a) of an f32 argument, each correctly rounded to f32.
fn sin_cos(a: f32) -> (f32, f32) {
    let (s, c) = (a as f64).sin_cos();
    (s as f32, c as f32)
}

/// CLD/DDGAN `get_timestep_embedding`: [sin(t·f), cos(t·f)] in f32, zero-padded to an odd `dim`.
pub fn sinusoidal(t: &[f32], dim: usize, max_positions: f64) -> Vec<f32> {
    let half = dim / 2;
    let freqs = sinusoid_freqs(half, max_positions);
    let mut out = vec![0.0f32; t.len() * dim];
    for (b, &tb) in t.iter().enumerate() {
        let row = &mut out[b * dim..(b + 1) * dim];
        for (j, &f) in freqs.iter().enumerate() {
            let (s, c) = sin_cos(tb * f);
            row[j] = s;
            row[half + j] = c;
        }
    }
    out
}

/// LSGM `PositionalEmbedding`: u = t·scale (f32), then [sin(u·f), cos(u·f)].
pub fn lsgm_positional(t: &[f32], dim: usize, scale: f32) -> Vec<f32> {
    let scaled: Vec<f32> = t.iter().map(|&v| v * scale).collect();
    sinusoidal(&scaled, dim, 10000.0)
}

/// CLD/DDGAN `GaussianFourierProjection` of x (the caller passes log t): p = ((x·W)·2)·π in f32,
/// [sin p, cos p].
pub fn gaussian_fourier(x: &[f32], w: &[f32]) -> Vec<f32> {
    let d = w.len();
    let pi = std::f32::consts::PI;
    let mut out = vec![0.0f32; x.len() * 2 * d];
    for (b, &xb) in x.iter().enumerate() {
        for (j, &wj) in w.iter().enumerate() {
            let p = ((xb * wj) * 2.0) * pi;
            let (s, c) = sin_cos(p);
            out[b * 2 * d + j] = s;
            out[b * 2 * d + d + j] = c;
        }
    }
    out
}

/// LSGM `RandomFourierEmbedding`: p = t·(w·2·3.14159265359) (the constant rounded to f32), [sin, cos].
pub fn lsgm_random_fourier(t: &[f32], w: &[f32]) -> Vec<f32> {
    let d = w.len();
    // The official constant, not π: it rounds to the same f32 as π, spelled as the code spells it.
    #[allow(clippy::approx_constant)]
    let c = 3.141_592_653_59_f64 as f32;
    let ws: Vec<f32> = w.iter().map(|&v| (v * 2.0) * c).collect();
    let mut out = vec![0.0f32; t.len() * 2 * d];
    for (b, &tb) in t.iter().enumerate() {
        for (j, &wj) in ws.iter().enumerate() {
            let (s, co) = sin_cos(tb * wj);
            out[b * 2 * d + j] = s;
            out[b * 2 * d + d + j] = co;
        }
    }
    out
}
