//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use trilemma::Device;

/// The source tree's root, for files tests read at run time. `TRILEMMA_SOURCE_DIR` overrides the
/// build-time path, so prebuilt test executables run elsewhere (the GPU bundle).
pub fn source_dir() -> PathBuf {
    std::env::var_os("TRILEMMA_SOURCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The GPU under test, or `None` with the reason printed. With `TRILEMMA_CUDA` unset, a machine without
/// a CUDA driver tests on the CUDA driver emulator (the engine's kernels host-compiled, with memcheck),
/// so the GPU tests run everywhere; `TRILEMMA_CUDA=driver` insists on a real GPU. With
/// `TRILEMMA_REQUIRE_GPU=1` a missing device is a failure instead, so a runner cannot pass by skipping.
pub fn gpu_or_skip(test: &str) -> Option<Device> {
    trilemma::device::allow_emulator_fallback();
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            if std::env::var("TRILEMMA_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("{test}: TRILEMMA_REQUIRE_GPU=1 but no usable GPU: {e}");
            }
            eprintln!("SKIP {test}: {e}");
            None
        }
    }
}

/// The environment a child `trilemma` process needs to use the same CUDA device as this test process:
/// `TRILEMMA_CUDA=emulator` when the tests run on the emulator (the CLI never falls back by itself).
pub fn cuda_env() -> Vec<(&'static str, &'static str)> {
    if trilemma::device::is_emulated() {
        vec![("TRILEMMA_CUDA", "emulator")]
    } else {
        Vec::new()
    }
}

/// ||out - ref|| / ||ref|| (L2), in f64.
pub fn rel_err(out: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(out.len(), reference.len(), "rel_err: lengths differ");
    let (mut num, mut den) = (0f64, 0f64);
    for (&o, &r) in out.iter().zip(reference) {
        num += (o as f64 - r as f64).powi(2);
        den += (r as f64).powi(2);
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// max |out - ref|; NaN anywhere in `out` (an unwritten, poisoned element) gives infinity.
pub fn max_abs_err(out: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(out.len(), reference.len(), "max_abs_err: lengths differ");
    out.iter()
        .zip(reference)
        .map(|(&o, &r)| {
            if o.is_finite() {
                (o as f64 - r as f64).abs()
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max)
}

/// Fresh random inputs in [-2, 2) from a seeded generator (never zeros).
pub fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-2.0f32..2.0)).collect()
}

/// `tests/fixtures/<name>.safetensors`, parsed.
pub fn open_fixture(name: &str) -> trilemma::io::safetensors::SafeTensors {
    let path = source_dir().join(format!("tests/fixtures/{name}.safetensors"));
    trilemma::io::safetensors::SafeTensors::open(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Tensor `name` of a fixture as fp32 values on the host.
pub fn fixture_values(st: &trilemma::io::safetensors::SafeTensors, name: &str) -> Vec<f32> {
    st.load_any_shape(name, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"))
        .to_vec_f32()
        .unwrap()
}

/// Distance between two f32 values in units in the last place (sign-aware).
pub fn ulps_f32(a: f32, b: f32) -> u32 {
    let key = |x: f32| {
        let bits = x.to_bits() as i64;
        if bits & (1 << 31) != 0 {
            -(bits & 0x7fff_ffff)
        } else {
            bits
        }
    };
    (key(a) - key(b)).unsigned_abs() as u32
}

/// A fresh empty directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "trilemma-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A converted test model directory (tests/models, written by tools/make_test_models.py).
pub fn test_model(name: &str) -> PathBuf {
    source_dir().join("tests").join("models").join(name)
}

/// Asserts `out` has `expected`'s shape, is finite, and is within relative L2 error `tol` of it;
/// prints the relative and max abs errors under `case`.
pub fn assert_close(case: &str, out: &trilemma::Tensor, expected: &trilemma::Tensor, tol: f64) {
    assert_eq!(out.shape(), expected.shape(), "{case}: output shape");
    let (o, e) = (out.to_vec_f32().unwrap(), expected.to_vec_f32().unwrap());
    let rel = rel_err(&o, &e);
    let abs = max_abs_err(&o, &e);
    println!("{case}: rel {rel:.3e}, max abs {abs:.3e}");
    assert!(o.iter().all(|v| v.is_finite()), "{case}: non-finite output");
    assert!(
        rel <= tol,
        "{case}: relative error {rel:.3e} > {tol:e} (max abs {abs:.3e})"
    );
}

/// The `trilemma` binary under test; `TRILEMMA_BIN` overrides the build-time path (the GPU bundle).
/// Only test files that declare the binary target may call it (Cargo sets the path for them).
#[macro_export]
macro_rules! trilemma_command {
    () => {
        std::process::Command::new(
            std::env::var_os("TRILEMMA_BIN")
                .unwrap_or_else(|| env!("CARGO_BIN_EXE_trilemma").into()),
        )
    };
}

/// Exit status and both streams of a finished command, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
pub mod cld_ode_fixture;
pub mod devices;

/// The uint8 array `arr_0` of an .npz `trilemma sample` wrote (a stored zip), with its shape.
pub fn npz_u8(path: &std::path::Path) -> (Vec<u8>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = bytes
        .windows(6)
        .position(|w| w == b"\x93NUMPY")
        .unwrap_or_else(|| panic!("{}: no npy magic", path.display()));
    let hlen = u16::from_le_bytes([bytes[npy + 8], bytes[npy + 9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[npy + 10..npy + 10 + hlen]).into_owned();
    let dims = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("shape in the npy header");
    let shape: Vec<usize> = dims
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let n: usize = shape.iter().product();
    (bytes[npy + 10 + hlen..npy + 10 + hlen + n].to_vec(), shape)
}
