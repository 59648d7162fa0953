//! The deployment magics: parse, call the service's API ([`service`] finds or starts it),
//! render ([`render`]). The hosting itself runs in the service, so an endpoint outlives the
//! kernel and boto3 reaches the same one.

pub mod endpoints;
pub mod render;
pub mod schedules;
pub mod service;
pub mod transform;

use std::sync::Arc;

use rustmaker_magics::data::SharedObjectStore;
use rustmaker_magics::{MagicError, MagicRegistry};

/// Registers `%deploy`, `%endpoint`, `%%invoke` and `%transform`; returns the magic that
/// answers `%monitor`'s schedule commands ([`schedules::COMMANDS`]) for the composition root.
pub fn register(
    registry: &mut MagicRegistry,
    store: &SharedObjectStore,
) -> Result<Arc<schedules::ScheduleMagic>, MagicError> {
    registry.register(Arc::new(endpoints::DeployMagic {
        store: store.clone(),
    }))?;
    registry.register(Arc::new(endpoints::EndpointMagic))?;
    registry.register(Arc::new(endpoints::InvokeMagic))?;
    registry.register(Arc::new(transform::TransformMagic {
        store: store.clone(),
    }))?;
    Ok(Arc::new(schedules::ScheduleMagic))
}
