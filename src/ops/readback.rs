//! Reading tensors back to the host without waiting for the device's stream: on a GPU the copies are
//! queued into a page-locked staging buffer with an event after them (`device::Staged`), so work
//! queued later runs while the host waits for, and then uses, these bytes; on the CPU the bytes are
//! there at once.

use crate::device::Staged;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Storage, Tensor};

/// The host copies of some tensors, complete after [`Readback::wait`].
#[derive(Debug)]
pub struct Readback {
    dtypes: Vec<DType>,
    copies: Copies,
}

#[derive(Debug)]
enum Copies {
    /// CPU tensors: their bytes.
    Host(Vec<Vec<u8>>),
    /// GPU tensors: queued copies.
    Staged(Staged),
}

/// Queues the read-back of `tensors` (all on one device).
pub fn read_back(tensors: &[&Tensor]) -> Result<Readback> {
    let dtypes = tensors.iter().map(|t| t.dtype()).collect();
    let Some(first) = tensors.first() else {
        return Ok(Readback {
            dtypes,
            copies: Copies::Host(Vec::new()),
        });
    };
    let copies = match first.storage() {
        Storage::Cpu(_) => {
            let mut bytes = Vec::with_capacity(tensors.len());
            for t in tensors {
                match t.storage() {
                    Storage::Cpu(s) => bytes.push(s.as_bytes().to_vec()),
                    Storage::Cuda(_) => return Err(mismatch(first, t)),
                }
            }
            Copies::Host(bytes)
        }
        Storage::Cuda(s0) => {
            let mut views = Vec::with_capacity(tensors.len());
            for t in tensors {
                match t.storage() {
                    Storage::Cuda(s) if std::sync::Arc::ptr_eq(s.device(), s0.device()) => {
                        views.push(s.view())
                    }
                    _ => return Err(mismatch(first, t)),
                }
            }
            Copies::Staged(s0.device().stage(&views)?)
        }
    };
    Ok(Readback { dtypes, copies })
}

fn mismatch(a: &Tensor, b: &Tensor) -> Error {
    Error::DeviceMismatch {
        op: "read_back",
        a: a.device().describe(),
        b: b.device().describe(),
    }
}

impl Readback {
    /// Waits for the copies; reports an error of any work queued before them.
    pub fn wait(&mut self) -> Result<()> {
        match &mut self.copies {
            Copies::Host(_) => Ok(()),
            Copies::Staged(s) => s.wait(),
        }
    }

    fn bytes(&self, i: usize) -> Result<&[u8]> {
        match &self.copies {
            Copies::Host(b) => b
                .get(i)
                .map(|v| v.as_slice())
                .ok_or_else(|| Error::InvalidParam {
                    op: "read_back",
                    what: "tensor index",
                    rule: "one of the tensors read back",
                    found: format!("{i} of {}", b.len()),
                }),
            Copies::Staged(s) => s.part(i),
        }
    }

    /// Tensor `i`'s values as f32 (after [`Readback::wait`]); an f32 tensor only.
    pub fn f32s(&self, i: usize) -> Result<Vec<f32>> {
        let bytes = self.bytes(i)?;
        match self.dtypes.get(i) {
            Some(DType::F32) => Ok(bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()),
            other => Err(Error::InvalidParam {
                op: "read_back",
                what: "dtype",
                rule: "f32",
                found: format!("{other:?}"),
            }),
        }
    }

    /// Tensor `i`'s 4-byte words as u32 bits (after [`Readback::wait`]).
    pub fn words(&self, i: usize) -> Result<Vec<u32>> {
        Ok(self
            .bytes(i)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}
