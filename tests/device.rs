//! Device discovery never panics: on a machine without a GPU every entry point returns an error that
//! says why; on a GPU machine the device opens and reports itself.

mod common;

use trilemma::{Device, Error};

#[test]
fn opening_a_gpu_returns_a_device_or_a_typed_error() {
    trilemma::device::allow_emulator_fallback();
    match Device::cuda(0) {
        Ok(d) => {
            assert!(d.is_cuda());
            assert!(d.describe().starts_with("cuda:0"));
            d.synchronize().unwrap();
        }
        Err(e) => {
            if std::env::var("TRILEMMA_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("TRILEMMA_REQUIRE_GPU=1: {e}");
            }
            assert!(
                matches!(
                    e,
                    Error::NoCuda(_)
                        | Error::KernelsNotCompiled
                        | Error::DriverTooOld { .. }
                        | Error::NoKernelForDevice { .. }
                ),
                "unexpected error kind: {e:?}"
            );
            assert!(!e.to_string().is_empty());
            eprintln!("no GPU here: {e}");
        }
    }
}

#[test]
fn a_missing_ordinal_is_an_error() {
    let Some(_) = common::gpu_or_skip("a_missing_ordinal_is_an_error") else {
        return;
    };
    let e = Device::cuda(4096).unwrap_err();
    assert!(matches!(e, Error::NoCuda(_)), "{e:?}");
    assert!(e.to_string().contains("4096"), "{e}");
}

#[test]
fn device_listing_matches_the_driver() {
    trilemma::device::allow_emulator_fallback();
    match trilemma::device::cuda_devices() {
        Ok(devs) => {
            assert!(!devs.is_empty());
            for d in devs {
                assert!(d.total_memory > 0 && d.multiprocessors > 0, "{d:?}");
                // An emulated device says so, in its flag and its name.
                assert_eq!(d.emulated, trilemma::device::is_emulated(), "{d:?}");
                assert_eq!(d.emulated, d.name.contains("emulated"), "{d:?}");
            }
        }
        Err(e) => {
            if std::env::var("TRILEMMA_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("TRILEMMA_REQUIRE_GPU=1: {e}");
            }
            assert!(matches!(e, Error::NoCuda(_)), "{e:?}");
        }
    }
}
