//! The `trilemma` binary: `info` succeeds and explains itself on any machine, GPU or not.

#[macro_use]
mod common;

use std::process::Command;

fn trilemma() -> Command {
    trilemma_command!()
}

#[test]
fn info_exits_zero_and_reports_kernels_and_devices() {
    let out = trilemma().arg("info").output().expect("run trilemma info");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kernels:"), "{stdout}");
    match trilemma::Device::cuda(0) {
        Ok(_) => assert!(stdout.contains("cuda:0"), "{stdout}"),
        Err(_) => assert!(
            stdout.contains("devices:") || stdout.contains("cuda:"),
            "{stdout}"
        ),
    }
    if trilemma::kernels::compiled() {
        for arch in trilemma::kernels::CUDA_ARCHS {
            assert!(stdout.contains(arch), "{arch} missing from\n{stdout}");
        }
    }
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let out = trilemma()
        .arg("sample-everything")
        .output()
        .expect("run trilemma");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
