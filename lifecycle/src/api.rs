//! `rustmaker serve`: the SageMaker API's JSON 1.1 protocol (`X-Amz-Target: SageMaker.<Op>`)
//! for notebook instances and lifecycle configurations, every request checked with Signature
//! Version 4 against the operator's keys (or, for describing and stopping itself, an
//! instance's own key), errors in SageMaker's shape (`__type`, `message`). Pre-signed URLs are
//! opened at `/notebook-instances/NAME/open`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use crate::config::LifecycleConfig;
use crate::instance::{config_arn, Instance};
use crate::manager::{ApiError, CreateRequest, Manager, UpdateRequest};
use rustmaker_deploy::endpoint::{Invocation, InvokeError};
use rustmaker_deploy::hosting::Hosting;
use rustmaker_sagemaker::sigv4;

/// The operator's access keys (access key id → secret).
pub type Keys = BTreeMap<String, String>;

struct App {
    manager: Arc<Manager>,
    hosting: Arc<Hosting>,
    keys: Keys,
}

const JSON_11: &str = "application/x-amz-json-1.1";

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, JSON_11),
            (header::HeaderName::from_static("x-amzn-errortype"), code),
        ],
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response()
}

fn api_error(e: ApiError) -> Response {
    let status = match e {
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e.code(), &e.to_string())
}

pub async fn serve(
    manager: Arc<Manager>,
    hosting: Arc<Hosting>,
    keys: Keys,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    // Quiet endpoints' capture files still reach readers within their rolling age, and each
    // monitoring schedule runs once its hour has come.
    let roller = hosting.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            let h = roller.clone();
            let _ = tokio::task::spawn_blocking(move || {
                h.roll_captures();
                h.upload_captures();
                h.run_due_schedules(chrono::Utc::now());
            })
            .await;
        }
    });
    let app = Arc::new(App {
        manager,
        hosting,
        keys,
    });
    let router = Router::new()
        .route("/", post(handle))
        // Past SageMaker's 6 MB, so that a request a little over gets the runtime's own
        // ValidationError naming the limit.
        .route(
            "/endpoints/{name}/invocations",
            post(invoke).layer(axum::extract::DefaultBodyLimit::max(
                rustmaker_deploy::endpoint::MAX_PAYLOAD_BYTES + (2 << 20),
            )),
        )
        .route("/notebook-instances/{name}/open", get(open))
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
}

pub fn local_addr(l: &tokio::net::TcpListener) -> SocketAddr {
    l.local_addr().expect("a bound listener has an address")
}

async fn open(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let expires = q
        .get("expires")
        .and_then(|e| e.parse::<u64>().ok())
        .unwrap_or(0);
    let signature = q.get("signature").cloned().unwrap_or_default();
    let manager = app.manager.clone();
    let result = tokio::task::spawn_blocking(move || manager.open(&name, expires, &signature))
        .await
        .unwrap_or_else(|e| Err(ApiError::Internal(e.to_string())));
    match result {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(e) => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("This link does not open the notebook instance: {e}\n"),
        )
            .into_response(),
    }
}

/// Checks a request's Signature Version 4 (service `sagemaker`, as boto3's `sagemaker` and
/// `sagemaker-runtime` clients sign) with the secrets `secret_of` finds.
fn check_signature(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    secret_of: impl Fn(&str) -> Option<String>,
) -> Result<String, sigv4::AuthError> {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let request = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    sigv4::verify(&request, "sagemaker", chrono::Utc::now(), secret_of)
}

async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The operator's keys first; an instance's own key (a store lookup) only when none matches.
    let own_instance = std::cell::RefCell::new(None);
    let verified = check_signature(&method, &uri, &headers, &body, |k| {
        if let Some(secret) = app.keys.get(k) {
            return Some(secret.clone());
        }
        let (name, secret) = app.manager.instance_key(k)?;
        *own_instance.borrow_mut() = Some(name);
        Some(secret)
    });
    if let Err(e) = verified {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        return error(status, e.code, &e.message);
    }
    let Some(op) = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("SageMaker."))
        .map(str::to_owned)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "X-Amz-Target must be SageMaker.<Operation>",
        );
    };
    let input: Value = match serde_json::from_slice(if body.is_empty() { b"{}" } else { &body }) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "the body must be a JSON object",
            )
        }
    };
    // An instance's own key may only describe and stop that instance.
    if let Some(instance) = own_instance.into_inner() {
        let target = input.get("NotebookInstanceName").and_then(Value::as_str);
        let allowed = matches!(
            op.as_str(),
            "DescribeNotebookInstance" | "StopNotebookInstance"
        ) && target == Some(instance.as_str());
        if !allowed {
            return error(
                StatusCode::BAD_REQUEST,
                "AccessDeniedException",
                &format!("User: notebook-instance/{instance} is not authorized to perform: sagemaker:{op} on this resource"),
            );
        }
    }
    let manager = app.manager.clone();
    let hosting = app.hosting.clone();
    let result = tokio::task::spawn_blocking(move || {
        hosting_dispatch(&hosting, &op, &input).unwrap_or_else(|| dispatch(&manager, &op, &input))
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::Internal(e.to_string())));
    match result {
        Ok(v) => ([(header::CONTENT_TYPE, JSON_11)], v.to_string()).into_response(),
        Err(e) => api_error(e),
    }
}

/// `InvokeEndpoint` as `sagemaker-runtime` sends it: SigV4 with the operator's keys, the
/// payload as the body, the options as headers.
async fn invoke(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = check_signature(&method, &uri, &headers, &body, |k| app.keys.get(k).cloned()) {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        return error(status, e.code, &e.message);
    }
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, accept) = (header("content-type"), header("accept"));
    let target = header("x-amzn-sagemaker-target-variant");
    let inference_id = header("x-amzn-sagemaker-inference-id");
    let attributes = header("x-amzn-sagemaker-custom-attributes");
    let hosting = app.hosting.clone();
    let answered = tokio::task::spawn_blocking(move || {
        hosting.invoke(
            &name,
            &Invocation {
                body: &body,
                content_type: content_type.as_deref(),
                accept: accept.as_deref(),
                target_variant: target.as_deref(),
                inference_id: inference_id.as_deref(),
                custom_attributes: attributes.as_deref(),
            },
        )
    })
    .await
    .unwrap_or_else(|e| Err(InvokeError::Model(e.to_string())));
    match answered {
        Ok(a) => (
            [
                (header::CONTENT_TYPE, a.content_type.to_owned()),
                (
                    header::HeaderName::from_static("x-amzn-invoked-production-variant"),
                    a.variant,
                ),
            ],
            a.body,
        )
            .into_response(),
        Err(InvokeError::Validation(m)) => error(StatusCode::BAD_REQUEST, "ValidationError", &m),
        Err(InvokeError::Model(m)) => error(
            StatusCode::FAILED_DEPENDENCY,
            "ModelError",
            &format!("Received client error (400) from primary with message \"{m}\"."),
        ),
    }
}

/// The hosting operations, or None for an operation that is not one.
fn hosting_dispatch(h: &Arc<Hosting>, op: &str, input: &Value) -> Option<Result<Value, ApiError>> {
    let result = match op {
        "CreateModel" => h.create_model(input),
        "DescribeModel" => h.describe_model(input),
        "DeleteModel" => h.delete_model(input),
        "ListModels" => h.list_models(),
        "CreateEndpointConfig" => h.create_endpoint_config(input),
        "DescribeEndpointConfig" => h.describe_endpoint_config(input),
        "DeleteEndpointConfig" => h.delete_endpoint_config(input),
        "ListEndpointConfigs" => h.list_endpoint_configs(),
        "CreateEndpoint" => h.create_endpoint(input),
        "DescribeEndpoint" => h.describe_endpoint(input),
        "UpdateEndpoint" => h.update_endpoint(input),
        "UpdateEndpointWeightsAndCapacities" => h.update_weights(input),
        "DeleteEndpoint" => h.delete_endpoint(input),
        "ListEndpoints" => h.list_endpoints(),
        "CreateTransformJob" => h.create_transform_job(input),
        "DescribeTransformJob" => h.describe_transform_job(input),
        "ListTransformJobs" => h.list_transform_jobs(),
        "StopTransformJob" => h.stop_transform_job(input),
        "CreateMonitoringSchedule" => h.create_monitoring_schedule(input),
        "DescribeMonitoringSchedule" => h.describe_monitoring_schedule(input),
        "ListMonitoringSchedules" => h.list_monitoring_schedules(input),
        "StopMonitoringSchedule" => h.stop_monitoring_schedule(input),
        "StartMonitoringSchedule" => h.start_monitoring_schedule(input),
        "DeleteMonitoringSchedule" => h.delete_monitoring_schedule(input),
        "ListMonitoringExecutions" => h.list_monitoring_executions(input),
        "CreateDataQualityJobDefinition" => h.create_data_quality_job_definition(input),
        "DescribeDataQualityJobDefinition" => h.describe_data_quality_job_definition(input),
        "DeleteDataQualityJobDefinition" => h.delete_data_quality_job_definition(input),
        "ListDataQualityJobDefinitions" => h.list_data_quality_job_definitions(),
        _ => return None,
    };
    Some(result.map_err(|e| match e {
        rustmaker_deploy::hosting::HostingError::Validation(m) => ApiError::Validation(m),
        rustmaker_deploy::hosting::HostingError::InUse(m) => ApiError::InUse(m),
        rustmaker_deploy::hosting::HostingError::Internal(m) => ApiError::Internal(m),
    }))
}

fn text(input: &Value, field: &str) -> Option<String> {
    input.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn required(input: &Value, field: &str) -> Result<String, ApiError> {
    text(input, field)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::Validation(format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null")))
}

fn strings(input: &Value, field: &str) -> Option<Vec<String>> {
    input.get(field).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

fn hooks(input: &Value, field: &str) -> Vec<String> {
    input
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|h| {
                    h.get("Content")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn describe_instance(i: &Instance) -> Value {
    let mut v = json!({
        "NotebookInstanceArn": i.arn,
        "NotebookInstanceName": i.name,
        "NotebookInstanceStatus": i.status.as_str(),
        "InstanceType": i.instance_type,
        "RoleArn": i.role_arn,
        "CreationTime": i.creation_time,
        "LastModifiedTime": i.last_modified_time,
        "DirectInternetAccess": i.direct_internet_access,
        "VolumeSizeInGB": i.volume_size_gb,
        "RootAccess": i.root_access,
        "PlatformIdentifier": i.platform_identifier,
        "AdditionalCodeRepositories": i.additional_code_repositories,
    });
    if let Some(r) = &i.failure_reason {
        v["FailureReason"] = json!(r);
    }
    if let Some(port) = i.port {
        v["Url"] = json!(format!("127.0.0.1:{port}"));
    }
    if let Some(c) = &i.lifecycle_config {
        v["NotebookInstanceLifecycleConfigName"] = json!(c);
    }
    if let Some(r) = &i.default_code_repository {
        v["DefaultCodeRepository"] = json!(r);
    }
    v
}

fn summary(i: &Instance) -> Value {
    let mut v = describe_instance(i);
    let keep = [
        "NotebookInstanceName",
        "NotebookInstanceArn",
        "NotebookInstanceStatus",
        "Url",
        "InstanceType",
        "CreationTime",
        "LastModifiedTime",
        "NotebookInstanceLifecycleConfigName",
        "DefaultCodeRepository",
        "AdditionalCodeRepositories",
    ];
    if let Value::Object(map) = &mut v {
        map.retain(|k, _| keep.contains(&k.as_str()));
    }
    v
}

fn describe_config(c: &LifecycleConfig) -> Value {
    let hook = |h: &Option<String>| match h {
        Some(content) => json!([{"Content": content}]),
        None => json!([]),
    };
    json!({
        "NotebookInstanceLifecycleConfigArn": config_arn(&c.name),
        "NotebookInstanceLifecycleConfigName": c.name,
        "OnCreate": hook(&c.on_create),
        "OnStart": hook(&c.on_start),
        "CreationTime": c.creation_time,
        "LastModifiedTime": c.last_modified_time,
    })
}

/// Sorting, filtering by time and pagination shared by the two List calls.
fn page(
    input: &Value,
    mut items: Vec<(Value, String, f64, f64, String)>,
    sort_fields: &[&str],
    key: &str,
) -> Result<Value, ApiError> {
    let sort_by = text(input, "SortBy").unwrap_or_else(|| "Name".into());
    if !sort_fields.contains(&sort_by.as_str()) {
        return Err(ApiError::Validation(format!(
            "SortBy `{sort_by}` is not one of {}",
            sort_fields.join(", ")
        )));
    }
    let order = text(input, "SortOrder").unwrap_or_else(|| "Ascending".into());
    if order != "Ascending" && order != "Descending" {
        return Err(ApiError::Validation(format!(
            "SortOrder `{order}` is not Ascending or Descending"
        )));
    }
    let time = |f: &str| input.get(f).and_then(Value::as_f64);
    items.retain(|(_, _, created, modified, _)| {
        time("CreationTimeBefore").is_none_or(|t| *created < t)
            && time("CreationTimeAfter").is_none_or(|t| *created > t)
            && time("LastModifiedTimeBefore").is_none_or(|t| *modified < t)
            && time("LastModifiedTimeAfter").is_none_or(|t| *modified > t)
    });
    match sort_by.as_str() {
        "CreationTime" => items.sort_by(|a, b| a.2.total_cmp(&b.2)),
        "LastModifiedTime" => items.sort_by(|a, b| a.3.total_cmp(&b.3)),
        "Status" => items.sort_by(|a, b| a.4.cmp(&b.4).then(a.1.cmp(&b.1))),
        _ => items.sort_by(|a, b| a.1.cmp(&b.1)),
    }
    if order == "Descending" {
        items.reverse();
    }
    let max = match input.get("MaxResults") {
        None => 100,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=100).contains(&n) => n as usize,
            _ => {
                return Err(ApiError::Validation(
                    "MaxResults must be from 1 to 100".into(),
                ))
            }
        },
    };
    let start = match text(input, "NextToken") {
        None => 0,
        Some(t) => base64::engine::general_purpose::STANDARD
            .decode(&t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| ApiError::Validation("NextToken is not one this service gave".into()))?,
    };
    let end = (start + max).min(items.len());
    let mut out = json!({ key: items.get(start..end).unwrap_or(&[]).iter().map(|i| i.0.clone()).collect::<Vec<_>>() });
    if end < items.len() {
        out["NextToken"] =
            json!(base64::engine::general_purpose::STANDARD.encode(format!("offset:{end}")));
    }
    Ok(out)
}

fn dispatch(m: &Arc<Manager>, op: &str, input: &Value) -> Result<Value, ApiError> {
    let name = || required(input, "NotebookInstanceName");
    let config_name = || required(input, "NotebookInstanceLifecycleConfigName");
    match op {
        "CreateNotebookInstance" => {
            let tags = input
                .get("Tags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|t| (text(t, "Key").unwrap_or_default(), text(t, "Value").unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            let i = m.create(CreateRequest {
                name: name()?,
                instance_type: required(input, "InstanceType")?,
                role_arn: required(input, "RoleArn")?,
                lifecycle_config: text(input, "LifecycleConfigName"),
                volume_size_gb: input.get("VolumeSizeInGB").and_then(Value::as_u64),
                default_code_repository: text(input, "DefaultCodeRepository"),
                additional_code_repositories: strings(input, "AdditionalCodeRepositories").unwrap_or_default(),
                root_access: text(input, "RootAccess"),
                direct_internet_access: text(input, "DirectInternetAccess"),
                platform_identifier: text(input, "PlatformIdentifier"),
                tags,
            })?;
            Ok(json!({"NotebookInstanceArn": i.arn}))
        }
        "DescribeNotebookInstance" => Ok(describe_instance(&m.describe(&name()?)?)),
        "ListNotebookInstances" => {
            let contains = |field: &str, value: Option<&String>| {
                text(input, field).is_none_or(|want| value.is_some_and(|v| v.contains(&want)))
            };
            let status = text(input, "StatusEquals");
            let repo = text(input, "AdditionalCodeRepositoryEquals");
            let items = m
                .instances()?
                .into_iter()
                .filter(|i| {
                    contains("NameContains", Some(&i.name))
                        && status.as_ref().is_none_or(|s| s == i.status.as_str())
                        && contains("NotebookInstanceLifecycleConfigNameContains", i.lifecycle_config.as_ref())
                        && contains("DefaultCodeRepositoryContains", i.default_code_repository.as_ref())
                        && repo.as_ref().is_none_or(|r| i.additional_code_repositories.contains(r))
                })
                .map(|i| (summary(&i), i.name.clone(), i.creation_time, i.last_modified_time, i.status.as_str().to_owned()))
                .collect();
            page(input, items, &["Name", "CreationTime", "Status"], "NotebookInstances")
        }
        "StartNotebookInstance" => m.start(&name()?).map(|_| json!({})),
        "StopNotebookInstance" => m.stop(&name()?).map(|_| json!({})),
        "DeleteNotebookInstance" => m.delete(&name()?).map(|_| json!({})),
        "UpdateNotebookInstance" => {
            let flag = |f: &str| input.get(f).and_then(Value::as_bool).unwrap_or(false);
            m.update(
                &name()?,
                UpdateRequest {
                    instance_type: text(input, "InstanceType"),
                    role_arn: text(input, "RoleArn"),
                    lifecycle_config: text(input, "LifecycleConfigName"),
                    disassociate_lifecycle_config: flag("DisassociateLifecycleConfig"),
                    volume_size_gb: input.get("VolumeSizeInGB").and_then(Value::as_u64),
                    default_code_repository: text(input, "DefaultCodeRepository"),
                    disassociate_default_code_repository: flag("DisassociateDefaultCodeRepository"),
                    additional_code_repositories: strings(input, "AdditionalCodeRepositories"),
                    disassociate_additional_code_repositories: flag("DisassociateAdditionalCodeRepositories"),
                    root_access: text(input, "RootAccess"),
                },
            )
            .map(|_| json!({}))
        }
        "CreatePresignedNotebookInstanceUrl" => {
            if let Some(s) = input.get("SessionExpirationDurationInSeconds") {
                match s.as_u64() {
                    Some(s) if (1800..=43_200).contains(&s) => {}
                    _ => return Err(ApiError::Validation("SessionExpirationDurationInSeconds must be from 1800 to 43200".into())),
                }
            }
            Ok(json!({"AuthorizedUrl": m.presigned_url(&name()?)?}))
        }
        "CreateNotebookInstanceLifecycleConfig" => {
            let c = m.create_config(&config_name()?, &hooks(input, "OnCreate"), &hooks(input, "OnStart"))?;
            Ok(json!({"NotebookInstanceLifecycleConfigArn": config_arn(&c.name)}))
        }
        "DescribeNotebookInstanceLifecycleConfig" => Ok(describe_config(&m.config(&config_name()?)?)),
        "ListNotebookInstanceLifecycleConfigs" => {
            let want = text(input, "NameContains");
            let items = m
                .configs()?
                .into_iter()
                .filter(|c| want.as_ref().is_none_or(|w| c.name.contains(w)))
                .map(|c| {
                    (
                        json!({
                            "NotebookInstanceLifecycleConfigName": c.name,
                            "NotebookInstanceLifecycleConfigArn": config_arn(&c.name),
                            "CreationTime": c.creation_time,
                            "LastModifiedTime": c.last_modified_time,
                        }),
                        c.name.clone(),
                        c.creation_time,
                        c.last_modified_time,
                        String::new(),
                    )
                })
                .collect();
            page(input, items, &["Name", "CreationTime", "LastModifiedTime"], "NotebookInstanceLifecycleConfigs")
        }
        "UpdateNotebookInstanceLifecycleConfig" => m
            .update_config(&config_name()?, &hooks(input, "OnCreate"), &hooks(input, "OnStart"))
            .map(|_| json!({})),
        "DeleteNotebookInstanceLifecycleConfig" => m.delete_config(&config_name()?).map(|_| json!({})),
        other => Err(ApiError::Validation(format!(
            "the operation SageMaker.{other} is not served here (notebook instances, lifecycle configurations, models, endpoint configurations, endpoints and transform jobs are)"
        ))),
    }
}
