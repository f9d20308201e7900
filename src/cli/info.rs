//! `trilemma info`: the build's kernels and the GPUs, driver and memory this machine has.

fn gib(bytes: usize) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// `trilemma info`: never fails; what is missing is printed.
pub fn run() -> crate::Result<()> {
    println!("trilemma {}", env!("CARGO_PKG_VERSION"));
    match crate::kernels::NVCC_RELEASE {
        Some(release) => println!(
            "kernels: {} modules built by nvcc {release} for {}",
            crate::kernels::FATBINS.len(),
            crate::kernels::CUDA_ARCHS.join(", ")
        ),
        None => println!("kernels: none (built without nvcc; only the CPU backend is available)"),
    }
    match crate::device::driver_version() {
        Ok(v) => println!("driver: CUDA {}.{}", v / 1000, (v % 1000) / 10),
        Err(e) => {
            println!("driver: none ({e})");
            println!("devices: no GPU on this machine; the CPU backend is available");
            return Ok(());
        }
    }
    match crate::device::cuda_devices() {
        Ok(devs) => {
            for d in devs {
                println!(
                    "cuda:{}  {}{}  compute {}.{}  {} SMs  memory {} total, {} free  kernels: {}",
                    d.ordinal,
                    d.name,
                    if d.emulated {
                        "  [emulated: the CUDA driver emulator, host-compiled kernels on the CPU]"
                    } else {
                        ""
                    },
                    d.compute_capability.0,
                    d.compute_capability.1,
                    d.multiprocessors,
                    gib(d.total_memory),
                    gib(d.free_memory),
                    d.kernel_image
                        .unwrap_or("none for this GPU (rebuild with TRILEMMA_CUDA_ARCHS)")
                );
            }
            Ok(())
        }
        Err(e) => {
            println!("devices: none usable ({e})");
            Ok(())
        }
    }
}
