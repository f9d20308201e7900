//! The C ABI of trilemma (`include/trilemma.h`, generated from this file by cbindgen): opaque model and
//! output handles, status codes, and a thread-local message for the last error. Each entry point checks
//! its pointers, catches any panic, and maps the library's [`Error`] to a [`TrilemmaStatus`]; the rules
//! of ownership and threads are in the header's preamble (cbindgen.toml).

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use trilemma_engine::{BatchSize, DType, DeviceSpec, Error, Model, Part, SampleOptions};

/// What a call returned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrilemmaStatus {
    Ok = 0,
    /// A null pointer, a string that is not UTF-8, or a value out of its range.
    InvalidArgument = 1,
    /// A sampler setting the model or run cannot take (sampler, steps, batch, shard, num).
    BadSetting = 2,
    /// The model: unknown name, missing or corrupt file, a tensor missing or of the wrong shape.
    BadModel = 3,
    /// A forward input: missing, of the wrong rank or values, or not an input of the network.
    BadInput = 4,
    /// The caller's output buffer is smaller than the result.
    BufferTooSmall = 5,
    /// No usable GPU, driver or kernel image (the message says which).
    NoGpu = 6,
    /// The GPU ran out of memory.
    OutOfMemory = 7,
    /// The sampler's state turned NaN or infinite.
    NonFinite = 8,
    /// A CUDA driver call failed.
    CudaError = 9,
    /// A file could not be read or written.
    IoError = 10,
    /// Anything else, a caught panic included.
    Internal = 11,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn status_of(e: &Error) -> TrilemmaStatus {
    use trilemma_engine::ErrorKind as K;
    use TrilemmaStatus as S;
    match e.kind() {
        K::NoGpu => S::NoGpu,
        K::OutOfMemory => S::OutOfMemory,
        K::Cuda => S::CudaError,
        K::BadSetting => S::BadSetting,
        K::BadInput => S::BadInput,
        K::NonFinite => S::NonFinite,
        K::Io => S::IoError,
        K::BadModel => S::BadModel,
        K::InvalidArgument => S::InvalidArgument,
        _ => S::Internal,
    }
}

/// An error of the C layer itself (a bad pointer or value), with its message.
struct Refused(TrilemmaStatus, String);

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused(status_of(&e), e.to_string())
    }
}

fn invalid(msg: impl Into<String>) -> Refused {
    Refused(TrilemmaStatus::InvalidArgument, msg.into())
}

/// Runs `f`, catching panics; records the message of any failure for `trilemma_last_error`.
fn call(f: impl FnOnce() -> Result<(), Refused>) -> TrilemmaStatus {
    set_last_error("");
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => TrilemmaStatus::Ok,
        Ok(Err(Refused(status, msg))) => {
            set_last_error(&msg);
            status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            set_last_error(&format!("internal error (a panic in trilemma): {what}"));
            TrilemmaStatus::Internal
        }
    }
}

/// `s` as UTF-8; `what` names the argument in the error.
///
/// # Safety
/// `s` is null or a NUL-terminated string valid for the call.
unsafe fn text<'a>(s: *const c_char, what: &str) -> Result<&'a str, Refused> {
    if s.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null, and NUL-terminated and live for the call by the caller's contract.
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| invalid(format!("{what} is not UTF-8")))
}

/// The message of the calling thread's last failed call ("" after a success). The pointer is valid
/// until this thread's next trilemma_* call; the caller must not free it.
#[no_mangle]
pub extern "C" fn trilemma_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A loaded model (opaque).
pub struct TrilemmaModel {
    model: Mutex<Model>,
}

/// Loads a model: `name_or_dir` is a converted model directory or an embedded model's name
/// (`ddgan-digits`, `cld-digits`, `lsgm-digits`); `device` is `auto`, `cpu`, `cuda` or `cuda:N`
/// (NULL: `auto`). On success `*out` holds the model, to be released with trilemma_model_free.
///
/// # Safety
/// `name_or_dir` and `device` (unless NULL) are NUL-terminated strings; `out` points to writable
/// storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn trilemma_model_load(
    name_or_dir: *const c_char,
    device: *const c_char,
    out: *mut *mut TrilemmaModel,
) -> TrilemmaStatus {
    call(|| {
        if out.is_null() {
            return Err(invalid("out is NULL"));
        }
        // SAFETY: the caller's contract for both strings.
        let name = unsafe { text(name_or_dir, "name_or_dir") }?;
        let spec: DeviceSpec = match device.is_null() {
            true => DeviceSpec::Auto,
            // SAFETY: as above.
            false => unsafe { text(device, "device") }?.parse()?,
        };
        let opened = spec.open_one("trilemma_model_load")?;
        let model = Model::load(name, &opened.devices[0])?;
        let handle = Box::new(TrilemmaModel {
            model: Mutex::new(model),
        });
        // SAFETY: `out` is non-null and writable by the caller's contract.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Releases a model from trilemma_model_load (NULL is ignored).
///
/// # Safety
/// `model` is NULL or a pointer trilemma_model_load returned, not yet freed and not in use by another
/// call.
#[no_mangle]
pub unsafe extern "C" fn trilemma_model_free(model: *mut TrilemmaModel) {
    if !model.is_null() {
        // SAFETY: a live pointer from Box::into_raw in trilemma_model_load, freed once.
        drop(unsafe { Box::from_raw(model) });
    }
}

/// Runs `f` on the model behind `model`.
///
/// # Safety
/// `model` is NULL or a live pointer from trilemma_model_load.
unsafe fn with_model<T>(
    model: *const TrilemmaModel,
    f: impl FnOnce(&Model) -> Result<T, Refused>,
) -> Result<T, Refused> {
    if model.is_null() {
        return Err(invalid("model is NULL"));
    }
    // SAFETY: live by the caller's contract; the Mutex serializes calls on one model.
    let m = unsafe { &*model };
    let guard = m.model.lock().unwrap_or_else(|p| p.into_inner());
    f(&guard)
}

/// What trilemma_sample draws. Start from trilemma_sample_options_default.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrilemmaSampleOptions {
    /// Images to draw (the output holds num·C·H·W floats).
    pub num: usize,
    /// `ddgan`, `sscs`, `em`, `ode` or `rk4`; NULL: the model's own.
    pub sampler: *const c_char,
    /// Steps of SSCS/EM/RK4; 0: the default (must be 0 for the adaptive ODE).
    pub steps: usize,
    pub seed: u64,
    /// Images per batch; 0: the largest that fits (on the CPU 16).
    pub batch: usize,
    /// Nonzero: CUDA graphs for the fixed-step samplers on a GPU (the same bits either way).
    pub graph: i32,
}

/// The defaults: 16 images, the model's sampler and steps, seed 0, automatic batch, graphs on.
///
/// # Safety
/// `options` points to writable storage for one TrilemmaSampleOptions.
#[no_mangle]
pub unsafe extern "C" fn trilemma_sample_options_default(
    options: *mut TrilemmaSampleOptions,
) -> TrilemmaStatus {
    call(|| {
        if options.is_null() {
            return Err(invalid("options is NULL"));
        }
        // SAFETY: non-null and writable by the caller's contract.
        unsafe {
            *options = TrilemmaSampleOptions {
                num: 16,
                sampler: std::ptr::null(),
                steps: 0,
                seed: 0,
                batch: 0,
                graph: 1,
            }
        };
        Ok(())
    })
}

/// The shape of one sample [C, H, W] of `model`, written to `chw[0..3]`.
///
/// # Safety
/// `model` is a live model; `chw` points to 3 writable size_t.
#[no_mangle]
pub unsafe extern "C" fn trilemma_model_image_shape(
    model: *const TrilemmaModel,
    chw: *mut usize,
) -> TrilemmaStatus {
    call(|| {
        if chw.is_null() {
            return Err(invalid("chw is NULL"));
        }
        // SAFETY: the caller's contract.
        let shape = unsafe { with_model(model, |m| Ok(m.image_shape()?)) }?;
        // SAFETY: chw holds 3 writable size_t by the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(shape.as_ptr(), chw, 3) };
        Ok(())
    })
}

/// Draws `options->num` images into `out` (NCHW float32 in [0, 1], `out_len` floats available, at
/// least num·C·H·W: see trilemma_model_image_shape). Nothing is written on failure.
///
/// # Safety
/// `model` is a live model; `options` points to a TrilemmaSampleOptions whose `sampler` is NULL or a
/// NUL-terminated string; `out` points to `out_len` writable floats.
#[no_mangle]
pub unsafe extern "C" fn trilemma_sample(
    model: *const TrilemmaModel,
    options: *const TrilemmaSampleOptions,
    out: *mut f32,
    out_len: usize,
) -> TrilemmaStatus {
    call(|| {
        if options.is_null() || out.is_null() {
            return Err(invalid("options or out is NULL"));
        }
        // SAFETY: non-null and readable by the caller's contract.
        let o = unsafe { *options };
        let sampler = match o.sampler.is_null() {
            true => None,
            // SAFETY: a NUL-terminated string by the caller's contract.
            false => Some(unsafe { text(o.sampler, "options.sampler") }?.parse()?),
        };
        // SAFETY: the caller's contract for `model`.
        unsafe {
            with_model(model, |m| {
                let [c, h, w] = m.image_shape()?;
                let need = o.num.saturating_mul(c * h * w);
                if out_len < need {
                    return Err(Refused(
                        TrilemmaStatus::BufferTooSmall,
                        format!(
                            "out holds {out_len} floats; {} images of {c}x{h}x{w} need {need}",
                            o.num
                        ),
                    ));
                }
                let mut opts = SampleOptions::new(o.num).seed(o.seed).graph(o.graph != 0);
                opts.sampler = sampler;
                opts.steps = (o.steps > 0).then_some(o.steps);
                opts.batch = match o.batch {
                    0 => BatchSize::Auto,
                    b => BatchSize::Fixed(b),
                };
                let images = m.sample(&opts)?;
                // SAFETY: `out` holds out_len >= need = images.values.len() writable floats.
                std::ptr::copy_nonoverlapping(images.values.as_ptr(), out, images.values.len());
                Ok(())
            })
        }
    })
}

/// One named input of trilemma_forward: float32, C-contiguous, in host memory.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrilemmaTensor {
    pub name: *const c_char,
    pub data: *const f32,
    pub shape: *const usize,
    pub rank: usize,
}

/// The outputs of a trilemma_forward call (opaque).
pub struct TrilemmaOutputs {
    items: Vec<(CString, Vec<f32>, Vec<usize>)>,
}

/// One network call (docs/model-format.md has the names and shapes): `part` is `score`, `encoder` or
/// `decoder` for LSGM models and NULL otherwise. On success `*out` holds the outputs, to be read with
/// trilemma_outputs_count/trilemma_outputs_get and released with trilemma_outputs_free.
///
/// # Safety
/// `model` is a live model; `inputs` points to `n_inputs` TrilemmaTensor whose name is a NUL-terminated
/// string, whose shape holds `rank` size_t and whose data holds their product of floats; `part` is
/// NULL or a NUL-terminated string; `out` points to writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn trilemma_forward(
    model: *const TrilemmaModel,
    part: *const c_char,
    inputs: *const TrilemmaTensor,
    n_inputs: usize,
    out: *mut *mut TrilemmaOutputs,
) -> TrilemmaStatus {
    call(|| {
        if out.is_null() || (inputs.is_null() && n_inputs > 0) {
            return Err(invalid("out or inputs is NULL"));
        }
        let part = match part.is_null() {
            true => None,
            false => {
                // SAFETY: a NUL-terminated string by the caller's contract.
                let p = unsafe { text(part, "part") }?;
                Some(Part::parse(p).ok_or_else(|| {
                    invalid(format!("part `{p}` is not one of score, encoder, decoder"))
                })?)
            }
        };
        let given: &[TrilemmaTensor] = match n_inputs {
            0 => &[],
            // SAFETY: `inputs` holds n_inputs readable TrilemmaTensor by the caller's contract.
            n => unsafe { std::slice::from_raw_parts(inputs, n) },
        };
        // SAFETY: the caller's contract for `model`.
        let items = unsafe {
            with_model(model, |m| {
                let mut named = Vec::with_capacity(given.len());
                for (i, t) in given.iter().enumerate() {
                    let name = text(t.name, &format!("inputs[{i}].name"))?;
                    if (t.shape.is_null() && t.rank > 0) || t.data.is_null() {
                        return Err(invalid(format!("input `{name}`: shape or data is NULL")));
                    }
                    let shape = match t.rank {
                        0 => Vec::new(),
                        // SAFETY: `shape` holds `rank` size_t by the caller's contract.
                        r => std::slice::from_raw_parts(t.shape, r).to_vec(),
                    };
                    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                    let n = n.ok_or_else(|| invalid(format!("input `{name}`: shape overflows")))?;
                    // SAFETY: `data` holds the product of the shape's floats by the contract.
                    let values = std::slice::from_raw_parts(t.data, n);
                    let tensor =
                        trilemma_engine::Tensor::from_f32(values, &shape, DType::F32, &m.device)?;
                    named.push((name.to_string(), tensor));
                }
                let refs: Vec<(&str, &trilemma_engine::Tensor)> =
                    named.iter().map(|(n, t)| (n.as_str(), t)).collect();
                let outs = m.forward(&refs, part)?;
                outs.into_iter()
                    .map(|(n, t)| {
                        let name = CString::new(n).map_err(|_| invalid("output name with NUL"))?;
                        Ok((name, t.to_vec_f32()?, t.shape().to_vec()))
                    })
                    .collect::<Result<Vec<_>, Refused>>()
            })
        }?;
        let handle = Box::new(TrilemmaOutputs { items });
        // SAFETY: `out` is non-null and writable by the caller's contract.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// The number of outputs (0 for NULL).
///
/// # Safety
/// `outputs` is NULL or a live pointer from trilemma_forward.
#[no_mangle]
pub unsafe extern "C" fn trilemma_outputs_count(outputs: *const TrilemmaOutputs) -> usize {
    match outputs.is_null() {
        true => 0,
        // SAFETY: live by the caller's contract.
        false => unsafe { &*outputs }.items.len(),
    }
}

/// Output `i`: its name, its float32 data (C-contiguous) and its shape of `*rank` dimensions. The
/// pointers live until trilemma_outputs_free.
///
/// # Safety
/// `outputs` is a live pointer from trilemma_forward; `name`, `data`, `shape` and `rank` point to
/// writable storage for one value each.
#[no_mangle]
pub unsafe extern "C" fn trilemma_outputs_get(
    outputs: *const TrilemmaOutputs,
    i: usize,
    name: *mut *const c_char,
    data: *mut *const f32,
    shape: *mut *const usize,
    rank: *mut usize,
) -> TrilemmaStatus {
    call(|| {
        if outputs.is_null()
            || name.is_null()
            || data.is_null()
            || shape.is_null()
            || rank.is_null()
        {
            return Err(invalid("outputs, name, data, shape or rank is NULL"));
        }
        // SAFETY: live by the caller's contract.
        let o = unsafe { &*outputs };
        let (n, d, s) = o
            .items
            .get(i)
            .ok_or_else(|| invalid(format!("output {i} of {}", o.items.len())))?;
        // SAFETY: all four are non-null and writable by the caller's contract; the values point into
        // `o`, which lives until trilemma_outputs_free.
        unsafe {
            *name = n.as_ptr();
            *data = d.as_ptr();
            *shape = s.as_ptr();
            *rank = s.len();
        }
        Ok(())
    })
}

/// Releases the outputs of trilemma_forward (NULL is ignored).
///
/// # Safety
/// `outputs` is NULL or a pointer trilemma_forward returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn trilemma_outputs_free(outputs: *mut TrilemmaOutputs) {
    if !outputs.is_null() {
        // SAFETY: a live pointer from Box::into_raw in trilemma_forward, freed once.
        drop(unsafe { Box::from_raw(outputs) });
    }
}
