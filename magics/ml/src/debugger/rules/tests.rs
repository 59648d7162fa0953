//! Each built-in rule on a trial written to trigger it, and on one that should not.

use std::collections::BTreeMap;

use super::super::config::{rule_from_flag, DebugRuleConfiguration};
use super::super::trial::{Collection, Mode, Tensor, Trial, TrialWriter};
use super::{Evaluation, RuleSpec, Status};

type StepTensors = Vec<(&'static str, &'static str, Tensor)>;

/// Writes the steps (mode, tensors by collection and name) and runs the rule over them.
fn evaluate(rule: &str, steps: Vec<(Mode, StepTensors)>) -> Evaluation {
    let dir = tempfile::tempdir().unwrap();
    let collections = [
        "losses",
        "metrics",
        "weights",
        "gradients",
        "biases",
        "relu_output",
        "relu_input",
        "trees",
        "feature_importance",
        "predictions",
        "labels",
        "outputs",
    ]
    .iter()
    .map(|c| (c.to_string(), Collection::default()))
    .collect::<BTreeMap<_, _>>();
    let mut writer = TrialWriter::create(dir.path(), collections).unwrap();
    let mut mode_steps = BTreeMap::new();
    for (step, (mode, tensors)) in steps.into_iter().enumerate() {
        let mode_step = mode_steps.entry(mode).or_insert(0u64);
        let listed: Vec<(Vec<&str>, String, Tensor)> = tensors
            .into_iter()
            .map(|(c, n, t)| (vec![c], n.to_owned(), t))
            .collect();
        writer
            .write_step(step as u64, mode, *mode_step, &listed)
            .unwrap();
        *mode_step += 1;
    }
    writer.finish().unwrap();
    let config: DebugRuleConfiguration = rule_from_flag(rule, "job").unwrap();
    let mut e = Evaluation::new(RuleSpec::parse(&config, "rule").unwrap());
    let mut trial = Trial::open(dir.path());
    for step in trial.refresh().unwrap() {
        e.invoke(&trial, step);
    }
    e.finish(false);
    e
}

fn fired(e: &Evaluation) -> bool {
    e.status == Status::IssuesFound
}

fn losses(values: &[f64]) -> Vec<(Mode, StepTensors)> {
    values
        .iter()
        .map(|v| {
            (
                Mode::Train,
                vec![("losses", "train-loss", Tensor::scalar(*v))],
            )
        })
        .collect()
}

fn pairs(train: &[f64], validation: &[f64]) -> Vec<(Mode, StepTensors)> {
    train
        .iter()
        .zip(validation)
        .map(|(t, v)| {
            (
                Mode::Train,
                vec![
                    ("losses", "train-loss", Tensor::scalar(*t)),
                    ("losses", "validation-loss", Tensor::scalar(*v)),
                ],
            )
        })
        .collect()
}

fn one(collection: &'static str, name: &'static str, t: Tensor) -> Vec<(Mode, StepTensors)> {
    vec![(Mode::Train, vec![(collection, name, t)])]
}

#[test]
fn loss_not_decreasing() {
    let falling: Vec<f64> = (0..30).map(|i| 1.0 / (1.0 + i as f64)).collect();
    assert!(!fired(&evaluate("LossNotDecreasing", losses(&falling))));
    let flat = vec![0.5; 30];
    let e = evaluate("LossNotDecreasing", losses(&flat));
    assert!(fired(&e) && e.fired_at == Some(10), "{:?}", e.details);
    // Compared every num_steps with the loss num_steps before.
    let e = evaluate("LossNotDecreasing(num_steps=5)", losses(&flat));
    assert_eq!(e.fired_at, Some(5));
    // A mode it does not watch is skipped.
    let e = evaluate("LossNotDecreasing(mode=EVAL)", losses(&flat));
    assert_eq!(e.status, Status::Error);
}

#[test]
fn overfit_and_overtraining() {
    let train: Vec<f64> = (0..20).map(|i| 1.0 / (1.0 + i as f64)).collect();
    let close: Vec<f64> = train.iter().map(|t| t * 1.05).collect();
    assert!(!fired(&evaluate("Overfit", pairs(&train, &close))));
    let apart: Vec<f64> = train
        .iter()
        .enumerate()
        .map(|(i, t)| if i < 5 { t * 1.05 } else { t * 1.5 })
        .collect();
    let e = evaluate("Overfit(patience=3)", pairs(&train, &apart));
    assert_eq!(e.fired_at, Some(7), "{:?}", e.details);
    // Validation loss that stops improving while training loss still falls.
    let stuck: Vec<f64> = (0..20)
        .map(|i| if i < 5 { 1.0 - 0.1 * i as f64 } else { 0.6 })
        .collect();
    let e = evaluate(
        "Overtraining(patience_validation=5,patience_train=50)",
        pairs(&train, &stuck),
    );
    assert_eq!(e.fired_at, Some(9), "{:?}", e.details);
    assert!(!fired(&evaluate(
        "Overtraining(patience_train=50)",
        pairs(&train, &close)
    )));
    // A network's epochs: the same loss in TRAIN and EVAL at each mode step.
    let epochs: Vec<(Mode, StepTensors)> = (0..6)
        .flat_map(|i| {
            let t = 1.0 / (1.0 + i as f64);
            [
                (Mode::Train, vec![("losses", "loss", Tensor::scalar(t))]),
                (
                    Mode::Eval,
                    vec![("losses", "loss", Tensor::scalar(t * 2.0))],
                ),
            ]
        })
        .collect();
    assert_eq!(evaluate("Overfit", epochs).fired_at, Some(1));
}

#[test]
fn gradients_weights_and_values() {
    let tiny = Tensor::vector(vec![1e-9, -1e-9]);
    assert!(fired(&evaluate(
        "VanishingGradient",
        one("gradients", "g", tiny)
    )));
    assert!(!fired(&evaluate(
        "VanishingGradient",
        one("gradients", "g", Tensor::vector(vec![0.1, -0.2]))
    )));
    let nan = Tensor::vector(vec![1.0, f64::NAN]);
    let inf = Tensor::vector(vec![1.0, f64::INFINITY]);
    assert!(fired(&evaluate(
        "ExplodingTensor",
        one("weights", "w", nan)
    )));
    assert!(fired(&evaluate(
        "ExplodingTensor",
        one("weights", "w", inf.clone())
    )));
    assert!(!fired(&evaluate(
        "ExplodingTensor(only_nan=True)",
        one("weights", "w", inf)
    )));
    assert!(!fired(&evaluate(
        "ExplodingTensor",
        one("weights", "w", Tensor::vector(vec![1.0]))
    )));
    let zeros = Tensor::vector(vec![0.0; 4]);
    assert!(fired(&evaluate(
        "AllZero(collection_names=weights)",
        one("weights", "w", zeros)
    )));
    let half = Tensor::vector(vec![0.0, 0.0, 1.0, 2.0]);
    assert!(!fired(&evaluate(
        "AllZero(tensor_regex=w.*)",
        one("weights", "w", half.clone())
    )));
    assert!(fired(&evaluate(
        "AllZero(tensor_regex=w.*,threshold=50)",
        one("weights", "w", half)
    )));
    let var = Tensor::vector(vec![-100.0, 100.0]);
    assert!(fired(&evaluate(
        "TensorVariance(collection_names=weights,max_threshold=10)",
        one("weights", "w", var.clone())
    )));
    assert!(!fired(&evaluate(
        "TensorVariance(collection_names=weights,min_threshold=1)",
        one("weights", "w", var)
    )));
}

#[test]
fn updates_and_unchanged_tensors() {
    let steps = |values: &[f64]| -> Vec<(Mode, StepTensors)> {
        values
            .iter()
            .map(|v| {
                (
                    Mode::Train,
                    vec![("weights", "w", Tensor::vector(vec![*v, 1.0]))],
                )
            })
            .collect()
    };
    // Updates of about 1 % of the weights are healthy; none at all are too small.
    assert!(!fired(&evaluate(
        "WeightUpdateRatio",
        steps(&[1.0, 1.01, 1.02, 1.03])
    )));
    assert!(fired(&evaluate("WeightUpdateRatio", steps(&[1.0, 1.0]))));
    assert!(fired(&evaluate(
        "WeightUpdateRatio(large_threshold=0.5)",
        steps(&[1.0, 10.0])
    )));
    let e = evaluate(
        "UnchangedTensor(collection_names=weights)",
        steps(&[1.0, 1.5, 2.0, 2.0, 2.0]),
    );
    assert_eq!(e.fired_at, Some(4));
    assert!(!fired(&evaluate(
        "UnchangedTensor(tensor_regex=w)",
        steps(&[1.0, 1.5, 2.0, 2.5])
    )));
}

#[test]
fn activations() {
    // 10 rows × 4 units: three units never positive.
    let mut dead = vec![0.0; 40];
    for r in 0..10 {
        dead[r * 4] = 1.0;
    }
    let e = evaluate(
        "DeadRelu",
        one(
            "relu_output",
            "layer0/relu_output",
            Tensor::matrix(10, 4, dead),
        ),
    );
    assert!(fired(&e), "{:?}", e.details);
    let alive = Tensor::matrix(10, 4, (0..40).map(|i| (i % 3) as f64).collect());
    assert!(!fired(&evaluate(
        "DeadRelu",
        one("relu_output", "layer0/relu_output", alive)
    )));
    let saturated = Tensor::matrix(2, 2, vec![20.0, -15.0, 12.0, -30.0]);
    assert!(fired(&evaluate(
        "SaturatedActivation",
        one("outputs", "layer0/tanh_input", saturated)
    )));
    let calm = Tensor::matrix(2, 2, vec![0.5, -1.5, 2.0, -3.0]);
    assert!(!fired(&evaluate(
        "SaturatedActivation",
        one("outputs", "layer0/tanh_input", calm)
    )));
    let layers = |scale: f64| -> Vec<(Mode, StepTensors)> {
        vec![(
            Mode::Train,
            vec![
                (
                    "relu_input",
                    "layer0/relu_input",
                    Tensor::vector(vec![-1.0, 1.0]),
                ),
                (
                    "relu_input",
                    "layer1/relu_input",
                    Tensor::vector(vec![-scale, scale]),
                ),
            ],
        )]
    };
    assert!(fired(&evaluate("PoorWeightInitialization", layers(10.0))));
    assert!(!fired(&evaluate("PoorWeightInitialization", layers(2.0))));
}

#[test]
fn class_imbalance() {
    let labelled = |labels: Vec<f64>, predictions: Vec<f64>| -> Vec<(Mode, StepTensors)> {
        vec![(
            Mode::Eval,
            vec![
                ("labels", "labels", Tensor::vector(labels)),
                ("predictions", "predictions", Tensor::vector(predictions)),
            ],
        )]
    };
    let mut skewed = vec![1.0; 40];
    skewed.extend([0.0, 0.0, 0.0]);
    assert!(fired(&evaluate(
        "ClassImbalance",
        labelled(skewed.clone(), skewed)
    )));
    let balanced: Vec<f64> = (0..40).map(|i| (i % 2) as f64).collect();
    assert!(!fired(&evaluate(
        "ClassImbalance",
        labelled(balanced.clone(), balanced.clone())
    )));
    // Balanced, but the rarer class is mostly mispredicted.
    let mut labels = vec![1.0; 12];
    labels.extend(vec![0.0; 10]);
    let mut wrong = vec![1.0; 12];
    wrong.extend(vec![1.0; 8]);
    wrong.extend(vec![0.0; 2]);
    let e = evaluate("ClassImbalance", labelled(labels, wrong));
    assert!(
        e.details.as_deref().unwrap_or("").contains("mispredicted"),
        "{:?}",
        e.details
    );
}

#[test]
fn trees_and_importance() {
    // One tree of depth 2: node 0 → 1, 2; node 1 → 3, 4.
    let nan = f64::NAN;
    let tree = vec![(
        Mode::Train,
        vec![
            ("trees", "trees/Tree", Tensor::vector(vec![0.0; 5])),
            (
                "trees",
                "trees/Node",
                Tensor::vector(vec![0.0, 1.0, 2.0, 3.0, 4.0]),
            ),
            (
                "trees",
                "trees/Yes",
                Tensor::vector(vec![1.0, 3.0, nan, nan, nan]),
            ),
            (
                "trees",
                "trees/No",
                Tensor::vector(vec![2.0, 4.0, nan, nan, nan]),
            ),
        ],
    )];
    assert!(fired(&evaluate("TreeDepth(depth=3)", tree.clone())));
    assert!(!fired(&evaluate("TreeDepth(depth=2)", tree)));
    let importance = |w: [f64; 4]| -> Vec<(Mode, StepTensors)> {
        vec![(
            Mode::Train,
            vec![
                (
                    "feature_importance",
                    "feature_importance/weight/a",
                    Tensor::scalar(w[0]),
                ),
                (
                    "feature_importance",
                    "feature_importance/weight/b",
                    Tensor::scalar(w[1]),
                ),
                (
                    "feature_importance",
                    "feature_importance/weight/c",
                    Tensor::scalar(w[2]),
                ),
                (
                    "feature_importance",
                    "feature_importance/weight/d",
                    Tensor::scalar(w[3]),
                ),
                (
                    "feature_importance",
                    "feature_importance/gain/a",
                    Tensor::scalar(1000.0),
                ),
            ],
        )]
    };
    let e = evaluate(
        "FeatureImportanceOverweight(nfeatures=1,threshold=0.5)",
        importance([9.0, 1.0, 1.0, 1.0]),
    );
    assert!(
        e.details.as_deref().unwrap_or("").contains(": a"),
        "{:?}",
        e.details
    );
    assert!(!fired(&evaluate(
        "FeatureImportanceOverweight(nfeatures=1,threshold=0.5)",
        importance([3.0, 3.0, 3.0, 3.0])
    )));
}

#[test]
fn stalled_training_is_timed() {
    let config = rule_from_flag(
        "StalledTrainingRule(threshold=60,stop_training_on_fire=True)",
        "j",
    )
    .unwrap();
    let spec = RuleSpec::parse(&config, "rule").unwrap();
    assert!(spec.stop_training);
    let mut e = Evaluation::new(spec);
    assert!(e.idle(59.0, Some(3)).is_none());
    assert!(e.idle(61.0, Some(3)).is_some());
    assert_eq!((e.status, e.fired_at), (Status::IssuesFound, Some(3)));
}
