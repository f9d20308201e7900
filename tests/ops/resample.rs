//! The resamplers (`kernels/resample.cu`): upfirdn2d (NCSN++'s FIR up/down-sampling, any kernel, up,
//! down and padding, negative padding as a crop) and the fixed 2× resamplers. The CPU is checked against
//! the PyTorch fixtures in `tests/network_ops.rs`; here every GPU against the CPU, bit for bit (the same
//! products summed in the same order).

use trilemma::backend::geometry::Resample2x;
use trilemma::ops;
use trilemma::{DType, Device, Tensor};

use crate::common::devices::{devices, on, on_every_device, Agree};
use crate::common::random_vec;

#[test]
fn resamplers_match_the_cpu_exactly_on_every_device() {
    let devices = devices("resamplers_match_the_cpu_exactly_on_every_device");
    let x = Tensor::from_f32(
        &random_vec(600, 13),
        &[2, 6, 10, 5],
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    for mode in [
        Resample2x::NearestUp,
        Resample2x::MeanDown,
        Resample2x::BilinearUpAligned,
    ] {
        on_every_device(
            &devices,
            &format!("resample2x {mode:?}"),
            Agree::Exact,
            |d| ops::resample2x(&on(d, &x), mode).unwrap(),
            |_| {},
        );
    }
    let taps = [1.0, 3.0, 3.0, 1.0];
    on_every_device(
        &devices,
        "fir up 2x",
        Agree::Exact,
        |d| ops::fir_upsample2x(&on(d, &x), &taps).unwrap(),
        |_| {},
    );
    on_every_device(
        &devices,
        "fir down 2x",
        Agree::Exact,
        |d| ops::fir_downsample2x(&on(d, &x), &taps).unwrap(),
        |_| {},
    );
    // Asymmetric padding with a crop, and a non-separable 3x3 kernel.
    let fir = ops::fir_kernel_2d(&taps, 1.0);
    let fir_up = ops::fir_kernel_2d(&taps, 4.0);
    let odd: Vec<f32> = random_vec(9, 14);
    for (k, up, down, pad) in [
        (&fir, 1, 1, (1, 2)),
        (&fir_up, 2, 1, (2, 1)),
        (&odd, 1, 2, (1, 1)),
        (&odd, 2, 2, (-1, 0)),
    ] {
        on_every_device(
            &devices,
            &format!("upfirdn2d up {up} down {down} pad {pad:?}"),
            Agree::Exact,
            |d| ops::upfirdn2d(&on(d, &x), k, up, down, pad).unwrap(),
            |_| {},
        );
    }
}
