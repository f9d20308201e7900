//! Named weights for building layers: every tensor a layer asks for is checked (present, F32, the shape
//! the config implies) and marked used, so that after building, any tensor the config did not use is
//! reported too. Names are the official state_dict keys.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;
use crate::tensor::{DType, Tensor};

pub struct Weights<'a> {
    st: &'a SafeTensors,
    prefix: String,
    device: Device,
    /// Shared by every sub-view, so `finish` on the root sees what sub-views used.
    used: Rc<RefCell<BTreeSet<String>>>,
}

impl<'a> Weights<'a> {
    /// Weights named `{prefix}{key}` in `st`, placed on `device`.
    pub fn new(st: &'a SafeTensors, prefix: &str, device: &Device) -> Weights<'a> {
        Weights {
            st,
            prefix: prefix.to_string(),
            device: device.clone(),
            used: Rc::new(RefCell::new(BTreeSet::new())),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn file(&self) -> &std::path::Path {
        self.st.file()
    }

    /// The fp32 values of `key` (host), which must have shape `shape`.
    pub fn host(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let name = format!("{}{key}", self.prefix);
        let e = self.st.entry(&name)?;
        if e.dtype != DType::F32.safetensors_name() {
            return Err(Error::TensorDType {
                file: self.st.file().to_path_buf(),
                tensor: name,
                expected: "F32".into(),
                found: e.dtype.clone(),
            });
        }
        if e.shape != shape {
            return Err(Error::TensorShape {
                file: self.st.file().to_path_buf(),
                tensor: name,
                expected: shape.to_vec(),
                found: e.shape.clone(),
            });
        }
        let bytes = self.st.bytes_of(&name)?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::BadModel {
                file: self.st.file().to_path_buf(),
                what: format!("tensor `{name}`"),
                reason: format!("non-finite value {} at element {i}", values[i]),
            });
        }
        self.used.borrow_mut().insert(name);
        Ok(values)
    }

    /// `key` as a device tensor of shape `shape`.
    pub fn tensor(&self, key: &str, shape: &[usize]) -> Result<Tensor> {
        let v = self.host(key, shape)?;
        self.upload(&v, shape)
    }

    /// Host values made into a device tensor (for weights transformed at load time).
    pub fn upload(&self, values: &[f32], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_f32(values, shape, DType::F32, &self.device)
    }

    /// Whether `key` exists (for optional parameters such as biases).
    pub fn contains(&self, key: &str) -> bool {
        self.st
            .entries()
            .contains_key(&format!("{}{key}", self.prefix))
    }

    /// Marks `key` as deliberately unused (e.g. a stored alias of another tensor).
    pub fn skip(&self, key: &str) {
        let name = format!("{}{key}", self.prefix);
        if self.st.entries().contains_key(&name) {
            self.used.borrow_mut().insert(name);
        }
    }

    /// Weights under `{prefix}{sub}.`.
    pub fn sub(&self, sub: impl std::fmt::Display) -> Weights<'a> {
        Weights {
            st: self.st,
            prefix: format!("{}{sub}.", self.prefix),
            device: self.device.clone(),
            used: Rc::clone(&self.used),
        }
    }

    /// Every tensor whose name starts with this view's prefix must have been used.
    pub fn finish(&self) -> Result<()> {
        let used = self.used.borrow();
        let unused: Vec<String> = self
            .st
            .names()
            .filter(|n| n.starts_with(&self.prefix) && !used.contains(*n))
            .map(str::to_string)
            .collect();
        if unused.is_empty() {
            Ok(())
        } else {
            Err(Error::UnexpectedTensors {
                file: self.st.file().to_path_buf(),
                names: unused,
            })
        }
    }
}
