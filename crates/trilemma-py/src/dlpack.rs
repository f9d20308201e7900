//! DLPack (the `dltensor` capsule of the array-API protocol) both ways: [`Array`] exports the engine's
//! outputs without a copy (its values are shared with the consumer until both let go), and
//! [`read_f32`] imports any producer's host array (numpy, torch CPU tensors, ...) as f32 values,
//! following its strides and dtype.

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use super::BadInputError;

/// DLPack's device types used here.
const DL_CPU: i32 = 1;
const DL_CUDA_HOST: i32 = 3;

/// DLPack's dtype codes.
const DL_INT: u8 = 0;
const DL_UINT: u8 = 1;
const DL_FLOAT: u8 = 2;
const DL_BFLOAT: u8 = 4;

#[repr(C)]
#[derive(Clone, Copy)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// DLPack ≥ 1.0's managed tensor (`dltensor_versioned` capsules): it can say "read-only", so
/// producers such as numpy export read-only arrays only this way.
#[repr(C)]
struct DLManagedTensorVersioned {
    version: [u32; 2],
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DLTensor,
}

const DLTENSOR: &CStr = c"dltensor";
const USED_DLTENSOR: &CStr = c"used_dltensor";
const DLTENSOR_VERSIONED: &CStr = c"dltensor_versioned";
const USED_DLTENSOR_VERSIONED: &CStr = c"used_dltensor_versioned";

/// An engine output: float32, C-contiguous, on the host. `numpy.from_dlpack(a)` and
/// `torch.from_dlpack(a)` view it without a copy.
#[pyclass(module = "trilemma._native", frozen)]
pub struct Array {
    values: Arc<[f32]>,
    shape: Vec<i64>,
}

/// What an exported capsule owns: a share of the values and the shape the DLTensor points into.
struct Export {
    managed: DLManagedTensor,
    _values: Arc<[f32]>,
    shape: Vec<i64>,
}

/// The DLPack deleter: frees the export (the values go when their last share does).
///
/// # Safety
/// `m` is the `managed` field of a live `Box<Export>` made by `Array::__dlpack__`, deleted once.
unsafe extern "C" fn delete_export(m: *mut DLManagedTensor) {
    if !m.is_null() {
        // SAFETY: `m` is live (the caller's contract); its manager_ctx holds the Box<Export>'s pointer.
        let ctx = unsafe { (*m).manager_ctx } as *mut Export;
        // SAFETY: manager_ctx is the pointer of the Box<Export> leaked by __dlpack__, freed once here.
        drop(unsafe { Box::from_raw(ctx) });
    }
}

/// The capsule's destructor: an unconsumed capsule (still named `dltensor`) frees its export; a
/// consumed one (renamed `used_dltensor`) belongs to its consumer, who calls the deleter.
///
/// # Safety
/// Called by Python with a live capsule.
unsafe extern "C" fn capsule_destructor(capsule: *mut pyo3::ffi::PyObject) {
    // SAFETY: `capsule` is live; IsValid checks the name without raising.
    if unsafe { pyo3::ffi::PyCapsule_IsValid(capsule, DLTENSOR.as_ptr()) } == 1 {
        // SAFETY: a valid `dltensor` capsule made by __dlpack__ holds a DLManagedTensor pointer.
        let m = unsafe { pyo3::ffi::PyCapsule_GetPointer(capsule, DLTENSOR.as_ptr()) };
        // SAFETY: the pointer is the export's managed tensor, deleted once (the capsule goes now).
        unsafe { delete_export(m as *mut DLManagedTensor) };
    }
}

impl Array {
    pub fn new(values: Vec<f32>, shape: &[usize]) -> Array {
        Array {
            values: values.into(),
            shape: shape.iter().map(|&d| d as i64).collect(),
        }
    }
}

#[pymethods]
impl Array {
    #[getter]
    fn shape(&self) -> Vec<i64> {
        self.shape.clone()
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        "float32"
    }

    /// A `dltensor` capsule viewing the values (no copy). The values are on the host, so there is no
    /// stream to order with; any `stream` is accepted.
    #[pyo3(signature = (*, stream = None, max_version = None, dl_device = None, copy = None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<Bound<'py, PyAny>>,
        max_version: Option<Bound<'py, PyAny>>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = (stream, max_version, copy);
        if let Some((t, _)) = dl_device {
            if t != DL_CPU {
                return Err(pyo3::exceptions::PyBufferError::new_err(format!(
                    "trilemma arrays are on the host (DLPack device 1), not device type {t}"
                )));
            }
        }
        let mut export = Box::new(Export {
            managed: DLManagedTensor {
                dl_tensor: DLTensor {
                    data: self.values.as_ptr() as *mut c_void,
                    device: DLDevice {
                        device_type: DL_CPU,
                        device_id: 0,
                    },
                    ndim: self.shape.len() as i32,
                    dtype: DLDataType {
                        code: DL_FLOAT,
                        bits: 32,
                        lanes: 1,
                    },
                    shape: std::ptr::null_mut(),
                    // Null strides: C-contiguous.
                    strides: std::ptr::null_mut(),
                    byte_offset: 0,
                },
                manager_ctx: std::ptr::null_mut(),
                deleter: Some(delete_export),
            },
            _values: Arc::clone(&self.values),
            shape: self.shape.clone(),
        });
        export.managed.dl_tensor.shape = export.shape.as_mut_ptr();
        let raw = Box::into_raw(export);
        // SAFETY: `raw` is the live Box<Export> just leaked; its address is stable.
        unsafe {
            (*raw).managed.manager_ctx = raw as *mut c_void;
        }
        // SAFETY: `raw` is non-null and live until delete_export; the capsule's destructor frees it
        // unless a consumer took it (then the consumer calls the deleter).
        let managed =
            unsafe { NonNull::new_unchecked(&mut (*raw).managed as *mut DLManagedTensor) };
        // SAFETY: the pointer is a DLManagedTensor valid until its deleter runs; the destructor
        // follows the DLPack capsule rules (capsule_destructor).
        let capsule = unsafe {
            PyCapsule::new_with_pointer_and_destructor(
                py,
                managed.cast(),
                DLTENSOR,
                Some(capsule_destructor),
            )
        };
        if capsule.is_err() {
            // SAFETY: no capsule owns the export: free it here, once.
            unsafe { delete_export(managed.as_ptr()) };
        }
        capsule
    }

    fn __dlpack_device__(&self) -> (i32, i32) {
        (DL_CPU, 0)
    }

    fn __len__(&self) -> usize {
        self.shape.first().map_or(1, |&d| d as usize)
    }
}

fn bad(name: &str, reason: String) -> PyErr {
    BadInputError::new_err(format!("inputs: input `{name}` {reason}"))
}

/// The values (as f32) and shape of `obj`, a DLPack producer on the host, named `name` in errors.
pub fn read_f32(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<(Vec<f32>, Vec<usize>)> {
    if !obj.hasattr("__dlpack__")? {
        return Err(bad(
            name,
            format!(
                "is a {}, not an array (numpy arrays and torch tensors export DLPack)",
                obj.get_type().name()?
            ),
        ));
    }
    // DLPack 1.0 first (read-only arrays export only that way); producers that do not take
    // `max_version` get the plain call.
    let py = obj.py();
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("max_version", (1, 0))?;
    let capsule = match obj.call_method("__dlpack__", (), Some(&kwargs)) {
        Ok(c) => c,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) => {
            obj.call_method0("__dlpack__")?
        }
        Err(e) => return Err(e),
    };
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| bad(name, "__dlpack__ did not return a capsule".into()))?;
    if let Some(ptr) = consume(capsule, DLTENSOR_VERSIONED, USED_DLTENSOR_VERSIONED)? {
        let managed = ptr as *mut DLManagedTensorVersioned;
        // SAFETY: a `dltensor_versioned` capsule holds a live DLManagedTensorVersioned whose
        // DLTensor describes memory valid until its deleter runs; the deleter is called once, after
        // the read.
        unsafe {
            let result = match (*managed).version[0] {
                1 => read_managed(&(*managed).dl_tensor, name),
                v => Err(bad(name, format!("is DLPack version {v}.x (1.x is read)"))),
            };
            if let Some(deleter) = (*managed).deleter {
                deleter(managed);
            }
            return result;
        }
    }
    let Some(ptr) = consume(capsule, DLTENSOR, USED_DLTENSOR)? else {
        return Err(bad(
            name,
            "__dlpack__ returned a capsule that is not a DLPack tensor".into(),
        ));
    };
    let managed = ptr as *mut DLManagedTensor;
    // SAFETY: a `dltensor` capsule holds a live DLManagedTensor whose DLTensor describes memory valid
    // until its deleter runs (the DLPack contract); the deleter is called once, after the read.
    unsafe {
        let result = read_managed(&(*managed).dl_tensor, name);
        if let Some(deleter) = (*managed).deleter {
            deleter(managed);
        }
        result
    }
}

/// The pointer of `capsule` if it is named `name`, renamed `used` so that the capsule no longer frees
/// it (the consumer calls its deleter); None for a capsule of another name.
fn consume(
    capsule: &Bound<'_, PyCapsule>,
    name: &'static CStr,
    used: &'static CStr,
) -> PyResult<Option<*mut c_void>> {
    let Ok(ptr) = capsule.pointer_checked(Some(name)) else {
        return Ok(None);
    };
    // SAFETY: the capsule is live and valid; SetName only changes its name.
    if unsafe { pyo3::ffi::PyCapsule_SetName(capsule.as_ptr(), used.as_ptr()) } != 0 {
        return Err(PyErr::fetch(capsule.py()));
    }
    Ok(Some(ptr.as_ptr()))
}

/// # Safety
/// `t` describes live memory: `ndim` shape (and, if not null, strides) entries, and the elements they
/// address from `data + byte_offset`.
unsafe fn read_managed(t: &DLTensor, name: &str) -> PyResult<(Vec<f32>, Vec<usize>)> {
    if t.device.device_type != DL_CPU && t.device.device_type != DL_CUDA_HOST {
        return Err(bad(
            name,
            format!(
                "is on DLPack device type {} (GPU arrays are not taken yet: pass a host array, \
                 e.g. `.cpu()`)",
                t.device.device_type
            ),
        ));
    }
    let ndim = usize::try_from(t.ndim).map_err(|_| bad(name, format!("has ndim {}", t.ndim)))?;
    let shape: Vec<i64> = match ndim {
        0 => Vec::new(),
        // SAFETY: `shape` holds ndim entries (the caller's contract).
        n => unsafe { std::slice::from_raw_parts(t.shape, n) }.to_vec(),
    };
    if shape.iter().any(|&d| d < 0) {
        return Err(bad(name, format!("has shape {shape:?}")));
    }
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    // Element strides; null means C-contiguous.
    let strides: Vec<i64> = if t.strides.is_null() || ndim == 0 {
        let mut s = vec![1i64; ndim];
        for i in (0..ndim.saturating_sub(1)).rev() {
            s[i] = s[i + 1] * shape[i + 1];
        }
        s
    } else {
        // SAFETY: non-null strides hold ndim entries (the caller's contract).
        unsafe { std::slice::from_raw_parts(t.strides, ndim) }.to_vec()
    };
    let d = t.dtype;
    if d.lanes != 1 {
        return Err(bad(name, format!("has {} lanes per element", d.lanes)));
    }
    let elem: fn(*const u8) -> f32 = match (d.code, d.bits) {
        // SAFETY (each reader): the pointer addresses one element of the dtype (read_unaligned).
        (DL_FLOAT, 32) => |p| unsafe { (p as *const f32).read_unaligned() },
        (DL_FLOAT, 64) => |p| unsafe { (p as *const f64).read_unaligned() as f32 },
        (DL_FLOAT, 16) => {
            |p| half::f16::from_bits(unsafe { (p as *const u16).read_unaligned() }).to_f32()
        }
        (DL_BFLOAT, 16) => {
            |p| f32::from_bits(u32::from(unsafe { (p as *const u16).read_unaligned() }) << 16)
        }
        (DL_INT, 64) => |p| unsafe { (p as *const i64).read_unaligned() as f32 },
        (DL_INT, 32) => |p| unsafe { (p as *const i32).read_unaligned() as f32 },
        (DL_UINT, 8) => |p| unsafe { f32::from(p.read()) },
        (code, bits) => {
            return Err(bad(
                name,
                format!(
                    "has DLPack dtype code {code} with {bits} bits (float16/32/64, bfloat16, \
                     int32/64 or uint8 are taken)"
                ),
            ))
        }
    };
    let size = usize::from(d.bits / 8);
    let count: usize = dims.iter().product();
    let mut values = Vec::with_capacity(count);
    if count > 0 {
        // SAFETY: data + byte_offset is the first element (the caller's contract).
        let base = unsafe { (t.data as *const u8).add(t.byte_offset as usize) };
        let mut index = vec![0usize; ndim];
        for _ in 0..count {
            let offset: i64 = index
                .iter()
                .zip(&strides)
                .map(|(&i, &s)| i as i64 * s)
                .sum();
            // SAFETY: the index is inside the shape, so the strided offset addresses an element of
            // the producer's memory (the caller's contract).
            values.push(elem(unsafe {
                base.offset(offset as isize * size as isize)
            }));
            for k in (0..ndim).rev() {
                index[k] += 1;
                if index[k] < dims[k] {
                    break;
                }
                index[k] = 0;
            }
        }
    }
    Ok((values, dims))
}
