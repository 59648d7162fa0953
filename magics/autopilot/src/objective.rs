//! Autopilot's problem types and objective metrics, with SageMaker's names and defaults:
//! regression `MSE`, binary classification `F1`, multiclass classification `Accuracy`.

use rustmaker_ml::prep::ProblemType;
use serde::{Deserialize, Serialize};

use crate::AutopilotError;

/// `ProblemType` as CreateAutoMLJob names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Problem {
    BinaryClassification,
    MulticlassClassification,
    Regression,
}

impl Problem {
    pub const ALL: [Problem; 3] = [
        Problem::BinaryClassification,
        Problem::MulticlassClassification,
        Problem::Regression,
    ];

    /// SageMaker's name, or the training engine's short one (`binary`, `multiclass`).
    pub fn parse(text: &str) -> Result<Problem, AutopilotError> {
        let given = text.trim().to_ascii_lowercase();
        Problem::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(&given) || p.training().as_str() == given)
            .ok_or_else(|| {
                AutopilotError::request(
                    "ProblemType",
                    format!("`{text}` is not one: use BinaryClassification, MulticlassClassification or Regression"),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Problem::BinaryClassification => "BinaryClassification",
            Problem::MulticlassClassification => "MulticlassClassification",
            Problem::Regression => "Regression",
        }
    }

    /// The training engine's problem type.
    pub fn training(self) -> ProblemType {
        match self {
            Problem::BinaryClassification => ProblemType::Binary,
            Problem::MulticlassClassification => ProblemType::Multiclass,
            Problem::Regression => ProblemType::Regression,
        }
    }

    pub fn of_training(problem: ProblemType) -> Option<Problem> {
        match problem {
            ProblemType::Binary => Some(Problem::BinaryClassification),
            ProblemType::Multiclass => Some(Problem::MulticlassClassification),
            ProblemType::Regression => Some(Problem::Regression),
            ProblemType::Clustering => None,
        }
    }

    /// The objectives SageMaker allows for the problem, its default first.
    pub fn objectives(self) -> &'static [Objective] {
        use Objective::*;
        match self {
            Problem::Regression => &[Mse, Mae, Rmse, R2],
            Problem::BinaryClassification => &[
                F1,
                Accuracy,
                Auc,
                BalancedAccuracy,
                Precision,
                Recall,
                LogLoss,
            ],
            Problem::MulticlassClassification => &[
                Accuracy,
                BalancedAccuracy,
                F1macro,
                PrecisionMacro,
                RecallMacro,
                LogLoss,
            ],
        }
    }

    pub fn default_objective(self) -> Objective {
        self.objectives()[0]
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `AutoMLJobObjective.MetricName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objective {
    #[serde(rename = "MSE")]
    Mse,
    #[serde(rename = "MAE")]
    Mae,
    #[serde(rename = "RMSE")]
    Rmse,
    R2,
    F1,
    Accuracy,
    #[serde(rename = "AUC")]
    Auc,
    BalancedAccuracy,
    Precision,
    Recall,
    LogLoss,
    F1macro,
    PrecisionMacro,
    RecallMacro,
}

impl Objective {
    const ALL: [Objective; 14] = [
        Objective::Mse,
        Objective::Mae,
        Objective::Rmse,
        Objective::R2,
        Objective::F1,
        Objective::Accuracy,
        Objective::Auc,
        Objective::BalancedAccuracy,
        Objective::Precision,
        Objective::Recall,
        Objective::LogLoss,
        Objective::F1macro,
        Objective::PrecisionMacro,
        Objective::RecallMacro,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Mse => "MSE",
            Objective::Mae => "MAE",
            Objective::Rmse => "RMSE",
            Objective::R2 => "R2",
            Objective::F1 => "F1",
            Objective::Accuracy => "Accuracy",
            Objective::Auc => "AUC",
            Objective::BalancedAccuracy => "BalancedAccuracy",
            Objective::Precision => "Precision",
            Objective::Recall => "Recall",
            Objective::LogLoss => "LogLoss",
            Objective::F1macro => "F1macro",
            Objective::PrecisionMacro => "PrecisionMacro",
            Objective::RecallMacro => "RecallMacro",
        }
    }

    /// The metric by name (case aside), checked against the problem it is to rank.
    pub fn parse(text: &str, problem: Problem) -> Result<Objective, AutopilotError> {
        let allowed = || {
            problem
                .objectives()
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect()
        };
        let metric = Objective::ALL
            .into_iter()
            .find(|o| o.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| AutopilotError::Objective {
                metric: format!("`{text}` is not an Autopilot metric, and"),
                problem: problem.to_string(),
                allowed: allowed(),
            })?;
        if !problem.objectives().contains(&metric) {
            return Err(AutopilotError::Objective {
                metric: metric.as_str().to_owned(),
                problem: problem.to_string(),
                allowed: allowed(),
            });
        }
        Ok(metric)
    }

    /// Whether a larger value is better (the leaderboard's order).
    pub fn maximize(self) -> bool {
        !matches!(
            self,
            Objective::Mse | Objective::Mae | Objective::Rmse | Objective::LogLoss
        )
    }

    /// The validation metric's name as candidates report it (`validation:f1`).
    pub fn metric_key(self) -> String {
        let base = match self {
            Objective::F1macro => "f1",
            Objective::BalancedAccuracy => "balanced_accuracy",
            Objective::PrecisionMacro => "precision",
            Objective::RecallMacro => "recall",
            other => return format!("validation:{}", other.as_str().to_ascii_lowercase()),
        };
        format!("validation:{base}")
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_allowed_metrics_are_sagemakers() {
        assert_eq!(Problem::Regression.default_objective(), Objective::Mse);
        assert_eq!(
            Problem::BinaryClassification.default_objective(),
            Objective::F1
        );
        assert_eq!(
            Problem::MulticlassClassification.default_objective(),
            Objective::Accuracy
        );
        assert_eq!(
            Objective::parse("auc", Problem::BinaryClassification).unwrap(),
            Objective::Auc
        );
        let err = Objective::parse("AUC", Problem::Regression)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AUC does not fit a Regression problem: use one of MSE, MAE, RMSE, R2"),
            "{err}"
        );
        let err = Objective::parse("Accuracy", Problem::Regression)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not fit a Regression"), "{err}");
        let err = Objective::parse("Speed", Problem::BinaryClassification)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`Speed` is not an Autopilot metric") && err.contains("F1, Accuracy"),
            "{err}"
        );
        assert!(!Objective::Mse.maximize() && Objective::F1macro.maximize());
        assert_eq!(
            Objective::BalancedAccuracy.metric_key(),
            "validation:balanced_accuracy"
        );
        assert_eq!(Objective::LogLoss.metric_key(), "validation:logloss");
    }

    #[test]
    fn problem_types_parse_by_either_name() {
        assert_eq!(
            Problem::parse("binary").unwrap(),
            Problem::BinaryClassification
        );
        assert_eq!(
            Problem::parse("MulticlassClassification").unwrap(),
            Problem::MulticlassClassification
        );
        let err = Problem::parse("Ranking").unwrap_err().to_string();
        assert!(
            err.starts_with("ProblemType: `Ranking` is not one"),
            "{err}"
        );
    }
}
