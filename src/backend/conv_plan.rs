//! How a GPU convolution is cut into CTAs: the CTA tile of the implicit GEMM and the split of its K
//! loop, chosen per shape from the GEMM's dimensions and the GPU's multiprocessor count. A pure
//! function of the shape, so the speed model (`docs/kernels.md`) and the launcher
//! (`backend/cuda/conv2d.rs`) agree on it, and tests can name a plan to run every kernel variant.

/// The CTA tile (output pixels × output channels) of the implicit-GEMM convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvTile {
    /// 64 × 64: 128 threads on tensor cores (4 warps of 32 × 32), 256 on the FFMA kernel.
    T64x64,
    /// 128 × 128: 256 threads (8 warps of 64 × 32), tensor cores only: twice the operand reuse per
    /// shared-memory byte, for grids with a wave of these tiles or more.
    T128x128,
}

impl ConvTile {
    /// (rows, columns) of the tile: output pixels, output channels.
    pub fn dims(self) -> (usize, usize) {
        match self {
            ConvTile::T64x64 => (64, 64),
            ConvTile::T128x128 => (128, 128),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConvTile::T64x64 => "64x64",
            ConvTile::T128x128 => "128x128",
        }
    }
}

/// The K step of every convolution kernel: a split covers a whole number of steps.
pub const CONV_K_STEP: usize = 16;

/// A convolution's launch plan: its tile and split-K (`splits` CTAs along K per output tile, each
/// summing `k_split` of the K = kh·kw·cin/groups products; the partials are added in split order by
/// a second kernel, so the result does not depend on scheduling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvPlan {
    pub tile: ConvTile,
    pub splits: usize,
    pub k_split: usize,
}

/// The GEMM a convolution is: M output pixels, `cog` output channels per group, K products per
/// output, `groups` independent GEMMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGemm {
    pub m: usize,
    pub cog: usize,
    pub k: usize,
    pub groups: usize,
}

impl ConvGemm {
    /// CTAs of one split for `tile`.
    pub fn tiles(&self, tile: ConvTile) -> usize {
        let (bm, bn) = tile.dims();
        self.m.div_ceil(bm) * self.cog.div_ceil(bn) * self.groups
    }
}

impl ConvPlan {
    /// The plan for `gemm` on a GPU of `sms` multiprocessors; `tensor_cores` when the device's
    /// precision runs the mma kernels (only they have the 128 × 128 tile).
    ///
    /// - 128 × 128 where those tiles alone fill every SM at least once (big M, ≥ 128 channels).
    /// - Otherwise 64 × 64; when that grid covers less than half the SMs and K holds at least 8 steps,
    ///   split K so the grid reaches about one wave, keeping at least 4 K steps per split and at most
    ///   16 splits (the partials cost splits · M · co floats of memory traffic).
    pub fn choose(gemm: ConvGemm, sms: usize, tensor_cores: bool) -> ConvPlan {
        let sms = sms.max(1);
        let k_steps = gemm.k.div_ceil(CONV_K_STEP).max(1);
        let whole = |tile| ConvPlan {
            tile,
            splits: 1,
            k_split: k_steps * CONV_K_STEP,
        };
        if tensor_cores && gemm.cog >= 128 && gemm.tiles(ConvTile::T128x128) >= sms {
            return whole(ConvTile::T128x128);
        }
        let ctas = gemm.tiles(ConvTile::T64x64).max(1);
        if 2 * ctas >= sms || k_steps < 8 {
            return whole(ConvTile::T64x64);
        }
        let want = sms.div_ceil(ctas).min(k_steps / 4).min(16);
        ConvPlan::split(ConvTile::T64x64, gemm.k, want)
    }

    /// `tile` with K cut into `splits` (at most one per K step) slices of whole K steps, none empty.
    pub fn split(tile: ConvTile, k: usize, splits: usize) -> ConvPlan {
        let k_steps = k.div_ceil(CONV_K_STEP).max(1);
        let per = k_steps.div_ceil(splits.clamp(1, k_steps));
        ConvPlan {
            tile,
            splits: k_steps.div_ceil(per),
            k_split: per * CONV_K_STEP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemm(n: usize, hw: usize, cin: usize, cout: usize, taps: usize) -> ConvGemm {
        ConvGemm {
            m: n * hw * hw,
            cog: cout,
            k: taps * cin,
            groups: 1,
        }
    }

    #[test]
    fn big_grids_take_the_big_tile_and_small_ones_split_k() {
        // Batch 256 at 32² × 128: 2048 tiles of 128 × 128 on 132 SMs.
        let p = ConvPlan::choose(gemm(256, 32, 128, 128, 9), 132, true);
        assert_eq!((p.tile, p.splits), (ConvTile::T128x128, 1));
        // The FFMA kernel has only the 64 × 64 tile.
        let p = ConvPlan::choose(gemm(256, 32, 128, 128, 9), 132, false);
        assert_eq!((p.tile, p.splits), (ConvTile::T64x64, 1));
        // Batch 1 at 8² × 256: 4 CTAs, K = 2304 = 144 steps: 16 splits of 9 steps.
        let p = ConvPlan::choose(gemm(1, 8, 256, 256, 9), 132, true);
        assert_eq!(p, ConvPlan::split(ConvTile::T64x64, 2304, 16));
        assert_eq!((p.splits, p.k_split), (16, 144));
        // Batch 1 at 32² × 128: 32 CTAs -> 5 splits of 15 steps (the last one 12).
        let p = ConvPlan::choose(gemm(1, 32, 128, 128, 9), 132, true);
        assert_eq!((p.tile, p.splits, p.k_split), (ConvTile::T64x64, 5, 240));
        // Short K is never split.
        let p = ConvPlan::choose(gemm(1, 4, 64, 64, 1), 132, true);
        assert_eq!(p.splits, 1);
    }

    #[test]
    fn splits_cover_k_exactly_once() {
        for k in [1, 15, 16, 17, 100, 144, 2304, 4608] {
            for want in 1..40 {
                let p = ConvPlan::split(ConvTile::T64x64, k, want);
                assert_eq!(p.k_split % CONV_K_STEP, 0);
                assert!(p.splits >= 1 && p.splits <= want.max(1));
                // Every split starts inside K and together they reach its end.
                assert!((p.splits - 1) * p.k_split < k, "k {k} want {want}: {p:?}");
                assert!(p.splits * p.k_split >= k, "k {k} want {want}: {p:?}");
            }
        }
    }
}
