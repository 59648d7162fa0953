//! The AWS side shared by every magic: settings (`%aws config` over the standard chain), SDK
//! calls driven from the kernel's cell thread on the magics' runtime, and errors that say what
//! to set.

use std::future::Future;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_types::error::operation::BuildError;
use rustmaker_magics::long_work;
use rustmaker_magics::{MagicContext, MagicError};

/// What `%aws config` set; `None` leaves it to the standard AWS chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Settings and the SDK configuration they give. SDK calls run on the magics' one runtime
/// ([`long_work::runtime`]).
pub struct Aws {
    pub settings: Settings,
    sdk: Option<SdkConfig>,
}

impl Aws {
    pub fn new() -> Aws {
        Aws {
            settings: Settings::default(),
            sdk: None,
        }
    }

    pub fn configure(&mut self, settings: Settings) {
        self.settings = settings;
        self.sdk = None;
    }

    /// The SDK configuration: region, credentials and endpoint from `%aws config`, else from
    /// the environment, shared config files and instance metadata.
    pub fn sdk(&mut self) -> Result<SdkConfig, MagicError> {
        let sdk = self.loaded();
        if sdk.region().is_none() {
            return Err(MagicError::Failed(
                "no AWS region is set: set AWS_REGION (or a profile's region), or run `%aws config --region REGION`"
                    .into(),
            ));
        }
        Ok(sdk)
    }

    fn loaded(&mut self) -> SdkConfig {
        if let Some(sdk) = &self.sdk {
            return sdk.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &self.settings.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(p) = &self.settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &self.settings.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let sdk = long_work::runtime().block_on(loader.load());
        self.sdk = Some(sdk.clone());
        sdk
    }

    /// The SDK configuration with its region replaced (Glue's `%region`).
    pub fn sdk_for_region(&mut self, region: Option<&str>) -> Result<SdkConfig, MagicError> {
        match region {
            Some(r) => Ok(self
                .loaded()
                .to_builder()
                .region(aws_config::Region::new(r.to_owned()))
                .build()),
            None => self.sdk(),
        }
    }

    /// Runs an SDK future to completion; while it runs, an interrupt abandons it.
    pub fn run<T>(
        &self,
        ctx: &dyn MagicContext,
        fut: impl Future<Output = T>,
    ) -> Result<T, MagicError> {
        long_work::block_on(ctx, fut)
    }

    /// Runs a future that must finish even after an interrupt (clean-up such as aborting an upload).
    pub fn runtime_block<F: Future>(&self, fut: F) -> F::Output {
        long_work::runtime().block_on(fut)
    }

    pub fn endpoint_description(&self) -> String {
        self.settings
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .unwrap_or_else(|| "the AWS endpoint".into())
    }
}

impl Default for Aws {
    fn default() -> Self {
        Self::new()
    }
}

/// An SDK error as the user reads it: the service's code and message and what to do.
pub fn aws_error<E, R>(
    aws: &Aws,
    action: &str,
    err: aws_sdk_s3::error::SdkError<E, R>,
) -> MagicError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    let text = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Error");
            let message = e.message().unwrap_or("");
            let hint = match code {
                "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                    " (the credentials in use lack this permission: check `%aws whoami` and the IAM policy)"
                }
                "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" => {
                    " (the credentials are not valid: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile)"
                }
                "ThrottlingException" | "Throttling" | "SlowDown" => {
                    " (throttled after the SDK's retries: wait and try again)"
                }
                _ => "",
            };
            format!("{action} failed: {code}: {message}{hint}")
        }
        SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => format!(
            "{action} failed: cannot reach {} ({}); check AWS_ENDPOINT_URL, `%aws config --endpoint-url URL` or the network",
            aws.endpoint_description(),
            DisplayErrorContext(&err)
        ),
        SdkError::ConstructionFailure(_) | SdkError::DispatchFailure(_)
            if format!("{}", DisplayErrorContext(&err)).contains("credentials") =>
        {
            format!(
                "{action} failed: no AWS credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 AWS_PROFILE, or run `%aws config --profile NAME`"
            )
        }
        _ => format!("{action} failed: {}", DisplayErrorContext(&err)),
    };
    MagicError::Service(text)
}

/// The service's error code and message, for errors shown with a context of their own.
pub fn service_message<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("Error"),
            e.message().unwrap_or_default()
        ),
        None => DisplayErrorContext(err).to_string(),
    }
}

/// True when the service answered with this error code (`EntityNotFoundException`, …).
pub fn has_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>, code: &str) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == code)
}

/// A request that could not be built (a missing required field).
pub fn build_error(action: &str, e: BuildError) -> MagicError {
    MagicError::Failed(format!("{action}: {e}"))
}

pub use rustmaker_magics::failed;
