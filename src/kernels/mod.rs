//! The compiled kernels embedded in this build: fatbins, their architectures, ptxas's resource report,
//! and the launch-parameter structs shared with `kernels/common/params.h`.

mod generated {
    include!(concat!(env!("OUT_DIR"), "/kernels_generated.rs"));
}

/// Launch-parameter structs, generated from `kernels/common/params.h` by bindgen (see
/// `tests/bindings_fresh.rs`, which regenerates and compares them).
#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    clippy::all
)]
pub mod params {
    include!("params_bindings.rs");

    // SAFETY: each struct is #[repr(C)], made of plain integers and floats with explicit padding
    // (checked by bindgen's layout assertions), and matches the C declaration the kernels read, so
    // passing it by value as a kernel argument copies exactly the bytes the kernel expects.
    unsafe impl cudarc::driver::DeviceRepr for TriRandnParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriAxpbyParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriCastParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriDdganPosteriorParams {}
    // SAFETY: as above (the network-op structs: plain integers, floats and nested such structs).
    unsafe impl cudarc::driver::DeviceRepr for TriActivationParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriBinaryParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriChannelAffineParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriGroupNormParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriChannelCopyParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriCropParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriPermuteParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriChannelMeanParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriResample2xParams {}
    // SAFETY: as above (the taps are a fixed-size float array inside the struct, passed by value).
    unsafe impl cudarc::driver::DeviceRepr for TriUpFirDnParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriConv2dParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriAttentionParams {}
    // SAFETY: as above (a TriRandnParams, integers and floats, explicit padding).
    unsafe impl cudarc::driver::DeviceRepr for TriSscsStepParams {}
    // SAFETY: as above.
    unsafe impl cudarc::driver::DeviceRepr for TriCldEmParams {}
}

/// The host builds of the kernels for the CUDA driver emulator (`crates/cuda-emu`): [`emulated::modules`]
/// are the embedded fatbins with their host-compiled kernels; [`emulated::selftest_modules`] the
/// emulator's own test kernels (`tests/emulator_kernels`), for its sanitizer tests. Both are empty in a
/// build without nvcc.
pub mod emulated {
    include!(concat!(env!("OUT_DIR"), "/emulated_kernels_generated.rs"));
}

pub use generated::{CUDA_ARCHS, FATBINS, NVCC_RELEASE, PTXAS_RESOURCES_TSV};

/// Whether this build carries CUDA kernels (nvcc was found when it was built).
pub fn compiled() -> bool {
    !FATBINS.is_empty()
}

/// The fatbin of `kernels/<module>.cu`.
pub fn fatbin(module: &str) -> Option<&'static [u8]> {
    FATBINS.iter().find(|(m, _)| *m == module).map(|(_, b)| *b)
}

/// The image in `archs` that a GPU of compute capability `cc` runs, as the driver would choose it:
/// SASS for the exact architecture (an `a` variant only on its own architecture), else SASS of the
/// same major version and a lower minor, else PTX of an equal or lower architecture (JIT).
pub fn image_for(cc: (i32, i32), archs: &'static [&'static str]) -> Option<&'static str> {
    let target = cc.0 * 10 + cc.1;
    let parse = |a: &str, prefix: &str| -> Option<(i32, bool)> {
        let n = a.strip_prefix(prefix)?;
        let accel = n.ends_with('a');
        n.trim_end_matches('a').parse().ok().map(|v| (v, accel))
    };
    let sass = archs
        .iter()
        .filter_map(|a| parse(a, "sm_").map(|(v, accel)| (*a, v, accel)))
        .filter(|&(_, v, accel)| {
            if accel {
                v == target
            } else {
                v / 10 == cc.0 && v <= target
            }
        })
        .max_by_key(|&(_, v, accel)| (v, accel));
    if let Some((a, _, _)) = sass {
        return Some(a);
    }
    archs
        .iter()
        .filter_map(|a| parse(a, "compute_").map(|(v, accel)| (*a, v, accel)))
        .filter(|&(_, v, accel)| !accel && v <= target)
        .max_by_key(|&(_, v, _)| v)
        .map(|(a, _, _)| a)
}

/// One row of ptxas's `-v` report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelResources {
    pub module: String,
    pub kernel: String,
    pub arch: String,
    pub registers: u32,
    pub shared_bytes: u32,
    pub stack_bytes: u32,
    pub spill_store_bytes: u32,
    pub spill_load_bytes: u32,
}

/// Parses the resource report the build wrote (one header line, then tab-separated rows).
pub fn parse_resources(tsv: &str) -> Result<Vec<KernelResources>, String> {
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 8 {
                return Err(format!(
                    "expected 8 tab-separated fields, got {}: `{line}`",
                    f.len()
                ));
            }
            let num = |i: usize| {
                f[i].parse::<u32>()
                    .map_err(|e| format!("field {i} of `{line}`: {e}"))
            };
            Ok(KernelResources {
                module: f[0].into(),
                kernel: f[1].into(),
                arch: f[2].into(),
                registers: num(3)?,
                shared_bytes: num(4)?,
                stack_bytes: num(5)?,
                spill_store_bytes: num(6)?,
                spill_load_bytes: num(7)?,
            })
        })
        .collect()
}

/// The embedded report of this build.
pub fn resources() -> Result<Vec<KernelResources>, String> {
    parse_resources(PTXAS_RESOURCES_TSV)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCHS: &[&str] = &["sm_80", "sm_86", "sm_89", "sm_90a", "compute_80"];

    #[test]
    fn image_choice_follows_driver_rules() {
        assert_eq!(image_for((9, 0), ARCHS), Some("sm_90a"));
        assert_eq!(image_for((8, 0), ARCHS), Some("sm_80"));
        assert_eq!(image_for((8, 7), ARCHS), Some("sm_86"));
        assert_eq!(image_for((8, 9), ARCHS), Some("sm_89"));
        // Blackwell: no SASS of its major, sm_90a does not run there; the Ampere PTX is JIT-compiled.
        assert_eq!(image_for((10, 0), ARCHS), Some("compute_80"));
        assert_eq!(image_for((12, 0), &["sm_90a", "sm_80"]), None);
        assert_eq!(image_for((7, 5), ARCHS), None);
    }

    #[test]
    fn resource_report_parses_and_rejects_garbage() {
        let tsv = "module\tkernel\tarch\tregisters\tshared_bytes\tstack_bytes\tspill_store_bytes\tspill_load_bytes\n\
                   elementwise\taxpby_f32\tsm_80\t12\t0\t0\t0\t0\n";
        let r = parse_resources(tsv).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].kernel, "axpby_f32");
        assert_eq!(r[0].registers, 12);
        assert!(parse_resources("h\nx\ty\n").is_err());
        assert!(parse_resources("h\na\tb\tc\td\te\tf\tg\th\n").is_err());
    }
}
