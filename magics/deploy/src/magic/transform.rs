//! `%transform`: a batch transform job through the service's API, waited for with a live
//! view, its output kept as a frame when asked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use rustmaker_magics::data::SharedObjectStore;
use rustmaker_magics::long_work::{self, Backoff, LiveDisplay, Poll};
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use serde_json::{json, Value};

use super::endpoints::{create_model, model_url, unique_name};
use super::render::{described, field, frame_csv, frame_of_answer, listing, time_text};
use super::service::{connect, service_error};

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct TransformArgs {
    name: String,
    #[arg(long)]
    model: String,
    /// A frame (sent as CSV rows without header, columns in the model's order), a file or a folder.
    #[arg(long)]
    data: String,
    /// The folder the `.out` files go to (default {data}/transform/NAME).
    #[arg(long)]
    output: Option<String>,
    #[arg(long, default_value = "text/csv")]
    content_type: String,
    #[arg(long, default_value = "Line")]
    split_type: String,
    #[arg(long, default_value = "MultiRecord")]
    strategy: String,
    #[arg(long, default_value_t = 6)]
    max_payload: u64,
    #[arg(long, default_value = "Line")]
    assemble_with: String,
    #[arg(long)]
    accept: Option<String>,
    #[arg(long)]
    input_filter: Option<String>,
    #[arg(long)]
    join_source: Option<String>,
    #[arg(long)]
    output_filter: Option<String>,
    /// Keep the output as a frame.
    #[arg(short = 'o', long = "frame")]
    frame: Option<String>,
}

const USAGE: &str = "%transform NAME --model JOB|PATH|s3://… --data FRAME|FILE|DIR [--output DIR] [options] | describe NAME | list | stop NAME";

/// `%transform`.
pub struct TransformMagic {
    pub store: SharedObjectStore,
}

fn job_view(j: &Value) -> MimeBundle {
    let mut text = format!(
        "transform job {}: {}",
        field(j, "TransformJobName"),
        field(j, "TransformJobStatus")
    );
    if let Some(r) = j.get("FailureReason").and_then(Value::as_str) {
        text.push_str(&format!(" ({r})"));
    }
    MimeBundle::text(text)
}

impl Magic for TransformMagic {
    fn name(&self) -> &str {
        "transform"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Run a model over a file, a folder or a frame as a batch transform job."
    }
    fn help(&self) -> String {
        format!(
            "{USAGE}\n\n\
             Options as CreateTransformJob names them: --content-type (text/csv), --split-type\n\
             Line|None (Line), --strategy SingleRecord|MultiRecord (MultiRecord), --max-payload MB\n\
             (6), --assemble-with Line|None (Line), --accept T, --input-filter '$[1:]',\n\
             --join-source Input|None, --output-filter '$[0,-1]'. Each input file F gives F.out\n\
             in the output folder, as SageMaker writes it; -o FRAME keeps the output as a frame.\n\
             Interrupting stops the job.\n\n\
             Example:\n    %transform nightly --model churn-boost --data new_customers.csv -o scored"
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let argv = call.argv()?;
        let client = connect()?;
        let api = |op: &str, input: Value| client.call(op, &input).map_err(service_error);
        match argv
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["list"] => {
                let all = api("ListTransformJobs", json!({}))?;
                let rows: Vec<Vec<String>> = all["TransformJobSummaries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|j| {
                        vec![
                            field(j, "TransformJobName"),
                            field(j, "TransformJobStatus"),
                            time_text(&j["CreationTime"]),
                            field(j, "FailureReason"),
                        ]
                    })
                    .collect();
                ctx.display(
                    frame_bundle(
                        &listing(
                            &[
                                "TransformJobName",
                                "TransformJobStatus",
                                "CreationTime",
                                "FailureReason",
                            ],
                            &rows,
                        )?,
                        100,
                    ),
                    None,
                );
                return Ok(());
            }
            ["describe", name] => {
                ctx.display(
                    described(&api(
                        "DescribeTransformJob",
                        json!({"TransformJobName": name}),
                    )?),
                    None,
                );
                return Ok(());
            }
            ["stop", name] => {
                api("StopTransformJob", json!({"TransformJobName": name}))?;
                ctx.stdout(&format!("transform job {name}: stopping\n"));
                return Ok(());
            }
            _ => {}
        }
        let args: TransformArgs = parse_args("transform", argv)
            .map_err(|e| MagicError::usage("transform", format!("{e}\nusage: {USAGE}")))?;
        if let Some(f) = &args.frame {
            rustmaker_magics::frames::check_name(f)?;
        }
        let output = args.output.clone().map(PathBuf::from).unwrap_or_else(|| {
            rustmaker_process::data_dir()
                .join("transform")
                .join(&args.name)
        });
        std::fs::create_dir_all(&output)
            .map_err(|e| MagicError::Failed(format!("cannot make {}: {e}", output.display())))?;
        let output = std::fs::canonicalize(&output).unwrap_or(output);
        let input = match ctx.frames().get(&args.data) {
            Ok(frame) => {
                let dir = rustmaker_process::data_dir()
                    .join("transform-input")
                    .join(&args.name);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    MagicError::Failed(format!("cannot make {}: {e}", dir.display()))
                })?;
                let path = dir.join(format!("{}.csv", args.data));
                std::fs::write(&path, frame_csv(frame, false)?).map_err(|e| {
                    MagicError::Failed(format!("cannot write {}: {e}", path.display()))
                })?;
                path
            }
            Err(_) if Path::new(&args.data).exists() => {
                std::fs::canonicalize(&args.data).unwrap_or(PathBuf::from(&args.data))
            }
            Err(_) => {
                return Err(MagicError::Data(format!(
                    "`{}` is neither a frame (`%frames` lists them) nor a file or folder",
                    args.data
                )))
            }
        };
        let model = unique_name(&format!("{}-model", args.name).to_ascii_lowercase());
        let url = model_url(&args.model, &self.store, ctx, &model)?;
        create_model(&client, &model, &url)?;
        let mut request = json!({
            "TransformJobName": args.name, "ModelName": model, "BatchStrategy": args.strategy,
            "MaxPayloadInMB": args.max_payload,
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input}},
                               "ContentType": args.content_type, "SplitType": args.split_type},
            "TransformOutput": {"S3OutputPath": output, "AssembleWith": args.assemble_with},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}});
        if let Some(a) = &args.accept {
            request["TransformOutput"]["Accept"] = json!(a);
        }
        for (key, value) in [
            ("InputFilter", &args.input_filter),
            ("JoinSource", &args.join_source),
            ("OutputFilter", &args.output_filter),
        ] {
            if let Some(v) = value {
                request["DataProcessing"][key] = json!(v);
            }
        }
        api("CreateTransformJob", request)?;
        let mut live = LiveDisplay::new("transform", &args.name);
        let done = long_work::poll(
            ctx,
            Backoff::new(Duration::from_millis(100), 2, Duration::from_secs(2)),
            |ctx| {
                let j = api(
                    "DescribeTransformJob",
                    json!({"TransformJobName": args.name}),
                )?;
                if matches!(
                    j["TransformJobStatus"].as_str(),
                    Some("Completed" | "Failed" | "Stopped")
                ) {
                    return Ok(Poll::Ready(j));
                }
                live.update(ctx, job_view(&j));
                Ok(Poll::Pending)
            },
        );
        let done = match done {
            Err(MagicError::Interrupted(_)) => {
                let _ = api("StopTransformJob", json!({"TransformJobName": args.name}));
                return Err(long_work::interrupted(
                    format!("transform job {} stopped", args.name),
                    format!("what it wrote so far stays in {}", output.display()),
                ));
            }
            other => other?,
        };
        live.finish(ctx, job_view(&done));
        if done["TransformJobStatus"] != "Completed" {
            return Err(MagicError::Failed(format!(
                "transform job {} {}: {}",
                args.name,
                field(&done, "TransformJobStatus"),
                field(&done, "FailureReason")
            )));
        }
        let out_name = format!(
            "{}.out",
            input
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        ctx.stdout(&format!("output in {}\n", output.display()));
        if let Some(frame_name) = &args.frame {
            let path = if input.is_dir() {
                None
            } else {
                Some(output.join(&out_name))
            };
            let path = path.ok_or_else(|| {
                MagicError::usage(
                    "transform",
                    "-o reads one output file: give --data a file or a frame",
                )
            })?;
            let body = std::fs::read(&path)
                .map_err(|e| MagicError::Failed(format!("cannot read {}: {e}", path.display())))?;
            let accept = args
                .accept
                .clone()
                .unwrap_or_else(|| args.content_type.clone());
            let frame = frame_of_answer(&body, &accept)?;
            ctx.display(frame_bundle(&frame, 10), None);
            ctx.frames().insert(frame_name, frame)?;
        }
        Ok(())
    }
}
