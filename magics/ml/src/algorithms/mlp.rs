//! `mlp`: a multilayer perceptron as scikit-learn's MLPClassifier and MLPRegressor train
//! one: Glorot-uniform weights and biases, ReLU, tanh or logistic hidden units, softmax (or
//! one logistic unit) on log-loss for classes and the identity on half the squared error
//! for values, an L2 penalty `alpha` scaled by the batch, mini-batches shuffled every epoch,
//! Adam or SGD with momentum, and scikit-learn's stopping: `n_iter_no_change` epochs
//! without an improvement of `tol` in the training loss (or, with `early_stopping`, the
//! validation loss). Regression targets are standardised inside and scaled back.
//!
//! Each epoch is a Debugger step: TRAIN saves the loss, every layer's weights, biases and
//! the last batch's gradients, and each hidden layer's activation inputs and outputs
//! (`dense0/relu_input`, …) for the last batch; EVAL saves the validation loss.

use ndarray::{Array1, Array2, Axis, Zip};
use serde::{Deserialize, Serialize};

use super::{FitData, Monitor, Output, Rng};
use crate::debugger::{Mode, Tensor};
use crate::prep::ProblemType;
use crate::MlError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
    Sigmoid,
}

impl Activation {
    pub fn parse(text: &str) -> Activation {
        match text {
            "tanh" => Activation::Tanh,
            "sigmoid" | "logistic" => Activation::Sigmoid,
            _ => Activation::Relu,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }

    fn apply(self, z: &mut Array2<f64>) {
        match self {
            Activation::Relu => z.mapv_inplace(|v| v.max(0.0)),
            Activation::Tanh => z.mapv_inplace(f64::tanh),
            Activation::Sigmoid => z.mapv_inplace(sigmoid),
        }
    }

    /// The derivative, from the activation's output.
    fn derivative(self, a: f64) -> f64 {
        match self {
            Activation::Relu => f64::from(u8::from(a > 0.0)),
            Activation::Tanh => 1.0 - a * a,
            Activation::Sigmoid => a * (1.0 - a),
        }
    }
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

pub struct MlpParams {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub adam: bool,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub max_iter: usize,
    pub alpha: f64,
    pub tol: f64,
    pub n_iter_no_change: usize,
    pub early_stopping: bool,
    pub momentum: f64,
    /// Multiplies the Glorot bound of the weights (1: scikit-learn's initialisation).
    pub init_scale: f64,
    /// Added to every hidden bias at the start (0: scikit-learn's).
    pub bias_shift: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MlpModel {
    pub weights: Vec<Array2<f64>>,
    pub biases: Vec<Array1<f64>>,
    pub activation: Activation,
    pub problem: ProblemType,
    pub classes: usize,
    /// Regression: the standardisation of the target (mean, deviation).
    pub target_scale: (f64, f64),
    pub epochs: usize,
}

impl MlpModel {
    /// Every layer's output for a batch (the last is the network's output, before the
    /// output function for regression).
    fn forward(&self, x: &Array2<f64>) -> Vec<Array2<f64>> {
        let mut outs = Vec::with_capacity(self.weights.len());
        let last = self.weights.len() - 1;
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let input = if i == 0 { x } else { &outs[i - 1] };
            let mut z = input.dot(w) + b;
            if i < last {
                self.activation.apply(&mut z);
            } else {
                output_function(self.problem, &mut z);
            }
            outs.push(z);
        }
        outs
    }

    pub fn predict(&self, x: &Array2<f64>) -> Output {
        let out = self
            .forward(x)
            .pop()
            .expect("a network has an output layer");
        match self.problem {
            ProblemType::Binary => {
                let mut p = Array2::zeros((out.nrows(), 2));
                for (i, v) in out.column(0).iter().enumerate() {
                    p[[i, 0]] = 1.0 - v;
                    p[[i, 1]] = *v;
                }
                Output::Classes(p)
            }
            ProblemType::Multiclass => Output::Classes(out),
            _ => {
                let (mean, sd) = self.target_scale;
                Output::Values(out.column(0).mapv(|v| v * sd + mean))
            }
        }
    }
}

fn output_function(problem: ProblemType, z: &mut Array2<f64>) {
    match problem {
        ProblemType::Binary => z.mapv_inplace(sigmoid),
        ProblemType::Multiclass => {
            for mut row in z.rows_mut() {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                row.mapv_inplace(|v| (v - max).exp());
                let sum = row.sum();
                row.mapv_inplace(|v| v / sum);
            }
        }
        _ => {}
    }
}

/// The mean loss of outputs against targets (one-hot for multiclass), as scikit-learn's
/// log_loss, binary_log_loss and squared_loss (half the mean squared error).
fn loss(problem: ProblemType, out: &Array2<f64>, target: &Array2<f64>) -> f64 {
    let n = out.nrows().max(1) as f64;
    let eps = 1e-15;
    match problem {
        ProblemType::Binary => {
            Zip::from(out).and(target).fold(0.0, |acc, p, y| {
                let p = p.clamp(eps, 1.0 - eps);
                acc - (y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            }) / n
        }
        ProblemType::Multiclass => {
            Zip::from(out)
                .and(target)
                .fold(0.0, |acc, p, y| acc - y * p.clamp(eps, 1.0).ln())
                / n
        }
        _ => {
            Zip::from(out)
                .and(target)
                .fold(0.0, |acc, p, y| acc + (p - y) * (p - y))
                / (2.0 * n)
        }
    }
}

fn targets(
    problem: ProblemType,
    y: &Array1<f64>,
    classes: usize,
    scale: (f64, f64),
) -> Array2<f64> {
    match problem {
        ProblemType::Multiclass => {
            let mut t = Array2::zeros((y.len(), classes));
            for (i, c) in y.iter().enumerate() {
                t[[i, *c as usize]] = 1.0;
            }
            t
        }
        ProblemType::Binary => y.clone().insert_axis(Axis(1)),
        _ => y.mapv(|v| (v - scale.0) / scale.1).insert_axis(Axis(1)),
    }
}

/// Every layer's weights and biases.
type Layers = (Vec<Array2<f64>>, Vec<Array1<f64>>);

/// An epoch's last batch: its rows, every layer's output, the gradients (what the Debugger
/// saves of the epoch).
struct Batch {
    x: Array2<f64>,
    outs: Vec<Array2<f64>>,
    grads_w: Vec<Array2<f64>>,
    grads_b: Vec<Array1<f64>>,
}

struct Adam {
    m: Vec<Array2<f64>>,
    v: Vec<Array2<f64>>,
    mb: Vec<Array1<f64>>,
    vb: Vec<Array1<f64>>,
    t: i32,
}

pub fn fit(data: &FitData, p: &MlpParams, monitor: &mut Monitor) -> Result<MlpModel, MlError> {
    let (n, d) = data.x.dim();
    let problem = data.problem;
    let outputs = match problem {
        ProblemType::Multiclass => data.classes,
        ProblemType::Binary | ProblemType::Regression => 1,
        ProblemType::Clustering => {
            return Err(MlError::Input(
                "mlp learns a target; clustering has none".into(),
            ))
        }
    };
    let target_scale = if problem == ProblemType::Regression {
        let mean = data.y.mean().unwrap_or(0.0);
        let sd = data.y.std(0.0);
        (mean, if sd > 0.0 { sd } else { 1.0 })
    } else {
        (0.0, 1.0)
    };
    let y = targets(problem, data.y, data.classes, target_scale);
    let validation = data
        .validation
        .map(|(vx, vy)| (vx, targets(problem, vy, data.classes, target_scale)));
    let mut sizes = vec![d];
    sizes.extend(&p.hidden);
    sizes.push(outputs);
    let mut rng = Rng::new(data.seed);
    let mut uniform = |bound: f64| (rng.unit() * 2.0 - 1.0) * bound;
    let factor = if p.activation == Activation::Sigmoid {
        2.0
    } else {
        6.0
    };
    let (mut weights, mut biases) = (Vec::new(), Vec::new());
    for (i, pair) in sizes.windows(2).enumerate() {
        let bound = (factor / (pair[0] + pair[1]) as f64).sqrt();
        let hidden = i + 1 < sizes.len() - 1;
        let scale = if hidden { p.init_scale } else { 1.0 };
        weights.push(Array2::from_shape_fn((pair[0], pair[1]), |_| {
            uniform(bound * scale)
        }));
        let shift = if hidden { p.bias_shift } else { 0.0 };
        biases.push(Array1::from_shape_fn(pair[1], |_| uniform(bound) + shift));
    }
    let mut model = MlpModel {
        weights,
        biases,
        activation: p.activation,
        problem,
        classes: data.classes,
        target_scale,
        epochs: 0,
    };
    let layers = model.weights.len();
    let mut adam = Adam {
        m: model
            .weights
            .iter()
            .map(|w| Array2::zeros(w.raw_dim()))
            .collect(),
        v: model
            .weights
            .iter()
            .map(|w| Array2::zeros(w.raw_dim()))
            .collect(),
        mb: model
            .biases
            .iter()
            .map(|b| Array1::zeros(b.raw_dim()))
            .collect(),
        vb: model
            .biases
            .iter()
            .map(|b| Array1::zeros(b.raw_dim()))
            .collect(),
        t: 0,
    };
    let batch = p.batch_size.clamp(1, n.max(1));
    let mut order: Vec<usize> = (0..n).collect();
    let (mut best, mut since_best) = (f64::INFINITY, 0usize);
    let mut kept: Option<Layers> = None;
    for epoch in 0..p.max_iter {
        if monitor.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(MlError::Stopped);
        }
        rng.shuffle(&mut order);
        let mut total = 0.0;
        let mut last: Option<Batch> = None;
        for chunk in order.chunks(batch) {
            let xb = data.x.select(Axis(0), chunk);
            let yb = y.select(Axis(0), chunk);
            let m = chunk.len() as f64;
            let outs = model.forward(&xb);
            let penalty: f64 = model
                .weights
                .iter()
                .map(|w| w.iter().map(|v| v * v).sum::<f64>())
                .sum();
            total += (loss(problem, &outs[layers - 1], &yb) + 0.5 * p.alpha * penalty / m) * m;
            // Backpropagation: every output function here pairs with its loss so that the
            // output's delta is (prediction − target).
            let mut delta = &outs[layers - 1] - &yb;
            let mut grads_w = vec![Array2::zeros((0, 0)); layers];
            let mut grads_b = vec![Array1::zeros(0); layers];
            for i in (0..layers).rev() {
                let input = if i == 0 { &xb } else { &outs[i - 1] };
                grads_w[i] = (input.t().dot(&delta) + &(&model.weights[i] * p.alpha)) / m;
                grads_b[i] = delta.sum_axis(Axis(0)) / m;
                if i > 0 {
                    let mut back = delta.dot(&model.weights[i].t());
                    Zip::from(&mut back)
                        .and(&outs[i - 1])
                        .for_each(|g, a| *g *= p.activation.derivative(*a));
                    delta = back;
                }
            }
            step(&mut model, &mut adam, &grads_w, &grads_b, p);
            last = Some(Batch {
                x: xb,
                outs,
                grads_w,
                grads_b,
            });
        }
        let train_loss = total / n.max(1) as f64;
        model.epochs = epoch + 1;
        let valid_loss = validation.as_ref().map(|(vx, vy)| {
            let outs = model.forward(vx);
            loss(problem, &outs[layers - 1], vy)
        });
        let mut metrics = vec![("train:loss".to_owned(), train_loss)];
        if let Some(v) = valid_loss {
            metrics.push(("validation:loss".to_owned(), v));
        }
        monitor.debug_step(Mode::Train, |s| {
            s.add("losses", "loss", Tensor::scalar(train_loss));
            for (i, (w, b)) in model.weights.iter().zip(&model.biases).enumerate() {
                s.add("weights", format!("dense{i}.weight"), matrix(w));
                s.add(
                    "biases",
                    format!("dense{i}.bias"),
                    Tensor::vector(b.to_vec()),
                );
            }
            if let Some(Batch {
                x: xb,
                outs,
                grads_w: gw,
                grads_b: gb,
            }) = &last
            {
                for i in 0..layers {
                    s.add(
                        "gradients",
                        format!("gradient/dense{i}.weight"),
                        matrix(&gw[i]),
                    );
                    s.add(
                        "gradients",
                        format!("gradient/dense{i}.bias"),
                        Tensor::vector(gb[i].to_vec()),
                    );
                }
                // Each hidden layer's activation input (recomputed) and output, last batch.
                for i in 0..layers - 1 {
                    let input = if i == 0 { xb } else { &outs[i - 1] };
                    let z = input.dot(&model.weights[i]) + &model.biases[i];
                    let name = p.activation.name();
                    let (collection_in, collection_out) = match p.activation {
                        Activation::Relu => ("relu_input", "relu_output"),
                        _ => ("outputs", "outputs"),
                    };
                    s.add(collection_in, format!("dense{i}/{name}_input"), matrix(&z));
                    s.add(
                        collection_out,
                        format!("dense{i}/{name}_output"),
                        matrix(&outs[i]),
                    );
                }
            }
        });
        if let Some(v) = valid_loss {
            monitor.debug_step(Mode::Eval, |s| s.add("losses", "loss", Tensor::scalar(v)));
        }
        (monitor.report)(epoch as u64 + 1, metrics);
        // scikit-learn's convergence: no improvement of tol for n_iter_no_change epochs.
        let watched = if p.early_stopping {
            valid_loss.unwrap_or(train_loss)
        } else {
            train_loss
        };
        if watched.is_nan() {
            continue;
        }
        if watched < best - p.tol {
            best = watched;
            since_best = 0;
            if p.early_stopping {
                kept = Some((model.weights.clone(), model.biases.clone()));
            }
        } else {
            since_best += 1;
            if since_best >= p.n_iter_no_change {
                break;
            }
        }
    }
    if let Some((w, b)) = kept {
        // Early stopping keeps the best epoch's weights, as scikit-learn does.
        model.weights = w;
        model.biases = b;
    }
    Ok(model)
}

fn matrix(a: &Array2<f64>) -> Tensor {
    Tensor::matrix(a.nrows(), a.ncols(), a.iter().copied().collect())
}

fn step(
    model: &mut MlpModel,
    adam: &mut Adam,
    gw: &[Array2<f64>],
    gb: &[Array1<f64>],
    p: &MlpParams,
) {
    if p.adam {
        let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
        adam.t += 1;
        let lr = p.learning_rate * (1.0 - b2.powi(adam.t)).sqrt() / (1.0 - b1.powi(adam.t));
        for i in 0..model.weights.len() {
            Zip::from(&mut model.weights[i])
                .and(&mut adam.m[i])
                .and(&mut adam.v[i])
                .and(&gw[i])
                .for_each(|w, m, v, g| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *w -= lr * *m / (v.sqrt() + eps);
                });
            Zip::from(&mut model.biases[i])
                .and(&mut adam.mb[i])
                .and(&mut adam.vb[i])
                .and(&gb[i])
                .for_each(|w, m, v, g| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *w -= lr * *m / (v.sqrt() + eps);
                });
        }
    } else {
        // SGD with (non-Nesterov) momentum; the velocities live in Adam's first moments.
        let (lr, mu) = (p.learning_rate, p.momentum);
        for i in 0..model.weights.len() {
            Zip::from(&mut model.weights[i])
                .and(&mut adam.m[i])
                .and(&gw[i])
                .for_each(|w, v, g| {
                    *v = mu * *v - lr * g;
                    *w += *v;
                });
            Zip::from(&mut model.biases[i])
                .and(&mut adam.mb[i])
                .and(&gb[i])
                .for_each(|w, v, g| {
                    *v = mu * *v - lr * g;
                    *w += *v;
                });
        }
    }
}

/// `hidden_layer_sizes` as scikit-learn writes it: "100" or "64,32".
pub fn layer_sizes(text: &str) -> Option<Vec<usize>> {
    let sizes: Option<Vec<usize>> = text
        .trim()
        .trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok().filter(|n| *n > 0))
        .collect();
    sizes.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn table(n: usize) -> (Array2<f64>, Array1<f64>) {
        let mut rng = Rng::new(5);
        let x = Array2::from_shape_fn((n, 3), |_| rng.unit() * 2.0 - 1.0);
        let y = x
            .rows()
            .into_iter()
            .map(|r| f64::from(u8::from(r[0] + 0.5 * r[1] > 0.0)))
            .collect();
        (x, y)
    }

    fn params() -> MlpParams {
        MlpParams {
            hidden: vec![8],
            activation: Activation::Tanh,
            adam: true,
            learning_rate: 0.01,
            batch_size: 32,
            max_iter: 30,
            alpha: 1e-4,
            tol: 1e-4,
            n_iter_no_change: 10,
            early_stopping: false,
            momentum: 0.9,
            init_scale: 1.0,
            bias_shift: 0.0,
        }
    }

    fn run(seed: u64, stop: &AtomicBool) -> Result<MlpModel, MlError> {
        let (x, y) = table(400);
        let data = FitData {
            x: &x,
            y: &y,
            classes: 2,
            problem: ProblemType::Binary,
            validation: None,
            seed,
        };
        fit(
            &data,
            &params(),
            &mut Monitor {
                stop,
                report: &mut |_, _| {},
                debug: None,
            },
        )
    }

    #[test]
    fn learns_a_boundary_and_a_seed_gives_the_same_network() {
        let stop = AtomicBool::new(false);
        let (x, y) = table(400);
        let model = run(1, &stop).unwrap();
        let Output::Classes(p) = model.predict(&x) else {
            panic!("classes")
        };
        let right = (0..y.len())
            .filter(|&i| (p[[i, 1]] > 0.5) == (y[i] == 1.0))
            .count();
        assert!(
            right as f64 / y.len() as f64 > 0.9,
            "{right} of {}",
            y.len()
        );
        assert_eq!(run(1, &stop).unwrap().weights, model.weights);
        assert_ne!(run(2, &stop).unwrap().weights, model.weights);
    }

    #[test]
    fn a_stop_between_epochs_ends_the_fit_and_layer_sizes_are_read_as_scikit_learn_writes_them() {
        let stop = AtomicBool::new(true);
        assert!(matches!(run(1, &stop), Err(MlError::Stopped)));
        assert_eq!(layer_sizes("64,32"), Some(vec![64, 32]));
        assert_eq!(layer_sizes("(100,)"), Some(vec![100]));
        assert_eq!(layer_sizes("64,0"), None);
        assert_eq!(layer_sizes("wide"), None);
    }
}
