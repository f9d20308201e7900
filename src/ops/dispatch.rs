//! How an op reaches its backend: every tensor argument checked to live on one device, then the
//! storages handed to the [`crate::backend::BackendStorage`] method of that device's storage type.

use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::CudaStorage;
use crate::error::{Error, Result};
use crate::tensor::{Storage, Tensor};

/// Both tensors on the CPU or both on the same GPU.
pub(crate) fn check_same_device(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    let same = match (a.storage(), b.storage()) {
        (Storage::Cpu(_), Storage::Cpu(_)) => true,
        (Storage::Cuda(x), Storage::Cuda(y)) => std::sync::Arc::ptr_eq(x.device(), y.device()),
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(Error::DeviceMismatch {
            op,
            a: a.device().describe(),
            b: b.device().describe(),
        })
    }
}

/// Tensors on different devices reaching a backend: the error a check above would have given.
pub(super) fn mixed<T>(op: &'static str) -> Result<T> {
    Err(Error::DeviceMismatch {
        op,
        a: "cpu".into(),
        b: "cuda".into(),
    })
}

pub(super) fn wrap(storage: Storage, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_storage(storage, shape)
}

/// The storage of a tensor as one backend's type, or the device-mismatch error.
pub(super) trait StorageOf: Sized {
    fn of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a Self>;
}

impl StorageOf for CpuStorage {
    fn of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a Self> {
        match t.storage() {
            Storage::Cpu(s) => Ok(s),
            _ => mixed(op),
        }
    }
}

impl StorageOf for CudaStorage {
    fn of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a Self> {
        match t.storage() {
            Storage::Cuda(s) => Ok(s),
            _ => mixed(op),
        }
    }
}

/// Runs `$body` with `S` the storage type of the tensors `[$t, ..]` (bound to `$s, ..`), all on one
/// device, and wraps the result in that device's `Storage`; mixed devices are an error.
macro_rules! dispatch {
    // A body returning two storages (a sampler step's x and v).
    (pair $op:expr, [$($t:ident),+], |$($s:ident),+| $body:expr) => {{
        #[allow(unused_parens)]
        match ($($t.storage()),+) {
            ($($crate::tensor::Storage::Cpu($s)),+) => {
                type S = $crate::backend::cpu::CpuStorage;
                let [a, b] = $body;
                ($crate::tensor::Storage::Cpu(a), $crate::tensor::Storage::Cpu(b))
            }
            ($($crate::tensor::Storage::Cuda($s)),+) => {
                type S = $crate::backend::cuda::CudaStorage;
                let [a, b] = $body;
                ($crate::tensor::Storage::Cuda(a), $crate::tensor::Storage::Cuda(b))
            }
            #[allow(unreachable_patterns)]
            _ => return $crate::ops::dispatch::mixed($op),
        }
    }};
    ($op:expr, [$($t:ident),+], |$($s:ident),+| $body:expr) => {{
        #[allow(unused_parens)]
        match ($($t.storage()),+) {
            ($($crate::tensor::Storage::Cpu($s)),+) => {
                #[allow(dead_code)]
                type S = $crate::backend::cpu::CpuStorage;
                $crate::tensor::Storage::Cpu($body)
            }
            ($($crate::tensor::Storage::Cuda($s)),+) => {
                #[allow(dead_code)]
                type S = $crate::backend::cuda::CudaStorage;
                $crate::tensor::Storage::Cuda($body)
            }
            #[allow(unreachable_patterns)]
            _ => return $crate::ops::dispatch::mixed($op),
        }
    }};
}
pub(super) use dispatch;
