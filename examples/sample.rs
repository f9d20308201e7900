//! Samples images from a model and prints what came out.
//!
//! ```sh
//! cargo run --release --example sample -- ddgan-digits 16
//! cargo run --release --example sample -- path/to/converted-model 64 sscs 100
//! ```

use trilemma::{DeviceSpec, Model, SampleOptions, Sampler};

fn main() -> trilemma::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "ddgan-digits".into());
    let num: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(16);
    let sampler: Option<Sampler> = args.next().map(|s| s.parse()).transpose()?;
    let steps: Option<usize> = args.next().and_then(|n| n.parse().ok());

    let opened = DeviceSpec::Auto.open()?;
    if let Some(note) = &opened.note {
        eprintln!("{note}");
    }
    let model = Model::load(&name, &opened.devices[0])?;
    let progress =
        |p: &trilemma::Progress| eprintln!("{}/{} images", p.images_done, p.images_total);
    let mut options = SampleOptions::new(num).seed(7).progress(&progress);
    options.sampler = sampler;
    options.steps = steps;
    let images = model.sample(&options)?;
    let mean = images.values.iter().sum::<f32>() / images.values.len() as f32;
    println!(
        "{name}: {:?} images (NCHW) in [0, 1], mean {mean:.3}",
        images.shape
    );
    Ok(())
}
