//! `gaussian-process`: Gaussian process regression as scikit-learn's
//! `GaussianProcessRegressor(ConstantKernel() * RBF(ones(d)) + WhiteKernel(), normalize_y=True)`
//! fits it: an anisotropic (one length-scale per feature) RBF or Matérn 5/2 kernel, its
//! signal variance, length-scales and noise level chosen by maximising the log marginal
//! likelihood with L-BFGS from scikit-learn's start (all ones, in log space, bounded to
//! 1e-5..1e5), the target standardised inside and scaled back.
//!
//! Two choices keep it fast enough for AutoML: the kernel's hyperparameters are fitted on a
//! seeded sample of `hyper_rows` rows (on Friedman #1 a 300-row fit gives the RMSE of a
//! 1,000-row one within 0.1 %, in a tenth of the time), and the model then conditions on at
//! most `max_rows` rows (the Cholesky factor of an n × n kernel matrix is n³/3 operations and
//! n² numbers). The factorisation is blocked, its trailing updates matrix products on every
//! core. Regression only: a GP classifier needs a Laplace or EP approximation, and the
//! classification tables are served well by the other learners.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::blocks::map_indexed;
use super::lbfgs::{self, Smooth};
use super::{FitData, Monitor, Output, Rng};
use crate::prep::mean_std;
use crate::MlError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    Rbf,
    Matern52,
}

impl Kernel {
    pub fn parse(text: &str) -> Kernel {
        match text {
            "matern52" => Kernel::Matern52,
            _ => Kernel::Rbf,
        }
    }

    /// The kernel's value at a scaled squared distance `r2` = Σ (Δ/ℓ)², and `h` such that
    /// its derivative by log ℓ_d is `h · (Δ_d/ℓ_d)²` (both for a signal variance of 1).
    fn value_and_slope(self, r2: f64) -> (f64, f64) {
        match self {
            Kernel::Rbf => {
                let k = (-0.5 * r2).exp();
                (k, k)
            }
            Kernel::Matern52 => {
                let r5 = (5.0 * r2).sqrt();
                let e = (-r5).exp();
                ((1.0 + r5 + 5.0 / 3.0 * r2) * e, 5.0 / 3.0 * (1.0 + r5) * e)
            }
        }
    }
}

pub struct GpParams {
    pub kernel: Kernel,
    pub hyper_rows: usize,
    pub max_rows: usize,
    pub max_iter: usize,
}

/// The fitted process: the conditioning rows (standardised) and their weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpModel {
    pub kernel: Kernel,
    /// The signal variance (of the standardised target).
    pub signal: f64,
    pub length_scales: Vec<f64>,
    pub noise: f64,
    /// Each feature's (mean, deviation) over the training rows.
    pub feature_scale: Vec<(f64, f64)>,
    /// The target's (mean, deviation).
    pub target_scale: (f64, f64),
    /// rows × features, standardised and divided by the length-scales.
    pub rows: Array2<f64>,
    /// K⁻¹ y over those rows.
    pub weights: Array1<f64>,
    /// The log marginal likelihood of the hyperparameter sample at the optimum.
    pub log_marginal_likelihood: f64,
    pub iterations: usize,
}

/// Bounds of every log-hyperparameter: scikit-learn's (1e-5, 1e5).
const LOG_BOUND: f64 = 11.512_925_464_970_229;
/// Added to the kernel's diagonal (scikit-learn's `alpha`).
const JITTER: f64 = 1e-10;

/// Rows of `x` standardised with `scale`.
fn standardise(x: ArrayView2<f64>, scale: &[(f64, f64)]) -> Array2<f64> {
    let mut out = x.to_owned();
    for (mut column, (mean, dev)) in out.columns_mut().into_iter().zip(scale) {
        column.mapv_inplace(|v| (v - mean) / dev);
    }
    out
}

/// Rows a task of the kernel's passes takes. Each row costs a pass over every conditioning
/// row, so small tasks still outweigh their dispatch: the shared blocks (8,192 rows) would
/// leave a 300-row hyperparameter sample on one core, and a prediction's task holds a kernel
/// row per conditioning row (64 × 5,000 numbers is 2.5 MB).
const TASK_ROWS: usize = 64;

/// `work` on each block of `TASK_ROWS` rows of `0..rows`, on every core; results in order,
/// so sums over them are made in the same order on any machine.
fn map_tasks<T: Send>(rows: usize, work: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    map_indexed(rows.div_ceil(TASK_ROWS), |b| {
        work(b * TASK_ROWS..((b + 1) * TASK_ROWS).min(rows))
    })
}

/// `work(first, lanes)` on each run of `size` lanes (rows or columns, by `axis`) of `a`, on
/// every core; `first` is the index of the run's first lane.
fn for_lanes_mut(
    mut a: ArrayViewMut2<f64>,
    axis: Axis,
    size: usize,
    work: impl Fn(usize, ArrayViewMut2<f64>) + Sync,
) {
    a.axis_chunks_iter_mut(axis, size)
        .enumerate()
        .collect::<Vec<_>>()
        .into_par_iter()
        .for_each(|(b, lanes)| work(b * size, lanes));
}

/// The kernel matrix of rows already divided by their length-scales (signal variance 1).
fn gram(kernel: Kernel, a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((a.nrows(), b.nrows()));
    for_lanes_mut(out.view_mut(), Axis(0), TASK_ROWS, |first, mut rows| {
        for (r, mut row) in rows.rows_mut().into_iter().enumerate() {
            let ai = a.row(first + r);
            for (o, bj) in row.iter_mut().zip(b.rows()) {
                let r2: f64 = ai.iter().zip(bj).map(|(p, q)| (p - q) * (p - q)).sum();
                *o = kernel.value_and_slope(r2).0;
            }
        }
    });
    out
}

/// Rows of a block the Cholesky factorisation works on at once.
const BLOCK: usize = 64;

/// The lower Cholesky factor of a symmetric positive definite matrix, in place (the upper
/// triangle is left as it was); `Err(column)` where a pivot is not positive. Right-looking
/// and blocked: each block column is factored, its panel solved, and the trailing lower
/// triangle updated by matrix products, one row block per task.
pub fn cholesky(a: &mut Array2<f64>) -> Result<(), usize> {
    let n = a.nrows();
    let mut k = 0;
    while k < n {
        let end = (k + BLOCK).min(n);
        for j in k..end {
            let mut pivot = a[[j, j]];
            for l in k..j {
                pivot -= a[[j, l]] * a[[j, l]];
            }
            if pivot.is_nan() || pivot <= 0.0 {
                return Err(j);
            }
            let pivot = pivot.sqrt();
            a[[j, j]] = pivot;
            for i in j + 1..end {
                let mut v = a[[i, j]];
                for l in k..j {
                    v -= a[[i, l]] * a[[j, l]];
                }
                a[[i, j]] = v / pivot;
            }
        }
        if end < n {
            let width = end - k;
            let diagonal = a.slice(s![k..end, k..end]).to_owned();
            let mut panel = a.slice(s![end.., k..end]).to_owned();
            for_lanes_mut(panel.view_mut(), Axis(0), BLOCK, |_, mut rows| {
                for mut row in rows.rows_mut() {
                    for j in 0..width {
                        let mut v = row[j];
                        for l in 0..j {
                            v -= row[l] * diagonal[[j, l]];
                        }
                        row[j] = v / diagonal[[j, j]];
                    }
                }
            });
            a.slice_mut(s![end.., k..end]).assign(&panel);
            for_lanes_mut(
                a.slice_mut(s![end.., end..]),
                Axis(0),
                BLOCK,
                |r0, mut rows| {
                    let r1 = r0 + rows.nrows();
                    general_mat_mul(
                        -1.0,
                        &panel.slice(s![r0..r1, ..]),
                        &panel.slice(s![..r1, ..]).t(),
                        1.0,
                        &mut rows.slice_mut(s![.., ..r1]),
                    );
                },
            );
        }
        k = end;
    }
    Ok(())
}

/// `L⁻¹ b` for a lower factor `l`.
fn solve_lower(l: &Array2<f64>, b: &mut [f64]) {
    for i in 0..b.len() {
        let row = l.row(i);
        let mut v = b[i];
        for j in 0..i {
            v -= row[j] * b[j];
        }
        b[i] = v / row[i];
    }
}

/// `L⁻ᵀ b` for a lower factor `l`.
fn solve_upper(l: &Array2<f64>, b: &mut [f64]) {
    for i in (0..b.len()).rev() {
        let v = b[i] / l[[i, i]];
        b[i] = v;
        for j in 0..i {
            b[j] -= l[[i, j]] * v;
        }
    }
}

/// `L⁻¹` for a lower factor `l`, column-major: column `j` is `L⁻¹ e_j`, zero above row `j`,
/// so each solve starts there; columns are solved on every core.
fn lower_inverse(l: &Array2<f64>) -> Array2<f64> {
    let n = l.nrows();
    let mut inverse = Array2::<f64>::eye(n).reversed_axes();
    for_lanes_mut(
        inverse.view_mut(),
        Axis(1),
        TASK_ROWS,
        |first, mut columns| {
            for (c, mut column) in columns.columns_mut().into_iter().enumerate() {
                let j = first + c;
                let column = column.as_slice_mut().expect("a column-major column");
                for i in j..n {
                    let row = l.row(i);
                    let mut v = column[i];
                    for k in j..i {
                        v -= row[k] * column[k];
                    }
                    column[i] = v / row[i];
                }
            }
        },
    );
    inverse
}

/// The negative log marginal likelihood over the hyperparameter sample, as a function of
/// θ = (log signal, log ℓ₁ … log ℓ_d, log noise).
struct Likelihood<'a> {
    kernel: Kernel,
    x: &'a Array2<f64>,
    y: &'a [f64],
}

struct Fitted {
    factor: Array2<f64>,
    weights: Vec<f64>,
    value: f64,
}

impl Likelihood<'_> {
    fn dims(&self) -> usize {
        self.x.ncols()
    }

    /// The factor, the weights K⁻¹y and −log p(y); None where K is not positive definite.
    fn condition(&self, mut k: Array2<f64>, signal: f64, noise: f64) -> Option<Fitted> {
        let n = self.y.len();
        k *= signal;
        k.diag_mut().mapv_inplace(|v| v + noise + JITTER);
        cholesky(&mut k).ok()?;
        let mut weights = self.y.to_vec();
        solve_lower(&k, &mut weights);
        let fit: f64 = weights.iter().map(|v| v * v).sum();
        solve_upper(&k, &mut weights);
        let log_det: f64 = k.diag().iter().map(|v| v.ln()).sum();
        let value = 0.5 * fit + log_det + 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        Some(Fitted {
            factor: k,
            weights,
            value,
        })
    }

    fn scaled(&self, theta: &[f64]) -> Array2<f64> {
        let mut x = self.x.clone();
        for (mut column, t) in x.columns_mut().into_iter().zip(&theta[1..]) {
            let ell = t.exp();
            column.mapv_inplace(|v| v / ell);
        }
        x
    }
}

impl Smooth for Likelihood<'_> {
    fn len(&self) -> usize {
        self.dims() + 2
    }

    fn evaluate(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let d = self.dims();
        // Outside the bounds the objective takes its value at the nearest bound and is flat
        // along the clamped parameters (their slope is zero), so the search stays inside.
        let inside: Vec<f64> = theta
            .iter()
            .map(|t| t.clamp(-LOG_BOUND, LOG_BOUND))
            .collect();
        let (signal, noise) = (inside[0].exp(), inside[d + 1].exp());
        let x = self.scaled(&inside);
        let base = gram(self.kernel, x.view(), x.view());
        let Some(fitted) = self.condition(base, signal, noise) else {
            grad.fill(0.0);
            return f64::INFINITY;
        };
        let n = self.y.len();
        // W = K⁻¹ − ααᵀ; the gradient of −log p is ½ tr(W ∂K/∂θ).
        let inverse = lower_inverse(&fitted.factor);
        let mut w = Array2::<f64>::zeros((n, n));
        general_mat_mul(1.0, &inverse.t(), &inverse, 0.0, &mut w);
        let alpha = &fitted.weights;
        let parts = map_tasks(n, |range| {
            let mut g = vec![0.0; d + 2];
            for i in range {
                for j in 0..n {
                    let wij = w[[i, j]] - alpha[i] * alpha[j];
                    let xi = x.row(i);
                    let xj = x.row(j);
                    let r2: f64 = xi.iter().zip(xj).map(|(p, q)| (p - q) * (p - q)).sum();
                    let (k, h) = self.kernel.value_and_slope(r2);
                    g[0] += wij * k * signal;
                    let hw = wij * h * signal;
                    if hw != 0.0 {
                        for (l, (p, q)) in xi.iter().zip(xj).enumerate() {
                            g[1 + l] += hw * (p - q) * (p - q);
                        }
                    }
                    if i == j {
                        g[d + 1] += wij * noise;
                    }
                }
            }
            g
        });
        grad.fill(0.0);
        for part in parts {
            for (g, p) in grad.iter_mut().zip(part) {
                *g += 0.5 * p;
            }
        }
        for (g, t) in grad.iter_mut().zip(theta) {
            if t.abs() > LOG_BOUND {
                *g = 0.0;
            }
        }
        fitted.value
    }
}

/// Fits the process to standardised targets; `data.y` holds the values.
pub fn fit(data: &FitData, p: &GpParams, monitor: &mut Monitor) -> Result<GpModel, MlError> {
    let (n, d) = data.x.dim();
    if d == 0 {
        return Err(MlError::Input(
            "gaussian-process needs at least one feature column".into(),
        ));
    }
    let feature_scale: Vec<(f64, f64)> = data
        .x
        .columns()
        .into_iter()
        .map(|c| mean_std(&c.to_vec()))
        .collect();
    let target_scale = mean_std(&data.y.to_vec());
    let x = standardise(data.x.view(), &feature_scale);
    let y: Vec<f64> = data
        .y
        .iter()
        .map(|v| (v - target_scale.0) / target_scale.1)
        .collect();
    let mut rng = Rng::new(data.seed);
    let pick = |rng: &mut Rng, k: usize| -> (Array2<f64>, Vec<f64>) {
        let rows = if n > k {
            rng.choose(n, k)
        } else {
            (0..n).collect()
        };
        (
            x.select(Axis(0), &rows),
            rows.iter().map(|&i| y[i]).collect(),
        )
    };
    let (hx, hy) = pick(&mut rng, p.hyper_rows);
    let likelihood = Likelihood {
        kernel: p.kernel,
        x: &hx,
        y: &hy,
    };
    let start = vec![0.0; d + 2];
    let mut step = 0;
    let optimum = lbfgs::minimise(
        &likelihood,
        start,
        p.max_iter,
        1e-5,
        // SciPy's L-BFGS-B default (factr 1e7 × machine epsilon), which scikit-learn's
        // hyperparameter fit stops on.
        2.2e-9,
        monitor,
        |monitor, value, _, _| {
            step += 1;
            (monitor.report)(
                step,
                vec![(
                    "train:neg_log_marginal_likelihood".to_owned(),
                    value / hy.len() as f64,
                )],
            );
        },
    )?;
    // The objective is flat beyond the bounds, so its value there is the clamped point's.
    let theta: Vec<f64> = optimum
        .point
        .into_iter()
        .map(|t| t.clamp(-LOG_BOUND, LOG_BOUND))
        .collect();
    let (cx, cy) = pick(&mut rng, p.max_rows);
    let conditioned = Likelihood {
        kernel: p.kernel,
        x: &cx,
        y: &cy,
    };
    let (signal, noise) = (theta[0].exp(), theta[d + 1].exp());
    let rows = conditioned.scaled(&theta);
    let base = gram(p.kernel, rows.view(), rows.view());
    let fitted = conditioned.condition(base, signal, noise).ok_or_else(|| {
        MlError::Training(
            "gaussian-process: the kernel matrix is not positive definite at the fitted \
             hyperparameters (duplicate rows with a near-zero noise level); remove duplicate \
             rows or lower max_rows"
                .into(),
        )
    })?;
    Ok(GpModel {
        kernel: p.kernel,
        signal,
        length_scales: theta[1..=d].iter().map(|t| t.exp()).collect(),
        noise,
        feature_scale,
        target_scale,
        rows,
        weights: Array1::from(fitted.weights),
        log_marginal_likelihood: -optimum.value,
        iterations: optimum.iterations,
    })
}

impl GpModel {
    /// The posterior mean at each row.
    pub fn predict(&self, x: &Array2<f64>) -> Output {
        let mut z = standardise(x.view(), &self.feature_scale);
        for (mut column, ell) in z.columns_mut().into_iter().zip(&self.length_scales) {
            column.mapv_inplace(|v| v / ell);
        }
        let parts = map_tasks(z.nrows(), |range| {
            let block = z.slice(s![range, ..]);
            let k = gram(self.kernel, block, self.rows.view());
            (k.dot(&self.weights) * self.signal).to_vec()
        });
        let (mean, dev) = self.target_scale;
        Output::Values(Array1::from(parts.concat()).mapv(|v| v * dev + mean))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prep::ProblemType;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn the_blocked_factor_rebuilds_the_matrix() {
        let mut rng = Rng::new(5);
        let n = 2 * BLOCK + 17;
        let b = Array2::from_shape_fn((n, n), |_| rng.unit() - 0.5);
        let mut a = b.dot(&b.t());
        a.diag_mut().mapv_inplace(|v| v + n as f64);
        let original = a.clone();
        cholesky(&mut a).unwrap();
        let l = Array2::from_shape_fn((n, n), |(i, j)| if j <= i { a[[i, j]] } else { 0.0 });
        let rebuilt = l.dot(&l.t());
        let worst = (&rebuilt - &original)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(worst < 1e-9, "largest difference {worst}");
        let mut v: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let target = v.clone();
        solve_lower(&l, &mut v);
        solve_upper(&l, &mut v);
        let back = original.dot(&Array1::from(v));
        assert!(back.iter().zip(&target).all(|(a, b)| (a - b).abs() < 1e-8));
        let mut singular = Array2::<f64>::ones((3, 3));
        assert_eq!(cholesky(&mut singular), Err(1));
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let mut rng = Rng::new(9);
        let x = Array2::from_shape_fn((40, 3), |_| rng.unit() * 2.0 - 1.0);
        let y: Vec<f64> = x
            .rows()
            .into_iter()
            .map(|r| (3.0 * r[0]).sin() + r[1])
            .collect();
        for kernel in [Kernel::Rbf, Kernel::Matern52] {
            let f = Likelihood {
                kernel,
                x: &x,
                y: &y,
            };
            let theta = [0.3, -0.2, 0.4, 1.1, -1.5];
            let mut grad = vec![0.0; 5];
            f.evaluate(&theta, &mut grad);
            for i in 0..5 {
                let (mut up, mut down) = (theta, theta);
                up[i] += 1e-5;
                down[i] -= 1e-5;
                let numeric =
                    (f.evaluate(&up, &mut [0.0; 5]) - f.evaluate(&down, &mut [0.0; 5])) / 2e-5;
                assert!(
                    (numeric - grad[i]).abs() < 1e-4 * numeric.abs().max(1.0),
                    "{kernel:?} θ{i}: analytic {} numeric {numeric}",
                    grad[i]
                );
            }
        }
    }

    /// Fits `p` to the rows, each step's metrics handed to `report`.
    fn fit_rows(
        x: &Array2<f64>,
        y: &Array1<f64>,
        p: &GpParams,
        stop: &AtomicBool,
        report: &mut dyn FnMut(u64, Vec<(String, f64)>),
    ) -> Result<GpModel, MlError> {
        let data = FitData {
            x,
            y,
            classes: 0,
            problem: ProblemType::Regression,
            validation: None,
            seed: 1,
        };
        let mut monitor = Monitor {
            stop,
            report,
            debug: None,
        };
        fit(&data, p, &mut monitor)
    }

    #[test]
    fn a_table_without_features_is_refused() {
        let stop = AtomicBool::new(false);
        let params = GpParams {
            kernel: Kernel::Rbf,
            hyper_rows: 10,
            max_rows: 10,
            max_iter: 5,
        };
        let x = Array2::<f64>::zeros((4, 0));
        let y = Array1::from(vec![1.0, 2.0, 3.0, 4.0]);
        let err = fit_rows(&x, &y, &params, &stop, &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(&err, MlError::Input(m) if m.contains("at least one feature column")),
            "{err}"
        );
    }

    #[test]
    fn a_smooth_function_is_learnt_to_its_noise_and_irrelevant_features_fade() {
        let mut rng = Rng::new(3);
        let draw = |rng: &mut Rng, n: usize| {
            let x = Array2::from_shape_fn((n, 3), |_| rng.unit());
            let noise: Vec<f64> = (0..n).map(|_| (rng.unit() - 0.5) * 0.2).collect();
            let y = Array1::from_shape_fn(n, |i| {
                10.0 * (3.0 * x[[i, 0]]).sin() + 5.0 * x[[i, 1]] * x[[i, 1]] + noise[i]
            });
            (x, y)
        };
        let (x, y) = draw(&mut rng, 400);
        let (tx, ty) = draw(&mut rng, 200);
        let stop = AtomicBool::new(false);
        let mut steps = Vec::new();
        let params = GpParams {
            kernel: Kernel::Rbf,
            hyper_rows: 200,
            max_rows: 400,
            max_iter: 100,
        };
        let model = fit_rows(&x, &y, &params, &stop, &mut |step, metrics| {
            steps.push((step, metrics))
        })
        .unwrap();
        let Output::Values(p) = model.predict(&tx) else {
            panic!("values")
        };
        let rmse = ((&p - &ty).mapv(|v| v * v).sum() / ty.len() as f64).sqrt();
        // The noise is uniform on ±0.1 (deviation 0.058); the target's deviation is about 4.
        assert!(rmse < 0.1, "rmse {rmse}");
        assert_eq!(model.rows.nrows(), 400);
        assert!(model.length_scales[2] > 10.0 * model.length_scales[0]);
        assert!(!steps.is_empty() && steps.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        // A reloaded model predicts the same values.
        let text = serde_json::to_string(&model).unwrap();
        let back: GpModel = serde_json::from_str(&text).unwrap();
        let Output::Values(q) = back.predict(&tx) else {
            panic!("values")
        };
        assert_eq!(p, q);
        // More rows than max_rows: a seeded sample is kept.
        let small = GpParams {
            kernel: Kernel::Matern52,
            hyper_rows: 50,
            max_rows: 120,
            max_iter: 20,
        };
        let model = fit_rows(&x, &y, &small, &stop, &mut |_, _| {}).unwrap();
        assert_eq!(model.rows.nrows(), 120);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let stopped = fit_rows(&x, &y, &small, &stop, &mut |_, _| {});
        assert!(matches!(stopped, Err(MlError::Stopped)));
    }
}
