//! Maximum-likelihood fitting: BFGS from `argmin` with a More–Thuente line search, on an
//! objective that returns its value and gradient together.

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::BFGS;

use super::ModelError;

/// |ln θ| beyond which a fitted parameter counts as having run to the boundary of the
/// parameter space (θ outside [4.5e-5, 22026] in the fit's internal units).
pub(crate) const BOUNDARY: f64 = 10.0;

/// How a fit ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Optimum {
    pub(crate) x: Vec<f64>,
    pub(crate) cost: f64,
    pub(crate) iterations: u64,
}

struct Problem<F>(F);

impl<F: Fn(&[f64]) -> (f64, Vec<f64>)> CostFunction for Problem<F> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let (c, _) = (self.0)(p);
        // A non-finite value means the step left the region where the likelihood is defined;
        // +inf makes the line search step back instead of accepting garbage.
        Ok(if c.is_finite() { c } else { f64::INFINITY })
    }
}

impl<F: Fn(&[f64]) -> (f64, Vec<f64>)> Gradient for Problem<F> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        let (_, g) = (self.0)(p);
        if g.iter().all(|v| v.is_finite()) {
            Ok(g)
        } else {
            Err(argmin::core::Error::msg("gradient is not finite"))
        }
    }
}

/// Minimize `f` (value, gradient) from `x0`. Converged means the gradient norm fell below
/// `tol_grad`; anything else (iteration cap, a line search failure, a non-finite value) is
/// [`ModelError::NotConverged`].
pub(crate) fn minimize<F>(
    model: &'static str,
    f: F,
    x0: Vec<f64>,
    tol_grad: f64,
    max_iters: u64,
) -> Result<Optimum, ModelError>
where
    F: Fn(&[f64]) -> (f64, Vec<f64>),
{
    let not_converged = |iterations: u64, reason: String| ModelError::NotConverged {
        model,
        iterations,
        reason,
    };
    let n = x0.len();
    let (c0, g0) = f(&x0);
    if !c0.is_finite() || g0.iter().any(|v| !v.is_finite()) {
        return Err(not_converged(
            0,
            "the likelihood is not finite at the starting point".into(),
        ));
    }
    let eye: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let solver = BFGS::new(MoreThuenteLineSearch::new())
        .with_tolerance_grad(tol_grad)
        .and_then(|s| s.with_tolerance_cost(0.0))
        .map_err(|e| not_converged(0, e.to_string()))?;
    let res = Executor::new(Problem(f), solver)
        .configure(|s| s.param(x0).inv_hessian(eye).max_iters(max_iters))
        .run()
        .map_err(|e| not_converged(0, format!("optimizer stopped: {e}")))?;
    let state = res.state();
    let iterations = state.get_iter();
    match state.get_termination_status() {
        TerminationStatus::Terminated(TerminationReason::SolverConverged) => {}
        TerminationStatus::Terminated(r) => return Err(not_converged(iterations, r.text().into())),
        TerminationStatus::NotTerminated => {
            return Err(not_converged(iterations, "optimizer did not terminate".into()))
        }
    }
    let x = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| not_converged(iterations, "no parameters".into()))?;
    let cost = state.get_best_cost();
    if !cost.is_finite() {
        return Err(not_converged(iterations, "the likelihood is not finite".into()));
    }
    // A vanishing gradient far out in log space is a supremum approached at the boundary
    // (e.g. nobody ever repeats: r → 0), not a maximum: report it instead of the runaway values.
    if let Some(k) = x.iter().position(|v| v.abs() > BOUNDARY) {
        return Err(not_converged(
            iterations,
            format!(
                "parameter {k} ran to the boundary (|ln θ| = {:.1} > {BOUNDARY}): the likelihood has no interior maximum on this data",
                x[k].abs()
            ),
        ));
    }
    Ok(Optimum {
        x,
        cost,
        iterations,
    })
}
