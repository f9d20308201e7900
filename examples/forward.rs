//! One network call on tensors in memory: a DDGAN generator's x0 from (x_t, t, z).
//!
//! ```sh
//! cargo run --release --example forward -- ddgan-digits
//! ```

use trilemma::{DType, DeviceSpec, Model, Tensor};

fn main() -> trilemma::Result<()> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ddgan-digits".into());
    let device = DeviceSpec::Auto.open()?.devices.remove(0);
    let model = Model::load(&name, &device)?;
    let (b, c, h, w) = (2, 1, 16, 16);
    let nz = model.config.usize("nz")?;
    // Fresh, non-constant inputs: a ramp for x_t and z, two different step indices.
    let ramp = |n: usize| {
        (0..n)
            .map(|i| (i as f32 * 0.37).sin())
            .collect::<Vec<f32>>()
    };
    let x_t = Tensor::from_f32(&ramp(b * c * h * w), &[b, c, h, w], DType::F32, &device)?;
    let t = Tensor::from_f32(&[3.0, 0.0], &[b], DType::F32, &device)?;
    let z = Tensor::from_f32(&ramp(b * nz), &[b, nz], DType::F32, &device)?;
    for (name, out) in model.forward(&[("x_t", &x_t), ("t", &t), ("z", &z)], None)? {
        let v = out.to_vec_f32()?;
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        println!("{name}: shape {:?}, max |value| {max:.4}", out.shape());
    }
    Ok(())
}
