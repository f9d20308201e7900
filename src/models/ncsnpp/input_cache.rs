//! Device copies of a network call's host-made inputs (the time embedding's sinusoids or Fourier
//! features for a time, the input-centring constants), uploaded once and reused by every later call
//! with the same values. A sampling loop's calls then copy nothing from the host after its first
//! batch, which is also what lets a CUDA graph capture the loop (a host copy cannot be captured).
//! Only GPU tensors are cached (on the CPU an "upload" is a copy of the values already at hand);
//! the cache is bounded, past which a call uploads as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::device::Device;
use crate::error::Result;
use crate::tensor::Tensor;

/// At most this many cached tensors per network (a run's distinct times × batch sizes).
const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum InputKey {
    /// The time-embedding input for these times (f32 bits, one per sample).
    TimeEmbedding(Vec<u32>),
    /// A constant vector of `len` values, all `value` (f32 bits).
    Constant { value: u32, len: usize },
}

#[derive(Default)]
pub(super) struct InputCache {
    /// Keyed by the device too (its address), so a network used on two GPUs keeps one copy on each.
    entries: Mutex<HashMap<(usize, InputKey), Arc<Tensor>>>,
}

impl InputCache {
    /// The tensor for `key` on `device`: cached, or made by `make` (and cached on a GPU).
    pub(super) fn get(
        &self,
        device: &Device,
        key: InputKey,
        make: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Arc<Tensor>> {
        let Device::Cuda(dev) = device else {
            return Ok(Arc::new(make()?));
        };
        let key = (Arc::as_ptr(dev) as usize, key);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = entries.get(&key) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(make()?);
        if entries.len() < MAX_ENTRIES {
            entries.insert(key, Arc::clone(&t));
        }
        Ok(t)
    }
}
