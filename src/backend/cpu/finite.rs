//! CPU reference of `kernels/finite.cu`: the non-finite watch's slot update.

use super::CpuStorage;
use crate::backend::FiniteOps;
use crate::error::{Error, Result};

impl FiniteOps for CpuStorage {
    fn watch_nonfinite(&self, slot: &mut Self, step: u32) -> Result<()> {
        const OP: &str = "finite watch";
        let x = self.f32s(OP)?;
        let CpuStorage::F32(slot) = slot else {
            return Err(Error::InvalidParam {
                op: OP,
                what: "slot",
                rule: "one 4-byte word (an F32 storage of one element)",
                found: format!("{:?}", slot.dtype()),
            });
        };
        let [word] = slot.as_mut_slice() else {
            return Err(Error::InvalidParam {
                op: OP,
                what: "slot",
                rule: "one 4-byte word",
                found: format!("{} elements", slot.len()),
            });
        };
        if step < word.to_bits() && x.iter().any(|v| !v.is_finite()) {
            *word = f32::from_bits(step);
        }
        Ok(())
    }
}
