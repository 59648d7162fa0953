//! Glue jobs: definitions, runs, and their scripts.
//!
//! A local script is uploaded to the account's Glue assets bucket
//! (`s3://aws-glue-assets-ACCOUNT-REGION/scripts/NAME.py`, the bucket Glue Studio uses) before
//! the job is created; if the job cannot be created, the upload is removed again, so a failure
//! leaves nothing half-made.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_glue::types::{
    JobCommand as GlueJobCommand, JobRun, JobRunState, JobUpdate, WorkerType,
};
use aws_sdk_s3::primitives::ByteStream;
use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};

use super::{check_glue_version, check_worker_type, check_workers, job_arguments};
use crate::client::{aws_error, failed, Aws};
use crate::s3::S3Url;
use crate::show_frame;
use rustmaker_magics::long_work::{self, Backoff, LiveDisplay};

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    Create {
        name: String,
        #[arg(long)]
        script: String,
        #[arg(long)]
        role: String,
        #[arg(long = "glue-version", default_value = "5.0")]
        glue_version: String,
        #[arg(long = "worker-type", default_value = "G.1X")]
        worker_type: String,
        #[arg(long = "number-of-workers", default_value_t = 2)]
        number_of_workers: i32,
        /// Minutes before Glue stops a run.
        #[arg(long)]
        timeout: Option<i32>,
        #[arg(long = "max-retries")]
        max_retries: Option<i32>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "arg")]
        args: Vec<String>,
    },
    Start {
        name: String,
        #[arg(long = "arg")]
        args: Vec<String>,
        #[arg(long)]
        wait: bool,
    },
    Runs {
        name: String,
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    Status {
        name: String,
        run_id: String,
    },
    Wait {
        name: String,
        run_id: String,
        /// On interrupt, stop the run as well as the waiting.
        #[arg(long)]
        stop: bool,
    },
    Stop {
        name: String,
        run_id: String,
    },
    Delete {
        name: String,
    },
}

fn state_str(run: &JobRun) -> String {
    run.job_run_state()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

fn time_str(t: Option<&aws_smithy_types::DateTime>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

pub fn list(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    output: Option<&str>,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let mut cols: [Vec<String>; 6] = Default::default();
    let mut workers: Vec<Option<i32>> = Vec::new();
    let mut token = None;
    loop {
        let out = aws
            .run(ctx, glue.get_jobs().set_next_token(token).send())?
            .map_err(|e| aws_error(aws, "listing Glue jobs", e))?;
        for job in out.jobs() {
            cols[0].push(job.name().unwrap_or_default().into());
            cols[1].push(job.role().unwrap_or_default().into());
            cols[2].push(job.glue_version().unwrap_or_default().into());
            cols[3].push(
                job.worker_type()
                    .map(|w| w.as_str().to_owned())
                    .unwrap_or_default(),
            );
            workers.push(job.number_of_workers());
            cols[4].push(
                job.command()
                    .and_then(|c| c.script_location())
                    .unwrap_or_default()
                    .into(),
            );
            cols[5].push(time_str(job.last_modified_on()));
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let [name, role, version, worker_type, script, modified] = cols;
    let df = df!("name" => name, "role" => role, "glue_version" => version,
        "worker_type" => worker_type, "workers" => workers, "script" => script,
        "last_modified" => modified)
    .map_err(failed)?;
    show_frame(df, output, ctx)
}

/// The job, or `None` when there is none of that name.
fn find_job(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    name: &str,
    ctx: &dyn MagicContext,
) -> Result<Option<aws_sdk_glue::types::Job>, MagicError> {
    match aws.run(ctx, glue.get_job().job_name(name).send())? {
        Ok(out) => Ok(out.job),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(aws, &format!("reading Glue job {name}"), e)),
    }
}

/// The job, or an error that says how to make one.
fn get_job(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    name: &str,
    ctx: &dyn MagicContext,
) -> Result<aws_sdk_glue::types::Job, MagicError> {
    find_job(aws, glue, name, ctx)?.ok_or_else(|| {
        failed(format!(
            "there is no Glue job `{name}`: `%glue jobs` lists them, `%glue job create {name} --script … --role …` makes one"
        ))
    })
}

/// `s3://aws-glue-assets-ACCOUNT-REGION/scripts/NAME.py`, with the bucket made if missing.
fn assets_location(
    aws: &Aws,
    s3: &aws_sdk_s3::Client,
    sts: &aws_sdk_sts::Client,
    region: &str,
    job: &str,
    ctx: &dyn MagicContext,
) -> Result<S3Url, MagicError> {
    let who = aws
        .run(ctx, sts.get_caller_identity().send())?
        .map_err(|e| aws_error(aws, "STS GetCallerIdentity (for the Glue assets bucket)", e))?;
    let bucket = format!(
        "aws-glue-assets-{}-{region}",
        who.account().unwrap_or_default()
    );
    if aws
        .run(ctx, s3.head_bucket().bucket(&bucket).send())?
        .is_err()
    {
        let mut create = s3.create_bucket().bucket(&bucket);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        aws.run(ctx, create.send())?
            .map_err(|e| aws_error(aws, &format!("creating the Glue assets bucket {bucket}"), e))?;
    }
    Ok(S3Url {
        bucket,
        key: format!("scripts/{job}.py"),
    })
}

fn put_script(
    aws: &Aws,
    s3: &aws_sdk_s3::Client,
    to: &S3Url,
    script: Vec<u8>,
    ctx: &dyn MagicContext,
) -> Result<(), MagicError> {
    let put = s3
        .put_object()
        .bucket(&to.bucket)
        .key(&to.key)
        .body(ByteStream::from(script))
        .send();
    aws.run(ctx, put)?
        .map_err(|e| aws_error(aws, &format!("uploading the script to {to}"), e))?;
    Ok(())
}

pub fn run(
    aws: &mut Aws,
    glue: &aws_sdk_glue::Client,
    region: Option<&str>,
    command: JobCommand,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    match command {
        JobCommand::Create {
            name,
            script,
            role,
            glue_version,
            worker_type,
            number_of_workers,
            timeout,
            max_retries,
            description,
            args,
        } => {
            check_glue_version(&glue_version)?;
            check_worker_type(&worker_type)?;
            check_workers(number_of_workers)?;
            let arguments = job_arguments("glue", &args)?;
            if find_job(aws, glue, &name, ctx)?.is_some() {
                return Err(failed(format!(
                    "a Glue job `{name}` already exists: `%%glue_script {name}` replaces its script, \
                     `%glue job delete {name}` removes it"
                )));
            }
            let sdk = aws.sdk_for_region(region)?;
            let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
            let s3 = aws_sdk_s3::Client::new(&sdk);
            // A local script goes to the assets bucket; an s3:// script is used where it is.
            let (location, uploaded) = if script.starts_with("s3://") {
                (S3Url::parse(&script)?, false)
            } else {
                let body = std::fs::read(&script).map_err(|e| {
                    failed(format!(
                        "cannot read the script {script}: {e} (give a local file or an s3:// URL)"
                    ))
                })?;
                let sts = aws_sdk_sts::Client::new(&sdk);
                let to = assets_location(aws, &s3, &sts, &region, &name, ctx)?;
                put_script(aws, &s3, &to, body, ctx)?;
                (to, true)
            };
            let create = glue
                .create_job()
                .name(&name)
                .role(&role)
                .command(
                    GlueJobCommand::builder()
                        .name("glueetl")
                        .python_version("3")
                        .script_location(location.to_string())
                        .build(),
                )
                .glue_version(&glue_version)
                .worker_type(WorkerType::from(worker_type.as_str()))
                .number_of_workers(number_of_workers)
                .set_timeout(timeout)
                .set_max_retries(max_retries)
                .set_description(description)
                .set_default_arguments(Some(arguments))
                .send();
            let created = aws.run(ctx, create).and_then(|r| {
                r.map_err(|e| aws_error(aws, &format!("creating Glue job {name}"), e))
            });
            if let Err(e) = created {
                if uploaded {
                    let delete = s3
                        .delete_object()
                        .bucket(&location.bucket)
                        .key(&location.key)
                        .send();
                    let _ = aws.runtime_block(delete);
                }
                return Err(e);
            }
            ctx.stdout(&format!(
                "Created Glue job {name} (Glue {glue_version}, {number_of_workers} × {worker_type}), script {location}.\n\
                 `%glue job start {name}` runs it.\n"
            ));
            Ok(())
        }
        JobCommand::Start { name, args, wait } => {
            let arguments = job_arguments("glue", &args)?;
            get_job(aws, glue, &name, ctx)?;
            let out = aws
                .run(
                    ctx,
                    glue.start_job_run()
                        .job_name(&name)
                        .set_arguments((!arguments.is_empty()).then_some(arguments))
                        .send(),
                )?
                .map_err(|e| aws_error(aws, &format!("starting Glue job {name}"), e))?;
            let id = out.job_run_id().unwrap_or_default().to_owned();
            ctx.stdout(&format!("Started {name}: run {id}\n"));
            if wait {
                wait_for_run(aws, glue, &name, &id, false, ctx)
            } else {
                ctx.stdout(&format!(
                    "`%glue job wait {name} {id}` follows it; `%glue job status {name} {id}` shows it.\n"
                ));
                Ok(())
            }
        }
        JobCommand::Runs { name, output } => {
            let mut runs = Vec::new();
            let mut token = None;
            loop {
                let out = aws
                    .run(
                        ctx,
                        glue.get_job_runs()
                            .job_name(&name)
                            .set_next_token(token)
                            .send(),
                    )?
                    .map_err(|e| {
                        aws_error(aws, &format!("listing the runs of Glue job {name}"), e)
                    })?;
                runs.extend(out.job_runs().iter().cloned());
                token = out.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let df = df!(
                "run_id" => runs.iter().map(|r| r.id().unwrap_or_default()).collect::<Vec<_>>(),
                "state" => runs.iter().map(state_str).collect::<Vec<_>>(),
                "started" => runs.iter().map(|r| time_str(r.started_on())).collect::<Vec<_>>(),
                "completed" => runs.iter().map(|r| time_str(r.completed_on())).collect::<Vec<_>>(),
                "execution_seconds" => runs.iter().map(|r| r.execution_time()).collect::<Vec<_>>(),
                "error" => runs.iter().map(|r| r.error_message().unwrap_or_default()).collect::<Vec<_>>()
            )
            .map_err(failed)?;
            show_frame(df, output.as_deref(), ctx)
        }
        JobCommand::Status { name, run_id } => {
            let run = get_run(aws, glue, &name, &run_id, ctx)?;
            let arguments = run
                .arguments()
                .map(|a| {
                    let mut pairs: Vec<String> =
                        a.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    pairs.sort();
                    pairs.join(" ")
                })
                .unwrap_or_default();
            let fields = [
                ("job", name.clone()),
                ("run_id", run_id.clone()),
                ("state", state_str(&run)),
                ("started", time_str(run.started_on())),
                ("completed", time_str(run.completed_on())),
                ("execution_seconds", run.execution_time().to_string()),
                ("attempt", run.attempt().to_string()),
                ("arguments", arguments),
                ("error", run.error_message().unwrap_or_default().to_owned()),
            ];
            let (k, v): (Vec<&str>, Vec<String>) = fields.into_iter().unzip();
            show_frame(df!("field" => k, "value" => v).map_err(failed)?, None, ctx)
        }
        JobCommand::Wait { name, run_id, stop } => {
            wait_for_run(aws, glue, &name, &run_id, stop, ctx)
        }
        JobCommand::Stop { name, run_id } => {
            stop_run(aws, glue, &name, &run_id, ctx)?;
            ctx.stdout(&format!("Stopping run {run_id} of {name}.\n"));
            Ok(())
        }
        JobCommand::Delete { name } => {
            let job = get_job(aws, glue, &name, ctx)?;
            aws.run(ctx, glue.delete_job().job_name(&name).send())?
                .map_err(|e| aws_error(aws, &format!("deleting Glue job {name}"), e))?;
            let script = job
                .command()
                .and_then(|c| c.script_location())
                .unwrap_or_default();
            ctx.stdout(&format!(
                "Deleted Glue job {name}. Its script stays at {script} (`%s3 rm {script}` removes it).\n"
            ));
            Ok(())
        }
    }
}

fn get_run(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    name: &str,
    run_id: &str,
    ctx: &dyn MagicContext,
) -> Result<JobRun, MagicError> {
    let out = aws
        .run(ctx, glue.get_job_run().job_name(name).run_id(run_id).send())?
        .map_err(|e| aws_error(aws, &format!("reading run {run_id} of Glue job {name}"), e))?;
    out.job_run
        .ok_or_else(|| failed(format!("Glue returned no run {run_id} for {name}")))
}

fn stop_run(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    name: &str,
    run_id: &str,
    ctx: &dyn MagicContext,
) -> Result<(), MagicError> {
    let out = aws
        .runtime_block(
            glue.batch_stop_job_run()
                .job_name(name)
                .job_run_ids(run_id)
                .send(),
        )
        .map_err(|e| aws_error(aws, &format!("stopping run {run_id} of Glue job {name}"), e))?;
    let _ = ctx;
    if let Some(err) = out.errors().first() {
        let detail = err.error_detail();
        return Err(failed(format!(
            "Glue did not stop run {run_id} of {name}: {}: {}",
            detail.and_then(|d| d.error_code()).unwrap_or("Error"),
            detail.and_then(|d| d.error_message()).unwrap_or_default()
        )));
    }
    Ok(())
}

fn is_final(state: &JobRunState) -> bool {
    matches!(
        state,
        JobRunState::Succeeded
            | JobRunState::Failed
            | JobRunState::Stopped
            | JobRunState::Timeout
            | JobRunState::Error
            | JobRunState::Expired
    )
}

/// Shows the run's state in one display until it ends. An interrupt stops the waiting, and
/// with `stop` the run too.
fn wait_for_run(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    name: &str,
    run_id: &str,
    stop: bool,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let started = Instant::now();
    let mut live = LiveDisplay::new("glue-run", run_id);
    live.finish(
        ctx,
        MimeBundle::text(format!("{name} {run_id}: waiting for Glue")),
    );
    let backoff = Backoff::new(Duration::from_millis(250), 2, Duration::from_secs(5));
    let waited = long_work::poll(ctx, backoff, |ctx| {
        let run = get_run(aws, glue, name, run_id, ctx)?;
        let label = state_str(&run);
        let text = format!(
            "{name} {run_id}: {label} ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        match run.job_run_state() {
            Some(state) if is_final(state) => {
                live.finish(ctx, MimeBundle::text(text));
                Ok(long_work::Poll::Ready(run))
            }
            _ => {
                live.update(ctx, MimeBundle::text(text));
                Ok(long_work::Poll::Pending)
            }
        }
    });
    let run = match waited {
        Err(MagicError::Interrupted(_)) => return interrupted(aws, glue, name, run_id, stop, ctx),
        other => other?,
    };
    if run.job_run_state() == Some(&JobRunState::Succeeded) {
        ctx.stdout(&format!(
            "{name} {run_id} SUCCEEDED in {} s.\n",
            run.execution_time()
        ));
        Ok(())
    } else {
        Err(failed(format!(
            "{name} {run_id} ended {}: {}",
            state_str(&run),
            run.error_message().unwrap_or("Glue gave no reason")
        )))
    }
}

fn interrupted(
    aws: &Aws,
    glue: &aws_sdk_glue::Client,
    name: &str,
    run_id: &str,
    stop: bool,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    if stop {
        stop_run(aws, glue, name, run_id, ctx)?;
        Err(long_work::interrupted(
            format!("stopped waiting and asked Glue to stop run {run_id} of {name}"),
            "the job and its earlier runs are kept",
        ))
    } else {
        Err(long_work::interrupted(
            "stopped waiting",
            format!(
                "run {run_id} of {name} keeps running (`%glue job stop {name} {run_id}` stops it)"
            ),
        ))
    }
}

/// `%%glue_script NAME`: the cell becomes the job's script, at the job's script location.
pub struct GlueScriptMagic {
    pub aws: Arc<Mutex<Aws>>,
    pub session: Arc<super::sessions::Session>,
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct ScriptArgs {
    name: String,
}

impl Magic for GlueScriptMagic {
    fn name(&self) -> &str {
        "glue_script"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Cell]
    }
    fn summary(&self) -> &str {
        "Replace a Glue job's script with the cell (uploaded, and the job updated)."
    }
    fn help(&self) -> String {
        "%%glue_script NAME
<the job's new script>

Uploads the cell to the job's script location in S3 and updates the job. If the update fails,
the previous script is put back. The job must exist (`%glue job create NAME --script … --role …`).

Example:
  %%glue_script nightly
  from awsglue.context import GlueContext
  ..."
        .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: ScriptArgs = parse_args("glue_script", call.argv()?)?;
        if call.body.trim().is_empty() {
            return Err(MagicError::usage(
                "glue_script",
                "the cell is empty: write the job's script below `%%glue_script NAME`",
            ));
        }
        let name = args.name;
        let region = self.session.region();
        let mut aws = self.aws.lock().unwrap_or_else(|p| p.into_inner());
        let glue = super::client(&mut aws, region.as_deref())?;
        let s3 = aws_sdk_s3::Client::new(&aws.sdk_for_region(region.as_deref())?);
        let aws = &*aws;
        let job = get_job(aws, &glue, &name, ctx)?;
        let command = job
            .command()
            .cloned()
            .ok_or_else(|| failed(format!("Glue job {name} has no command")))?;
        let location =
            S3Url::parse(command.script_location().unwrap_or_default()).map_err(|_| {
                failed(format!(
                    "Glue job {name} has no s3:// script location ({:?})",
                    command.script_location()
                ))
            })?;
        // The old script is kept in memory so a failed update can put it back. Only a missing
        // object counts as "no old script": any other failure to read it stops here, before
        // anything is overwritten.
        let got = aws.run(
            ctx,
            s3.get_object()
                .bucket(&location.bucket)
                .key(&location.key)
                .send(),
        )?;
        let previous = match got {
            Ok(obj) => Some(
                aws.runtime_block(obj.body.collect())
                    .map_err(|e| failed(format!("reading the current script {location}: {e}")))?
                    .into_bytes()
                    .to_vec(),
            ),
            Err(e) if crate::client::has_code(&e, "NoSuchKey") => None,
            Err(e) => {
                return Err(aws_error(
                    aws,
                    &format!("reading the current script {location} (kept to restore it)"),
                    e,
                ))
            }
        };
        let mut script = call.body.clone();
        if !script.ends_with('\n') {
            script.push('\n');
        }
        put_script(aws, &s3, &location, script.into_bytes(), ctx)?;
        let update = JobUpdate::builder()
            .set_role(job.role().map(str::to_owned))
            .command(command)
            .set_description(job.description().map(str::to_owned))
            .set_default_arguments(job.default_arguments().cloned())
            .set_non_overridable_arguments(job.non_overridable_arguments().cloned())
            .set_connections(job.connections().cloned())
            .set_max_retries(Some(job.max_retries()))
            .set_timeout(job.timeout())
            .set_glue_version(job.glue_version().map(str::to_owned))
            .set_worker_type(job.worker_type().cloned())
            .set_number_of_workers(job.number_of_workers())
            .build();
        let updated = aws
            .run(
                ctx,
                glue.update_job().job_name(&name).job_update(update).send(),
            )
            .and_then(|r| r.map_err(|e| aws_error(aws, &format!("updating Glue job {name}"), e)));
        if let Err(e) = updated {
            let (bucket, key) = (&location.bucket, &location.key);
            let restore = async {
                match previous {
                    Some(old) => s3
                        .put_object()
                        .bucket(bucket)
                        .key(key)
                        .body(ByteStream::from(old))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    None => s3
                        .delete_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                }
            };
            let _ = aws.runtime_block(restore);
            return Err(e);
        }
        let lines = call.body.lines().count();
        ctx.stdout(&format!(
            "Updated Glue job {name}: its script ({lines} lines) is at {location}.\n"
        ));
        Ok(())
    }
}
