//! Maximum-likelihood fitting: BFGS from `argmin` with a More–Thuente line search, on an
//! objective that returns its value and gradient together.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::BFGS;

use super::ModelError;

/// |ln θ| beyond which a fitted parameter counts as having run to the boundary of the
/// parameter space (θ outside [4.5e-5, 22026] in the fit's internal units).
pub(crate) const BOUNDARY: f64 = 10.0;

/// BFGS runs allowed: a run whose line search breaks down (the inverse-Hessian estimate lost
/// positive definiteness, or a trial step left the finite region) restarts from the best point seen
/// with a fresh, scaled identity estimate.
const RESTARTS: usize = 5;

/// A point where BFGS broke down is accepted as the optimum when every gradient component is
/// at most this (scipy's `gtol` as `lifetimes` calls it).
const ACCEPT_GRAD: f64 = 1e-7;

/// How a fit ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Optimum {
    pub(crate) x: Vec<f64>,
    pub(crate) cost: f64,
    /// Gradient evaluations over all BFGS runs (each iteration takes one or more, in its line
    /// search); counted here because a run that breaks down reports no iteration count.
    pub(crate) evaluations: u64,
}

/// A point, the objective's value there and its gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// The objective, remembering the best finite point it was asked about.
struct Problem<'a, F> {
    f: &'a F,
    /// argmin asks for the cost and the gradient at the same point separately; the objective
    /// computes both at once, so the last evaluation is kept.
    last: RefCell<Option<Evaluation>>,
    best: &'a RefCell<Option<(f64, Vec<f64>)>>,
    evaluations: &'a std::cell::Cell<u64>,
}

impl<F: Fn(&[f64]) -> (f64, Vec<f64>)> Problem<'_, F> {
    fn eval(&self, p: &[f64]) -> (f64, Vec<f64>) {
        if let Some((x, c, g)) = self.last.borrow().as_ref() {
            if x.as_slice() == p {
                return (*c, g.clone());
            }
        }
        let (c, g) = (self.f)(p);
        *self.last.borrow_mut() = Some((p.to_vec(), c, g.clone()));
        if c.is_finite() && g.iter().all(|v| v.is_finite()) {
            let mut best = self.best.borrow_mut();
            if best.as_ref().is_none_or(|(b, _)| c < *b) {
                *best = Some((c, p.to_vec()));
            }
        }
        (c, g)
    }
}

impl<F: Fn(&[f64]) -> (f64, Vec<f64>)> CostFunction for Problem<'_, F> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let (c, _) = self.eval(p);
        // A non-finite value means the step left the region where the likelihood is defined;
        // +inf makes the line search step back instead of accepting garbage.
        Ok(if c.is_finite() { c } else { f64::INFINITY })
    }
}

impl<F: Fn(&[f64]) -> (f64, Vec<f64>)> Gradient for Problem<'_, F> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        self.evaluations.set(self.evaluations.get() + 1);
        let (_, g) = self.eval(p);
        if g.iter().all(|v| v.is_finite()) {
            Ok(g)
        } else {
            Err(argmin::core::Error::msg("gradient is not finite"))
        }
    }
}

/// Whether the Hessian at `x` (central differences of the analytic gradient, step 1e-4) is
/// positive definite: Cholesky pivots above 1e-8 × the largest diagonal entry. A maximum of the
/// likelihood that some direction leaves unchanged is not a unique estimate.
fn positive_definite_hessian<F: Fn(&[f64]) -> (f64, Vec<f64>)>(f: &F, x: &[f64]) -> bool {
    let n = x.len();
    let h = 1e-4;
    let mut hess = vec![0.0; n * n];
    for j in 0..n {
        let mut up = x.to_vec();
        let mut down = x.to_vec();
        up[j] += h;
        down[j] -= h;
        let (gu, gd) = (f(&up).1, f(&down).1);
        for i in 0..n {
            hess[i * n + j] = (gu[i] - gd[i]) / (2.0 * h);
        }
    }
    let sym: Vec<f64> = (0..n * n)
        .map(|k| (hess[k] + hess[(k % n) * n + k / n]) / 2.0)
        .collect();
    if sym.iter().any(|v| !v.is_finite()) {
        return false;
    }
    let scale = (0..n).map(|i| sym[i * n + i].abs()).fold(0.0, f64::max);
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s = sym[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s <= 1e-8 * scale || scale == 0.0 {
                    return false;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    true
}

/// Minimize `f` (value, gradient) from `x0`. Converged means the gradient's L2 norm fell below
/// `tol_grad` (or, where BFGS breaks down at the optimum, its max norm is ≤ 1e-7); anything else (iteration cap, repeated line search failures, a non-finite value,
/// parameters running to the boundary) is [`ModelError::NotConverged`].
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
    let not_converged = |evaluations: u64, reason: String| ModelError::NotConverged {
        model,
        evaluations,
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
    // The first BFGS step is −H₀g: scaling H₀ = I/max(1, ‖g‖) keeps it within unit length in
    // log-parameter space, so it cannot jump to where exp(θ) overflows.
    let h0 = |x: &[f64]| -> Vec<Vec<f64>> {
        let g = f(x).1;
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let s = if norm.is_finite() {
            1.0 / norm.max(1.0)
        } else {
            1e-3
        };
        (0..n)
            .map(|i| (0..n).map(|j| if i == j { s } else { 0.0 }).collect())
            .collect()
    };
    let best = RefCell::new(None);
    let evaluations = std::cell::Cell::new(0u64);
    let mut start = x0;
    let mut last_failure = String::new();
    let mut found = None;
    for _ in 0..RESTARTS {
        let solver = BFGS::new(MoreThuenteLineSearch::new())
            .with_tolerance_grad(tol_grad)
            .and_then(|s| s.with_tolerance_cost(0.0))
            .map_err(|e| not_converged(0, e.to_string()))?;
        let problem = Problem {
            f: &f,
            last: RefCell::new(None),
            best: &best,
            evaluations: &evaluations,
        };
        let budget = max_iters.saturating_sub(evaluations.get());
        let run = Executor::new(problem, solver)
            .configure(|s| {
                s.param(start.clone())
                    .inv_hessian(h0(&start))
                    .max_iters(budget)
            })
            .run();
        match run {
            Ok(res) => {
                let state = res.state();
                match state.get_termination_status() {
                    TerminationStatus::Terminated(TerminationReason::SolverConverged) => {
                        found = state
                            .get_best_param()
                            .cloned()
                            .map(|x| (x, state.get_best_cost()));
                        break;
                    }
                    TerminationStatus::Terminated(r) => {
                        return Err(not_converged(evaluations.get(), r.text().into()))
                    }
                    TerminationStatus::NotTerminated => {
                        return Err(not_converged(
                            evaluations.get(),
                            "optimizer did not terminate".into(),
                        ))
                    }
                }
            }
            Err(e) => {
                last_failure = e.to_string();
                let Some((cost, x)) = best.borrow_mut().take() else {
                    break;
                };
                // BFGS breaks down (a zero step, then a NaN update) when it is already at the
                // optimum to machine precision but the gradient is a little above `tol_grad`:
                // accept the best point when it meets scipy's default test (‖g‖∞ ≤ ACCEPT_GRAD,
                // what `lifetimes` fits to).
                let g = f(&x).1;
                if g.iter().all(|v| v.abs() <= ACCEPT_GRAD) {
                    found = Some((x, cost));
                    break;
                }
                if x == start {
                    break;
                }
                start = x;
            }
        }
    }
    let Some((x, cost)) = found else {
        return Err(not_converged(
            evaluations.get(),
            format!("optimizer stopped: {last_failure}"),
        ));
    };
    if !cost.is_finite() {
        return Err(not_converged(
            evaluations.get(),
            "the likelihood is not finite".into(),
        ));
    }
    // A vanishing gradient far out in log space is a supremum approached at the boundary
    // (e.g. nobody ever repeats: r → 0), not a maximum: report it instead of the runaway values.
    if let Some(k) = x.iter().position(|v| v.abs() > BOUNDARY) {
        return Err(not_converged(
            evaluations.get(),
            format!(
                "parameter {k} ran to the boundary (|ln θ| = {:.1} > {BOUNDARY}): the likelihood has no interior maximum on this data",
                x[k].abs()
            ),
        ));
    }
    if !positive_definite_hessian(&f, &x) {
        return Err(not_converged(
            evaluations.get(),
            "the likelihood is flat along some direction at the optimum (Hessian not positive definite): this data does not identify every parameter".into(),
        ));
    }
    Ok(Optimum {
        x,
        cost,
        evaluations: evaluations.get(),
    })
}
