//! safetensors files: the engine's weight format (written by tools/convert.py) and its fixture format.
//!
//! Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
//! {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data section) plus an optional
//! "__metadata__" map of strings, then the data section. Every inconsistency is an [`Error`] naming the
//! file and, where there is one, the tensor: this parser is also the fuzz target's entry point, and
//! must never panic or read out of bounds on any input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Storage, Tensor};

/// Headers larger than this are rejected before parsing (the reference implementation's limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor's entry in the header, offsets made absolute into the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The dtype as the header spells it ("F32", "BF16", "I64", ...).
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Byte range in the file.
    pub start: usize,
    pub end: usize,
}

/// A parsed file held in memory.
#[derive(Debug)]
pub struct SafeTensors {
    file: PathBuf,
    bytes: Vec<u8>,
    entries: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

/// Element size of every dtype the format defines; tensors of any of them parse, the engine loads
/// F32, BF16 and F16.
fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

fn engine_dtype(dtype: &str) -> Option<DType> {
    DType::ALL
        .into_iter()
        .find(|d| d.safetensors_name() == dtype)
}

impl SafeTensors {
    pub fn open(path: impl AsRef<Path>) -> Result<SafeTensors> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(Error::io(path))?;
        SafeTensors::from_bytes(path, bytes)
    }

    /// Parses `bytes` as the contents of `file` (the name is used in errors only).
    pub fn from_bytes(file: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<SafeTensors> {
        let file = file.into();
        let bad = |reason: String| Error::BadHeader {
            file: file.clone(),
            reason,
        };
        let file_len = bytes.len() as u64;
        if bytes.len() < 8 {
            return Err(Error::Truncated {
                file,
                what: "the 8-byte header length".into(),
                expected: 8,
                found: file_len,
            });
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&bytes[..8]);
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte limit"
            )));
        }
        let data_start = 8 + header_len;
        if data_start > file_len {
            return Err(Error::Truncated {
                file,
                what: format!("the {header_len}-byte JSON header"),
                expected: data_start,
                found: file_len,
            });
        }
        let data_start = data_start as usize;
        let header = std::str::from_utf8(&bytes[8..data_start])
            .map_err(|e| bad(format!("header is not UTF-8: {e}")))?;
        let json: Value = serde_json::from_str(header)
            .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let Value::Object(map) = json else {
            return Err(bad("header is not a JSON object".into()));
        };

        let mut entries = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, v) in map {
            if name == "__metadata__" {
                let Value::Object(m) = v else {
                    return Err(bad("`__metadata__` is not an object".into()));
                };
                for (k, v) in m {
                    let Value::String(s) = v else {
                        return Err(bad(format!("`__metadata__.{k}` is not a string")));
                    };
                    metadata.insert(k, s);
                }
                continue;
            }
            let entry = parse_entry(&v, data_start, file_len).map_err(|e| match e {
                EntryError::Bad(reason) => bad(format!("tensor `{name}`: {reason}")),
                EntryError::Truncated { expected } => Error::Truncated {
                    file: file.clone(),
                    what: format!("the data of tensor `{name}`"),
                    expected,
                    found: file_len,
                },
            })?;
            entries.insert(name, entry);
        }

        // Tensors must not share bytes (the format lays them out back to back).
        let mut spans: Vec<(&String, &Entry)> = entries.iter().collect();
        spans.sort_by_key(|(_, e)| (e.start, e.end));
        for w in spans.windows(2) {
            let ((a, ea), (b, eb)) = (w[0], w[1]);
            if eb.start < ea.end {
                return Err(bad(format!(
                    "tensors `{a}` and `{b}` overlap in the data section"
                )));
            }
        }
        Ok(SafeTensors {
            file,
            bytes,
            entries,
            metadata,
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The header entry of `name`, or [`Error::MissingTensor`] with the closest names as a hint.
    pub fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries.get(name).ok_or_else(|| Error::MissingTensor {
            file: self.file.clone(),
            tensor: name.to_string(),
            hint: self.missing_hint(name),
        })
    }

    fn missing_hint(&self, name: &str) -> String {
        let common = |a: &str| {
            a.chars()
                .zip(name.chars())
                .take_while(|(x, y)| x == y)
                .count()
        };
        let mut near: Vec<&str> = self.names().collect();
        near.sort_by_key(|n| std::cmp::Reverse(common(n)));
        near.truncate(3);
        if near.is_empty() {
            "the file has no tensors".into()
        } else {
            format!(
                "{} tensors in file; nearest names: {}",
                self.entries.len(),
                near.join(", ")
            )
        }
    }

    /// The raw little-endian bytes of `name`.
    pub fn bytes_of(&self, name: &str) -> Result<&[u8]> {
        let e = self.entry(name)?;
        Ok(&self.bytes[e.start..e.end])
    }

    /// Loads `name` onto `device` in its stored dtype, checking it has shape `expected`.
    pub fn load(&self, name: &str, expected: &[usize], device: &Device) -> Result<Tensor> {
        let e = self.entry(name)?;
        if e.shape != expected {
            return Err(Error::TensorShape {
                file: self.file.clone(),
                tensor: name.into(),
                expected: expected.to_vec(),
                found: e.shape.clone(),
            });
        }
        self.load_any_shape(name, device)
    }

    /// Loads `name` with whatever shape the file gives it.
    pub fn load_any_shape(&self, name: &str, device: &Device) -> Result<Tensor> {
        let e = self.entry(name)?;
        let dtype = engine_dtype(&e.dtype).ok_or_else(|| Error::TensorDType {
            file: self.file.clone(),
            tensor: name.into(),
            expected: "F32, BF16 or F16".into(),
            found: e.dtype.clone(),
        })?;
        Tensor::from_le_bytes(&self.bytes[e.start..e.end], &e.shape, dtype, device)
    }

    /// Whether `name` is stored as a signed integer tensor the engine reads as indices (I64 or I32,
    /// the dtypes PyTorch code uses for step indices).
    pub fn is_integer(&self, name: &str) -> Result<bool> {
        Ok(matches!(self.entry(name)?.dtype.as_str(), "I64" | "I32"))
    }

    /// The values of the I64 or I32 tensor `name`, widened to i64, with its shape. Floating-point
    /// and other dtypes are an [`Error::TensorDType`] naming the tensor.
    pub fn integers(&self, name: &str) -> Result<(Vec<i64>, Vec<usize>)> {
        let e = self.entry(name)?;
        let bytes = &self.bytes[e.start..e.end];
        let values = match e.dtype.as_str() {
            "I64" => bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8 bytes")))
                .collect(),
            "I32" => bytes
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("chunks of 4 bytes"))))
                .collect(),
            other => {
                return Err(Error::TensorDType {
                    file: self.file.clone(),
                    tensor: name.into(),
                    expected: "I64 or I32".into(),
                    found: other.into(),
                })
            }
        };
        Ok((values, e.shape.clone()))
    }

    /// Loads `name`, which must have shape `expected` and dtype `dtype`.
    pub fn load_typed(
        &self,
        name: &str,
        expected: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let e = self.entry(name)?;
        if e.dtype != dtype.safetensors_name() {
            return Err(Error::TensorDType {
                file: self.file.clone(),
                tensor: name.into(),
                expected: dtype.safetensors_name().into(),
                found: e.dtype.clone(),
            });
        }
        self.load(name, expected, device)
    }
}

enum EntryError {
    Bad(String),
    Truncated { expected: u64 },
}

fn parse_entry(v: &Value, data_start: usize, file_len: u64) -> Result<Entry, EntryError> {
    let bad = |s: &str| EntryError::Bad(s.to_string());
    let Value::Object(obj) = v else {
        return Err(bad("entry is not an object"));
    };
    let dtype = match obj.get("dtype") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad("`dtype` missing or not a string")),
    };
    let size =
        dtype_size(&dtype).ok_or_else(|| EntryError::Bad(format!("unknown dtype `{dtype}`")))?;
    let shape = match obj.get("shape") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("`shape` has an entry that is not a non-negative integer"))?,
        _ => return Err(bad("`shape` missing or not an array")),
    };
    let (begin, end) = match obj.get("data_offsets") {
        Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
            (Some(b), Some(e)) => (b, e),
            _ => return Err(bad("`data_offsets` are not non-negative integers")),
        },
        _ => return Err(bad("`data_offsets` missing or not a pair")),
    };
    if begin > end {
        return Err(EntryError::Bad(format!(
            "data_offsets [{begin}, {end}] run backwards"
        )));
    }
    let needed = shape
        .iter()
        .try_fold(size as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| bad("shape's byte size overflows"))?;
    if end - begin != needed {
        return Err(EntryError::Bad(format!(
            "data_offsets span {} bytes but shape {shape:?} of {dtype} needs {needed}",
            end - begin
        )));
    }
    let abs_end = (data_start as u64)
        .checked_add(end)
        .ok_or_else(|| bad("data_offsets overflow"))?;
    if abs_end > file_len {
        return Err(EntryError::Truncated { expected: abs_end });
    }
    Ok(Entry {
        dtype,
        shape,
        start: data_start + begin as usize,
        end: abs_end as usize,
    })
}

/// Writes `tensors` (host copies are made of device tensors) and `metadata` to `path` atomically: the
/// file appears complete under its name or not at all.
pub fn save(
    path: impl AsRef<Path>,
    tensors: &[(&str, &Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let mut header = Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            Value::Object(
                metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    let mut data = Vec::new();
    for (name, t) in tensors {
        let host = t.to_device(&Device::Cpu)?;
        let Storage::Cpu(s) = host.storage() else {
            return Err(Error::DeviceMismatch {
                op: "save",
                a: "cpu".into(),
                b: host.device().describe(),
            });
        };
        let begin = data.len();
        data.extend_from_slice(s.as_bytes());
        let mut entry = Map::new();
        entry.insert(
            "dtype".into(),
            Value::String(t.dtype().safetensors_name().into()),
        );
        entry.insert(
            "shape".into(),
            Value::Array(t.shape().iter().map(|&d| Value::from(d as u64)).collect()),
        );
        entry.insert(
            "data_offsets".into(),
            Value::Array(vec![
                Value::from(begin as u64),
                Value::from(data.len() as u64),
            ]),
        );
        if header
            .insert((*name).to_string(), Value::Object(entry))
            .is_some()
        {
            return Err(Error::InvalidParam {
                op: "save",
                what: "tensor names",
                rule: "unique",
                found: (*name).into(),
            });
        }
    }
    let mut json = serde_json::to_string(&Value::Object(header)).map_err(|e| Error::BadHeader {
        file: path.to_path_buf(),
        reason: format!("cannot serialise header: {e}"),
    })?;
    // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&(json.len() as u64).to_le_bytes())?;
        f.write_all(json.as_bytes())?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    })
}
