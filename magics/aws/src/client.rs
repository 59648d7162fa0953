//! The AWS side shared by every magic: settings (`%aws config` over the standard chain), one
//! async runtime to drive the SDK from the kernel's cell thread, and errors that say what to set.

use std::fmt::Display;
use std::future::Future;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_types::error::operation::BuildError;
use rustmaker_magics::{MagicContext, MagicError};

/// What `%aws config` set; `None` leaves it to the standard AWS chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Settings, the SDK configuration they give, and the runtime that runs SDK calls.
pub struct Aws {
    pub settings: Settings,
    runtime: Runtime,
    sdk: Option<SdkConfig>,
}

/// A runtime made on first use (on the cell thread) and shut down without blocking, so that
/// the kernel may drop the magics from inside its own async runtime.
#[derive(Default)]
struct Runtime(std::sync::OnceLock<tokio::runtime::Runtime>);

impl Runtime {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0
            .get_or_init(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime starts")
            })
            .block_on(fut)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Aws {
    pub fn new() -> Aws {
        Aws {
            settings: Settings::default(),
            runtime: Runtime::default(),
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
        let sdk = self.runtime.block_on(loader.load());
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
        self.runtime.block_on(async {
            let interrupted = async {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    if ctx.is_interrupted() {
                        return;
                    }
                }
            };
            tokio::select! {
                out = fut => Ok(out),
                _ = interrupted => Err(MagicError::Interrupted),
            }
        })
    }

    /// Runs a future that must finish even after an interrupt (clean-up such as aborting an upload).
    pub fn runtime_block<F: Future>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
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
    MagicError::Failed(text)
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

pub fn failed(e: impl Display) -> MagicError {
    MagicError::Failed(e.to_string())
}
