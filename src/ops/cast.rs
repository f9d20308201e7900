//! Conversion between storage types (round to nearest even).

use crate::backend::BackendStorage;
use crate::error::Result;
use crate::tensor::{DType, Storage, Tensor};

pub fn cast(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let storage = match x.storage() {
        Storage::Cpu(s) => Storage::Cpu(s.cast(dtype)?),
        Storage::Cuda(s) => Storage::Cuda(s.cast(dtype)?),
    };
    Tensor::from_storage(storage, x.shape())
}
