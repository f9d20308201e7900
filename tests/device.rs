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

#[test]
fn device_specs_parse_and_bad_ones_are_errors() {
    use trilemma::device::DeviceSpec;
    for (s, want) in [
        ("auto", DeviceSpec::Auto),
        ("cpu", DeviceSpec::Cpu),
        ("cuda", DeviceSpec::Cuda(0)),
        ("cuda:3", DeviceSpec::Cuda(3)),
        ("cuda:all", DeviceSpec::AllCuda),
    ] {
        let got: DeviceSpec = s.parse().unwrap();
        assert_eq!(got, want, "{s}");
        if s != "cuda" {
            assert_eq!(got.to_string(), s);
        }
    }
    for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
        let e = bad.parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(e.contains("auto, cpu, cuda, cuda:N"), "{bad}: {e}");
    }
    // auto always opens one device, and says what it chose.
    let opened = DeviceSpec::Auto.open().unwrap();
    assert_eq!(opened.devices.len(), 1);
    let note = opened.note.unwrap();
    assert!(note.starts_with("device auto: "), "{note}");
    assert_eq!(opened.devices[0].is_cuda(), !note.contains("auto: cpu"));
    // cuda:all is one command's choice, not forward's or bench's.
    let e = DeviceSpec::AllCuda
        .open_one("forward")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cuda:all is for `sample`"), "{e}");
}
