//! Stopping a sampling loop whose state stopped being finite, naming the tensor and the step
//! (`kernels/finite.cu`).

use super::dispatch::mixed;
use crate::backend::FiniteOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Storage, Tensor};

/// Checks `t` at once: an error naming `tensor` and `step` if any value is not finite. The state is
/// read back from a GPU; a sampling loop there uses [`FiniteWatch`], which does not wait.
pub fn check_finite(t: &Tensor, tensor: &str, step: usize) -> Result<()> {
    let finite = match t.storage() {
        Storage::Cpu(s) if t.dtype() == DType::F32 => {
            s.f32s("check_finite")?.iter().all(|x| x.is_finite())
        }
        _ => t.to_vec_f32()?.iter().all(|x| x.is_finite()),
    };
    if finite {
        Ok(())
    } else {
        Err(Error::NonFinite {
            tensor: tensor.to_string(),
            step,
        })
    }
}

/// The "no bad step yet" value of a watch slot.
const NONE: u32 = u32::MAX;

/// Watches a sampling loop's state for non-finite values and names the first tensor and step that
/// held one. A check writes the step into a one-word slot on the state's device when the state holds a
/// non-finite value. On the CPU the slot is read at once (the run stops at the bad step); on a GPU it
/// is read once by [`FiniteWatch::finish`] after the loop, so no step waits on the host (the run
/// finishes its steps, then fails).
pub struct FiniteWatch {
    names: Vec<&'static str>,
    slots: Vec<Option<Tensor>>,
}

fn read_slot(slot: &Tensor) -> Result<u32> {
    match slot.to_vec_f32()?.as_slice() {
        [word] => Ok(word.to_bits()),
        other => Err(Error::InvalidParam {
            op: "finite watch",
            what: "slot",
            rule: "one 4-byte word",
            found: format!("{} elements", other.len()),
        }),
    }
}

/// A slot holding NONE: on a GPU set by a memset on the device (no host copy, so a CUDA graph can
/// capture it and every replay starts from NONE).
fn new_slot(device: &crate::device::Device) -> Result<Tensor> {
    let mut slot = Tensor::uninit(&[1], DType::F32, device)?;
    match slot.storage_mut() {
        Storage::Cuda(s) => s.fill_bytes(0xFF)?,
        Storage::Cpu(_) => {
            slot = Tensor::from_f32(&[f32::from_bits(NONE)], &[1], DType::F32, device)?;
        }
    }
    Ok(slot)
}

impl FiniteWatch {
    pub fn new(names: &[&'static str]) -> FiniteWatch {
        FiniteWatch {
            names: names.to_vec(),
            slots: names.iter().map(|_| None).collect(),
        }
    }

    /// Checks `t`, the state called `name` (one of the watch's names) after step `step`.
    pub fn check(&mut self, t: &Tensor, name: &'static str, step: usize) -> Result<()> {
        const OP: &str = "finite watch";
        let Some(k) = self.names.iter().position(|n| *n == name) else {
            return Err(Error::InvalidParam {
                op: OP,
                what: "tensor name",
                rule: "one of the names the watch was made with",
                found: name.to_string(),
            });
        };
        if t.dtype() != DType::F32 {
            return check_finite(t, name, step);
        }
        let slot = match &mut self.slots[k] {
            Some(slot) => slot,
            empty => empty.insert(new_slot(&t.device())?),
        };
        let step32 = u32::try_from(step).unwrap_or(NONE - 1);
        match (t.storage(), slot.storage_mut()) {
            (Storage::Cpu(x), Storage::Cpu(s)) => {
                x.watch_nonfinite(s, step32)?;
                if read_slot(slot)? != NONE {
                    return Err(Error::NonFinite {
                        tensor: name.to_string(),
                        step,
                    });
                }
                Ok(())
            }
            (Storage::Cuda(x), Storage::Cuda(s)) => x.watch_nonfinite(s, step32),
            _ => mixed(OP),
        }
    }

    /// The first non-finite state the checks recorded, as an error naming it; Ok if none. (A graph's
    /// watch is read after every replay.)
    pub fn finish(&self) -> Result<()> {
        let words = self
            .slots()
            .into_iter()
            .map(read_slot)
            .collect::<Result<Vec<u32>>>()?;
        self.judge(&words)
    }

    /// The slots the checks wrote, in order: a caller that reads them back itself (with the batch's
    /// output, without waiting for the stream) hands their words to [`FiniteWatch::judge`].
    pub fn slots(&self) -> Vec<&Tensor> {
        self.slots.iter().flatten().collect()
    }

    /// The names of [`FiniteWatch::slots`], in order.
    pub fn slot_names(&self) -> Vec<&'static str> {
        self.names
            .iter()
            .zip(&self.slots)
            .filter(|(_, s)| s.is_some())
            .map(|(n, _)| *n)
            .collect()
    }

    /// [`FiniteWatch::finish`] on the words of [`FiniteWatch::slots`], read by the caller.
    pub fn judge(&self, words: &[u32]) -> Result<()> {
        judge_slots(&self.slot_names(), words)
    }
}

/// The verdict of a watch from its slots' names ([`FiniteWatch::slot_names`]) and words: the first
/// (lowest-step) non-finite state as an error naming it; Ok if none.
pub fn judge_slots(names: &[&'static str], words: &[u32]) -> Result<()> {
    if names.len() != words.len() {
        return Err(Error::InvalidParam {
            op: "finite watch",
            what: "slot words",
            rule: "one per slot in use",
            found: format!("{} words for {} slots", words.len(), names.len()),
        });
    }
    let first = names
        .iter()
        .zip(words)
        .filter(|(_, &w)| w != NONE)
        .min_by_key(|(_, &w)| w);
    match first {
        Some((name, &step)) => Err(Error::NonFinite {
            tensor: name.to_string(),
            step: step as usize,
        }),
        None => Ok(()),
    }
}
