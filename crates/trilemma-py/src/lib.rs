//! `trilemma._native`, the compiled half of the Python package (`python/trilemma` wraps it): models,
//! sampling and network calls over the Rust front door, the GIL released while the engine works.
//! Arrays cross the boundary as DLPack (`dlpack.rs`): inputs are read from any DLPack producer on the
//! host (numpy, torch, ...), outputs are [`Array`]s that export themselves without a copy.

mod dlpack;

use std::sync::{Arc, Mutex};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use dlpack::Array;
use trilemma_engine::{BatchSize, DeviceSpec, Error, Part, SampleOptions, Sampler, Tensor};

create_exception!(
    trilemma,
    TrilemmaError,
    PyException,
    "Any failure of the engine; the message names the file, tensor or setting."
);
create_exception!(
    trilemma,
    BadSettingError,
    TrilemmaError,
    "A sampler setting the model or run cannot take (sampler, steps, batch, num)."
);
create_exception!(
    trilemma,
    BadModelError,
    TrilemmaError,
    "The model: unknown name, missing or corrupt file, a tensor missing or of the wrong shape."
);
create_exception!(
    trilemma,
    BadInputError,
    TrilemmaError,
    "A forward input: missing, of the wrong rank, dtype or values, or not an input of the network."
);
create_exception!(
    trilemma,
    NoGpuError,
    TrilemmaError,
    "No usable GPU, driver or kernel image."
);
create_exception!(
    trilemma,
    OutOfMemoryError,
    TrilemmaError,
    "The GPU ran out of memory."
);
create_exception!(
    trilemma,
    NonFiniteError,
    TrilemmaError,
    "The sampler's state turned NaN or infinite."
);
create_exception!(
    trilemma,
    CudaError,
    TrilemmaError,
    "A CUDA driver call failed."
);

/// The engine's error as the exception of its kind, with the same message.
fn raise(e: Error) -> PyErr {
    use trilemma_engine::ErrorKind as K;
    let msg = e.to_string();
    match e.kind() {
        K::NoGpu => NoGpuError::new_err(msg),
        K::OutOfMemory => OutOfMemoryError::new_err(msg),
        K::Cuda => CudaError::new_err(msg),
        K::BadSetting => BadSettingError::new_err(msg),
        K::BadInput => BadInputError::new_err(msg),
        K::NonFinite => NonFiniteError::new_err(msg),
        // A model file that cannot be read is the model's problem to a Python caller.
        K::BadModel | K::Io => BadModelError::new_err(msg),
        _ => TrilemmaError::new_err(msg),
    }
}

/// A loaded model. Calls on one model are serialized (it holds one GPU stream); the GIL is released
/// while it works, so other Python threads run.
#[pyclass(module = "trilemma._native", frozen)]
struct Model {
    model: Arc<Mutex<trilemma_engine::Model>>,
}

/// Loads a converted model directory or an embedded model by name onto `device` (`auto`, `cpu`,
/// `cuda`, `cuda:N`).
#[pyfunction]
#[pyo3(signature = (name_or_dir, device = "auto"))]
fn load(py: Python<'_>, name_or_dir: &str, device: &str) -> PyResult<Model> {
    let spec: DeviceSpec = device.parse().map_err(raise)?;
    let name = name_or_dir.to_string();
    let model = py
        .detach(move || {
            let opened = spec.open_one("load")?;
            trilemma_engine::Model::load(&name, &opened.devices[0])
        })
        .map_err(raise)?;
    Ok(Model {
        model: Arc::new(Mutex::new(model)),
    })
}

impl Model {
    fn with<T>(&self, f: impl FnOnce(&trilemma_engine::Model) -> T) -> T {
        let guard = self.model.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }
}

#[pymethods]
impl Model {
    /// `cld`, `ddgan` or `lsgm`.
    #[getter]
    fn family(&self) -> &'static str {
        self.with(|m| m.family.name())
    }

    /// The device the weights are on, described (`cpu`, `cuda:0 (NVIDIA H100 ...)`).
    #[getter]
    fn device(&self) -> String {
        self.with(|m| m.device.describe())
    }

    /// The shape (C, H, W) of one sampled image.
    #[getter]
    fn image_shape(&self) -> PyResult<(usize, usize, usize)> {
        let [c, h, w] = self.with(|m| m.image_shape()).map_err(raise)?;
        Ok((c, h, w))
    }

    /// `num` images as one float32 array (N, C, H, W) in [0, 1], the CLI's images for the same seed.
    // The arguments are the Python method's keyword arguments, one each.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (num, seed = 0, sampler = None, steps = None, batch = None, progress = false, precision = "fp32"))]
    fn sample(
        &self,
        py: Python<'_>,
        num: usize,
        seed: u64,
        sampler: Option<&str>,
        steps: Option<usize>,
        batch: Option<usize>,
        progress: bool,
        precision: &str,
    ) -> PyResult<Array> {
        let sampler: Option<Sampler> = sampler.map(str::parse).transpose().map_err(raise)?;
        let precision: trilemma_engine::Precision = precision.parse().map_err(raise)?;
        let model = Arc::clone(&self.model);
        let images = py
            .detach(move || {
                let guard = model.lock().unwrap_or_else(|p| p.into_inner());
                let report = |p: &trilemma_engine::Progress| {
                    let expected = p
                        .evaluations_expected
                        .map_or_else(String::new, |n| format!("/{n}"));
                    eprint!(
                        "\r{}{expected} NFE, {}/{} images, {}/{} batches",
                        p.evaluations,
                        p.images_done,
                        p.images_total,
                        p.batches_done,
                        p.batches_total
                    );
                };
                let mut o = SampleOptions::new(num).seed(seed).precision(precision);
                o.sampler = sampler;
                o.steps = steps;
                o.batch = batch.map_or(BatchSize::Auto, BatchSize::Fixed);
                if progress {
                    o.progress = Some(&report);
                }
                let images = guard.sample(&o);
                if progress {
                    eprintln!();
                }
                images
            })
            .map_err(raise)?;
        Ok(Array::new(images.values, &images.shape))
    }

    /// One network call on named arrays (numpy arrays or any DLPack producer, e.g. torch tensors;
    /// float or integer); returns the named outputs. Arrays on the model's GPU are read there without
    /// a copy when they are contiguous float32; when any input is on the GPU the outputs stay there
    /// (DLPack producers on the GPU), else they are host arrays. `part` picks an LSGM network
    /// (`score`, `encoder`, `decoder`).
    #[pyo3(signature = (inputs, part = None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyDict>,
        part: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let part = match part {
            None => None,
            Some(p) => Some(Part::parse(p).ok_or_else(|| {
                BadSettingError::new_err(format!(
                    "part must be one of score, encoder, decoder, got {p}"
                ))
            })?),
        };
        let device = self.with(|m| m.device.clone());
        let mut read = Vec::with_capacity(inputs.len());
        for (k, v) in inputs.iter() {
            let name: String = k.extract()?;
            let input = dlpack::read_input(&v, &name, &device)?;
            read.push((name, input));
        }
        let keep_on_device = read
            .iter()
            .any(|(_, i)| matches!(i, dlpack::Input::Device(_)));
        let model = Arc::clone(&self.model);
        // Borrowed GPU inputs are dropped after the call, with the GIL held: their producers'
        // deleters may need it.
        let read = &read;
        let outputs = py
            .detach(
                move || -> trilemma_engine::Result<Vec<(String, dlpack::Array)>> {
                    let guard = model.lock().unwrap_or_else(|p| p.into_inner());
                    let uploaded = read
                        .iter()
                        .map(|(n, i)| {
                            match i {
                                dlpack::Input::Host(v, s) => Tensor::from_f32(
                                    v,
                                    s,
                                    trilemma_engine::DType::F32,
                                    &guard.device,
                                )
                                .map(Some),
                                dlpack::Input::Device(_) => Ok(None),
                            }
                            .map(|t| (n.as_str(), t))
                        })
                        .collect::<trilemma_engine::Result<Vec<_>>>()?;
                    let refs: Vec<(&str, &Tensor)> = uploaded
                        .iter()
                        .zip(read)
                        .map(|((n, up), (_, i))| match (up, i) {
                            (Some(t), _) => (*n, t),
                            (None, dlpack::Input::Device(t)) => (*n, t),
                            (None, dlpack::Input::Host(..)) => {
                                unreachable!("host inputs are uploaded")
                            }
                        })
                        .collect();
                    guard
                        .forward(&refs, part)?
                        .into_iter()
                        .map(|(n, t)| {
                            let a = if keep_on_device {
                                dlpack::Array::from_tensor(t)?
                            } else {
                                dlpack::Array::new(t.to_vec_f32()?, t.shape())
                            };
                            Ok((n, a))
                        })
                        .collect()
                },
            )
            .map_err(raise)?;
        let out = PyDict::new(py);
        for (name, array) in outputs {
            out.set_item(name, array)?;
        }
        Ok(out)
    }

    /// `array` (numpy or any DLPack producer) as float32 on the model's device: a GPU array for a
    /// model on a GPU (an input `forward` reads without a copy), a host array on the CPU.
    fn to_device(&self, py: Python<'_>, array: &Bound<'_, PyAny>) -> PyResult<dlpack::Array> {
        let device = self.with(|m| m.device.clone());
        match dlpack::read_input(array, "array", &device)? {
            dlpack::Input::Host(values, shape) => py
                .detach(|| {
                    let t =
                        Tensor::from_f32(&values, &shape, trilemma_engine::DType::F32, &device)?;
                    dlpack::Array::from_tensor(t)
                })
                .map_err(raise),
            dlpack::Input::Device(t) => {
                // Already there: a copy of the borrowed memory, owned by the engine.
                let t = py.detach(|| t.to_device(&device)).map_err(raise)?;
                dlpack::Array::from_tensor(t).map_err(raise)
            }
        }
    }
}

/// The names of the embedded models.
#[pyfunction]
fn embedded_models() -> Vec<&'static str> {
    trilemma_engine::Model::embedded()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Model>()?;
    m.add_class::<Array>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(embedded_models, m)?)?;
    m.add("TrilemmaError", py.get_type::<TrilemmaError>())?;
    m.add("BadSettingError", py.get_type::<BadSettingError>())?;
    m.add("BadModelError", py.get_type::<BadModelError>())?;
    m.add("BadInputError", py.get_type::<BadInputError>())?;
    m.add("NoGpuError", py.get_type::<NoGpuError>())?;
    m.add("OutOfMemoryError", py.get_type::<OutOfMemoryError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("CudaError", py.get_type::<CudaError>())?;
    Ok(())
}
