//! The sampling loops' non-finite watch (`kernels/finite.cu`): on the CPU each check fails at once at
//! the bad step; on a GPU the checks queue and `finish` names the first bad step.

use trilemma::ops::FiniteWatch;
use trilemma::{DType, Device, Error, Tensor};

use crate::common::devices::devices;

#[test]
fn finite_watch_names_the_first_bad_step_on_every_device() {
    let good = Tensor::full(0.5, &[4, 3], DType::F32, &Device::Cpu).unwrap();
    let mut bad_values = vec![0.5f32; 12];
    bad_values[7] = f32::NAN;
    let bad = Tensor::from_f32(&bad_values, &[4, 3], DType::F32, &Device::Cpu).unwrap();
    let expect_step_5 = |e: Error| {
        let msg = e.to_string();
        assert!(msg.contains("`v`") && msg.contains("step 5"), "{msg}");
    };
    for dev in devices("finite_watch_names_the_first_bad_step_on_every_device") {
        let (good, bad) = (good.to_device(&dev).unwrap(), bad.to_device(&dev).unwrap());
        let mut w = FiniteWatch::new(&["x", "v"]);
        if dev.is_cuda() {
            // The checks queue; finish reports the first bad step.
            w.check(&good, "x", 3).unwrap();
            w.check(&bad, "v", 5).unwrap();
            w.check(&bad, "x", 7).unwrap();
            w.check(&bad, "v", 9).unwrap();
            expect_step_5(w.finish().unwrap_err());
            let mut w = FiniteWatch::new(&["x"]);
            w.check(&good, "x", 1).unwrap();
            w.finish().unwrap();
        } else {
            // The check itself fails, at the bad step.
            w.check(&good, "x", 3).unwrap();
            expect_step_5(w.check(&bad, "v", 5).unwrap_err());
            assert!(
                w.check(&good, "u", 1).is_err(),
                "an unknown name is an error"
            );
        }
    }
}
