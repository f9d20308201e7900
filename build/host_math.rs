//! The shared-math headers (Philox, the CLD integrator, the DDGAN posterior and LSGM SDE coefficients)
//! compiled as host C++ (`csrc/host_math.cpp`) and linked into the library, so the CPU backend runs the
//! kernels' own arithmetic.

/// The shared-math headers (Philox, later integrator and posterior coefficients) as host C++, so the
/// CPU backend runs the kernels' own arithmetic. No fp contraction: the host must do exactly the fp32
/// operations the header spells out.
pub fn build() {
    cc::Build::new()
        .cpp(true)
        .file("csrc/host_math.cpp")
        .include("kernels")
        .std("c++17")
        .opt_level(2)
        .flag("-ffp-contract=off")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("trilemma_host_math");
}
