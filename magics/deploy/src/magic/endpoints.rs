//! `%deploy`, `%endpoint` and `%%invoke`: endpoints through the service's API, as the
//! SageMaker SDK's `deploy()` and a `sagemaker-runtime` client make and call them.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use rustmaker_magics::data::SharedObjectStore;
use rustmaker_magics::long_work::{self, Backoff, LiveDisplay, Poll};
use rustmaker_magics::table::frame_bundle;
use rustmaker_magics::{
    parse_args, Magic, MagicCall, MagicContext, MagicError, MagicForm, MimeBundle,
};
use rustmaker_sagemaker::client::{Client, InvokeOptions};
use serde_json::{json, Value};

use super::render::{described, field, frame_csv, frame_of_answer, listing, time_text};
use super::service::{connect, service_error};

/// A time stamp that makes generated names unique, as the SDK's `name_from_base` does.
pub(super) fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%d-%H%M%S-%3f").to_string()
}

/// `base-stamp`, shortened so it stays within SageMaker's 63 characters.
pub(super) fn unique_name(base: &str) -> String {
    let s = stamp();
    let keep = 63 - s.len() - 1;
    format!(
        "{}-{s}",
        &base[..base.len().min(keep)].trim_end_matches('-')
    )
}

/// A model source as the service reads it: a training job's name as is, a local path made
/// absolute (the service has its own working folder), an `s3://` object downloaded first.
pub(super) fn model_url(
    source: &str,
    store: &SharedObjectStore,
    ctx: &mut dyn MagicContext,
    name: &str,
) -> Result<String, MagicError> {
    if source.starts_with("s3://") {
        let dir = rustmaker_process::data_dir().join("models").join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| MagicError::Failed(format!("cannot make {}: {e}", dir.display())))?;
        let path = store.fetch(source, &dir, Some(&*ctx))?;
        return Ok(path.display().to_string());
    }
    let path = Path::new(source);
    if path.exists() {
        return Ok(std::fs::canonicalize(path)
            .unwrap_or(path.to_owned())
            .display()
            .to_string());
    }
    if source.contains('/') || source.ends_with(".tar.gz") {
        return Err(MagicError::Data(format!(
            "there is no model at {source}: give a training job's name, a model.tar.gz or an s3:// object"
        )));
    }
    Ok(source.to_owned())
}

pub(super) fn create_model(client: &Client, name: &str, url: &str) -> Result<(), MagicError> {
    client
        .call(
            "CreateModel",
            &json!({"ModelName": name, "PrimaryContainer": {"ModelDataUrl": url},
                    "ExecutionRoleArn": "arn:aws:iam::000000000000:role/rustmaker"}),
        )
        .map(|_| ())
        .map_err(service_error)
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct DeployArgs {
    endpoint: String,
    /// One variant, AllTraffic, serving this model.
    #[arg(long)]
    model: Option<String>,
    /// NAME=MODEL:WEIGHT (repeat for several variants).
    #[arg(long = "variant")]
    variants: Vec<String>,
    #[arg(long, default_value_t = 1)]
    instances: u32,
    #[arg(long, default_value = "ml.m5.large")]
    instance_type: String,
    /// Capture this percentage of requests (0 to 100).
    #[arg(long)]
    capture: Option<u32>,
    /// Where captured records go (default {data}/data-capture).
    #[arg(long)]
    capture_to: Option<String>,
    /// Input, Output or InputAndOutput.
    #[arg(long, default_value = "InputAndOutput")]
    capture_mode: String,
    /// Return once the service has the request, without waiting for InService.
    #[arg(long)]
    no_wait: bool,
}

/// (variant, model source, weight) from `--model` or the `--variant` specs.
fn variants(args: &DeployArgs) -> Result<Vec<(String, String, f64)>, MagicError> {
    let usage = |m: String| MagicError::usage("deploy", m);
    match (&args.model, args.variants.is_empty()) {
        (Some(_), false) => Err(usage(
            "give --model (one variant) or --variant NAME=MODEL:WEIGHT, not both".into(),
        )),
        (None, true) => Err(usage(
            "give the model: --model JOB|PATH|s3://… or --variant NAME=MODEL:WEIGHT".into(),
        )),
        (Some(m), true) => Ok(vec![("AllTraffic".into(), m.clone(), 1.0)]),
        (None, false) => args
            .variants
            .iter()
            .map(|spec| {
                let bad = || {
                    usage(format!(
                        "--variant {spec}: write NAME=MODEL:WEIGHT, for example blue=churn-boost:3"
                    ))
                };
                let (name, rest) = spec.split_once('=').ok_or_else(bad)?;
                let (model, weight) = match rest.rsplit_once(':') {
                    Some((m, w)) if w.parse::<f64>().is_ok() => {
                        (m, w.parse::<f64>().unwrap_or(1.0))
                    }
                    _ => (rest, 1.0),
                };
                if name.is_empty() || model.is_empty() {
                    return Err(bad());
                }
                Ok((name.to_owned(), model.to_owned(), weight))
            })
            .collect(),
    }
}

fn endpoint_view(e: &Value) -> MimeBundle {
    let name = field(e, "EndpointName");
    let rows: Vec<Vec<String>> = e["ProductionVariants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                field(v, "VariantName"),
                field(v, "CurrentWeight"),
                field(v, "CurrentInstanceCount"),
            ]
        })
        .collect();
    let status = field(e, "EndpointStatus");
    let mut text = format!("endpoint {name}: {status}");
    if let Some(reason) = e.get("FailureReason").and_then(Value::as_str) {
        text.push_str(&format!(" ({reason})"));
    }
    if let Some(c) = e.get("DataCaptureConfig") {
        text.push_str(&format!(
            "\ncapture: {} of requests to {} ({})",
            field(c, "CurrentSamplingPercentage") + "%",
            field(c, "DestinationS3Uri"),
            field(c, "CaptureStatus")
        ));
    }
    match listing(
        &["VariantName", "CurrentWeight", "CurrentInstanceCount"],
        &rows,
    ) {
        Ok(frame) if !rows.is_empty() => {
            let table = frame_bundle(&frame, 20);
            let html = format!(
                "<p>{}</p>{}",
                rustmaker_magics::table::escape(&text).replace('\n', "<br>"),
                table
                    .0
                    .get("text/html")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
            MimeBundle::text(text).with("text/html", json!(html))
        }
        _ => MimeBundle::text(text),
    }
}

/// Waits until `name` is InService with `config` (or has failed), showing its state live.
fn wait_in_service(
    client: &Client,
    name: &str,
    config: &str,
    ctx: &mut dyn MagicContext,
) -> Result<Value, MagicError> {
    let mut live = LiveDisplay::new("endpoint", name);
    let described = long_work::poll(
        ctx,
        Backoff::new(Duration::from_millis(100), 2, Duration::from_secs(2)),
        |ctx| {
            let e = client
                .call("DescribeEndpoint", &json!({"EndpointName": name}))
                .map_err(service_error)?;
            let done = match e["EndpointStatus"].as_str() {
                Some("Failed") => true,
                Some("InService") => {
                    e["EndpointConfigName"] == config || e.get("FailureReason").is_some()
                }
                _ => false,
            };
            if done {
                return Ok(Poll::Ready(e));
            }
            live.update(ctx, endpoint_view(&e));
            Ok(Poll::Pending)
        },
    )
    .map_err(|e| {
        long_work::on_interrupt(
            e,
            "stopped waiting",
            format!("the endpoint goes on being made in the service (`%endpoint describe {name}`)"),
        )
    })?;
    live.finish(ctx, endpoint_view(&described));
    if described["EndpointConfigName"] != config {
        return Err(MagicError::Failed(format!(
            "endpoint {name} was not updated: {}; it still serves {}",
            field(&described, "FailureReason"),
            field(&described, "EndpointConfigName")
        )));
    }
    if described["EndpointStatus"] == "Failed" {
        return Err(MagicError::Failed(format!(
            "endpoint {name} failed: {}",
            field(&described, "FailureReason")
        )));
    }
    Ok(described)
}

/// `%deploy`: models, an endpoint configuration and the endpoint (an update when it exists).
pub struct DeployMagic {
    pub store: SharedObjectStore,
}

impl Magic for DeployMagic {
    fn name(&self) -> &str {
        "deploy"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Serve a trained model as an endpoint (variants by weight, data capture)."
    }
    fn help(&self) -> String {
        "%deploy ENDPOINT --model JOB|PATH|s3://… [--instances N] [--instance-type T]\n\
         %deploy ENDPOINT --variant NAME=MODEL:WEIGHT [--variant …]\n\
         \x20   [--capture PERCENT [--capture-to DIR] [--capture-mode Input|Output|InputAndOutput]] [--no-wait]\n\n\
         Makes a model for each variant (MODEL is a training job's name, a model.tar.gz or an\n\
         s3:// object), an endpoint configuration and the endpoint, then waits until it is\n\
         InService. An endpoint that exists is updated to the new configuration without dropping\n\
         a request. With --capture, that share of requests and answers is written as SageMaker's\n\
         data-capture records under DIR/ENDPOINT/VARIANT/yyyy/mm/dd/hh/ (default\n\
         {data}/data-capture), which `%monitor check --capture` and `%monitor schedule` read.\n\
         The endpoint is served by the local `rustmaker serve` (started on first use) unless\n\
         RUSTMAKER_ENDPOINT_URL names another; boto3 reaches it at the same URL.\n\n\
         Example:\n    %deploy churn --model churn-boost --capture 100"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: DeployArgs = parse_args("deploy", call.argv()?)?;
        rustmaker_sagemaker::check_name(&args.endpoint, rustmaker_sagemaker::Resource::Endpoint)
            .map_err(|e| MagicError::usage("deploy", e.to_string()))?;
        let specs = variants(&args)?;
        if let Some(p) = args.capture.filter(|p| *p > 100) {
            return Err(MagicError::usage(
                "deploy",
                format!("--capture {p}: give a percentage from 0 to 100"),
            ));
        }
        let client = connect()?;
        let mut production = Vec::new();
        for (variant, source, weight) in &specs {
            let model = unique_name(&format!("{}-{variant}", args.endpoint).to_ascii_lowercase());
            let url = model_url(source, &self.store, ctx, &model)?;
            create_model(&client, &model, &url)?;
            production.push(json!({"VariantName": variant, "ModelName": model,
                "InitialVariantWeight": weight, "InitialInstanceCount": args.instances,
                "InstanceType": args.instance_type}));
        }
        let config_name = unique_name(&args.endpoint);
        let mut config =
            json!({"EndpointConfigName": config_name, "ProductionVariants": production});
        if let Some(percent) = args.capture {
            let to = match &args.capture_to {
                Some(t) if t.starts_with("s3://") => t.clone(),
                Some(t) => {
                    std::fs::create_dir_all(t)
                        .map_err(|e| MagicError::Failed(format!("cannot make {t}: {e}")))?;
                    std::fs::canonicalize(t)
                        .map(|p| p.display().to_string())
                        .unwrap_or(t.clone())
                }
                None => rustmaker_process::data_dir()
                    .join("data-capture")
                    .display()
                    .to_string(),
            };
            let modes: Vec<Value> = match args.capture_mode.as_str() {
                "InputAndOutput" => vec![
                    json!({"CaptureMode": "Input"}),
                    json!({"CaptureMode": "Output"}),
                ],
                "Input" | "Output" => vec![json!({"CaptureMode": args.capture_mode})],
                other => {
                    return Err(MagicError::usage(
                        "deploy",
                        format!("--capture-mode {other}: give Input, Output or InputAndOutput"),
                    ))
                }
            };
            config["DataCaptureConfig"] = json!({"EnableCapture": true, "InitialSamplingPercentage": percent,
                "DestinationS3Uri": to, "CaptureOptions": modes,
                "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                             "JsonContentTypes": ["application/json", "application/jsonlines"]}});
        }
        client
            .call("CreateEndpointConfig", &config)
            .map_err(service_error)?;
        let exists = client
            .call("DescribeEndpoint", &json!({"EndpointName": args.endpoint}))
            .is_ok();
        let op = if exists {
            "UpdateEndpoint"
        } else {
            "CreateEndpoint"
        };
        client
            .call(
                op,
                &json!({"EndpointName": args.endpoint, "EndpointConfigName": config_name}),
            )
            .map_err(service_error)?;
        if args.no_wait {
            ctx.stdout(&format!(
                "{op} {}: {config_name} (`%endpoint describe {}`)\n",
                args.endpoint, args.endpoint
            ));
            return Ok(());
        }
        wait_in_service(&client, &args.endpoint, &config_name, ctx)?;
        ctx.stdout(&format!(
            "invoke it with %%invoke {} or boto3's sagemaker-runtime client at {}\n",
            args.endpoint, client.endpoint
        ));
        Ok(())
    }
}

/// `%endpoint`: list, describe, change weights, update to a configuration, delete.
pub struct EndpointMagic;

const ENDPOINT_USAGE: &str = "%endpoint list | describe ENDPOINT | weights ENDPOINT VARIANT=WEIGHT … | update ENDPOINT --config CONFIG | delete ENDPOINT";

impl Magic for EndpointMagic {
    fn name(&self) -> &str {
        "endpoint"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "List, describe, re-weight, update or delete endpoints."
    }
    fn help(&self) -> String {
        format!(
            "{ENDPOINT_USAGE}\n\n\
             list: every endpoint with its status. describe: DescribeEndpoint's answer (variants'\n\
             weights and instance counts, capture status, failure reason). weights: changes the\n\
             variants' weights live (UpdateEndpointWeightsAndCapacities). update: switches the\n\
             endpoint to another endpoint configuration without dropping a request. delete: the\n\
             endpoint stops serving (its models and configurations stay).\n\n\
             Example:\n    %endpoint weights churn blue=1 green=3"
        )
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let argv = call.argv()?;
        let usage = || MagicError::usage("endpoint", format!("usage: {ENDPOINT_USAGE}"));
        let (command, rest) = argv.split_first().ok_or_else(usage)?;
        let client = connect()?;
        let call_api = |op: &str, input: Value| client.call(op, &input).map_err(service_error);
        match (command.as_str(), rest) {
            ("list", []) => {
                let all = call_api("ListEndpoints", json!({}))?;
                let rows: Vec<Vec<String>> = all["Endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        vec![
                            field(e, "EndpointName"),
                            field(e, "EndpointStatus"),
                            time_text(&e["CreationTime"]),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    ctx.stdout("no endpoints (`%deploy ENDPOINT --model JOB` makes one)\n");
                } else {
                    ctx.display(
                        frame_bundle(
                            &listing(&["EndpointName", "EndpointStatus", "CreationTime"], &rows)?,
                            100,
                        ),
                        None,
                    );
                }
            }
            ("describe", [name]) => {
                let e = call_api("DescribeEndpoint", json!({"EndpointName": name}))?;
                ctx.display(endpoint_view(&e), None);
                ctx.display(described(&e), None);
            }
            ("weights", [name, changes @ ..]) if !changes.is_empty() => {
                let mut desired = Vec::new();
                for c in changes {
                    let (v, w) = c.split_once('=').ok_or_else(usage)?;
                    let w: f64 = w.parse().map_err(|_| {
                        MagicError::usage("endpoint", format!("{c}: the weight must be a number"))
                    })?;
                    desired.push(json!({"VariantName": v, "DesiredWeight": w}));
                }
                call_api(
                    "UpdateEndpointWeightsAndCapacities",
                    json!({"EndpointName": name, "DesiredWeightsAndCapacities": desired}),
                )?;
                let e = call_api("DescribeEndpoint", json!({"EndpointName": name}))?;
                ctx.display(endpoint_view(&e), None);
            }
            ("update", [name, flag, config]) if flag == "--config" => {
                call_api(
                    "UpdateEndpoint",
                    json!({"EndpointName": name, "EndpointConfigName": config}),
                )?;
                wait_in_service(&client, name, config, ctx)?;
            }
            ("delete", [name]) => {
                call_api("DeleteEndpoint", json!({"EndpointName": name}))?;
                ctx.stdout(&format!("endpoint {name} deleted\n"));
            }
            _ => return Err(usage()),
        }
        Ok(())
    }
}

#[derive(Parser, Debug)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct InvokeArgs {
    endpoint: String,
    #[arg(long)]
    target_variant: Option<String>,
    #[arg(long)]
    content_type: Option<String>,
    #[arg(long)]
    accept: Option<String>,
    /// Send a frame (as CSV with its header) or a file instead of the cell.
    #[arg(long)]
    data: Option<String>,
    /// Keep the answer as a frame.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    #[arg(long)]
    inference_id: Option<String>,
    #[arg(long)]
    custom_attributes: Option<String>,
}

/// The content type a payload looks like: JSON, JSON Lines, else CSV.
fn sniff(body: &str) -> &'static str {
    let t = body.trim();
    if (t.starts_with('{') || t.starts_with('[')) && serde_json::from_str::<Value>(t).is_ok() {
        return "application/json";
    }
    let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty()
        && lines
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v.is_object() || v.is_array()))
    {
        return "application/jsonlines";
    }
    "text/csv"
}

/// `%%invoke`: the cell (or a frame) sent to an endpoint, the answer shown as a table.
pub struct InvokeMagic;

impl Magic for InvokeMagic {
    fn name(&self) -> &str {
        "invoke"
    }
    fn forms(&self) -> &[MagicForm] {
        &[MagicForm::Cell, MagicForm::Line]
    }
    fn summary(&self) -> &str {
        "Call an endpoint with the cell's payload (or a frame) and show its answer."
    }
    fn help(&self) -> String {
        "%%invoke ENDPOINT [--target-variant V] [--content-type T] [--accept T] [-o FRAME]\n\
         %invoke ENDPOINT --data FRAME|FILE [options]\n\n\
         Sends the cell as InvokeEndpoint's body (CSV rows, SageMaker's {\"instances\": […]} JSON\n\
         or JSON Lines; the content type is guessed from the payload unless given), or a frame as\n\
         CSV with its header (its columns matched to the model's by name). The answer is shown as\n\
         a table (JSON unless --accept says otherwise) and kept with -o. --target-variant sends\n\
         the request to one variant, as X-Amzn-SageMaker-Target-Variant does.\n\n\
         Example:\n    %%invoke churn -o answers\n    5.1,3.5,1.4,0.2\n    6.7,3.0,5.2,2.3"
            .into()
    }
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        let args: InvokeArgs = parse_args("invoke", call.argv()?)?;
        if let Some(name) = &args.output {
            rustmaker_magics::frames::check_name(name)?;
        }
        let (body, guessed) = match &args.data {
            Some(source) => {
                if !call.body.trim().is_empty() {
                    return Err(MagicError::usage(
                        "invoke",
                        "give the payload in the cell or with --data, not both",
                    ));
                }
                match ctx.frames().get(source) {
                    Ok(frame) => (frame_csv(frame, true)?, "text/csv".to_owned()),
                    Err(_) => {
                        let bytes = std::fs::read(source).map_err(|e| {
                            MagicError::Data(format!("`{source}` is neither a frame (`%frames` lists them) nor a readable file: {e}"))
                        })?;
                        let guess = sniff(&String::from_utf8_lossy(&bytes)).to_owned();
                        (bytes, guess)
                    }
                }
            }
            None if call.body.trim().is_empty() => return Err(MagicError::usage(
                "invoke",
                "the cell is the payload: write rows under %%invoke ENDPOINT, or give --data FRAME",
            )),
            None => (
                call.body.trim().as_bytes().to_vec(),
                sniff(&call.body).to_owned(),
            ),
        };
        let options = InvokeOptions {
            content_type: args.content_type.clone().unwrap_or(guessed),
            accept: Some(
                args.accept
                    .clone()
                    .unwrap_or_else(|| "application/json".into()),
            ),
            target_variant: args.target_variant.clone(),
            custom_attributes: args.custom_attributes.clone(),
            inference_id: args.inference_id.clone(),
        };
        let client = connect()?;
        let answer = client
            .invoke(&args.endpoint, body, &options)
            .map_err(service_error)?;
        ctx.stdout(&format!("answered by variant {}\n", answer.variant));
        match frame_of_answer(&answer.body, &answer.content_type) {
            Ok(frame) => {
                ctx.display(frame_bundle(&frame, 20), None);
                if let Some(name) = &args.output {
                    ctx.frames().insert(name, frame)?;
                }
            }
            Err(e) if args.output.is_some() => return Err(e),
            Err(_) => ctx.display(
                MimeBundle::text(String::from_utf8_lossy(&answer.body).into_owned()),
                None,
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_recognised() {
        assert_eq!(sniff("1,2,3\n4,5,6"), "text/csv");
        assert_eq!(sniff("{\"instances\": [[1, 2]]}"), "application/json");
        assert_eq!(sniff("[1, 2]"), "application/json");
        assert_eq!(sniff("{\"a\": 1}\n{\"a\": 2}"), "application/jsonlines");
        assert_eq!(sniff("x,y\n1,{"), "text/csv");
    }

    #[test]
    fn variant_specs() {
        let args = |model: Option<&str>, v: &[&str]| {
            DeployArgs::try_parse_from(
                ["%deploy", "ep"]
                    .into_iter()
                    .chain(model.map(|m| ["--model", m]).into_iter().flatten())
                    .chain(v.iter().flat_map(|s| ["--variant", s])),
            )
            .unwrap()
        };
        assert_eq!(
            variants(&args(Some("job"), &[])).unwrap(),
            vec![("AllTraffic".into(), "job".into(), 1.0)]
        );
        assert_eq!(
            variants(&args(None, &["blue=a:3", "green=/m/model.tar.gz"])).unwrap(),
            vec![
                ("blue".into(), "a".into(), 3.0),
                ("green".into(), "/m/model.tar.gz".into(), 1.0)
            ]
        );
        for bad in [
            args(Some("job"), &["b=a:1"]),
            args(None, &[]),
            args(None, &["nomodel"]),
            args(None, &["=a:1"]),
        ] {
            let e = variants(&bad).unwrap_err();
            assert!(matches!(e, MagicError::Usage { .. }), "{e:?}");
        }
    }

    #[test]
    fn generated_names_fit_sagemaker() {
        let n = unique_name(&"x".repeat(80));
        assert!(n.len() <= 63, "{n}");
        rustmaker_sagemaker::check_name(&n, rustmaker_sagemaker::Resource::Model).unwrap();
    }
}
