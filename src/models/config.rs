//! Reading official hyperparameters from a `config.json` (or a fixture's metadata): the values keep
//! the official types, which differ by family (CLD writes lists as "1,2,2,2" strings, DDGAN and LSGM as
//! JSON lists), so every getter accepts each spelling and names the key and file on any problem.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct Config {
    file: PathBuf,
    map: Map<String, Value>,
}

impl Config {
    pub fn new(file: impl Into<PathBuf>, map: Map<String, Value>) -> Config {
        Config {
            file: file.into(),
            map,
        }
    }

    /// Parses a JSON object (e.g. the `config` metadata of a fixture).
    pub fn from_json_str(file: impl Into<PathBuf>, text: &str) -> Result<Config> {
        let file = file.into();
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Config { file, map }),
            Ok(_) => Err(Error::BadModel {
                file,
                what: "config".into(),
                reason: "not a JSON object".into(),
            }),
            Err(e) => Err(Error::BadModel {
                file,
                what: "config".into(),
                reason: format!("invalid JSON: {e}"),
            }),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    pub fn error(&self, key: &str, reason: impl Into<String>) -> Error {
        Error::BadModel {
            file: self.file.clone(),
            what: format!("config key `{key}`"),
            reason: reason.into(),
        }
    }

    fn required(&self, key: &str) -> Result<&Value> {
        self.map
            .get(key)
            .ok_or_else(|| self.error(key, "missing (the network needs it)"))
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// `get(key)` when the key is present, else the default.
    fn or<T>(
        &self,
        key: &str,
        get: impl Fn(&Self, &str) -> Result<T>,
        default: impl FnOnce() -> T,
    ) -> Result<T> {
        match self.has(key) {
            true => get(self, key),
            false => Ok(default()),
        }
    }

    pub fn f64(&self, key: &str) -> Result<f64> {
        let v = self.required(key)?;
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| self.error(key, format!("expected a number, found {v}")))
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        self.or(key, Self::f64, || default)
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        let x = self.f64(key)?;
        if x >= 0.0 && x.fract() == 0.0 && x <= u32::MAX as f64 {
            Ok(x as usize)
        } else {
            Err(self.error(key, format!("expected a non-negative integer, found {x}")))
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool> {
        let v = self.required(key)?;
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_i64().map(|i| i != 0),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| self.error(key, format!("expected a boolean, found {v}")))
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        self.or(key, Self::bool, || default)
    }

    pub fn str(&self, key: &str) -> Result<String> {
        match self.required(key)? {
            Value::String(s) => Ok(s.clone()),
            v => Err(self.error(key, format!("expected a string, found {v}"))),
        }
    }

    pub fn str_or(&self, key: &str, default: &str) -> Result<String> {
        self.or(key, Self::str, || default.to_string())
    }

    /// The input size LSGM's `dataset` implies (util/utils.py): MNIST and OMNIGLOT digits are padded
    /// to 32; `celeba_256`-style names carry their size.
    pub fn dataset_image_size(&self, dataset: &str) -> Result<usize> {
        match dataset {
            "mnist" | "omniglot" | "cifar10" => Ok(32),
            "ffhq" => Ok(256),
            d if d.starts_with("celeba") || d.starts_with("imagenet") || d.starts_with("lsun") => d
                .rsplit('_')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| self.error("dataset", format!("no image size in `{d}`"))),
            other => Err(self.error("dataset", format!("unknown dataset `{other}`"))),
        }
    }

    /// A list of numbers: a JSON list, a "1,2,2,2" string, or a single number.
    pub fn f64_list(&self, key: &str) -> Result<Vec<f64>> {
        let v = self.required(key)?;
        let bad = || self.error(key, format!("expected a list of numbers, found {v}"));
        match v {
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(bad),
            Value::String(s) => s
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.trim().parse::<f64>().ok())
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(bad),
            Value::Number(n) => n.as_f64().map(|x| vec![x]).ok_or_else(bad),
            _ => Err(bad()),
        }
    }

    pub fn usize_list(&self, key: &str) -> Result<Vec<usize>> {
        self.f64_list(key)?
            .into_iter()
            .map(|x| {
                if x >= 0.0 && x.fract() == 0.0 {
                    Ok(x as usize)
                } else {
                    Err(self.error(key, format!("expected non-negative integers, found {x}")))
                }
            })
            .collect()
    }
}
