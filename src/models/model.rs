//! A converted model directory (docs/model-format.md): `config.json` + `model.safetensors`, loaded and
//! validated as a whole before anything runs. Every tensor the config implies must be present with
//! the right shape and dtype (F32) and finite values, and every tensor in the file must be used.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::config::Config;
use super::ncsnpp::Ncsnpp;
use super::nvae::Nvae;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;
use crate::nn::Weights;

/// The three model families the engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Cld,
    Ddgan,
    Lsgm,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "cld" => Some(Family::Cld),
            "ddgan" => Some(Family::Ddgan),
            "lsgm" => Some(Family::Lsgm),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Cld => "cld",
            Family::Ddgan => "ddgan",
            Family::Lsgm => "lsgm",
        }
    }
}

pub const FORMAT: &str = "trilemma-model/1";

// One per loaded model; the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Network {
    /// CLD-SGM's score network α_θ(u, t).
    Cld(Ncsnpp),
    /// DDGAN's generator x0 = G(x_t, t, z).
    Ddgan(Ncsnpp),
    /// LSGM: the NVAE and the latent score network.
    Lsgm { vae: Nvae, score: Ncsnpp },
}

/// A loaded model: its family, its config and its networks' weights on one device.
pub struct Model {
    /// The model directory (embedded models: `<embedded>/NAME`).
    pub dir: PathBuf,
    pub family: Family,
    /// The config's named preset (`cifar10`, ...), when it names one.
    pub preset: Option<String>,
    /// `config.json`: the official hyperparameters.
    pub config: Config,
    /// The networks; reached through [`Model::forward`] (and, with the `internals` feature,
    /// [`Model::network`]).
    pub(crate) network: Network,
    /// The device holding the weights.
    pub device: Device,
    /// What [`Model::load`] was given (a directory or an embedded name): where copies for other
    /// devices are loaded from.
    pub(crate) source: PathBuf,
}

fn bad(file: &Path, what: &str, reason: impl Into<String>) -> Error {
    Error::BadModel {
        file: file.to_path_buf(),
        what: what.into(),
        reason: reason.into(),
    }
}

impl Model {
    /// Loads a model onto `device`: `name_or_dir` is a converted model directory (config.json +
    /// model.safetensors, docs/model-format.md) or the name of an embedded model (`cld-digits`,
    /// `ddgan-digits`, `lsgm-digits`); a directory of that name wins. The model is validated as a whole
    /// first: every tensor the config implies present with its shape and finite values, every tensor
    /// of the file used.
    ///
    /// ```
    /// # fn main() -> trilemma::Result<()> {
    /// let model = trilemma::Model::load("ddgan-digits", &trilemma::Device::Cpu)?;
    /// println!("a {} model from {}", model.family.name(), model.dir.display());
    /// # Ok(()) }
    /// ```
    pub fn load(name_or_dir: impl AsRef<Path>, device: &Device) -> Result<Model> {
        let spec = name_or_dir.as_ref();
        if spec.join("config.json").is_file() {
            return Model::load_dir(spec, device);
        }
        if let Some(name) = spec.to_str().filter(|n| super::defaults::is_default(n)) {
            let mut m = super::defaults::load(name, device)?;
            m.source = spec.to_path_buf();
            return Ok(m);
        }
        if spec.is_dir() {
            // Its missing config.json is the error.
            return Model::load_dir(spec, device);
        }
        Err(Error::UnknownModel {
            name: spec.display().to_string(),
            embedded: super::defaults::names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
        })
    }

    /// Network evaluations issued so far by the score network or generator (the samplers' NFE; the
    /// NVAE's calls are not counted).
    pub fn network_evaluations(&self) -> u64 {
        match &self.network {
            Network::Cld(n) | Network::Ddgan(n) => n.evaluations(),
            Network::Lsgm { score, .. } => score.evaluations(),
        }
    }

    /// The shape [C, H, W] of one sampled image.
    pub fn image_shape(&self) -> Result<[usize; 3]> {
        Ok(match &self.network {
            Network::Cld(net) => {
                let a = net.arch();
                [a.out_channels, a.image_size, a.image_size]
            }
            Network::Ddgan(net) => {
                let a = net.arch();
                [a.in_channels, a.image_size, a.image_size]
            }
            Network::Lsgm { vae, .. } => {
                let a = vae.arch();
                [a.image_channels, a.image_size, a.image_size]
            }
        })
    }

    /// The networks themselves (feature `internals`: the engine's tests reach into them).
    #[cfg(feature = "internals")]
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The names [`Model::load`] takes for the models embedded in this build (feature
    /// `embedded-models`; none without it).
    ///
    /// ```
    /// # #[cfg(feature = "embedded-models")]
    /// assert!(trilemma::Model::embedded().contains(&"ddgan-digits"));
    /// ```
    pub fn embedded() -> Vec<&'static str> {
        super::defaults::names()
    }

    /// Loads the converted model directory `dir` onto `device` (no embedded names).
    pub fn load_dir(dir: impl AsRef<Path>, device: &Device) -> Result<Model> {
        let dir = dir.as_ref();
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(Error::io(&cfg_path))?;
        let st = SafeTensors::open(dir.join("model.safetensors"))?;
        Model::from_parts(dir, &cfg_path, &text, &st, device)
    }

    /// A model from its config text and parsed weights (`dir` and `cfg_path` name them in errors):
    /// the embedded default models load this way.
    pub fn from_parts(
        dir: &Path,
        cfg_path: &Path,
        text: &str,
        st: &SafeTensors,
        device: &Device,
    ) -> Result<Model> {
        let cfg_path = cfg_path.to_path_buf();
        let root: Value = serde_json::from_str(text)
            .map_err(|e| bad(&cfg_path, "config.json", format!("invalid JSON: {e}")))?;
        let Value::Object(root) = root else {
            return Err(bad(&cfg_path, "config.json", "not a JSON object"));
        };
        match root.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(bad(
                    &cfg_path,
                    "`format`",
                    format!("`{other}` is not supported (expected `{FORMAT}`)"),
                ))
            }
            None => {
                return Err(bad(
                    &cfg_path,
                    "`format`",
                    format!("missing (expected `{FORMAT}`)"),
                ))
            }
        }
        let family_name = root
            .get("family")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&cfg_path, "`family`", "missing (cld, ddgan or lsgm)"))?;
        let family = Family::parse(family_name).ok_or_else(|| {
            bad(
                &cfg_path,
                "`family`",
                format!("`{family_name}` is not one of cld, ddgan, lsgm"),
            )
        })?;
        let preset = root
            .get("preset")
            .and_then(Value::as_str)
            .map(str::to_string);
        let config = match root.get("config") {
            Some(Value::Object(m)) => Config::new(&cfg_path, m.clone()),
            _ => return Err(bad(&cfg_path, "`config`", "missing or not an object")),
        };

        let st_path = st.file().to_path_buf();
        for (key, want) in [("format", FORMAT), ("family", family.name())] {
            if let Some(found) = st.metadata().get(key) {
                if found != want {
                    return Err(bad(
                        &st_path,
                        &format!("metadata `{key}`"),
                        format!("`{found}`, but config.json says `{want}`"),
                    ));
                }
            }
        }
        let w = Weights::new(st, "", device);
        let network = match family {
            Family::Cld => Network::Cld(Ncsnpp::load(family, &config, &w)?),
            Family::Ddgan => Network::Ddgan(Ncsnpp::load(family, &config, &w)?),
            Family::Lsgm => Network::Lsgm {
                vae: Nvae::load(&config, &w.sub("vae"))?,
                score: Ncsnpp::load(family, &config, &w.sub("score"))?,
            },
        };
        w.finish()?;
        Ok(Model {
            dir: dir.to_path_buf(),
            family,
            preset,
            config,
            network,
            device: device.clone(),
            source: dir.to_path_buf(),
        })
    }
}
