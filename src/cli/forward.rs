//! `trilemma forward`: one network call of a converted model on named input tensors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::PartArg;

#[derive(clap::Args)]
pub struct ForwardArgs {
    /// The converted model directory (config.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// A safetensors file with the named inputs (NCHW, as PyTorch holds them).
    #[arg(long)]
    pub inputs: PathBuf,
    /// Where to write the outputs (safetensors; written atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// auto (a GPU where there is one, else the CPU), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: trilemma::device::DeviceSpec,
    /// For LSGM models: which network to run.
    #[arg(long, value_enum)]
    pub part: Option<PartArg>,
}

/// `trilemma forward`.
pub fn run(a: &ForwardArgs) -> trilemma::Result<()> {
    let (model, inputs, out) = (&a.model, &a.inputs, &a.out);
    use trilemma::models::forward::{self, Part};
    let device = super::open_device(a.device, "forward")?;
    let part = a.part.map(|p| match p {
        PartArg::Encoder => Part::Encoder,
        PartArg::Decoder => Part::Decoder,
        PartArg::Score => Part::Score,
    });
    let m = trilemma::models::Model::load(model, &device)?;
    let st = trilemma::io::safetensors::SafeTensors::open(inputs)?;
    let outputs = forward::forward(&m, &st, part, &device)?;
    let refs: Vec<(&str, &trilemma::Tensor)> =
        outputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut meta = BTreeMap::new();
    meta.insert("family".to_string(), m.family.name().to_string());
    meta.insert("device".to_string(), device.describe());
    meta.insert("layout".to_string(), "NCHW".to_string());
    trilemma::io::safetensors::save(out, &refs, &meta)?;
    for (name, t) in &outputs {
        println!("{name} {:?}", t.shape());
    }
    Ok(())
}
