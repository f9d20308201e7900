//! DLPack (the `dltensor` capsule of the array-API protocol) both ways: [`Array`] exports the engine's
//! outputs without a copy, on the host or on the GPU (their memory is shared with the consumer until
//! both let go), and [`read_input`] imports any producer's array: on the host as f32 values following
//! its strides and dtype; on the model's GPU without a copy when it is contiguous float32 (else
//! through one copy to the host). Streams are ordered as the protocol says: the engine's stream is
//! given to a GPU producer, and a GPU consumer's stream waits for the engine's work (an event, never
//! a host wait).

use std::ffi::{c_void, CStr};
use std::ptr::NonNull;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use trilemma_engine::{DType, Device, Tensor};

use super::BadInputError;

/// DLPack's device types used here.
const DL_CPU: i32 = 1;
const DL_CUDA: i32 = 2;
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

/// An engine output: float32, C-contiguous, on the host or on a GPU. `numpy.from_dlpack(a)` (host)
/// and `torch.from_dlpack(a)` (either) view it without a copy.
#[pyclass(module = "trilemma._native", frozen)]
pub struct Array {
    values: Values,
    shape: Vec<i64>,
}

enum Values {
    Host(Arc<[f32]>),
    /// A tensor on the GPU; the device's stream orders the engine's writes to it.
    Device(Arc<Tensor>),
}

/// What an exported capsule owns: a share of the values and the shape the DLTensor points into.
struct Export {
    managed: DLManagedTensor,
    _values: Owned,
    shape: Vec<i64>,
}

/// An export's share of the memory. For a GPU tensor: the consumer's stream (None: the consumer
/// asked for no ordering), which the engine's stream waits for when the consumer lets go, so the
/// memory is recycled only after the consumer's queued reads.
enum Owned {
    Host(#[allow(dead_code)] Arc<[f32]>),
    Device {
        tensor: Arc<Tensor>,
        consumer_stream: Option<u64>,
    },
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Owned::Device {
            tensor,
            consumer_stream: Some(stream),
        } = self
        {
            // SAFETY: `stream` is the handle the consumer passed to __dlpack__, which the protocol
            // requires to be a stream of this device (or 1/2, the default streams) that outlives
            // its use of the array. An error cannot be returned from here: the driver records it
            // on the context and the next engine call on it reports it.
            let _ = unsafe { tensor.device().order_after(*stream) };
        }
    }
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
            values: Values::Host(values.into()),
            shape: shape.iter().map(|&d| d as i64).collect(),
        }
    }

    /// A float32 tensor: on the GPU it stays there; on the host its values are taken.
    pub fn from_tensor(t: Tensor) -> trilemma_engine::Result<Array> {
        let shape = t.shape().iter().map(|&d| d as i64).collect();
        let values = match t.device() {
            Device::Cpu => Values::Host(t.to_vec_f32()?.into()),
            Device::Cuda(_) => Values::Device(Arc::new(t)),
        };
        Ok(Array { values, shape })
    }

    /// (DLPack device type, device id).
    fn dl_device(&self) -> (i32, i32) {
        match &self.values {
            Values::Host(_) => (DL_CPU, 0),
            Values::Device(t) => match t.device() {
                Device::Cuda(d) => (DL_CUDA, d.ordinal() as i32),
                Device::Cpu => (DL_CPU, 0),
            },
        }
    }
}

/// The consumer's `stream` argument as a CUDA stream handle to order before: None for -1 (the
/// consumer orders itself); the protocol's None is the legacy default stream (1); 0 is refused (it
/// is ambiguous in the protocol).
fn consumer_stream(stream: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(s) = stream.filter(|s| !s.is_none()) else {
        return Ok(Some(1));
    };
    let v: i64 = s.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("stream must be an integer CUDA stream handle")
    })?;
    match v {
        -1 => Ok(None),
        0 => Err(pyo3::exceptions::PyValueError::new_err(
            "stream 0 is ambiguous for CUDA in the DLPack protocol: pass 1 (legacy default), 2 \
             (per-thread default) or a stream handle",
        )),
        v if v < -1 => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "stream {v} is not a CUDA stream handle"
        ))),
        v => Ok(Some(v as u64)),
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

    /// `cpu` or `cuda:N`.
    #[getter]
    fn device(&self) -> String {
        match self.dl_device() {
            (DL_CUDA, n) => format!("cuda:{n}"),
            _ => "cpu".to_string(),
        }
    }

    /// The values on the host: this array itself for a host array, else a copy (waits for the GPU).
    fn to_host(slf: &Bound<'_, Self>) -> PyResult<Py<Array>> {
        let a = slf.get();
        match &a.values {
            Values::Host(_) => Ok(slf.clone().unbind()),
            Values::Device(t) => {
                let t = Arc::clone(t);
                let values = slf
                    .py()
                    .detach(move || t.to_vec_f32())
                    .map_err(super::raise)?;
                Py::new(
                    slf.py(),
                    Array {
                        values: Values::Host(values.into()),
                        shape: a.shape.clone(),
                    },
                )
            }
        }
    }

    /// A `dltensor` capsule viewing the values (no copy). For a GPU array, the consumer's `stream`
    /// (a CUDA stream handle; None: the legacy default stream; -1: none) waits for the engine's work
    /// on it, and the engine's stream waits for that consumer stream's work before the memory is
    /// reused once the consumer lets go, so the stream must outlive the consumer's use of the array.
    #[pyo3(signature = (*, stream = None, max_version = None, dl_device = None, copy = None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<Bound<'py, PyAny>>,
        max_version: Option<Bound<'py, PyAny>>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = max_version;
        let here = self.dl_device();
        if let Some(want) = dl_device {
            if want != here {
                return Err(pyo3::exceptions::PyBufferError::new_err(format!(
                    "this trilemma array is on DLPack device {here:?}, not {want:?} (no cross-device \
                     export; to_host() copies a GPU array to the host)"
                )));
            }
        }
        if copy == Some(true) {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "trilemma arrays export without a copy (copy=True is not offered)",
            ));
        }
        let (data, owned) = match &self.values {
            Values::Host(v) => (v.as_ptr() as *mut c_void, Owned::Host(Arc::clone(v))),
            Values::Device(t) => {
                let consumer = consumer_stream(stream.as_ref())?;
                if let Some(s) = consumer {
                    // SAFETY: the protocol's contract: the consumer passes a live stream of this
                    // device (or 1/2, the driver's default-stream handles).
                    unsafe { t.device().order_before(s) }.map_err(super::raise)?;
                }
                let ptr = t.cuda_ptr().unwrap_or(0);
                (
                    ptr as *mut c_void,
                    Owned::Device {
                        tensor: Arc::clone(t),
                        consumer_stream: consumer,
                    },
                )
            }
        };
        let mut export = Box::new(Export {
            managed: DLManagedTensor {
                dl_tensor: DLTensor {
                    data,
                    device: DLDevice {
                        device_type: here.0,
                        device_id: here.1,
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
            _values: owned,
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
        self.dl_device()
    }

    fn __len__(&self) -> usize {
        self.shape.first().map_or(1, |&d| d as usize)
    }
}

fn bad(name: &str, reason: String) -> PyErr {
    BadInputError::new_err(format!("inputs: input `{name}` {reason}"))
}

/// An imported array: f32 values on the host, or a tensor borrowing a GPU producer's memory.
pub enum Input {
    Host(Vec<f32>, Vec<usize>),
    Device(Tensor),
}

/// A consumed DLPack tensor, legacy or versioned: its deleter runs when this drops (once).
struct Managed {
    ptr: *mut c_void,
    versioned: bool,
}

// SAFETY: a DLPack deleter may be called from any thread (the protocol's producers take what locks
// they need, numpy the GIL), and the pointer is used only through `tensor` and the deleter.
unsafe impl Send for Managed {}
// SAFETY: shared references give no access to the pointer at all.
unsafe impl Sync for Managed {}

impl Managed {
    fn tensor(&self) -> &DLTensor {
        // SAFETY: `ptr` is a live managed tensor of the kind `versioned` says until the deleter runs
        // in drop.
        unsafe {
            if self.versioned {
                &(*(self.ptr as *mut DLManagedTensorVersioned)).dl_tensor
            } else {
                &(*(self.ptr as *mut DLManagedTensor)).dl_tensor
            }
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        // SAFETY: the managed tensor is live; its deleter (if any) is called once, here.
        unsafe {
            if self.versioned {
                let m = self.ptr as *mut DLManagedTensorVersioned;
                if let Some(d) = (*m).deleter {
                    d(m);
                }
            } else {
                let m = self.ptr as *mut DLManagedTensor;
                if let Some(d) = (*m).deleter {
                    d(m);
                }
            }
        }
    }
}

/// The array `obj` (any DLPack producer) named `name` in errors, for a model on `device`: a host
/// array as f32 values; a GPU array on `device` without a copy when it is contiguous float32 and
/// 16-byte aligned, else copied to the host once. A GPU array elsewhere is an error.
pub fn read_input(obj: &Bound<'_, PyAny>, name: &str, device: &Device) -> PyResult<Input> {
    if !obj.hasattr("__dlpack__")? {
        return Err(bad(
            name,
            format!(
                "is a {}, not an array (numpy arrays and torch tensors export DLPack)",
                obj.get_type().name()?
            ),
        ));
    }
    let py = obj.py();
    let on: Option<(i32, i32)> = if obj.hasattr("__dlpack_device__")? {
        obj.call_method0("__dlpack_device__")?.extract().ok()
    } else {
        None
    };
    let kwargs = pyo3::types::PyDict::new(py);
    if let Some((DL_CUDA, id)) = on {
        let ours = match device {
            Device::Cuda(d) if d.ordinal() as i32 == id => device.cuda_stream(),
            _ => None,
        };
        let Some(stream) = ours else {
            return Err(bad(
                name,
                format!(
                    "is on cuda:{id}, but the model is on {} (move the array there, or load the \
                     model on cuda:{id})",
                    match device {
                        Device::Cpu => "cpu".to_string(),
                        Device::Cuda(d) => format!("cuda:{}", d.ordinal()),
                    }
                ),
            ));
        };
        // The producer orders its writes before the engine's stream (the protocol's `stream`).
        kwargs.set_item("stream", stream)?;
    }
    // DLPack 1.0 first (read-only arrays export only that way); producers that do not take
    // `max_version` get the call without it.
    kwargs.set_item("max_version", (1, 0))?;
    let capsule = match obj.call_method("__dlpack__", (), Some(&kwargs)) {
        Ok(c) => c,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) => {
            kwargs.del_item("max_version")?;
            obj.call_method("__dlpack__", (), Some(&kwargs))?
        }
        Err(e) => return Err(e),
    };
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| bad(name, "__dlpack__ did not return a capsule".into()))?;
    let managed = if let Some(ptr) = consume(capsule, DLTENSOR_VERSIONED, USED_DLTENSOR_VERSIONED)?
    {
        let m = Managed {
            ptr,
            versioned: true,
        };
        // SAFETY: a `dltensor_versioned` capsule holds a live DLManagedTensorVersioned.
        let major = unsafe { (*(ptr as *mut DLManagedTensorVersioned)).version[0] };
        if major != 1 {
            return Err(bad(
                name,
                format!("is DLPack version {major}.x (1.x is read)"),
            ));
        }
        m
    } else if let Some(ptr) = consume(capsule, DLTENSOR, USED_DLTENSOR)? {
        Managed {
            ptr,
            versioned: false,
        }
    } else {
        return Err(bad(
            name,
            "__dlpack__ returned a capsule that is not a DLPack tensor".into(),
        ));
    };
    let t = managed.tensor();
    match t.device.device_type {
        DL_CPU | DL_CUDA_HOST => {
            // SAFETY: the DLTensor describes memory valid until the deleter runs (when `managed`
            // drops, after the read).
            let (values, dims) = unsafe { read_managed(t, name) }?;
            Ok(Input::Host(values, dims))
        }
        DL_CUDA => read_device(managed, name, device),
        other => Err(bad(
            name,
            format!("is on DLPack device type {other} (host arrays and CUDA arrays are taken)"),
        )),
    }
}

/// A DLTensor's shape (as given and as sizes), its element strides (C-contiguous ones when it has
/// none) and whether those are C-contiguous (size-1 dimensions' strides aside).
struct Layout {
    shape: Vec<i64>,
    dims: Vec<usize>,
    strides: Vec<i64>,
    contiguous: bool,
}

/// # Safety
/// `t.shape` holds `t.ndim` entries, and so does `t.strides` unless it is null.
unsafe fn layout(t: &DLTensor, name: &str) -> PyResult<Layout> {
    let ndim = usize::try_from(t.ndim).map_err(|_| bad(name, format!("has ndim {}", t.ndim)))?;
    let shape: Vec<i64> = match ndim {
        0 => Vec::new(),
        // SAFETY: `shape` holds ndim entries (the caller's contract).
        n => unsafe { std::slice::from_raw_parts(t.shape, n) }.to_vec(),
    };
    if shape.iter().any(|&d| d < 0) {
        return Err(bad(name, format!("has shape {shape:?}")));
    }
    let mut packed = vec![1i64; ndim];
    for i in (0..ndim.saturating_sub(1)).rev() {
        packed[i] = packed[i + 1] * shape[i + 1];
    }
    let strides = if t.strides.is_null() || ndim == 0 {
        packed.clone()
    } else {
        // SAFETY: non-null strides hold ndim entries (the caller's contract).
        unsafe { std::slice::from_raw_parts(t.strides, ndim) }.to_vec()
    };
    let contiguous = (0..ndim).all(|i| shape[i] == 1 || strides[i] == packed[i]);
    Ok(Layout {
        dims: shape.iter().map(|&d| d as usize).collect(),
        shape,
        strides,
        contiguous,
    })
}

/// A CUDA DLTensor on the model's GPU: borrowed when contiguous aligned float32, else copied to the
/// host and read there.
fn read_device(managed: Managed, name: &str, device: &Device) -> PyResult<Input> {
    let t = managed.tensor();
    // SAFETY: the consumed DLTensor is live until `managed` drops (the DLPack contract).
    let Layout {
        shape,
        dims,
        strides: elem_strides,
        contiguous,
    } = unsafe { layout(t, name) }?;
    let d = t.dtype;
    let size = usize::from(d.bits / 8).max(1);
    let address = (t.data as u64).wrapping_add(t.byte_offset);
    let count: usize = dims.iter().product();
    if (d.code, d.bits, d.lanes) == (DL_FLOAT, 32, 1) && contiguous && address % 16 == 0 {
        // SAFETY: the DLTensor describes `count` contiguous float32 on this GPU (the DLPack
        // contract; its device id was checked to be the model's), allocated until the deleter
        // runs, which `managed` (the owner) does when the tensor drops. The producer ordered its
        // writes before the engine's stream (the stream given to __dlpack__), and the engine only
        // reads inputs.
        let tensor = unsafe {
            Tensor::from_cuda_memory(address, &dims, DType::F32, device, Box::new(managed))
        }
        .map_err(super::raise)?;
        return Ok(Input::Device(tensor));
    }
    // One copy of the bytes the strides reach, then the host reader on it.
    let (mut lo, mut hi) = (0i64, 0i64);
    if count > 0 {
        for (&n, &st) in shape.iter().zip(&elem_strides) {
            let reach = (n - 1) * st;
            if reach < 0 {
                lo += reach;
            } else {
                hi += reach;
            }
        }
    }
    let span = if count == 0 {
        0
    } else {
        (hi - lo + 1) as usize * size
    };
    let first = address.wrapping_add_signed(lo * size as i64);
    // SAFETY: every element the shape and strides address lies in [first, first + span) of the
    // producer's device memory (the DLPack contract), live until `managed` drops below.
    let host = unsafe { device.copy_to_host(first, span) }.map_err(super::raise)?;
    let mut view = DLTensor {
        data: host.as_ptr() as *mut c_void,
        device: DLDevice {
            device_type: DL_CPU,
            device_id: 0,
        },
        ndim: t.ndim,
        dtype: t.dtype,
        shape: t.shape,
        strides: t.strides,
        byte_offset: (-lo * size as i64) as u64,
    };
    if count == 0 {
        view.byte_offset = 0;
    }
    // SAFETY: `view` describes the host copy: the same shape and strides, its first element at
    // byte_offset; shape and strides still point into the live managed tensor.
    let result = unsafe { read_managed(&view, name) };
    drop(managed);
    let (values, dims) = result?;
    Ok(Input::Host(values, dims))
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
                "is on DLPack device type {} where host memory was expected",
                t.device.device_type
            ),
        ));
    }
    // SAFETY: the caller's contract.
    let Layout { dims, strides, .. } = unsafe { layout(t, name) }?;
    let ndim = dims.len();
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
