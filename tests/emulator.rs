//! The CUDA driver emulator's own tests, on the kernels of tests/emulator_kernels/emu_selftest.cu: exact
//! warp and barrier semantics on correct kernels, and for every sanitizer a deliberately broken kernel
//! that it must catch (memcheck: out of bounds, past a pooled tensor, use after free, misalignment,
//! shared memory, a host pointer as a kernel argument; initcheck: the NaN fill; racecheck: a shared-memory
//! race made visible by the thread order, and reported as a hazard by shadow tracking; synccheck: a divergent barrier, a shuffle naming exited lanes),
//! the driver's launch checks, sticky errors, module loading and the counters.
//!
//! Kernel faults are sticky on the device's primary context, so the tests take turns (a lock) and each
//! drops its context before the next opens one. On a machine with a real GPU (or TRILEMMA_CUDA=driver)
//! the process uses the real driver and these tests skip: they test the emulator, not the GPU.

use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::{
    sys, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError, LaunchConfig,
    PushKernelArg,
};
use trilemma::Device;
use trilemma_cuda_emu::Schedule;

static TURN: Mutex<()> = Mutex::new(());

struct Emu {
    stream: Arc<CudaStream>,
    module: Arc<CudaModule>,
    _turn: MutexGuard<'static, ()>,
}

impl Emu {
    fn ctx(&self) -> &Arc<CudaContext> {
        self.stream.context()
    }
    fn f(&self, name: &str) -> CudaFunction {
        self.module.load_function(name).unwrap()
    }
    fn upload(&self, v: &[f32]) -> CudaSlice<f32> {
        self.stream.clone_htod(v).unwrap()
    }
    fn zeros<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> CudaSlice<T> {
        self.stream.alloc_zeros::<T>(n).unwrap()
    }
    fn sync(&self) -> Result<(), DriverError> {
        self.stream.synchronize()
    }
}

/// The emulated device with the self-test module loaded, or None (with the reason) off the emulator.
fn emu(test: &str) -> Option<Emu> {
    emu_with(test, false)
}

/// As [`emu`], for a test of memcheck: None also when memcheck is off (TRILEMMA_EMU_MEMCHECK=0).
fn emu_memcheck(test: &str) -> Option<Emu> {
    emu_with(test, true)
}

fn emu_with(test: &str, needs_memcheck: bool) -> Option<Emu> {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    if std::env::var("TRILEMMA_CUDA").as_deref() != Ok("driver") {
        trilemma::device::allow_emulator_fallback();
    }
    let dev = match Device::cuda(0) {
        Ok(Device::Cuda(d)) => d,
        Ok(Device::Cpu) => unreachable!(),
        Err(e) => {
            assert!(
                std::env::var("TRILEMMA_REQUIRE_GPU").as_deref() != Ok("1")
                    || std::env::var("TRILEMMA_CUDA").as_deref() == Ok("driver"),
                "{test}: no emulated device: {e}"
            );
            eprintln!("SKIP {test}: {e}");
            return None;
        }
    };
    if !trilemma::device::is_emulated() {
        eprintln!("SKIP {test}: this process uses a real CUDA driver");
        return None;
    }
    if needs_memcheck && !trilemma_cuda_emu::memcheck() {
        eprintln!("SKIP {test}: TRILEMMA_EMU_MEMCHECK=0");
        return None;
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        trilemma_cuda_emu::register(trilemma::kernels::emulated::selftest_modules()).unwrap()
    });
    let stream = Arc::clone(dev.stream());
    let image = trilemma::kernels::emulated::selftest_modules()
        .into_iter()
        .find(|m| m.name == "emu_selftest")
        .expect("the emu_selftest module is built with the kernels")
        .fatbin;
    let module = stream
        .context()
        .load_module(cudarc::nvrtc::Ptx::from_binary(image.to_vec()))
        .unwrap();
    Some(Emu {
        stream,
        module,
        _turn: turn,
    })
}

fn cfg(blocks: u32, threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn code(e: &DriverError) -> sys::CUresult {
    e.0
}

/// Asserts the stream reports `want` (the sticky fault) and the last report names `needles`.
fn assert_fault(e: &Emu, want: sys::CUresult, needles: &[&str]) {
    let err = e
        .sync()
        .expect_err("the fault must surface at the next synchronize");
    assert_eq!(code(&err), want, "{err:?}");
    let report = trilemma_cuda_emu::last_fault().expect("a fault report");
    for n in needles {
        assert!(report.contains(n), "report lacks `{n}`: {report}");
    }
    // Sticky: any later call on the context fails the same way.
    let again = e.stream.clone_htod(&[1.0f32]).map(|_| ()).unwrap_err();
    assert_eq!(code(&again), want);
}

#[test]
fn memcheck_catches_a_read_one_past_the_end() {
    let Some(e) = emu_memcheck("memcheck_catches_a_read_one_past_the_end") else {
        return;
    };
    let n = 1000u32;
    let x = e.upload(&vec![1.0; n as usize]);
    let mut y = e.zeros::<f32>(n as usize);
    let f = e.f("oob_read_f32");
    // SAFETY: the kernel's arguments are (const float*, float*, unsigned) as pushed; it reads one past
    // x's end on purpose, inside the emulator, which must catch it.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&x)
            .arg(&mut y)
            .arg(&n)
            .launch(cfg(4, 256))
    }
    .unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_ILLEGAL_ADDRESS,
        &[
            "oob_read_f32",
            "invalid read of 4 bytes",
            "0 bytes past the end of the 4000-byte allocation",
            "block (3,0,0), thread (231,0,0)",
        ],
    );
}

#[test]
fn memcheck_catches_a_write_past_the_end() {
    let Some(e) = emu_memcheck("memcheck_catches_a_write_past_the_end") else {
        return;
    };
    let n = 300u32;
    let mut y = e.zeros::<f32>(n as usize);
    let f = e.f("oob_write_f32");
    // SAFETY: (float*, unsigned); writes y[n] on purpose, inside the emulator.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&mut y)
            .arg(&n)
            .launch(cfg(2, 256))
    }
    .unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_ILLEGAL_ADDRESS,
        &[
            "oob_write_f32",
            "invalid write of 4 bytes",
            "thread (44,0,0)",
        ],
    );
}

#[test]
fn memcheck_is_byte_exact_inside_a_pooled_block() {
    let Some(e) = emu_memcheck("memcheck_is_byte_exact_inside_a_pooled_block") else {
        return;
    };
    // A 4096-byte block handed out for a 1000-byte tensor, as the caching allocator does.
    let x = e.zeros::<f32>(1024);
    let mut y = e.zeros::<f32>(1024);
    let ptr = {
        use cudarc::driver::DevicePtr;
        x.device_ptr(&e.stream).0
    };
    trilemma_cuda_emu::pool_handout(ptr, 1000, 4096);
    let f = e.f("copy_f32");
    // 250 floats are the tensor: fine.
    let n = 250u32;
    // SAFETY: (const float*, float*, unsigned).
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&x)
            .arg(&mut y)
            .arg(&n)
            .launch(cfg(1, 256))
    }
    .unwrap();
    e.sync().unwrap();
    // One float more is past the tensor although inside the block.
    let n = 251u32;
    // SAFETY: as above; reads byte 1000 on purpose.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&x)
            .arg(&mut y)
            .arg(&n)
            .launch(cfg(1, 256))
    }
    .unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_ILLEGAL_ADDRESS,
        &["copy_f32", "thread (250,0,0)", "past the end"],
    );
}

#[test]
fn memcheck_catches_a_use_after_free() {
    let Some(e) = emu_memcheck("memcheck_catches_a_use_after_free") else {
        return;
    };
    let x = e.upload(&[1.0; 64]);
    let ptr = {
        use cudarc::driver::DevicePtr;
        x.device_ptr(&e.stream).0
    };
    drop(x);
    let mut y = e.zeros::<f32>(64);
    let f = e.f("copy_f32");
    let n = 64u32;
    // SAFETY: (const float*, float*, unsigned) with a pointer that was freed on purpose.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&ptr)
            .arg(&mut y)
            .arg(&n)
            .launch(cfg(1, 64))
    }
    .unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_ILLEGAL_ADDRESS,
        &["copy_f32", "use after free"],
    );
}

#[test]
fn memcheck_catches_a_misaligned_vector_load() {
    let Some(e) = emu_memcheck("memcheck_catches_a_misaligned_vector_load") else {
        return;
    };
    let x = e.upload(&[1.0; 64]);
    let mut y = e.zeros::<f32>(32);
    let f = e.f("misaligned_f32x4");
    // SAFETY: (const float*, float*); loads a float4 at x + 1 on purpose.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&x)
            .arg(&mut y)
            .launch(cfg(1, 32))
    }
    .unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_MISALIGNED_ADDRESS,
        &["misaligned_f32x4", "misaligned read of 16 bytes"],
    );
}

#[test]
fn memcheck_catches_shared_memory_out_of_bounds() {
    let Some(e) = emu_memcheck("memcheck_catches_shared_memory_out_of_bounds") else {
        return;
    };
    let mut y = e.zeros::<f32>(64);
    let f = e.f("shared_oob_f32");
    // SAFETY: (float*); reads s[64] of a 64-element shared array on purpose.
    unsafe { e.stream.launch_builder(&f).arg(&mut y).launch(cfg(1, 64)) }.unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_ILLEGAL_ADDRESS,
        &["shared_oob_f32", "thread (63,0,0)", "shared-memory arena"],
    );
}

#[test]
fn a_host_pointer_as_a_kernel_argument_is_an_illegal_address() {
    let Some(e) = emu("a_host_pointer_as_a_kernel_argument_is_an_illegal_address") else {
        return;
    };
    let host = vec![0f32; 64];
    let host_ptr = host.as_ptr() as u64;
    let mut y = e.zeros::<f32>(64);
    let f = e.f("copy_f32");
    let n = 64u32;
    // SAFETY: a host address where the kernel expects a device pointer, on purpose: the emulator checks
    // pointer arguments before it runs the kernel, so the host memory is never touched.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&host_ptr)
            .arg(&mut y)
            .arg(&n)
            .launch(cfg(1, 64))
    }
    .unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_ILLEGAL_ADDRESS,
        &["parameter 0 of copy_f32", "not device memory"],
    );
}

#[test]
fn initcheck_fills_fresh_device_and_shared_memory_with_nan() {
    let Some(e) = emu("initcheck_fills_fresh_device_and_shared_memory_with_nan") else {
        return;
    };
    // SAFETY: reading uninitialised device memory is the point; on the emulator it holds the pattern.
    let fresh = unsafe { e.stream.alloc::<f32>(100) }.unwrap();
    let back = e.stream.clone_dtoh(&fresh).unwrap();
    assert!(back.iter().all(|v| v.is_nan()), "{:?}", &back[..4]);
    let mut y = e.zeros::<f32>(64);
    let f = e.f("shared_uninit_f32");
    // SAFETY: (float*); half of the shared array is never written, on purpose.
    unsafe { e.stream.launch_builder(&f).arg(&mut y).launch(cfg(1, 64)) }.unwrap();
    e.sync().unwrap();
    let y = e.stream.clone_dtoh(&y).unwrap();
    assert!(y[..32].iter().all(|&v| v == 1.0), "{y:?}");
    assert!(y[32..].iter().all(|v| v.is_nan()), "{y:?}");
}

#[test]
fn racecheck_by_schedule_exposes_a_shared_memory_race_and_keeps_correct_kernels_bit_identical() {
    let Some(e) = emu("racecheck_by_schedule") else {
        return;
    };
    let before = trilemma_cuda_emu::schedule();
    let run = |s: Schedule| {
        trilemma_cuda_emu::set_schedule(s);
        let mut race = e.zeros::<u32>(64);
        let f = e.f("shared_race_u32");
        // SAFETY: (unsigned*); the race on one shared word is the point.
        unsafe {
            e.stream
                .launch_builder(&f)
                .arg(&mut race)
                .launch(cfg(1, 64))
        }
        .unwrap();
        let x: Vec<f32> = (0..1024).map(|i| (i as f32).sin()).collect();
        let xd = e.upload(&x);
        let mut rev = e.zeros::<f32>(1024);
        let g = e.f("block_reverse_f32");
        // SAFETY: (const float*, float*), 4 blocks of 256 = 1024 elements.
        unsafe {
            e.stream
                .launch_builder(&g)
                .arg(&xd)
                .arg(&mut rev)
                .launch(cfg(4, 256))
        }
        .unwrap();
        e.sync().unwrap();
        (
            e.stream.clone_dtoh(&race).unwrap(),
            e.stream.clone_dtoh(&rev).unwrap(),
            x,
        )
    };
    let (race_fwd, rev_fwd, x) = run(Schedule::Forward);
    let (race_rev, rev_rev, _) = run(Schedule::Reverse);
    let (_, rev_shuf, _) = run(Schedule::Shuffle(11));
    trilemma_cuda_emu::set_schedule(before);
    // The last writer wins: thread 63 in forward order, thread 0 in reverse order.
    assert!(race_fwd.iter().all(|&v| v == 63), "{race_fwd:?}");
    assert!(race_rev.iter().all(|&v| v == 0), "{race_rev:?}");
    for b in 0..4 {
        for t in 0..256 {
            assert_eq!(
                rev_fwd[b * 256 + t].to_bits(),
                x[b * 256 + 255 - t].to_bits()
            );
        }
    }
    assert_eq!(rev_fwd, rev_rev);
    assert_eq!(rev_fwd, rev_shuf);
}

#[test]
fn synccheck_catches_a_divergent_barrier() {
    let Some(e) = emu("synccheck_catches_a_divergent_barrier") else {
        return;
    };
    let mut y = e.zeros::<f32>(32);
    let f = e.f("divergent_barrier_f32");
    // SAFETY: (float*); two barriers on two paths, on purpose.
    unsafe { e.stream.launch_builder(&f).arg(&mut y).launch(cfg(1, 32)) }.unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_LAUNCH_FAILED,
        &[
            "divergent_barrier_f32",
            "barrier divergence",
            "emu_selftest.cu:",
        ],
    );
}

#[test]
fn synccheck_catches_a_shuffle_whose_mask_names_exited_lanes() {
    let Some(e) = emu("synccheck_catches_a_shuffle_whose_mask_names_exited_lanes") else {
        return;
    };
    let mut y = e.zeros::<f32>(32);
    let f = e.f("shuffle_after_exit_f32");
    // SAFETY: (float*); a full-mask shuffle after half the warp returned, on purpose.
    unsafe { e.stream.launch_builder(&f).arg(&mut y).launch(cfg(1, 32)) }.unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_LAUNCH_FAILED,
        &["shuffle_after_exit_f32", "__shfl_xor_sync", "has exited"],
    );
}

#[test]
fn warp_collectives_follow_the_hardware_rules() {
    let Some(e) = emu("warp_collectives_follow_the_hardware_rules") else {
        return;
    };
    // The xor butterfly, evaluated on the host in the kernel's order, for 4 warps.
    let x: Vec<f32> = (0..128)
        .map(|i| ((i * 37) % 101) as f32 / 7.0 - 5.0)
        .collect();
    let mut want = Vec::new();
    for w in 0..4 {
        let mut v: Vec<f32> = x[w * 32..(w + 1) * 32].to_vec();
        for o in [16, 8, 4, 2, 1] {
            v = (0..32).map(|l| v[l] + v[l ^ o]).collect();
        }
        want.push(v[0]);
    }
    let xd = e.upload(&x);
    let mut y = e.zeros::<f32>(4);
    let f = e.f("warp_sum_f32");
    // SAFETY: (const float*, float*), 128 threads.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&xd)
            .arg(&mut y)
            .launch(cfg(1, 128))
    }
    .unwrap();
    let (mut up, mut down, mut ballot, mut gather) = (
        e.zeros::<u32>(32),
        e.zeros::<u32>(32),
        e.zeros::<u32>(32),
        e.zeros::<u32>(32),
    );
    let g = e.f("shuffle_edges_u32");
    // SAFETY: (unsigned*, unsigned*, unsigned*, unsigned*), one warp.
    unsafe {
        e.stream
            .launch_builder(&g)
            .arg(&mut up)
            .arg(&mut down)
            .arg(&mut ballot)
            .arg(&mut gather)
            .launch(cfg(1, 32))
    }
    .unwrap();
    e.sync().unwrap();
    let y = e.stream.clone_dtoh(&y).unwrap();
    assert_eq!(
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let (up, down, ballot) = (
        e.stream.clone_dtoh(&up).unwrap(),
        e.stream.clone_dtoh(&down).unwrap(),
        e.stream.clone_dtoh(&ballot).unwrap(),
    );
    let gather = e.stream.clone_dtoh(&gather).unwrap();
    for l in 0..32u32 {
        assert_eq!(gather[l as usize], (l * 7) % 32 * 10, "gather, lane {l}");
    }
    let want_ballot: u32 = (0..32).filter(|l| l % 3 == 0).fold(0, |m, l| m | (1 << l));
    for l in 0..32u32 {
        // A source lane outside the warp leaves the caller's own value.
        assert_eq!(
            up[l as usize],
            if l == 0 { 0 } else { (l - 1) * 10 },
            "up, lane {l}"
        );
        assert_eq!(
            down[l as usize],
            if l >= 30 { l * 10 } else { (l + 2) * 10 },
            "down, lane {l}"
        );
        assert_eq!(ballot[l as usize], want_ballot);
    }
}

#[test]
fn launches_the_driver_would_refuse_are_refused_with_its_codes() {
    let Some(e) = emu("launches_the_driver_would_refuse_are_refused_with_its_codes") else {
        return;
    };
    let x = e.upload(&vec![1.0; 2048]);
    let mut y = e.zeros::<f32>(2048);
    let mut refused = |f: &CudaFunction, c: LaunchConfig| {
        // SAFETY: (const float*, float*) for every kernel launched here; the launch is refused before
        // anything runs.
        unsafe { e.stream.launch_builder(f).arg(&x).arg(&mut y).launch(c) }
            .map(|_| ())
            .unwrap_err()
    };
    let reverse = e.f("block_reverse_f32");
    // More threads than a block may have, and than the kernel's __launch_bounds__(256).
    assert_eq!(
        code(&refused(&reverse, cfg(1, 1025))),
        sys::CUresult::CUDA_ERROR_INVALID_VALUE
    );
    assert_eq!(
        code(&refused(&reverse, cfg(1, 512))),
        sys::CUresult::CUDA_ERROR_INVALID_VALUE
    );
    // 64 KiB of dynamic shared memory without opting in.
    let mut big = cfg(1, 256);
    big.shared_mem_bytes = 64 << 10;
    assert_eq!(
        code(&refused(&reverse, big)),
        sys::CUresult::CUDA_ERROR_INVALID_VALUE
    );
    // Registers: the kernel's count (ptxas) times 1024 threads exceeds an SM's 65536.
    let hungry = e.f("register_hungry_f32");
    let regs = hungry.num_regs().unwrap();
    assert!(regs > 64, "register_hungry_f32 uses {regs} registers");
    assert_eq!(
        code(&refused(&hungry, cfg(1, 1024))),
        sys::CUresult::CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES
    );
    // A grid dimension over its limit.
    let mut tall = cfg(1, 32);
    tall.grid_dim = (1, 70000, 1);
    assert_eq!(
        code(&refused(&reverse, tall)),
        sys::CUresult::CUDA_ERROR_INVALID_VALUE
    );
    // None of these is sticky: the context still works.
    e.sync().unwrap();
}

#[test]
fn a_fault_is_sticky_until_the_context_is_released() {
    {
        let Some(e) = emu("a_fault_is_sticky_until_the_context_is_released") else {
            return;
        };
        let mut y = e.zeros::<f32>(32);
        let f = e.f("divergent_barrier_f32");
        // SAFETY: (float*); a broken kernel, on purpose.
        unsafe { e.stream.launch_builder(&f).arg(&mut y).launch(cfg(1, 32)) }.unwrap();
        assert_fault(
            &e,
            sys::CUresult::CUDA_ERROR_LAUNCH_FAILED,
            &["divergent_barrier_f32"],
        );
        let ctx = Arc::clone(e.ctx());
        assert!(ctx.synchronize().is_err());
    }
    // Every handle dropped: the primary context was released and a new one starts clean.
    let Some(e) = emu("a_fault_is_sticky_until_the_context_is_released (reopened)") else {
        return;
    };
    let x = e.upload(&[3.0; 8]);
    assert_eq!(e.stream.clone_dtoh(&x).unwrap(), vec![3.0; 8]);
}

#[test]
fn modules_and_functions_resolve_only_what_the_build_embedded() {
    let Some(e) = emu("modules_and_functions_resolve_only_what_the_build_embedded") else {
        return;
    };
    assert_eq!(
        code(&e.module.load_function("no_such_kernel").unwrap_err()),
        sys::CUresult::CUDA_ERROR_NOT_FOUND
    );
    // A product kernel is not in the self-test image even though the emulator has a host build of it.
    assert_eq!(
        code(&e.module.load_function("axpby_f32").unwrap_err()),
        sys::CUresult::CUDA_ERROR_NOT_FOUND
    );
    // A fatbin the build did not embed (one byte changed) is not an image the emulator can run.
    let mut image = trilemma::kernels::fatbin("elementwise").unwrap().to_vec();
    let last = image.len() - 1;
    image[last] ^= 0x5a;
    let err = e
        .ctx()
        .load_module(cudarc::nvrtc::Ptx::from_binary(image))
        .unwrap_err();
    assert_eq!(code(&err), sys::CUresult::CUDA_ERROR_INVALID_IMAGE);
    // A driver function the emulator does not implement answers NOT_SUPPORTED, it does not abort.
    let mut version = 0u32;
    // SAFETY: cuCtxGetApiVersion(ctx, out): null context means current; the out pointer is a local.
    let r = unsafe { sys::cuCtxGetApiVersion(std::ptr::null_mut(), &mut version) };
    assert_eq!(r, sys::CUresult::CUDA_ERROR_NOT_SUPPORTED);
    e.sync().unwrap();
}

#[test]
fn counters_record_launches_copies_allocations_and_synchronizations() {
    let Some(e) = emu("counters_record_launches_copies_allocations_and_synchronizations") else {
        return;
    };
    let before = trilemma_cuda_emu::stats();
    let x = e.upload(&[2.0; 256]);
    let mut y = e.zeros::<f32>(256);
    let f = e.f("copy_f32");
    let n = 256u32;
    for _ in 0..3 {
        // SAFETY: (const float*, float*, unsigned).
        unsafe {
            e.stream
                .launch_builder(&f)
                .arg(&x)
                .arg(&mut y)
                .arg(&n)
                .launch(cfg(1, 256))
        }
        .unwrap();
    }
    e.sync().unwrap();
    let back = e.stream.clone_dtoh(&y).unwrap();
    assert_eq!(back, vec![2.0; 256]);
    let d = trilemma_cuda_emu::stats().since(&before);
    assert_eq!(d.launches.get("copy_f32"), Some(&3), "{d:?}");
    assert_eq!((d.htod.count, d.htod.bytes), (1, 1024), "{d:?}");
    assert_eq!((d.dtoh.count, d.dtoh.bytes), (1, 1024), "{d:?}");
    assert_eq!(d.allocations, 2, "{d:?}");
    assert!(d.synchronizations >= 1, "{d:?}");
    let json = trilemma_cuda_emu::stats_json();
    for key in [
        "\"launches\"",
        "\"htod\"",
        "\"dtoh\"",
        "\"dtod\"",
        "\"allocations\"",
        "\"synchronizations\"",
        "\"graph_launches\"",
    ] {
        assert!(json.contains(key), "{json}");
    }
}

#[test]
fn a_ddgan_run_on_the_device_copies_nothing_to_the_host_per_step() {
    let Some(e) = emu("a_ddgan_run_on_the_device_copies_nothing_to_the_host_per_step") else {
        return;
    };
    drop(e.module);
    drop(e.stream);
    use trilemma::models::{Model, Network};
    use trilemma::samplers::ddgan::{sample, PosteriorCoefficients};
    use trilemma::samplers::Noise;
    let gpu = Device::cuda(0).unwrap();
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/models/ddgan_small");
    let m = Model::load(&path, &gpu).unwrap();
    let Network::Ddgan(g) = m.network() else {
        panic!("ddgan_small is a DDGAN model")
    };
    let c = &m.config;
    let (bmin, bmax) = (c.f64("beta_min").unwrap(), c.f64("beta_max").unwrap());
    let mut dtoh = Vec::new();
    for steps in [1, 2, 4] {
        let coefs = PosteriorCoefficients::new(steps, bmin, bmax).unwrap();
        let before = trilemma_cuda_emu::stats();
        let x = sample(
            g,
            &coefs,
            2,
            &Noise::Philox {
                seed: 3,
                first_sample: 0,
            },
            &gpu,
        )
        .unwrap();
        gpu.synchronize().unwrap();
        let d = trilemma_cuda_emu::stats().since(&before);
        let calls = d.launches.values().sum::<u64>();
        println!(
            "{steps} steps: {calls} launches, {} device-to-host copies",
            d.dtoh.count
        );
        assert!(calls > 0, "the run launched nothing on the device");
        dtoh.push(d.dtoh.count);
        drop(x);
    }
    // The non-finite watch is read once after the loop; nothing is read per step.
    assert!(
        dtoh.iter().all(|&n| n == dtoh[0]),
        "device-to-host copies by step count: {dtoh:?}"
    );
}

/// `trilemma` with the emulator's variables cleared, then `env` set.
fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = std::process::Command::new(
        std::env::var_os("TRILEMMA_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_trilemma").into()),
    );
    for v in [
        "TRILEMMA_CUDA",
        "TRILEMMA_EMU_SCHEDULE",
        "TRILEMMA_EMU_MEMORY",
        "TRILEMMA_EMU_DEVICES",
        "TRILEMMA_EMU_STATS",
    ] {
        c.env_remove(v);
    }
    c.args(args).envs(env.iter().copied()).output().unwrap()
}

#[test]
fn the_cli_selects_and_configures_the_emulator_through_its_variables() {
    if trilemma::kernels::emulated::modules().is_empty() {
        eprintln!("SKIP: no kernels for the emulator in this build");
        return;
    }
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // Two emulated GPUs of 3 GiB, each named as emulated.
    let o = cli(
        &["info"],
        &[
            ("TRILEMMA_CUDA", "emulator"),
            ("TRILEMMA_EMU_DEVICES", "2"),
            ("TRILEMMA_EMU_MEMORY", "3221225472"),
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for d in ["cuda:0", "cuda:1"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(d))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains("emulated"), "{line}");
        assert!(line.contains("3.0 GiB total"), "{line}");
    }
    assert!(!out.contains("cuda:2"), "{out}");
    // Bad settings are one clear line, not a panic.
    for (var, value, needle) in [
        ("TRILEMMA_CUDA", "gpu", "TRILEMMA_CUDA must be"),
        (
            "TRILEMMA_EMU_SCHEDULE",
            "sideways",
            "TRILEMMA_EMU_SCHEDULE must be",
        ),
        ("TRILEMMA_EMU_DEVICES", "0", "TRILEMMA_EMU_DEVICES must be"),
    ] {
        let mut env = vec![(var, value)];
        if var != "TRILEMMA_CUDA" {
            env.push(("TRILEMMA_CUDA", "emulator"));
        }
        let o = cli(&["info"], &env);
        let out = text(&o);
        assert!(out.contains(needle), "{var}={value}: {out}");
        assert!(!out.contains("panicked"), "{var}={value}: {out}");
    }
    // The counters file, written whole at exit, for a sampling run on the emulated GPU.
    let dir = std::env::temp_dir().join(format!("trilemma-emu-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stats = dir.join("stats.json");
    let img = dir.join("s.png");
    let o = cli(
        &[
            "sample",
            "--model",
            "ddgan-digits",
            "--num",
            "2",
            "--device",
            "cuda",
            "--out",
            img.to_str().unwrap(),
        ],
        &[
            ("TRILEMMA_CUDA", "emulator"),
            ("TRILEMMA_EMU_STATS", stats.to_str().unwrap()),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let json = std::fs::read_to_string(&stats).unwrap();
    assert!(
        json.contains("\"conv2d_implicit_gemm_f32\"")
            && json.contains("\"ddgan_posterior_philox_f32\""),
        "{json}"
    );
    assert!(json.contains("\"graph_launches\": 0"), "{json}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn racecheck_reports_a_shared_memory_hazard_between_warps() {
    let Some(e) = emu_memcheck("racecheck_reports_a_shared_memory_hazard_between_warps") else {
        return;
    };
    struct Off;
    impl Drop for Off {
        fn drop(&mut self) {
            trilemma_cuda_emu::set_racecheck(false);
        }
    }
    let _off = Off;
    trilemma_cuda_emu::set_racecheck(true);
    // A correct kernel (writes, barrier, reads) passes.
    let x: Vec<f32> = (0..512).map(|i| i as f32).collect();
    let xd = e.upload(&x);
    let mut rev = e.zeros::<f32>(512);
    let g = e.f("block_reverse_f32");
    // SAFETY: (const float*, float*), 2 blocks of 256.
    unsafe {
        e.stream
            .launch_builder(&g)
            .arg(&xd)
            .arg(&mut rev)
            .launch(cfg(2, 256))
    }
    .unwrap();
    let clean = e.sync();
    // Every thread writes the same shared word before the barrier: a write-after-write hazard between
    // the two warps.
    let mut race = e.zeros::<u32>(64);
    let f = e.f("shared_race_u32");
    // SAFETY: (unsigned*); the hazard is the point.
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&mut race)
            .launch(cfg(1, 64))
    }
    .unwrap();
    let racy = e.sync();
    clean.unwrap();
    assert_eq!(
        code(&racy.unwrap_err()),
        sys::CUresult::CUDA_ERROR_LAUNCH_FAILED
    );
    let report = trilemma_cuda_emu::last_fault().unwrap();
    assert!(
        report.contains("shared_race_u32") && report.contains("write-after-write hazard"),
        "{report}"
    );
}

#[test]
fn synccheck_catches_a_mask_naming_lanes_the_block_does_not_have() {
    let Some(e) = emu("synccheck_catches_a_mask_naming_lanes_the_block_does_not_have") else {
        return;
    };
    let mut y = e.zeros::<f32>(48);
    let f = e.f("shuffle_partial_warp_f32");
    // SAFETY: (float*); 48 threads, the second warp's full mask names 16 missing lanes, on purpose.
    unsafe { e.stream.launch_builder(&f).arg(&mut y).launch(cfg(1, 48)) }.unwrap();
    assert_fault(
        &e,
        sys::CUresult::CUDA_ERROR_LAUNCH_FAILED,
        &[
            "shuffle_partial_warp_f32",
            "__shfl_down_sync",
            "lane 16 of warp 1, which does not exist",
        ],
    );
}

/// Stream capture records instead of running, in order; a graph replays its nodes on current memory
/// (pointers and arguments fixed at capture), each replay counted as one graph launch and none of its
/// kernels as host launches.
#[test]
fn a_captured_stream_records_in_order_and_its_graph_replays() {
    let Some(e) = emu("a_captured_stream_records_in_order_and_its_graph_replays") else {
        return;
    };
    let x = e.upload(&[2.0; 256]);
    let mut y = e.upload(&[7.0; 256]);
    let mut w = e.zeros::<f32>(256);
    let f = e.f("copy_f32");
    let n = 256u32;
    let before = trilemma_cuda_emu::stats();
    e.stream
        .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .unwrap();
    assert_eq!(
        e.stream.capture_status().unwrap(),
        sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_ACTIVE
    );
    // memset y, copy x into y, then y into w: each node sees the one before it.
    e.stream.memset_zeros(&mut y).unwrap();
    // SAFETY: (const float*, float*, unsigned).
    unsafe {
        e.stream
            .launch_builder(&f)
            .arg(&x)
            .arg(&mut y)
            .arg(&n)
            .launch(cfg(1, 256))
    }
    .unwrap();
    e.stream.memcpy_dtod(&y, &mut w).unwrap();
    let graph = e
        .stream
        .end_capture(sys::CUgraphInstantiate_flags(0))
        .unwrap()
        .expect("a graph");
    assert_eq!(
        e.stream.capture_status().unwrap(),
        sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE
    );
    // Nothing ran during the capture.
    assert_eq!(e.stream.clone_dtoh(&y).unwrap(), vec![7.0; 256]);
    assert_eq!(e.stream.clone_dtoh(&w).unwrap(), vec![0.0; 256]);
    let captured = trilemma_cuda_emu::stats().since(&before);
    assert_eq!(captured.launches.get("copy_f32"), None, "{captured:?}");
    assert_eq!(captured.graph_launches, 0);
    // The replay reads memory as it is at replay time.
    e.stream.memcpy_htod(&[5.0f32; 256], &mut y).unwrap();
    let x5 = e.upload(&[5.0; 256]);
    e.stream.memcpy_dtod(&x5, &mut w).unwrap();
    let mut x = x;
    e.stream.memcpy_htod(&[3.0f32; 256], &mut x).unwrap();
    let mark = trilemma_cuda_emu::stats();
    graph.launch().unwrap();
    graph.launch().unwrap();
    e.sync().unwrap();
    let replayed = trilemma_cuda_emu::stats().since(&mark);
    assert_eq!(replayed.graph_launches, 2, "{replayed:?}");
    assert_eq!(replayed.launches.get("copy_f32"), None, "{replayed:?}");
    assert_eq!(e.stream.clone_dtoh(&y).unwrap(), vec![3.0; 256]);
    assert_eq!(e.stream.clone_dtoh(&w).unwrap(), vec![3.0; 256]);
}

/// What a capture cannot hold fails with the driver's code and invalidates the capture, whose end
/// then reports CUDA_ERROR_STREAM_CAPTURE_INVALIDATED; the context stays usable.
#[test]
fn what_a_capture_cannot_hold_invalidates_it_with_the_drivers_codes() {
    let Some(e) = emu("what_a_capture_cannot_hold_invalidates_it_with_the_drivers_codes") else {
        return;
    };
    use sys::cudaError_enum as C;
    let x = e.upload(&[1.0; 64]);
    let begin = |mode| e.stream.begin_capture(mode).unwrap();
    let end = || e.stream.end_capture(sys::CUgraphInstantiate_flags(0));
    let invalidated = |what: &str| {
        assert_eq!(
            e.stream.capture_status().unwrap(),
            sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_INVALIDATED,
            "{what}"
        );
        let err = end().map(|_| ()).unwrap_err();
        assert_eq!(
            code(&err),
            C::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
            "{what}"
        );
    };
    let global = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_GLOBAL;
    // A device-to-host copy into pageable memory.
    begin(global);
    let err = e.stream.clone_dtoh(&x).unwrap_err();
    assert_eq!(code(&err), C::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    invalidated("copy to the host");
    // A host-to-device copy from pageable memory.
    let mut y = e.zeros::<f32>(64);
    begin(global);
    let err = e.stream.memcpy_htod(&[2.0f32; 64], &mut y).unwrap_err();
    assert_eq!(code(&err), C::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    invalidated("copy from the host");
    // A synchronize of the capturing stream.
    begin(global);
    let err = e.sync().unwrap_err();
    assert_eq!(code(&err), C::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    invalidated("synchronize");
    // An allocation.
    begin(global);
    assert!(e.stream.alloc_zeros::<f32>(1 << 20).is_err());
    invalidated("allocation");
    // Begin twice, end without a capture.
    begin(global);
    let err = e.stream.begin_capture(global).unwrap_err();
    assert_eq!(code(&err), C::CUDA_ERROR_ILLEGAL_STATE);
    assert!(end().unwrap().is_some());
    let err = end().map(|_| ()).unwrap_err();
    assert_eq!(code(&err), C::CUDA_ERROR_ILLEGAL_STATE);
    // Nothing was sticky: the context still copies and synchronizes.
    assert_eq!(e.stream.clone_dtoh(&x).unwrap(), vec![1.0; 64]);
    e.sync().unwrap();
}

/// A device-to-host copy into page-locked memory is queued: it reads the device at the call (stream
/// order) but lands only when the host waits for it (an event after it, a synchronize, a blocking
/// copy); before that the buffer reads as 0xff. Events and page-locked blocks check their arguments,
/// and a capture refuses what the emulator does not record.
#[test]
fn a_copy_into_page_locked_memory_lands_when_the_host_waits_for_it() {
    let Some(e) = emu("a_copy_into_page_locked_memory_lands_when_the_host_waits_for_it") else {
        return;
    };
    use cudarc::driver::{result, DevicePtr};
    use sys::cudaError_enum as C;
    let n = 256usize;
    let mut x = e.upload(&[2.0; 256]);
    let y = e.zeros::<f32>(n);
    let f = e.f("copy_f32");
    let xp = x.device_ptr(&e.stream).0;
    let s = e.stream.cu_stream();
    let before = trilemma_cuda_emu::stats();
    trilemma_cuda_emu::set_trace(true);
    // SAFETY (this block): the page-locked block holds n f32, read only through `read`; every handle
    // passed is live (created above, destroyed at the end); the copies stay inside x and the block.
    unsafe {
        let host = result::malloc_host(n * 4, 0).unwrap() as *mut f32;
        let read = || std::slice::from_raw_parts(host, n).to_vec();
        let mut ev = std::ptr::null_mut();
        sys::cuEventCreate(&mut ev, 0x3).result().unwrap();
        // Queued: the buffer is 0xff until the event after the copy is waited for.
        result::memcpy_dtoh_async(std::slice::from_raw_parts_mut(host, n), xp, s).unwrap();
        assert!(
            read().iter().all(|v| v.to_bits() == u32::MAX),
            "lands early"
        );
        // Later work on the stream does not change what the copy read.
        e.stream
            .launch_builder(&f)
            .arg(&y)
            .arg(&mut x)
            .arg(&(n as u32))
            .launch(cfg(1, 256))
            .unwrap();
        sys::cuEventRecord(ev, s).result().unwrap();
        sys::cuEventSynchronize(ev).result().unwrap();
        assert_eq!(read(), vec![2.0; n]);
        // A stream synchronize lands a copy too (x is 0 now: y was copied into it).
        result::memcpy_dtoh_async(std::slice::from_raw_parts_mut(host, n), xp, s).unwrap();
        assert!(read().iter().all(|v| v.to_bits() == u32::MAX));
        e.sync().unwrap();
        assert_eq!(read(), vec![0.0; n]);
        // So does a blocking copy to pageable memory on the stream.
        result::memcpy_dtoh_async(std::slice::from_raw_parts_mut(host, n), xp, s).unwrap();
        let _ = e.stream.clone_dtoh(&y).unwrap();
        assert_eq!(read(), vec![0.0; n]);
        let d = trilemma_cuda_emu::stats().since(&before);
        assert_eq!(d.dtoh_pinned.count, 3, "{d:?}");
        assert_eq!(d.dtoh.count, 4, "{d:?}");
        assert_eq!(d.event_synchronizations, 1, "{d:?}");
        let trace = trilemma_cuda_emu::take_trace();
        use trilemma_cuda_emu::TraceOp as T;
        let pinned = T::DtoH {
            bytes: n * 4,
            pinned: true,
        };
        assert_eq!(
            trace[..4],
            [
                pinned.clone(),
                T::Launch("copy_f32".into()),
                T::EventRecord(ev as usize),
                T::EventSync(ev as usize)
            ],
            "{trace:?}"
        );
        // Bad arguments get the driver's codes.
        let mut bad = std::ptr::null_mut();
        assert_eq!(
            sys::cuEventCreate(&mut bad, 0x4),
            C::CUDA_ERROR_INVALID_VALUE
        );
        assert_eq!(
            sys::cuMemFreeHost(y.device_ptr(&e.stream).0 as *mut std::ffi::c_void),
            C::CUDA_ERROR_INVALID_VALUE
        );
        // A capture refuses an event record and a page-locked copy (not emulated), and is
        // invalidated.
        let global = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_GLOBAL;
        for what in ["event record", "page-locked copy"] {
            e.stream.begin_capture(global).unwrap();
            let refused = match what {
                "event record" => sys::cuEventRecord(ev, s),
                _ => sys::cuMemcpyDtoHAsync_v2(host as *mut std::ffi::c_void, xp, n * 4, s),
            };
            assert_eq!(refused, C::CUDA_ERROR_NOT_SUPPORTED, "{what}");
            let err = e
                .stream
                .end_capture(sys::CUgraphInstantiate_flags(0))
                .map(|_| ())
                .unwrap_err();
            assert_eq!(code(&err), C::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
        }
        sys::cuEventDestroy_v2(ev).result().unwrap();
        assert_eq!(sys::cuEventSynchronize(ev), C::CUDA_ERROR_INVALID_HANDLE);
        result::free_host(host as *mut std::ffi::c_void).unwrap();
        assert_eq!(
            sys::cuMemFreeHost(host as *mut std::ffi::c_void),
            C::CUDA_ERROR_INVALID_VALUE
        );
    }
    trilemma_cuda_emu::set_trace(false);
}
