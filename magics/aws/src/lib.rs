//! rustmaker-aws: AWS from the notebook.
//!
//! - [`client`]: settings over the standard AWS chain, the runtime that drives the SDK, and
//!   errors that say what to set.
//! - `%aws config|whoami`, [`s3`] (`%s3`), [`emr`] (`%emr`), [`glue`] (`%glue`, `%%glue`,
//!   `%%glue_script` and the Glue session magics).

pub mod client;
pub mod emr;
pub mod emr_master;
pub mod glue;
pub mod s3;

use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};
use rustmaker_magics::{
    Magic, MagicCall, MagicContext, MagicError, MagicForm, MagicRegistry, MimeBundle,
};

use client::{aws_error, Aws, Settings};
use rustmaker_magics::parse_args;
use rustmaker_magics::services::{ClusterResolver, SparkConnector};

/// What other engines get from the AWS magics.
pub struct Registered {
    /// Glue's `%%configure`, which the kernel routes to (sparkmagic has a `%%configure` too);
    /// [`glue::sessions::is_configure_key`] tells the two apart.
    pub glue_configure: Arc<dyn Magic>,
    /// S3 downloads on the kernel's AWS settings.
    pub s3: S3Fetcher,
}

/// S3 as the object store of the other engines (`%monitor … --data s3://…`, `%train --output s3://…`).
#[derive(Clone)]
pub struct S3Fetcher(Arc<Mutex<Aws>>);

impl rustmaker_magics::data::ObjectStore for S3Fetcher {
    /// See [`s3::fetch`].
    fn fetch(
        &self,
        url: &str,
        dir: &std::path::Path,
        ctx: Option<&dyn MagicContext>,
    ) -> Result<std::path::PathBuf, MagicError> {
        let mut aws = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s3::fetch(&mut aws, url, dir, ctx)
    }

    /// Uploads a local file to an `s3://` URL (multipart with progress for large files).
    fn put(
        &self,
        path: &std::path::Path,
        url: &str,
        ctx: &mut dyn MagicContext,
    ) -> Result<(), MagicError> {
        let mut aws = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let client = aws_sdk_s3::Client::new(&aws.sdk()?);
        s3::upload(&aws, &client, path, &s3::S3Url::parse(url)?, ctx)
    }
}

impl S3Fetcher {
    /// A fetcher of its own, on the standard AWS chain (for the command line).
    pub fn standalone() -> S3Fetcher {
        S3Fetcher(Arc::new(Mutex::new(Aws::new())))
    }
}

/// The AWS settings every AWS magic shares (`%aws config`), made before any engine is
/// registered so that others can be given what they need from it.
#[derive(Clone)]
pub struct AwsServices(Arc<Mutex<Aws>>);

impl AwsServices {
    pub fn new() -> AwsServices {
        AwsServices(Arc::new(Mutex::new(Aws::new())))
    }

    /// EMR master lookup for the Spark magics, on these settings.
    pub fn clusters(&self) -> Arc<dyn ClusterResolver> {
        Arc::new(emr_master::ClusterLookup(self.0.clone()))
    }
}

impl Default for AwsServices {
    fn default() -> Self {
        AwsServices::new()
    }
}

/// Registers `%aws`, `%s3`, `%emr` and the Glue magics on `services`' settings; `connect`
/// points the Spark magics at an EMR cluster.
pub fn register(
    registry: &mut MagicRegistry,
    services: &AwsServices,
    connect: Arc<dyn SparkConnector>,
) -> Result<Registered, MagicError> {
    let aws = services.0.clone();
    let session = Arc::new(glue::sessions::Session::default());
    registry.register(Arc::new(AwsMagic(aws.clone())))?;
    registry.register(Arc::new(s3::S3Magic(aws.clone())))?;
    registry.register(Arc::new(glue::GlueMagic {
        aws: aws.clone(),
        session: session.clone(),
    }))?;
    registry.register(Arc::new(glue::jobs::GlueScriptMagic {
        aws: aws.clone(),
        session: session.clone(),
    }))?;
    for (key, summary) in glue::sessions::OPTIONS {
        registry.register(Arc::new(glue::sessions::OptionMagic {
            key,
            summary,
            session: session.clone(),
        }))?;
    }
    for control in glue::sessions::Control::ALL {
        registry.register(Arc::new(glue::sessions::ControlMagic {
            control,
            session: session.clone(),
            aws: aws.clone(),
        }))?;
    }
    registry.register(Arc::new(emr::EmrMagic {
        aws: aws.clone(),
        connect,
    }))?;
    Ok(Registered {
        glue_configure: Arc::new(glue::sessions::ConfigureMagic { session }),
        s3: S3Fetcher(aws),
    })
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct AwsArgs {
    #[command(subcommand)]
    command: AwsCommand,
}

#[derive(Subcommand, Debug)]
enum AwsCommand {
    /// Override the region, profile or endpoint URL (no option: show the settings).
    Config {
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long = "endpoint-url")]
        endpoint_url: Option<String>,
        /// Forget the overrides: back to the standard chain.
        #[arg(long)]
        reset: bool,
    },
    /// Who the kernel acts as (STS GetCallerIdentity).
    Whoami,
}

struct AwsMagic(Arc<Mutex<Aws>>);

impl Magic for AwsMagic {
    fn name(&self) -> &str {
        "aws"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "AWS settings (`config --region --profile --endpoint-url`) and identity (`whoami`)."
    }
    fn help(&self) -> String {
        "%aws config [--region R] [--profile P] [--endpoint-url URL] [--reset]
%aws whoami

Credentials, region and endpoint come from the standard AWS chain (AWS_ACCESS_KEY_ID/…,
AWS_PROFILE, ~/.aws/config and credentials, instance metadata; AWS_REGION, AWS_ENDPOINT_URL);
`%aws config` overrides them for this kernel. `%aws config` alone shows what is in effect.

Example:
  %aws config --endpoint-url http://127.0.0.1:5000 --region us-east-1
  %aws whoami"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: AwsArgs = parse_args("aws", call.argv()?)?;
        let mut aws = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match args.command {
            AwsCommand::Config {
                region,
                profile,
                endpoint_url,
                reset,
            } => {
                if let Some(url) = &endpoint_url {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(MagicError::usage(
                            "aws",
                            format!("--endpoint-url {url}: give an http(s):// URL"),
                        ));
                    }
                }
                let mut settings = if reset {
                    Settings::default()
                } else {
                    aws.settings.clone()
                };
                settings.region = region.or(settings.region);
                settings.profile = profile.or(settings.profile);
                settings.endpoint_url = endpoint_url.or(settings.endpoint_url);
                aws.configure(settings);
                let env = |k: &str| std::env::var(k).ok();
                let s = &aws.settings;
                let row = |name: &str, set: &Option<String>, var: &str| match (set, env(var)) {
                    (Some(v), _) => format!("{name}: {v} (%aws config)\n"),
                    (None, Some(v)) => format!("{name}: {v} ({var})\n"),
                    (None, None) => format!("{name}: from the AWS config files or defaults\n"),
                };
                ctx.stdout(&format!(
                    "{}{}{}",
                    row("region", &s.region, "AWS_REGION"),
                    row("profile", &s.profile, "AWS_PROFILE"),
                    row("endpoint", &s.endpoint_url, "AWS_ENDPOINT_URL")
                ));
                Ok(())
            }
            AwsCommand::Whoami => {
                let sts = aws_sdk_sts::Client::new(&aws.sdk()?);
                let out = aws
                    .run(ctx, sts.get_caller_identity().send())?
                    .map_err(|e| aws_error(&aws, "STS GetCallerIdentity", e))?;
                let (account, arn, user) = (
                    out.account().unwrap_or_default(),
                    out.arn().unwrap_or_default(),
                    out.user_id().unwrap_or_default(),
                );
                ctx.display(
                    MimeBundle::text(format!("Account: {account}\nArn: {arn}\nUserId: {user}"))
                        .with(
                            "application/json",
                            serde_json::json!({"Account": account, "Arn": arn, "UserId": user}),
                        ),
                    None,
                );
                Ok(())
            }
        }
    }
}

/// Shows a listing as a table; with `-o NAME` it is also kept in the frame store.
pub(crate) fn show_frame(
    df: polars::prelude::DataFrame,
    output: Option<&str>,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    if let Some(name) = output {
        rustmaker_magics::frames::check_name(name)?;
    }
    ctx.display(rustmaker_magics::table::frame_bundle(&df, 1000), None);
    if let Some(name) = output {
        ctx.frames().insert(name, df)?;
    }
    Ok(())
}
