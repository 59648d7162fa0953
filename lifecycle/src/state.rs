//! Notebook-instance states and the transitions SageMaker allows between them.

use serde::{Deserialize, Serialize};

use crate::LifecycleError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceStatus {
    Pending,
    InService,
    Stopping,
    Stopped,
    Failed,
    Updating,
    Deleting,
}

/// What an operator asks of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Start,
    Stop,
    Update,
    Delete,
    PresignedUrl,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Pending => "Pending",
            InstanceStatus::InService => "InService",
            InstanceStatus::Stopping => "Stopping",
            InstanceStatus::Stopped => "Stopped",
            InstanceStatus::Failed => "Failed",
            InstanceStatus::Updating => "Updating",
            InstanceStatus::Deleting => "Deleting",
        }
    }

    pub fn parse(text: &str) -> Option<InstanceStatus> {
        [
            InstanceStatus::Pending,
            InstanceStatus::InService,
            InstanceStatus::Stopping,
            InstanceStatus::Stopped,
            InstanceStatus::Failed,
            InstanceStatus::Updating,
            InstanceStatus::Deleting,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether `op` is allowed now, as SageMaker allows it: start a Stopped or Failed
    /// instance, stop an InService (or Pending/Failed) one, update or delete a Stopped or
    /// Failed one, and open only an InService one.
    pub fn allows(self, op: Operation) -> bool {
        use InstanceStatus::*;
        match op {
            Operation::Start => matches!(self, Stopped | Failed),
            Operation::Stop => matches!(self, InService | Pending | Failed),
            Operation::Update | Operation::Delete => matches!(self, Stopped | Failed),
            Operation::PresignedUrl => self == InService,
        }
    }

    pub fn check(self, op: Operation, instance: &str) -> Result<(), LifecycleError> {
        if self.allows(op) {
            return Ok(());
        }
        let want = match op {
            Operation::Start => "Stopped or Failed",
            Operation::Stop => "InService, Pending or Failed",
            Operation::Update | Operation::Delete => "Stopped or Failed (stop it first)",
            Operation::PresignedUrl => "InService",
        };
        Err(LifecycleError::State(format!(
            "Status ({}) not in ([{want}]). Unable to {} the notebook instance {instance}.",
            self.as_str(),
            match op {
                Operation::Start => "start",
                Operation::Stop => "stop",
                Operation::Update => "update",
                Operation::Delete => "delete",
                Operation::PresignedUrl => "open",
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::InstanceStatus::*;
    use super::*;

    #[test]
    fn sagemaker_transitions() {
        assert!(Stopped.allows(Operation::Start) && Failed.allows(Operation::Start));
        assert!(!InService.allows(Operation::Start) && !Pending.allows(Operation::Start));
        assert!(InService.allows(Operation::Stop) && !Stopped.allows(Operation::Stop));
        assert!(Stopped.allows(Operation::Delete) && !InService.allows(Operation::Delete));
        assert!(!InService.allows(Operation::Update) && Stopped.allows(Operation::Update));
        assert!(
            InService.allows(Operation::PresignedUrl) && !Stopped.allows(Operation::PresignedUrl)
        );
        let e = InService
            .check(Operation::Delete, "nb1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Status (InService)") && e.contains("nb1"), "{e}");
        for s in [
            Pending, InService, Stopping, Stopped, Failed, Updating, Deleting,
        ] {
            assert_eq!(InstanceStatus::parse(s.as_str()), Some(s));
        }
    }
}
