//! A Gaussian process over the unit cube: Matérn 5/2 kernel with one length scale per
//! dimension (ARD), fitted by maximising the log marginal likelihood (with weak log-normal
//! priors, so a handful of points cannot drive a length scale to zero) using Rprop on the
//! log-parameters, warm-started from the previous fit.

const SQRT5: f64 = 2.236_067_977_499_79;

/// Log-parameters: `d` length scales, the signal variance, the noise variance.
#[derive(Debug, Clone)]
pub struct Hyper(pub Vec<f64>);

impl Hyper {
    pub fn initial(d: usize) -> Hyper {
        let mut v = vec![PRIOR_LENGTH.ln(); d];
        v.push(0.0);
        v.push((1e-3f64).ln());
        Hyper(v)
    }
}

const PRIOR_LENGTH: f64 = 0.35;
/// Bounds on the log-parameters: length scales, signal variance, noise variance.
const LENGTH: (f64, f64) = (-4.6, 2.3); // 0.01 .. 10
const SIGNAL: (f64, f64) = (-3.0, 3.0);
const NOISE: (f64, f64) = (-13.8, -0.7); // 1e-6 .. 0.5 of the standardised variance

pub struct Gp {
    d: usize,
    x: Vec<f64>,
    /// Lower Cholesky factor of K + noise, row-major n × n.
    l: Vec<f64>,
    alpha: Vec<f64>,
    inv_length: Vec<f64>,
    signal: f64,
    n: usize,
}

fn matern(r2: f64) -> f64 {
    let r = r2.max(0.0).sqrt();
    (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * (-SQRT5 * r).exp()
}

/// In-place Cholesky; false when the matrix is not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return false;
        }
        let djj = s.sqrt();
        a[j * n + j] = djj;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / djj;
        }
        for i in 0..j {
            a[i * n + j] = 0.0;
        }
    }
    true
}

/// Solves L v = b.
fn forward_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves Lᵀ v = b.
fn backward_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

struct Fit {
    l: Vec<f64>,
    alpha: Vec<f64>,
    lml: f64,
}

/// The kernel matrix (with noise and jitter), factored; None when it cannot be.
fn factor(x: &[f64], y: &[f64], d: usize, h: &Hyper) -> Option<(Fit, Vec<f64>)> {
    let n = y.len();
    let inv: Vec<f64> = h.0[..d].iter().map(|l| (-l).exp()).collect();
    let signal = h.0[d].exp();
    let noise = h.0[d + 1].exp() + 1e-9;
    let mut r2 = vec![0.0; n * n];
    let mut k = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..i {
            let mut s = 0.0;
            for t in 0..d {
                let diff = (x[i * d + t] - x[j * d + t]) * inv[t];
                s += diff * diff;
            }
            r2[i * n + j] = s;
            r2[j * n + i] = s;
            let v = signal * matern(s);
            k[i * n + j] = v;
            k[j * n + i] = v;
        }
        k[i * n + i] = signal + noise;
    }
    if !cholesky(&mut k, n) {
        return None;
    }
    let mut alpha = y.to_vec();
    forward_solve(&k, n, &mut alpha);
    let quad: f64 = alpha.iter().map(|a| a * a).sum();
    backward_solve(&k, n, &mut alpha);
    let logdet: f64 = (0..n).map(|i| k[i * n + i].ln()).sum();
    let lml = -0.5 * quad - logdet - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    Some((Fit { l: k, alpha, lml }, r2))
}

fn log_prior(h: &Hyper, d: usize) -> (f64, Vec<f64>) {
    // log-normal priors: length scales around PRIOR_LENGTH, signal around 1, noise small.
    let mut grad = vec![0.0; d + 2];
    let mut lp = 0.0;
    let terms = (0..d)
        .map(|i| (i, PRIOR_LENGTH.ln(), 1.0))
        .chain([(d, 0.0, 1.0), (d + 1, (1e-3f64).ln(), 3.0)]);
    for (i, mean, sd) in terms {
        let z = (h.0[i] - mean) / sd;
        lp -= 0.5 * z * z;
        grad[i] = -z / sd;
    }
    (lp, grad)
}

/// The log posterior of the hyperparameters and its gradient.
fn objective(x: &[f64], y: &[f64], d: usize, h: &Hyper) -> Option<(f64, Vec<f64>)> {
    let n = y.len();
    let (fit, r2) = factor(x, y, d, h)?;
    // K⁻¹ from the factor: solve for each unit vector.
    let mut kinv = vec![0.0; n * n];
    for c in 0..n {
        let mut e = vec![0.0; n];
        e[c] = 1.0;
        forward_solve(&fit.l, n, &mut e);
        backward_solve(&fit.l, n, &mut e);
        for r in 0..n {
            kinv[r * n + c] = e[r];
        }
    }
    // W = ααᵀ − K⁻¹; dLML/dθ = ½ Σ W ∘ ∂K/∂θ.
    let signal = h.0[d].exp();
    let noise = h.0[d + 1].exp();
    let inv: Vec<f64> = h.0[..d].iter().map(|l| (-l).exp()).collect();
    let (lp, mut grad) = log_prior(h, d);
    let mut g_signal = 0.0;
    let mut g_noise = 0.0;
    let mut g_length = vec![0.0; d];
    for i in 0..n {
        let wii = fit.alpha[i] * fit.alpha[i] - kinv[i * n + i];
        g_signal += 0.5 * wii * signal;
        g_noise += 0.5 * wii * noise;
        for j in 0..i {
            let w = fit.alpha[i] * fit.alpha[j] - kinv[i * n + j];
            let s = r2[i * n + j];
            let r = s.sqrt();
            let e = (-SQRT5 * r).exp();
            g_signal += w * signal * (1.0 + SQRT5 * r + 5.0 / 3.0 * s) * e;
            let common = w * signal * 5.0 / 3.0 * (1.0 + SQRT5 * r) * e;
            for t in 0..d {
                let diff = (x[i * d + t] - x[j * d + t]) * inv[t];
                g_length[t] += common * diff * diff;
            }
        }
    }
    for t in 0..d {
        grad[t] += g_length[t];
    }
    grad[d] += g_signal;
    grad[d + 1] += g_noise;
    Some((fit.lml + lp, grad))
}

fn bounds(i: usize, d: usize) -> (f64, f64) {
    if i < d {
        LENGTH
    } else if i == d {
        SIGNAL
    } else {
        NOISE
    }
}

impl Gp {
    /// Fits to `x` (n × d, row-major, in the unit cube) and standardised `y`, starting the
    /// hyperparameter search from `start` for `iterations` Rprop steps.
    pub fn fit(x: Vec<f64>, y: &[f64], d: usize, start: &Hyper, iterations: usize) -> (Gp, Hyper) {
        let mut h = start.clone();
        let mut step = vec![0.1f64; d + 2];
        let mut last_grad = vec![0.0; d + 2];
        let mut best = (f64::NEG_INFINITY, h.clone());
        for _ in 0..iterations {
            let Some((value, grad)) = objective(&x, y, d, &h) else {
                break;
            };
            if value > best.0 {
                best = (value, h.clone());
            }
            for i in 0..d + 2 {
                let sign = grad[i] * last_grad[i];
                if sign > 0.0 {
                    step[i] = (step[i] * 1.2).min(1.0);
                } else if sign < 0.0 {
                    step[i] = (step[i] * 0.5).max(1e-4);
                }
                let (lo, hi) = bounds(i, d);
                h.0[i] = (h.0[i] + step[i] * grad[i].signum()).clamp(lo, hi);
                last_grad[i] = if sign < 0.0 { 0.0 } else { grad[i] };
            }
        }
        if let Some((value, _)) = objective(&x, y, d, &h) {
            if value > best.0 {
                best = (value, h.clone());
            }
        }
        let mut h = best.1;
        // A matrix that will not factor gets more noise until it does.
        let fit = loop {
            if let Some((fit, _)) = factor(&x, y, d, &h) {
                break fit;
            }
            h.0[d + 1] = (h.0[d + 1] + 2.0).min(NOISE.1);
            if h.0[d + 1] >= NOISE.1 {
                break factor(&x, y, d, &h)
                    .map(|f| f.0)
                    .expect("a noisy kernel factors");
            }
        };
        let gp = Gp {
            d,
            inv_length: h.0[..d].iter().map(|l| (-l).exp()).collect(),
            signal: h.0[d].exp(),
            n: y.len(),
            x,
            l: fit.l,
            alpha: fit.alpha,
        };
        (gp, h)
    }

    /// The posterior mean and standard deviation of the latent function at `p`.
    pub fn predict(&self, p: &[f64], scratch: &mut Vec<f64>) -> (f64, f64) {
        let n = self.n;
        scratch.clear();
        for row in self.x.chunks_exact(self.d) {
            let s: f64 = p
                .iter()
                .zip(row)
                .zip(&self.inv_length)
                .map(|((a, b), inv)| ((a - b) * inv).powi(2))
                .sum();
            scratch.push(self.signal * matern(s));
        }
        let mean: f64 = scratch.iter().zip(&self.alpha).map(|(k, a)| k * a).sum();
        forward_solve(&self.l, n, scratch);
        let var = self.signal - scratch.iter().map(|v| v * v).sum::<f64>();
        (mean, var.max(1e-12).sqrt())
    }
}

/// The standard normal's density and distribution function.
fn phi(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn big_phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Expected improvement below `best` (minimisation).
pub fn expected_improvement(mean: f64, sd: f64, best: f64) -> f64 {
    let gap = best - mean;
    if sd <= 1e-12 {
        return gap.max(0.0);
    }
    let z = gap / sd;
    (gap * big_phi(z) + sd * phi(z)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_functions() {
        assert!((big_phi(0.0) - 0.5).abs() < 1e-7);
        assert!((big_phi(1.96) - 0.975_002_1).abs() < 1e-6);
        assert!((big_phi(-3.0) - 0.001_349_9).abs() < 1e-6);
        // EI of a sure thing is the gap; of a wide guess at the incumbent, sd·φ(0).
        assert_eq!(expected_improvement(1.0, 0.0, 2.0), 1.0);
        assert!((expected_improvement(2.0, 1.0, 2.0) - phi(0.0)).abs() < 1e-9);
    }

    #[test]
    fn interpolates_a_smooth_function_and_the_fit_improves_the_likelihood() {
        let f = |x: f64, y: f64| (3.0 * x).sin() + y * y;
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut rng = crate::algorithms::Rng::new(5);
        for _ in 0..30 {
            let (a, b) = (rng.unit(), rng.unit());
            xs.extend([a, b]);
            ys.push(f(a, b));
        }
        let mean = ys.iter().sum::<f64>() / 30.0;
        let sd = (ys.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 30.0).sqrt();
        let yz: Vec<f64> = ys.iter().map(|v| (v - mean) / sd).collect();
        let start = Hyper::initial(2);
        let before = objective(&xs, &yz, 2, &start).unwrap().0;
        let (gp, h) = Gp::fit(xs.clone(), &yz, 2, &start, 60);
        let after = objective(&xs, &yz, 2, &h).unwrap().0;
        assert!(after > before, "{after} <= {before}");
        let mut scratch = Vec::new();
        let mut worst: f64 = 0.0;
        for _ in 0..50 {
            let (a, b) = (0.1 + 0.8 * rng.unit(), 0.1 + 0.8 * rng.unit());
            let (m, _) = gp.predict(&[a, b], &mut scratch);
            worst = worst.max((m * sd + mean - f(a, b)).abs());
        }
        assert!(worst < 0.1, "worst error {worst}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = crate::algorithms::Rng::new(9);
        let d = 3;
        let x: Vec<f64> = (0..12 * d).map(|_| rng.unit()).collect();
        let y: Vec<f64> = (0..12).map(|_| rng.unit() - 0.5).collect();
        let h = Hyper(vec![-1.0, -0.5, 0.2, 0.3, -4.0]);
        let (_, grad) = objective(&x, &y, d, &h).unwrap();
        for (i, analytic) in grad.iter().enumerate() {
            let mut up = h.clone();
            up.0[i] += 1e-5;
            let mut down = h.clone();
            down.0[i] -= 1e-5;
            let numeric = (objective(&x, &y, d, &up).unwrap().0
                - objective(&x, &y, d, &down).unwrap().0)
                / 2e-5;
            assert!(
                (numeric - analytic).abs() < 1e-4 * (1.0 + numeric.abs()),
                "parameter {i}: {numeric} vs {analytic}"
            );
        }
    }
}
