//! rustmaker-sagemaker: what every SageMaker-shaped part of rustmaker must agree on, so
//! that a name the training engine accepts is one the instance service and the API accept
//! too (and the hosting engine's endpoints, models and variants): resource names, checked
//! against SageMaker's own pattern and length limits; Signature Version 4 ([`sigv4`]), which
//! the service checks and the clients make; and, with the `client` feature, a JSON 1.1
//! client of the service ([`client`]).

#[cfg(feature = "client")]
pub mod client;
pub mod sigv4;

/// SageMaker's limits on a resource's name, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    TrainingJob,
    TuningJob,
    NotebookInstance,
    LifecycleConfig,
    Model,
    EndpointConfig,
    Endpoint,
    ProductionVariant,
    TransformJob,
    MonitoringSchedule,
    AutoMlJob,
}

impl Resource {
    /// The longest name SageMaker accepts for this kind.
    pub fn max_len(self) -> usize {
        match self {
            Resource::TuningJob | Resource::AutoMlJob => 32,
            _ => 63,
        }
    }

    /// How the kind is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Resource::TrainingJob => "training job",
            Resource::TuningJob => "tuning job",
            Resource::NotebookInstance => "notebook instance",
            Resource::LifecycleConfig => "lifecycle configuration",
            Resource::Model => "model",
            Resource::EndpointConfig => "endpoint configuration",
            Resource::Endpoint => "endpoint",
            Resource::ProductionVariant => "variant",
            Resource::TransformJob => "transform job",
            Resource::MonitoringSchedule => "monitoring schedule",
            Resource::AutoMlJob => "Autopilot job",
        }
    }
}

/// A name SageMaker would refuse, with what it allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid {} name: {}", .resource.describe(), rule(*.resource))]
pub struct InvalidName {
    pub name: String,
    pub resource: Resource,
}

impl InvalidName {
    /// What SageMaker allows, as advice: "use 1 to 63 letters, …".
    pub fn rule(&self) -> String {
        rule(self.resource)
    }
}

fn rule(resource: Resource) -> String {
    format!(
        "use 1 to {} letters, digits and hyphens, not starting with a hyphen",
        resource.max_len()
    )
}

/// Checks `name` against SageMaker's pattern `^[a-zA-Z0-9](-*[a-zA-Z0-9])*` and the kind's
/// length limit.
pub fn check_name(name: &str, resource: Resource) -> Result<(), InvalidName> {
    let ok = !name.is_empty()
        && name.len() <= resource.max_len()
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName {
            name: name.to_owned(),
            resource,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_sagemakers_pattern_and_limits() {
        assert!(check_name("churn-xgb-1", Resource::TrainingJob).is_ok());
        assert!(check_name(&"a".repeat(63), Resource::NotebookInstance).is_ok());
        assert!(check_name(&"a".repeat(33), Resource::TuningJob).is_err());
        for bad in ["", "-lead", "under_score", "dot.ted", "spa ce"] {
            let err = check_name(bad, Resource::TrainingJob).unwrap_err();
            assert!(
                err.to_string()
                    .contains("is not a valid training job name: use 1 to 63"),
                "{err}"
            );
        }
    }
}
