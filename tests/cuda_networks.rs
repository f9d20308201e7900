//! Whole networks on the GPU against the same networks on the CPU: every converted test model
//! (tests/models: CLD, DDGAN, and the LSGM score network, encoder and decoder), loaded onto each
//! device, run by `models::forward` on the reference inputs recorded beside it. The GPU output must
//! match the CPU's within the fp32 GPU tolerance (relative L2 ≤ 1e-4) and the reference output within
//! the same; the CPU itself matches the reference at ≤ 1e-5 (tests/forward.rs). Then the same calls at
//! the tensor-core precisions against the reference: 3xTF32 within 1e-4 (fp32-accurate), bf16 and fp16
//! within 1e-2 (rounded operands; the NCSN++ activations also stored in that type). Skips without a GPU unless TRILEMMA_REQUIRE_GPU=1.

mod common;

use common::{gpu_or_skip, max_abs_err, rel_err, test_model};
use trilemma::io::safetensors::SafeTensors;
use trilemma::models::Model;
use trilemma::Part;
use trilemma::{Device, Precision};

const CASES: [(&str, &str, Option<Part>); 5] = [
    ("cld_small", "forward_score", None),
    ("ddgan_small", "forward_generator", None),
    ("lsgm_small", "forward_score", Some(Part::Score)),
    ("lsgm_small", "forward_encoder", Some(Part::Encoder)),
    ("lsgm_small", "forward_decoder", Some(Part::Decoder)),
];

#[test]
fn test_models_match_cpu_and_reference_on_gpu() {
    let Some(gpu) = gpu_or_skip("test_models_match_cpu_and_reference_on_gpu") else {
        return;
    };
    for (model, call, part) in CASES {
        let dir = test_model(model);
        let inputs = SafeTensors::open(dir.join(format!("{call}.inputs.safetensors"))).unwrap();
        let expected = SafeTensors::open(dir.join(format!("{call}.expected.safetensors"))).unwrap();
        let on_cpu = Model::load(&dir, &Device::Cpu)
            .unwrap()
            .forward_safetensors(&inputs, part)
            .unwrap();
        let on_gpu = Model::load(&dir, &gpu)
            .unwrap()
            .forward_safetensors(&inputs, part)
            .unwrap_or_else(|e| panic!("{model} {call} on the GPU: {e}"));
        assert_eq!(on_cpu.len(), on_gpu.len());
        for ((name, c), (gname, g)) in on_cpu.iter().zip(&on_gpu) {
            assert_eq!(name, gname);
            assert_eq!(c.shape(), g.shape(), "{model} {call} {name}");
            let (cv, gv) = (c.to_vec_f32().unwrap(), g.to_vec_f32().unwrap());
            let want = expected
                .load_any_shape(name, &Device::Cpu)
                .unwrap()
                .to_vec_f32()
                .unwrap();
            assert!(
                gv.iter().all(|v| v.is_finite()),
                "{model} {call} {name}: non-finite"
            );
            let (rel_cpu, rel_ref) = (rel_err(&gv, &cv), rel_err(&gv, &want));
            println!(
                "{model} {call} {name}: gpu vs cpu rel {rel_cpu:.2e} (max abs {:.2e}), vs reference rel {rel_ref:.2e}",
                max_abs_err(&gv, &cv)
            );
            assert!(
                rel_cpu <= 1e-4,
                "{model} {call} {name}: vs cpu {rel_cpu:.3e}"
            );
            assert!(
                rel_ref <= 1e-4,
                "{model} {call} {name}: vs reference {rel_ref:.3e}"
            );
        }
    }
}

#[test]
fn every_precision_keeps_the_test_models_within_its_tolerance_of_the_reference() {
    let Some(gpu) =
        gpu_or_skip("every_precision_keeps_the_test_models_within_its_tolerance_of_the_reference")
    else {
        return;
    };
    for (model, call, part) in CASES {
        let dir = test_model(model);
        let inputs = SafeTensors::open(dir.join(format!("{call}.inputs.safetensors"))).unwrap();
        let expected = SafeTensors::open(dir.join(format!("{call}.expected.safetensors"))).unwrap();
        // One load: the layers make their 16-bit weight copies as the precision changes.
        let loaded = Model::load(&dir, &gpu).unwrap();
        // TF32 (operands rounded, activations fp32) is held per op in tests/ops/conv2d.rs.
        for precision in [Precision::Tf32x3, Precision::Bf16, Precision::Fp16] {
            gpu.set_precision(precision).unwrap();
            let out = loaded
                .forward_safetensors(&inputs, part)
                .unwrap_or_else(|e| panic!("{model} {call} at {precision}: {e}"));
            for (name, g) in &out {
                let gv = g.to_vec_f32().unwrap();
                let want = expected
                    .load_any_shape(name, &Device::Cpu)
                    .unwrap()
                    .to_vec_f32()
                    .unwrap();
                assert!(
                    gv.iter().all(|v| v.is_finite()),
                    "{model} {call} {name} at {precision}: non-finite"
                );
                let rel = rel_err(&gv, &want);
                println!(
                    "{model} {call} {name} at {precision}: vs reference rel {rel:.2e} (max abs {:.2e})",
                    max_abs_err(&gv, &want)
                );
                let tol = if precision == Precision::Tf32x3 {
                    1e-4
                } else {
                    1e-2
                };
                assert!(
                    rel <= tol,
                    "{model} {call} {name} at {precision}: rel {rel:.3e} > {tol:e}"
                );
            }
        }
        gpu.set_precision(Precision::Fp32).unwrap();
    }
}
