//! `trilemma forward`: one network call of a converted model on named input tensors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::PartArg;

#[derive(clap::Args)]
pub struct ForwardArgs {
    /// A converted model directory (config.json + model.safetensors) or an embedded model's name
    /// (cld-digits, ddgan-digits, lsgm-digits).
    #[arg(long)]
    pub model: PathBuf,
    /// A safetensors file with the named inputs (NCHW, as PyTorch holds them).
    #[arg(long)]
    pub inputs: PathBuf,
    /// Where to write the outputs (safetensors; written atomically). Optional with --expect.
    #[arg(long, required_unless_present = "expect")]
    pub out: Option<PathBuf>,
    /// A safetensors file of expected outputs: each of its tensors is compared with the output of
    /// that name (relative L2 error and largest absolute difference); the exit status is 0 when all
    /// are within --rtol, 1 when one is not.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// The largest relative L2 error ‖out − expected‖ / ‖expected‖ that passes (1e-4: fp32 on a GPU;
    /// the CPU reaches 1e-5).
    #[arg(long, default_value_t = 1e-4, requires = "expect")]
    pub rtol: f64,
    /// auto (a GPU where there is one, else the CPU), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: crate::device::DeviceSpec,
    /// For LSGM models: which network to run.
    #[arg(long, value_enum)]
    pub part: Option<PartArg>,
    /// How a GPU computes convolutions and linear layers: fp32 (FFMA, the reference), 3xtf32
    /// (fp32-accurate on tensor cores), tf32, bf16 or fp16 (operands rounded; within 1e-2).
    #[arg(long, default_value = "fp32")]
    pub precision: crate::Precision,
}

/// `trilemma forward`: Ok(false) when --expect found an output outside the tolerance.
pub fn run(a: &ForwardArgs) -> crate::Result<bool> {
    let (model, inputs) = (&a.model, &a.inputs);
    use crate::Part;
    let device = super::open_device(a.device, "forward")?;
    device.set_precision(a.precision)?;
    let part = a.part.map(|p| match p {
        PartArg::Encoder => Part::Encoder,
        PartArg::Decoder => Part::Decoder,
        PartArg::Score => Part::Score,
    });
    let m = crate::Model::load(model, &device)?;
    let st = crate::SafeTensors::open(inputs)?;
    let outputs = m.forward_safetensors(&st, part)?;
    let refs: Vec<(&str, &crate::Tensor)> = outputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut meta = BTreeMap::new();
    meta.insert("family".to_string(), m.family.name().to_string());
    meta.insert("device".to_string(), device.describe());
    meta.insert("layout".to_string(), "NCHW".to_string());
    if let Some(out) = &a.out {
        crate::io::safetensors::save(out, &refs, &meta)?;
    }
    let Some(expect) = &a.expect else {
        for (name, t) in &outputs {
            println!("{name} {:?}", t.shape());
        }
        return Ok(true);
    };
    compare(&outputs, expect, a.rtol)
}

/// Each tensor of the file `expect` against the output of its name: a line per tensor, and whether all
/// are within `rtol`. An expected tensor the call did not produce is an error naming it.
fn compare(
    outputs: &[(String, crate::Tensor)],
    expect: &std::path::Path,
    rtol: f64,
) -> crate::Result<bool> {
    let st = crate::io::safetensors::SafeTensors::open(expect)?;
    let mut all = true;
    let names: Vec<String> = st.names().map(str::to_string).collect();
    for name in &names {
        let Some((_, out)) = outputs.iter().find(|(n, _)| n == name) else {
            return Err(crate::Error::BadInput {
                origin: expect.display().to_string(),
                tensor: name.clone(),
                reason: format!(
                    "is not an output of this call (outputs: {})",
                    outputs
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        };
        let want = st.load_any_shape(name, &crate::Device::Cpu)?;
        if want.shape() != out.shape() {
            println!(
                "{name}: FAIL shape {:?}, expected {:?}",
                out.shape(),
                want.shape()
            );
            all = false;
            continue;
        }
        let (got, want) = (out.to_vec_f32()?, want.to_vec_f32()?);
        let (mut diff2, mut ref2, mut max_abs) = (0f64, 0f64, 0f64);
        for (&g, &w) in got.iter().zip(&want) {
            let d = f64::from(g) - f64::from(w);
            diff2 += d * d;
            ref2 += f64::from(w) * f64::from(w);
            max_abs = max_abs.max(d.abs());
        }
        let rel = if ref2 > 0.0 {
            (diff2 / ref2).sqrt()
        } else {
            diff2.sqrt()
        };
        // NaN anywhere fails (the comparison below is false for NaN).
        let pass = rel <= rtol && max_abs.is_finite();
        all &= pass;
        println!(
            "{name} {:?}: rel-L2 {rel:.3e}, max-abs {max_abs:.3e} ({} rtol {rtol:.0e})",
            out.shape(),
            if pass { "pass," } else { "FAIL, over" }
        );
    }
    let n = names.len();
    println!(
        "{}: {n} expected tensor{} compared",
        if all { "pass" } else { "FAIL" },
        if n == 1 { "" } else { "s" }
    );
    Ok(all)
}
