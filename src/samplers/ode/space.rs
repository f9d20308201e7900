//! Where an ODE solver's state lives and how it combines: the solvers (`rk45.rs`, `rk4.rs`) are
//! written once over an [`OdeSpace`], and run on host vectors ([`HostSpace`], the plain `&[f64]`
//! problems) or on [`WideVec`]s on the network's device ([`TensorSpace`]: the samplers' state, f64 on
//! the GPU with the networks, read back one norm per step). Both spaces do the same rounded operations
//! in the same order; only a norm's sum order differs on a GPU.

use crate::error::{Error, Result};
use crate::ops;
use crate::tensor::{Tensor, WideVec};

/// A solver's vector arithmetic. `Vector` is the f64 state and derivative; `Point` what the
/// right-hand side reads (the state as the model sees it).
pub trait OdeSpace {
    type Vector;
    type Point;
    fn len(&self, v: &Self::Vector) -> usize;
    /// `base + h · Σ_j w_j k_j` as a point (a Runge–Kutta stage: never a state itself).
    fn point(
        &self,
        base: &Self::Vector,
        h: f64,
        terms: &[(f64, &Self::Vector)],
    ) -> Result<Self::Point>;
    /// `base + h · Σ_j w_j k_j` as the next state, with its point.
    fn step(
        &self,
        base: &Self::Vector,
        h: f64,
        terms: &[(f64, &Self::Vector)],
    ) -> Result<(Self::Vector, Self::Point)>;
    /// `Σ_i (h · Σ_j w_j k_j[i] / (atol + rtol · max(|a_i|, |b_i|)))²`, on the host.
    fn scaled_sq_sum(
        &self,
        h: f64,
        terms: &[(f64, &Self::Vector)],
        scale_of: [&Self::Vector; 2],
        tol: Tolerances,
    ) -> Result<f64>;
    /// A fixed-step solver's check of each derivative; `Ok` where the space cannot look without a
    /// copy back (a non-finite derivative then reaches the end state, which the caller checks).
    fn check_derivative(&self, _k: &Self::Vector, _t: f64) -> Result<()> {
        Ok(())
    }
}

/// `f(t, y)`, an error naming solver `op` unless it has the state's `n` values.
pub(super) fn checked_eval<S: OdeSpace>(
    op: &'static str,
    space: &S,
    n: usize,
    f: &mut impl FnMut(f64, &S::Point) -> Result<S::Vector>,
    t: f64,
    y: &S::Point,
) -> Result<S::Vector> {
    let d = f(t, y)?;
    if space.len(&d) != n {
        return Err(Error::InvalidParam {
            op,
            what: "right-hand side",
            rule: "the state's length",
            found: format!("{} values for a state of {n}", space.len(&d)),
        });
    }
    Ok(d)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    pub atol: f64,
    pub rtol: f64,
}

/// Plain host vectors: the state and the point are the same `Vec<f64>`.
pub struct HostSpace;

impl OdeSpace for HostSpace {
    type Vector = Vec<f64>;
    type Point = Vec<f64>;

    fn len(&self, v: &Vec<f64>) -> usize {
        v.len()
    }

    fn point(&self, base: &Vec<f64>, h: f64, terms: &[(f64, &Vec<f64>)]) -> Result<Vec<f64>> {
        Ok(ops::ode::combine_host(base, h, terms))
    }

    fn step(
        &self,
        base: &Vec<f64>,
        h: f64,
        terms: &[(f64, &Vec<f64>)],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let y = self.point(base, h, terms)?;
        Ok((y.clone(), y))
    }

    fn scaled_sq_sum(
        &self,
        h: f64,
        terms: &[(f64, &Vec<f64>)],
        [a, b]: [&Vec<f64>; 2],
        tol: Tolerances,
    ) -> Result<f64> {
        Ok(ops::ode::scaled_sq_sum_host(
            h,
            terms,
            [a, b],
            tol.atol,
            tol.rtol,
        ))
    }

    fn check_derivative(&self, k: &Vec<f64>, t: f64) -> Result<()> {
        match k.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(Error::InvalidParam {
                op: "ode solver",
                what: "right-hand side",
                rule: "finite values",
                found: format!("non-finite value at element {i}, t = {t}"),
            }),
        }
    }
}

/// A sampler's state: f64 [`WideVec`]s on the network's device, points the f32 tensors of `shape` the
/// network reads (each stage rounded to f32 in the pass that forms it).
pub struct TensorSpace {
    pub shape: Vec<usize>,
}

impl OdeSpace for TensorSpace {
    type Vector = WideVec;
    type Point = Tensor;

    fn len(&self, v: &WideVec) -> usize {
        v.len()
    }

    fn point(&self, base: &WideVec, h: f64, terms: &[(f64, &WideVec)]) -> Result<Tensor> {
        Ok(ops::ode::combine(base, h, terms, &self.shape, false)?.0)
    }

    fn step(&self, base: &WideVec, h: f64, terms: &[(f64, &WideVec)]) -> Result<(WideVec, Tensor)> {
        match ops::ode::combine(base, h, terms, &self.shape, true)? {
            (point, Some(y)) => Ok((y, point)),
            (_, None) => Err(Error::InvalidParam {
                op: "ode step",
                what: "combination",
                rule: "the f64 state kept",
                found: "only its f32 rounding".into(),
            }),
        }
    }

    fn scaled_sq_sum(
        &self,
        h: f64,
        terms: &[(f64, &WideVec)],
        scale_of: [&WideVec; 2],
        tol: Tolerances,
    ) -> Result<f64> {
        ops::ode::scaled_sq_sum(h, terms, scale_of, tol.atol, tol.rtol)
    }
}
