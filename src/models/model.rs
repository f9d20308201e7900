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

pub struct Model {
    pub dir: PathBuf,
    pub family: Family,
    pub preset: Option<String>,
    pub config: Config,
    pub network: Network,
}

fn bad(file: &Path, what: &str, reason: impl Into<String>) -> Error {
    Error::BadModel {
        file: file.to_path_buf(),
        what: what.into(),
        reason: reason.into(),
    }
}

impl Model {
    /// Loads `dir` onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Model> {
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
        })
    }
}
