//! The CLD probability-flow fixture (tests/fixtures/sampler_cld_ode_linear_score.safetensors: the
//! reference solve of tools/reference, SciPy's RK45 through torchdiffeq) with its stand-in score
//! network, for the CPU test (tests/sample_cld.rs) and the GPU one (tests/cuda_ode.rs).

use trilemma::io::safetensors::SafeTensors;
use trilemma::ops::{self, Activation, AffineArgs};
use trilemma::samplers::cld::{CldConfig, CldSampler};
use trilemma::{DType, Device, Tensor};

/// The fixtures' stand-in score network: α = 0.5·x − 0.25·t (x the data half of u), on u's device.
pub struct LinearScore {
    pub shape: [usize; 3],
}

impl trilemma::samplers::cld::CldScore for LinearScore {
    fn alpha(&self, u: &Tensor, t: f32) -> trilemma::Result<Tensor> {
        let c = self.shape[2];
        let dev = u.device();
        let x = ops::slice_channels(u, 0, c)?;
        let scale = Tensor::full(0.5, &[c], DType::F32, &dev)?;
        let shift = Tensor::full(-0.25 * t, &[c], DType::F32, &dev)?;
        ops::channel_affine(
            &x,
            &AffineArgs {
                center: None,
                scale: Some(&scale),
                shift: Some(&shift),
            },
            Activation::Identity,
        )
    }

    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }
}

/// The fixture: its SDE, sampler settings, network, replayable prior draws and reference outputs.
pub struct CldOdeFixture {
    pub cfg: CldConfig,
    pub sampler: CldSampler,
    pub net: LinearScore,
    pub batch: usize,
    /// The reference NFE (the solver's evaluations plus the denoising step).
    pub nfe: usize,
    /// `prior.x` and `prior.v` as the sampler draws them (standard normals).
    pub draws: SafeTensors,
    /// The reference x and v, NCHW.
    pub want: [Vec<f32>; 2],
    _dir: super::TempDir,
}

pub fn load() -> CldOdeFixture {
    let st = super::open_fixture("sampler_cld_ode_linear_score");
    let md = st.metadata();
    let num = |k: &str| -> f64 { md[k].parse().unwrap() };
    let cfg = CldConfig {
        beta0: num("beta0"),
        beta1: num("beta1"),
        m_inv: num("m_inv"),
        gamma: num("gamma"),
        numerical_eps: num("numerical_eps"),
        sampling_eps: num("sampling_eps"),
        sscs_num_stab: 0.0,
        quadratic_striding: false,
    };
    // The fixture stores the prior sample u0 = [x; v]; replay it as standard normals.
    let u0 = st.load_any_shape("in.u0", &Device::Cpu).unwrap();
    let [b, c2, h, w] = *u0.shape() else {
        panic!("in.u0 is not NCHW: {:?}", u0.shape())
    };
    let c = c2 / 2;
    let u = u0.to_vec_f32().unwrap();
    let (mut px, mut pv) = (Vec::new(), Vec::new());
    for s in 0..b {
        let base = s * c2 * h * w;
        px.extend_from_slice(&u[base..base + c * h * w]);
        // prior.v is the standard normal; the sampler scales it by 1/sqrt(M^-1).
        pv.extend(
            u[base + c * h * w..base + c2 * h * w]
                .iter()
                .map(|v| v * cfg.m_inv.sqrt() as f32),
        );
    }
    let dir = super::TempDir::new("cld-ode-fixture");
    let path = dir.path().join("draws.safetensors");
    let tx = Tensor::from_f32(&px, &[b, c, h, w], DType::F32, &Device::Cpu).unwrap();
    let tv = Tensor::from_f32(&pv, &[b, c, h, w], DType::F32, &Device::Cpu).unwrap();
    trilemma::io::safetensors::save(
        &path,
        &[("prior.x", &tx), ("prior.v", &tv)],
        &Default::default(),
    )
    .unwrap();
    CldOdeFixture {
        cfg,
        sampler: CldSampler::Ode {
            rtol: num("rtol"),
            atol: num("atol"),
        },
        net: LinearScore { shape: [h, w, c] },
        batch: b,
        nfe: md["nfe"].parse().unwrap(),
        draws: SafeTensors::open(&path).unwrap(),
        want: [
            super::fixture_values(&st, "out.x"),
            super::fixture_values(&st, "out.v"),
        ],
        _dir: dir,
    }
}
