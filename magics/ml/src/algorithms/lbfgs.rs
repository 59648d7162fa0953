//! Limited-memory BFGS, shared by the learners that minimise a smooth objective of a few to
//! a few thousand parameters (logistic regression's coefficients, a Gaussian process's
//! kernel hyperparameters). Written here: linfa's through argmin was 16x slower than
//! scikit-learn's on logistic regression (see `logistic`).

use std::sync::atomic::Ordering;

use super::blocks::dot;
use super::Monitor;
use crate::MlError;

/// An objective and its gradient.
pub trait Smooth {
    /// How many parameters it takes.
    fn len(&self) -> usize;
    /// The value at θ, its gradient written into `grad`.
    fn evaluate(&self, theta: &[f64], grad: &mut [f64]) -> f64;
}

/// Where a search ended.
pub struct Minimum {
    pub point: Vec<f64>,
    /// The objective at `point`.
    pub value: f64,
    pub iterations: usize,
}

/// Limited-memory BFGS (Nocedal and Wright, algorithm 7.5) with ten corrections and a
/// backtracking line search on Armijo's condition; stops when the largest gradient entry is
/// under `tol`, as scikit-learn's lbfgs does, when a step lowers the objective by no more
/// than `ftol` of its size (SciPy's `ftol`; `f64::EPSILON`: only when floating point allows
/// no more), or after `max_iter` iterations.
///
/// `each_step` sees the loss, the point and the gradient before every step (the debugger's
/// step); a set stop flag ends the search with [`MlError::Stopped`]. A point where the
/// objective is not finite (outside its domain) is backed away from like a rise.
pub fn minimise<F: Smooth + ?Sized>(
    problem: &F,
    start: Vec<f64>,
    max_iter: usize,
    tol: f64,
    ftol: f64,
    monitor: &mut Monitor,
    mut each_step: impl FnMut(&mut Monitor, f64, &[f64], &[f64]),
) -> Result<Minimum, MlError> {
    const HISTORY: usize = 10;
    let len = problem.len();
    assert_eq!(start.len(), len, "the start has one entry per parameter");
    let mut theta = start;
    let mut grad = vec![0.0; len];
    let mut loss = problem.evaluate(&theta, &mut grad);
    let mut s_hist: std::collections::VecDeque<Vec<f64>> = Default::default();
    let mut y_hist: std::collections::VecDeque<Vec<f64>> = Default::default();
    let mut next = vec![0.0; len];
    let mut next_grad = vec![0.0; len];
    let mut iterations = 0;
    while iterations < max_iter {
        if grad.iter().fold(0.0f64, |a, g| a.max(g.abs())) <= tol {
            break;
        }
        if monitor.stop.load(Ordering::Relaxed) {
            return Err(MlError::Stopped);
        }
        each_step(monitor, loss, &theta, &grad);
        iterations += 1;
        // Two-loop recursion: direction = −H·grad.
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(s_hist.len());
        for (s, y) in s_hist.iter().zip(&y_hist).rev() {
            let rho = 1.0 / dot(y, s);
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
            alphas.push((rho, a));
        }
        let gamma = match (s_hist.back(), y_hist.back()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / grad.iter().map(|g| g * g).sum::<f64>().sqrt().max(1e-12),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y), (rho, a)) in s_hist.iter().zip(&y_hist).zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
        }
        let mut direction: Vec<f64> = q.into_iter().map(|v| -v).collect();
        let mut slope = dot(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature went wrong): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            direction = grad.iter().map(|g| -g).collect();
            slope = dot(&grad, &direction);
        }
        let mut step = 1.0;
        let mut next_loss;
        let mut tries = 0;
        loop {
            for k in 0..len {
                next[k] = theta[k] + step * direction[k];
            }
            next_loss = problem.evaluate(&next, &mut next_grad);
            if next_loss <= loss + 1e-4 * step * slope || tries >= 30 {
                break;
            }
            step *= 0.5;
            tries += 1;
        }
        if next_loss.is_nan() || next_loss > loss {
            break; // no step lowers the loss: as close as floating point allows
        }
        let s: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        if dot(&s, &y) > 1e-12 {
            if s_hist.len() == HISTORY {
                s_hist.pop_front();
                y_hist.pop_front();
            }
            s_hist.push_back(s);
            y_hist.push_back(y);
        }
        std::mem::swap(&mut theta, &mut next);
        std::mem::swap(&mut grad, &mut next_grad);
        let improvement = loss - next_loss;
        loss = next_loss;
        if improvement.abs() <= ftol * loss.abs().max(1.0) {
            break;
        }
    }
    Ok(Minimum {
        point: theta,
        value: loss,
        iterations,
    })
}
