//! The one matrix product the CPU backend uses (conv as GEMM, dense layers, attention): a bounds-checked
//! front for `matrixmultiply::sgemm`, which takes raw pointers and arbitrary strides.

use crate::error::{Error, Result};

/// A row-major-or-strided matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Largest index touched by a `rows`×`cols` view with these strides, or None when empty.
fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return None;
    }
    (rows - 1)
        .checked_mul(rs)
        .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)))
        .or(Some(usize::MAX))
}

fn check(
    what: &'static str,
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<()> {
    match last_index(rows, cols, rs, cs) {
        Some(last) if last >= len => Err(Error::InvalidParam {
            op: "sgemm",
            what,
            rule: "a view inside its buffer",
            found: format!("{rows}x{cols} with strides ({rs}, {cs}) over {len} elements"),
        }),
        _ => Ok(()),
    }
}

/// C (m×n, strides `rsc`, `csc`) = alpha·A (m×k)·B (k×n) + beta·C, fp32 accumulation.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
) -> Result<()> {
    check("A", a.data.len(), m, k, a.rs, a.cs)?;
    check("B", b.data.len(), k, n, b.rs, b.cs)?;
    check("C", c.len(), m, n, rsc, csc)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let stride = |s: usize| {
        isize::try_from(s).map_err(|_| Error::InvalidParam {
            op: "sgemm",
            what: "stride",
            rule: "at most isize::MAX",
            found: s.to_string(),
        })
    };
    let (rsa, csa, rsb, csb, rsc, csc) = (
        stride(a.rs)?,
        stride(a.cs)?,
        stride(b.rs)?,
        stride(b.cs)?,
        stride(rsc)?,
        stride(csc)?,
    );
    // SAFETY: sgemm reads A[i*rsa + l*csa] for i < m, l < k, B[l*rsb + j*csb] for l < k, j < n and
    // writes C[i*rsc + j*csc] for i < m, j < n. `check` proved the largest of each index is inside its
    // slice (all strides are non-negative, so the largest index is the last one), and the strides fit
    // isize. C is a `&mut` slice, so it cannot alias A or B. With k == 0 nothing is read from A or B
    // and C is scaled by beta, which is in bounds by the same check.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
    Ok(())
}

/// Rows per parallel task so that `total` rows give every thread a few tasks but no task is tiny.
pub(crate) fn rows_per_task(total: usize, min_rows: usize, max_rows: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    total
        .div_ceil(threads * 4)
        .clamp(min_rows.max(1), max_rows.max(1))
}
