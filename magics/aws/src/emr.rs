//! `%emr`: clusters (list, describe, create, terminate), steps (list, add a spark-submit step
//! and wait for it), and `connect`, which points the Spark magics at a cluster's Livy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_emr::types::{
    ActionOnFailure, Application, ClusterState, HadoopJarStepConfig, JobFlowInstancesConfig,
    StepConfig, StepState,
};
use clap::{Parser, Subcommand};
use polars::prelude::*;
use rustmaker_magics::{Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle};

use crate::client::{aws_error, failed, Aws};
use crate::show_frame;
use rustmaker_magics::long_work::{self, Backoff, LiveDisplay, Poll};
use rustmaker_magics::parse_args;
use rustmaker_magics::services::SparkConnector;

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct EmrArgs {
    #[command(subcommand)]
    command: EmrCommand,
}

#[derive(Subcommand, Debug)]
enum EmrCommand {
    Clusters {
        #[arg(long)]
        active: bool,
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    Describe {
        cluster: String,
    },
    Create {
        name: String,
        #[arg(long, default_value = "emr-7.5.0")]
        release: String,
        #[arg(long = "instance-type", default_value = "m5.xlarge")]
        instance_type: String,
        #[arg(long, default_value_t = 3)]
        count: i32,
        #[arg(long, default_value = "Spark,Livy")]
        applications: String,
        #[arg(long = "service-role", default_value = "EMR_DefaultRole")]
        service_role: String,
        #[arg(long = "instance-profile", default_value = "EMR_EC2_DefaultRole")]
        instance_profile: String,
        #[arg(long = "log-uri")]
        log_uri: Option<String>,
    },
    Steps {
        cluster: String,
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
    },
    #[command(name = "add-step")]
    AddStep {
        cluster: String,
        #[arg(long, default_value = "Spark application")]
        name: String,
        #[arg(long)]
        wait: bool,
        /// Everything after --spark-submit goes to spark-submit.
        #[arg(long = "spark-submit", num_args = 1.., allow_hyphen_values = true, required = true)]
        spark_submit: Vec<String>,
    },
    Terminate {
        cluster: String,
    },
    Connect {
        cluster: String,
    },
}

pub struct EmrMagic {
    pub aws: Arc<Mutex<Aws>>,
    pub connect: Arc<dyn SparkConnector>,
}

fn check_cluster_id(id: &str) -> Result<(), MagicError> {
    if id.starts_with("j-") && id.len() > 2 && id[2..].chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(failed(format!(
            "`{id}` is not an EMR cluster id (they look like j-2AXXXXXXGAPLF)"
        )))
    }
}

impl Magic for EmrMagic {
    fn name(&self) -> &str {
        "emr"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "EMR: clusters, steps (spark-submit) and `connect` to use a cluster's Livy from the Spark magics."
    }
    fn help(&self) -> String {
        "%emr clusters [--active] [-o NAME]
%emr describe J_ID
%emr create NAME [--release emr-7.5.0] [--instance-type m5.xlarge] [--count 3] [--applications Spark,Livy]
                 [--service-role EMR_DefaultRole] [--instance-profile EMR_EC2_DefaultRole] [--log-uri s3://…]
%emr steps J_ID [-o NAME]
%emr add-step J_ID [--name NAME] [--wait] --spark-submit ARGS…   (a command-runner.jar spark-submit step;
                 --wait shows its state until it ends; interrupt stops waiting, not the step)
%emr terminate J_ID
%emr connect J_ID      the Spark magics' default session runs on this cluster's Livy (port 8998)

Example:
  %emr add-step j-2AXXXXXXGAPLF --wait --spark-submit --deploy-mode cluster s3://my-bucket/job.py"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: EmrArgs = parse_args("emr", call.argv()?)?;
        if let EmrCommand::Connect { cluster } = &args.command {
            check_cluster_id(cluster)?;
            let message = self.connect.use_endpoint(cluster)?;
            ctx.stdout(&format!("{message}\n"));
            return Ok(());
        }
        let mut aws = self.aws.lock().unwrap_or_else(|p| p.into_inner());
        let emr = aws_sdk_emr::Client::new(&aws.sdk()?);
        let aws = &*aws;
        match args.command {
            EmrCommand::Clusters { active, output } => {
                let mut req = emr.list_clusters();
                if active {
                    for s in [
                        ClusterState::Starting,
                        ClusterState::Bootstrapping,
                        ClusterState::Running,
                        ClusterState::Waiting,
                    ] {
                        req = req.cluster_states(s);
                    }
                }
                let out = aws
                    .run(ctx, req.send())?
                    .map_err(|e| aws_error(aws, "listing EMR clusters", e))?;
                let mut cols: [Vec<String>; 4] = Default::default();
                for c in out.clusters() {
                    cols[0].push(c.id().unwrap_or_default().into());
                    cols[1].push(c.name().unwrap_or_default().into());
                    let status = c.status();
                    cols[2].push(
                        status
                            .and_then(|s| s.state())
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    );
                    cols[3].push(
                        status
                            .and_then(|s| s.timeline())
                            .and_then(|t| t.creation_date_time())
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                    );
                }
                let [id, name, state, created] = cols;
                let df = df!("id" => id, "name" => name, "state" => state, "created" => created)
                    .map_err(failed)?;
                show_frame(df, output.as_deref(), ctx)
            }
            EmrCommand::Describe { cluster } => {
                check_cluster_id(&cluster)?;
                let out = aws
                    .run(ctx, emr.describe_cluster().cluster_id(&cluster).send())?
                    .map_err(|e| aws_error(aws, &format!("describing {cluster}"), e))?;
                let c = out
                    .cluster()
                    .ok_or_else(|| failed(format!("EMR returned no cluster for {cluster}")))?;
                let apps: Vec<String> = c
                    .applications()
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {}",
                            a.name().unwrap_or_default(),
                            a.version().unwrap_or_default()
                        )
                        .trim()
                        .to_owned()
                    })
                    .collect();
                let fields = [
                    ("id", c.id().unwrap_or_default().to_owned()),
                    ("name", c.name().unwrap_or_default().to_owned()),
                    (
                        "state",
                        c.status()
                            .and_then(|s| s.state())
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    ),
                    (
                        "state reason",
                        c.status()
                            .and_then(|s| s.state_change_reason())
                            .and_then(|r| r.message())
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                    ("release", c.release_label().unwrap_or_default().to_owned()),
                    ("applications", apps.join(", ")),
                    (
                        "master",
                        c.master_public_dns_name().unwrap_or_default().to_owned(),
                    ),
                    ("log uri", c.log_uri().unwrap_or_default().to_owned()),
                ];
                let (k, v): (Vec<&str>, Vec<String>) = fields.into_iter().unzip();
                show_frame(df!("field" => k, "value" => v).map_err(failed)?, None, ctx)
            }
            EmrCommand::Create {
                name,
                release,
                instance_type,
                count,
                applications,
                service_role,
                instance_profile,
                log_uri,
            } => {
                if count < 1 {
                    return Err(MagicError::usage("emr", "--count must be at least 1"));
                }
                let apps: Vec<Application> = applications
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(|a| Application::builder().name(a).build())
                    .collect();
                let instances = JobFlowInstancesConfig::builder()
                    .master_instance_type(&instance_type)
                    .slave_instance_type(&instance_type)
                    .instance_count(count)
                    .keep_job_flow_alive_when_no_steps(true)
                    .build();
                let req = emr
                    .run_job_flow()
                    .name(&name)
                    .release_label(&release)
                    .set_applications(Some(apps))
                    .instances(instances)
                    .service_role(&service_role)
                    .job_flow_role(&instance_profile)
                    .set_log_uri(log_uri)
                    .send();
                let out = aws
                    .run(ctx, req)?
                    .map_err(|e| aws_error(aws, &format!("creating EMR cluster {name}"), e))?;
                let id = out.job_flow_id().unwrap_or_default();
                ctx.stdout(&format!(
                    "Created EMR cluster {name}: {id} ({release}, {count} × {instance_type}, {applications}).\n\
                     `%emr describe {id}` shows its state; `%emr connect {id}` points the Spark magics at it.\n"
                ));
                Ok(())
            }
            EmrCommand::Steps { cluster, output } => {
                check_cluster_id(&cluster)?;
                let out = aws
                    .run(ctx, emr.list_steps().cluster_id(&cluster).send())?
                    .map_err(|e| aws_error(aws, &format!("listing the steps of {cluster}"), e))?;
                let mut cols: [Vec<String>; 3] = Default::default();
                for s in out.steps() {
                    cols[0].push(s.id().unwrap_or_default().into());
                    cols[1].push(s.name().unwrap_or_default().into());
                    cols[2].push(
                        s.status()
                            .and_then(|s| s.state())
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    );
                }
                let [id, name, state] = cols;
                show_frame(
                    df!("id" => id, "name" => name, "state" => state).map_err(failed)?,
                    output.as_deref(),
                    ctx,
                )
            }
            EmrCommand::AddStep {
                cluster,
                name,
                wait,
                spark_submit,
            } => {
                check_cluster_id(&cluster)?;
                let what = format!("adding a step to {cluster}");
                let jar = HadoopJarStepConfig::builder()
                    .jar("command-runner.jar")
                    .set_args(Some(
                        std::iter::once("spark-submit".to_owned())
                            .chain(spark_submit)
                            .collect(),
                    ))
                    .build();
                let step = StepConfig::builder()
                    .name(&name)
                    .action_on_failure(ActionOnFailure::Continue)
                    .hadoop_jar_step(jar)
                    .build();
                let out = aws
                    .run(
                        ctx,
                        emr.add_job_flow_steps()
                            .job_flow_id(&cluster)
                            .steps(step)
                            .send(),
                    )?
                    .map_err(|e| aws_error(aws, &what, e))?;
                let step_id = out.step_ids().first().cloned().unwrap_or_default();
                ctx.stdout(&format!("Added step {step_id} ({name}) to {cluster}.\n"));
                if wait {
                    wait_for_step(aws, &emr, &cluster, &step_id, ctx)?;
                }
                Ok(())
            }
            EmrCommand::Terminate { cluster } => {
                check_cluster_id(&cluster)?;
                aws.run(ctx, emr.terminate_job_flows().job_flow_ids(&cluster).send())?
                    .map_err(|e| aws_error(aws, &format!("terminating {cluster}"), e))?;
                ctx.stdout(&format!("Terminating {cluster}.\n"));
                Ok(())
            }
            EmrCommand::Connect { .. } => unreachable!("handled above"),
        }
    }
}

/// Shows the step's state in one display until it ends; an interrupt stops waiting only.
fn wait_for_step(
    aws: &Aws,
    emr: &aws_sdk_emr::Client,
    cluster: &str,
    step: &str,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let started = Instant::now();
    let mut live = LiveDisplay::new("emr-step", step);
    live.finish(ctx, MimeBundle::text(format!("Step {step}: submitted")));
    let backoff = Backoff::new(Duration::from_millis(500), 2, Duration::from_secs(5));
    let waited = long_work::poll(ctx, backoff, |ctx| {
        let out = aws
            .run(
                ctx,
                emr.describe_step().cluster_id(cluster).step_id(step).send(),
            )?
            .map_err(|e| aws_error(aws, &format!("describing step {step}"), e))?;
        let status = out.step().and_then(|s| s.status()).cloned();
        let state = status.as_ref().and_then(|s| s.state()).cloned();
        let label = state
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let text = MimeBundle::text(format!(
            "Step {step}: {label} ({:.0} s)",
            started.elapsed().as_secs_f64()
        ));
        match state {
            Some(StepState::Completed) => {
                live.finish(ctx, text);
                Ok(Poll::Ready(()))
            }
            Some(StepState::Failed | StepState::Cancelled | StepState::Interrupted) => {
                live.finish(ctx, text);
                let reason = status
                    .as_ref()
                    .and_then(|s| s.failure_details())
                    .map(|f| {
                        format!(
                            "{} {}",
                            f.reason().unwrap_or_default(),
                            f.message().unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                Err(failed(format!(
                    "step {step} on {cluster} ended {label}. {}",
                    reason.trim()
                )))
            }
            _ => {
                live.update(ctx, text);
                Ok(Poll::Pending)
            }
        }
    });
    waited.map_err(|e| {
        long_work::on_interrupt(
            e,
            format!("stopped waiting for step {step}"),
            format!("it keeps running (`%emr steps {cluster}`)"),
        )
    })
}
