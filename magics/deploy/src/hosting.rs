//! The hosting control plane as SageMaker's API has it: models, endpoint configurations and
//! endpoints, kept in a SQLite file (as the request's own fields, so Describe answers with
//! what Create was given) and served by live [`Endpoint`]s. An endpoint is Creating while
//! its models load (on a thread of its own), then InService or Failed with the reason; a
//! restarted service loads every endpoint that was serving. Updating an endpoint builds the
//! new one beside the old and swaps them: requests in flight finish on the old one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension};
use rustmaker_magics::data::ObjectStore;
use rustmaker_magics::services::{CaptureMonitor, ModelLoader, ServedModel};
use rustmaker_sagemaker::Resource;
use serde_json::{json, Value};

use crate::capture::{CaptureConfig, Rolling};
use crate::endpoint::{Answer, Endpoint, Invocation, InvokeError, VariantSpec};
use crate::transform::{self, AssembleWith, BatchStrategy, SplitType};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

/// A refused or failed call, with SageMaker's error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HostingError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Internal(String),
}

impl HostingError {
    pub fn code(&self) -> &'static str {
        match self {
            HostingError::Validation(_) => "ValidationException",
            HostingError::InUse(_) => "ResourceInUse",
            HostingError::Internal(_) => "InternalFailure",
        }
    }
}

fn internal(e: impl std::fmt::Display) -> HostingError {
    HostingError::Internal(e.to_string())
}

/// The kinds of resource, as their names appear in ARNs and in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Model,
    EndpointConfig,
    Endpoint,
    TransformJob,
    MonitoringSchedule,
    MonitoringExecution,
    DataQualityJobDefinition,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::EndpointConfig => "endpoint-config",
            Kind::Endpoint => "endpoint",
            Kind::TransformJob => "transform-job",
            Kind::MonitoringSchedule => "monitoring-schedule",
            Kind::MonitoringExecution => "monitoring-execution",
            Kind::DataQualityJobDefinition => "data-quality-job-definition",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::EndpointConfig => "endpoint configuration",
            Kind::Endpoint => "endpoint",
            Kind::TransformJob => "transform job",
            Kind::MonitoringSchedule => "monitoring schedule",
            Kind::MonitoringExecution => "monitoring execution",
            Kind::DataQualityJobDefinition => "data quality job definition",
        }
    }
}

pub(crate) fn arn(kind: Kind, name: &str) -> String {
    format!(
        "arn:aws:sagemaker:{REGION}:{ACCOUNT}:{}/{}",
        kind.table(),
        name.to_ascii_lowercase()
    )
}

pub(crate) fn now() -> f64 {
    Utc::now().timestamp_millis() as f64 / 1000.0
}

/// What the hosting control plane holds.
pub struct Hosting {
    conn: Mutex<Connection>,
    loader: Arc<dyn ModelLoader>,
    live: RwLock<HashMap<String, Arc<Endpoint>>>,
    rolling: Rolling,
    /// Running transform jobs' stop flags.
    stops: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// What monitoring schedules check captured traffic with (none: schedules are refused).
    pub(crate) monitor: Option<Arc<dyn CaptureMonitor>>,
    /// Where `s3://` capture goes (none: such destinations are refused).
    pub(crate) store: Option<Arc<dyn ObjectStore>>,
    /// Capture files bound for `s3://`, until they are uploaded (`spool.rs`).
    pub(crate) spool: std::path::PathBuf,
    pub(crate) upload_failure: Mutex<Option<String>>,
}

pub(crate) fn name_of(input: &Value, field: &str) -> Result<String, HostingError> {
    let name = input
        .get(field)
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            HostingError::Validation(format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ))
        })?;
    let kind = match field {
        "ModelName" => Resource::Model,
        "EndpointConfigName" => Resource::EndpointConfig,
        "VariantName" => Resource::ProductionVariant,
        "TransformJobName" => Resource::TransformJob,
        "MonitoringScheduleName" => Resource::MonitoringSchedule,
        _ => Resource::Endpoint,
    };
    rustmaker_sagemaker::check_name(name, kind)
        .map_err(|e| HostingError::Validation(format!("{field}: {e}")))?;
    Ok(name.to_owned())
}

impl Hosting {
    /// Opens (or makes) the store at `path`; call [`Hosting::recover`] to serve what it holds.
    pub fn open(path: &Path, loader: Arc<dyn ModelLoader>) -> Result<Hosting, HostingError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(internal)?;
        }
        let conn = Connection::open(path).map_err(internal)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(internal)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS hosting (kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name));",
        )
        .map_err(internal)?;
        Ok(Hosting {
            conn: Mutex::new(conn),
            loader,
            live: RwLock::new(HashMap::new()),
            rolling: Rolling::default(),
            stops: Mutex::new(HashMap::new()),
            monitor: None,
            store: None,
            spool: path.with_file_name("capture-spool"),
            upload_failure: Mutex::new(None),
        })
    }

    /// Lets endpoints capture to `s3://` destinations through `store`.
    pub fn with_store(mut self, store: Arc<dyn ObjectStore>) -> Hosting {
        self.store = Some(store);
        self
    }

    /// Lets monitoring schedules check captured traffic with `monitor`.
    pub fn with_monitor(mut self, monitor: Arc<dyn CaptureMonitor>) -> Hosting {
        self.monitor = Some(monitor);
        self
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, kind: Kind, name: &str) -> Result<Option<Value>, HostingError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM hosting WHERE kind = ?1 AND name = ?2",
                params![kind.table(), name],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?;
        body.map(|b| serde_json::from_str(&b).map_err(internal))
            .transpose()
    }

    pub(crate) fn find(&self, kind: Kind, name: &str) -> Result<Value, HostingError> {
        self.get(kind, name)?.ok_or_else(|| {
            HostingError::Validation(format!(
                "Could not find {} \"{}\".",
                kind.words(),
                arn(kind, name)
            ))
        })
    }

    pub(crate) fn put(&self, kind: Kind, name: &str, body: &Value) -> Result<(), HostingError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO hosting (kind, name, body) VALUES (?1, ?2, ?3)",
                params![kind.table(), name, body.to_string()],
            )
            .map_err(internal)?;
        Ok(())
    }

    pub(crate) fn insert_new(
        &self,
        kind: Kind,
        name: &str,
        body: &Value,
    ) -> Result<(), HostingError> {
        let inserted = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO hosting (kind, name, body) VALUES (?1, ?2, ?3)",
                params![kind.table(), name, body.to_string()],
            )
            .map_err(internal)?;
        if inserted == 0 {
            return Err(HostingError::Validation(format!(
                "Cannot create already existing {} \"{}\".",
                kind.words(),
                arn(kind, name)
            )));
        }
        Ok(())
    }

    pub(crate) fn remove(&self, kind: Kind, name: &str) -> Result<(), HostingError> {
        self.find(kind, name)?;
        self.conn()
            .execute(
                "DELETE FROM hosting WHERE kind = ?1 AND name = ?2",
                params![kind.table(), name],
            )
            .map_err(internal)?;
        Ok(())
    }

    pub(crate) fn all(&self, kind: Kind) -> Result<Vec<Value>, HostingError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT body FROM hosting WHERE kind = ?1 ORDER BY name")
            .map_err(internal)?;
        let rows = stmt
            .query_map(params![kind.table()], |r| r.get::<_, String>(0))
            .map_err(internal)?;
        rows.map(|b| {
            b.map_err(internal)
                .and_then(|b| serde_json::from_str(&b).map_err(internal))
        })
        .collect()
    }

    /// `CreateModel`: the artifact must be a local `model.tar.gz` (or a folder holding one).
    pub fn create_model(&self, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "ModelName")?;
        let url = input
            .pointer("/PrimaryContainer/ModelDataUrl")
            .or_else(|| input.pointer("/Containers/0/ModelDataUrl"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                HostingError::Validation(
                    "PrimaryContainer.ModelDataUrl is required: the model.tar.gz to serve".into(),
                )
            })?;
        let mut body = input.clone();
        body["ModelArn"] = json!(arn(Kind::Model, &name));
        body["CreationTime"] = json!(now());
        body["ModelDataPath"] = json!(url);
        self.insert_new(Kind::Model, &name, &body)?;
        Ok(json!({"ModelArn": arn(Kind::Model, &name)}))
    }

    pub fn describe_model(&self, input: &Value) -> Result<Value, HostingError> {
        let mut m = self.find(Kind::Model, &name_of(input, "ModelName")?)?;
        if let Value::Object(map) = &mut m {
            map.remove("ModelDataPath");
        }
        Ok(m)
    }

    pub fn delete_model(&self, input: &Value) -> Result<Value, HostingError> {
        self.remove(Kind::Model, &name_of(input, "ModelName")?)?;
        Ok(json!({}))
    }

    pub fn list_models(&self) -> Result<Value, HostingError> {
        let models: Vec<Value> = self
            .all(Kind::Model)?
            .iter()
            .map(|m| json!({"ModelName": m["ModelName"], "ModelArn": m["ModelArn"], "CreationTime": m["CreationTime"]}))
            .collect();
        Ok(json!({ "Models": models }))
    }

    /// `CreateEndpointConfig`: its variants' models must exist, its weights serve something,
    /// and its capture settings parse.
    pub fn create_endpoint_config(&self, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "EndpointConfigName")?;
        let variants = input
            .get("ProductionVariants")
            .and_then(Value::as_array)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                HostingError::Validation("ProductionVariants must list at least one variant".into())
            })?;
        let mut pairs = Vec::new();
        for v in variants {
            let variant = name_of(v, "VariantName")?;
            self.find(Kind::Model, &name_of(v, "ModelName")?)?;
            let weight = v
                .get("InitialVariantWeight")
                .map_or(Some(1.0), Value::as_f64)
                .ok_or_else(|| {
                    HostingError::Validation(format!(
                        "variant {variant}: InitialVariantWeight must be a number"
                    ))
                })?;
            pairs.push((variant, weight));
        }
        crate::variants::Weights::new(&pairs)
            .map_err(|e| HostingError::Validation(e.to_string()))?;
        if let Some(capture) = input.get("DataCaptureConfig") {
            CaptureConfig::from_sagemaker(capture)
                .map_err(|e| HostingError::Validation(e.to_string()))?;
        }
        let mut body = input.clone();
        body["EndpointConfigArn"] = json!(arn(Kind::EndpointConfig, &name));
        body["CreationTime"] = json!(now());
        self.insert_new(Kind::EndpointConfig, &name, &body)?;
        Ok(json!({"EndpointConfigArn": arn(Kind::EndpointConfig, &name)}))
    }

    pub fn describe_endpoint_config(&self, input: &Value) -> Result<Value, HostingError> {
        self.find(Kind::EndpointConfig, &name_of(input, "EndpointConfigName")?)
    }

    pub fn delete_endpoint_config(&self, input: &Value) -> Result<Value, HostingError> {
        self.remove(Kind::EndpointConfig, &name_of(input, "EndpointConfigName")?)?;
        Ok(json!({}))
    }

    pub fn list_endpoint_configs(&self) -> Result<Value, HostingError> {
        let configs: Vec<Value> = self
            .all(Kind::EndpointConfig)?
            .iter()
            .map(|c| json!({"EndpointConfigName": c["EndpointConfigName"], "EndpointConfigArn": c["EndpointConfigArn"], "CreationTime": c["CreationTime"]}))
            .collect();
        Ok(json!({ "EndpointConfigs": configs }))
    }

    /// `CreateEndpoint`: recorded as Creating, then served from another thread.
    pub fn create_endpoint(self: &Arc<Self>, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "EndpointName")?;
        let config = name_of(input, "EndpointConfigName")?;
        self.find(Kind::EndpointConfig, &config)?;
        let t = now();
        let body = json!({
            "EndpointName": name,
            "EndpointArn": arn(Kind::Endpoint, &name),
            "EndpointConfigName": config,
            "EndpointStatus": "Creating",
            "CreationTime": t,
            "LastModifiedTime": t,
        });
        self.insert_new(Kind::Endpoint, &name, &body)?;
        self.start(&name, &config);
        Ok(json!({"EndpointArn": arn(Kind::Endpoint, &name)}))
    }

    /// Builds the endpoint of `config` on a thread and puts it in service under `name`.
    fn start(self: &Arc<Self>, name: &str, config: &str) {
        let (me, name, config) = (self.clone(), name.to_owned(), config.to_owned());
        std::thread::spawn(move || {
            let built = me.build(&name, &config);
            let Ok(Some(mut body)) = me.get(Kind::Endpoint, &name) else {
                return; // deleted meanwhile
            };
            match built {
                Ok(endpoint) => {
                    me.live
                        .write()
                        .expect("never poisoned")
                        .insert(name.clone(), Arc::new(endpoint));
                    body["EndpointStatus"] = json!("InService");
                    body["EndpointConfigName"] = json!(config);
                    if let Value::Object(map) = &mut body {
                        map.remove("FailureReason");
                        map.remove("PendingConfigName");
                    }
                }
                Err(reason) => {
                    body["EndpointStatus"] =
                        json!(
                            if me.live.read().expect("never poisoned").contains_key(&name) {
                                // A failed update leaves the old endpoint serving.
                                "InService"
                            } else {
                                "Failed"
                            }
                        );
                    body["FailureReason"] = json!(reason);
                }
            }
            body["LastModifiedTime"] = json!(now());
            let _ = me.put(Kind::Endpoint, &name, &body);
        });
    }

    /// A model's artifact, loaded for serving; the error says which model and file.
    pub(crate) fn load(&self, model: &str) -> Result<Arc<dyn ServedModel>, String> {
        let m = self.find(Kind::Model, model).map_err(|e| e.to_string())?;
        let url = m["ModelDataPath"].as_str().unwrap_or_default();
        let path = if url.starts_with("s3://") {
            // Downloaded once per load, beside the store, as SageMaker copies the artifact in.
            let store = self
                .store
                .as_ref()
                .ok_or_else(|| format!("model {model}: {url}: this service has no S3 access"))?;
            let dir = self.spool.with_file_name("models").join(model);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
            store
                .fetch(url, &dir, None)
                .map_err(|e| format!("model {model}: cannot download {url}: {e}"))?
        } else {
            self.loader
                .locate(url)
                .map_err(|e| format!("model {model}: {e}"))?
        };
        self.loader
            .load(&path)
            .map_err(|e| format!("model {model} ({}) cannot be served: {e}", path.display()))
    }

    fn build(&self, name: &str, config: &str) -> Result<Endpoint, String> {
        let config = self
            .find(Kind::EndpointConfig, config)
            .map_err(|e| e.to_string())?;
        let mut variants = Vec::new();
        for v in config["ProductionVariants"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let served = self.load(v["ModelName"].as_str().unwrap_or_default())?;
            variants.push(VariantSpec {
                name: v["VariantName"].as_str().unwrap_or_default().to_owned(),
                model: served,
                weight: v
                    .get("InitialVariantWeight")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0),
                instances: v
                    .get("InitialInstanceCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
                    .max(1) as usize,
            });
        }
        let capture = match config.get("DataCaptureConfig") {
            Some(c) => CaptureConfig::from_sagemaker(c).map_err(|e| e.to_string())?,
            None => None,
        };
        let capture = capture.map(|c| self.spooled(c)).transpose()?;
        Endpoint::new(name, variants, capture, self.rolling).map_err(|e| e.to_string())
    }

    pub fn describe_endpoint(&self, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "EndpointName")?;
        let mut body = self.find(Kind::Endpoint, &name)?;
        let config = body["EndpointConfigName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let config = self
            .get(Kind::EndpointConfig, &config)?
            .unwrap_or(Value::Null);
        let live = self
            .live
            .read()
            .expect("never poisoned")
            .get(&name)
            .cloned();
        if let Some(endpoint) = &live {
            let counts: HashMap<String, u64> = config["ProductionVariants"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    (
                        v["VariantName"].as_str().unwrap_or_default().to_owned(),
                        v["InitialInstanceCount"].as_u64().unwrap_or(1),
                    )
                })
                .collect();
            body["ProductionVariants"] = endpoint
                .weights()
                .iter()
                .map(|(v, w)| {
                    let count = counts.get(v).copied().unwrap_or(1);
                    json!({"VariantName": v, "CurrentWeight": w, "DesiredWeight": w,
                           "CurrentInstanceCount": count, "DesiredInstanceCount": count})
                })
                .collect();
            if let Some(c) = config.get("DataCaptureConfig") {
                if let Ok(Some(capture)) = CaptureConfig::from_sagemaker(c) {
                    body["DataCaptureConfig"] = json!({
                        "EnableCapture": true,
                        "CaptureStatus": "Started",
                        "CurrentSamplingPercentage": capture.sampling_percentage,
                        "DestinationS3Uri": capture.destination,
                    });
                    let upload = capture
                        .destination
                        .starts_with("s3://")
                        .then(|| self.upload_failure.lock().expect("never poisoned").clone())
                        .flatten();
                    if let Some(failure) = endpoint.capture_failure().or(upload) {
                        body["DataCaptureConfig"]["CaptureFailure"] = json!(failure);
                    }
                }
            }
        }
        Ok(body)
    }

    pub fn list_endpoints(&self) -> Result<Value, HostingError> {
        let endpoints: Vec<Value> = self
            .all(Kind::Endpoint)?
            .iter()
            .map(|e| json!({"EndpointName": e["EndpointName"], "EndpointArn": e["EndpointArn"], "EndpointStatus": e["EndpointStatus"], "CreationTime": e["CreationTime"], "LastModifiedTime": e["LastModifiedTime"]}))
            .collect();
        Ok(json!({ "Endpoints": endpoints }))
    }

    pub fn delete_endpoint(&self, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "EndpointName")?;
        self.remove(Kind::Endpoint, &name)?;
        // Dropping the endpoint closes its capture files.
        self.live.write().expect("never poisoned").remove(&name);
        Ok(json!({}))
    }

    /// `UpdateEndpoint`: the new configuration is loaded beside the serving one, then
    /// swapped in; no request is dropped.
    pub fn update_endpoint(self: &Arc<Self>, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "EndpointName")?;
        let config = name_of(input, "EndpointConfigName")?;
        let mut body = self.find(Kind::Endpoint, &name)?;
        self.find(Kind::EndpointConfig, &config)?;
        if body["EndpointStatus"] != "InService" && body["EndpointStatus"] != "Failed" {
            return Err(HostingError::Validation(format!(
                "Cannot update endpoint \"{}\" while it is {}.",
                arn(Kind::Endpoint, &name),
                body["EndpointStatus"].as_str().unwrap_or("busy")
            )));
        }
        body["EndpointStatus"] = json!("Updating");
        body["PendingConfigName"] = json!(config);
        body["LastModifiedTime"] = json!(now());
        self.put(Kind::Endpoint, &name, &body)?;
        self.start(&name, &config);
        Ok(json!({"EndpointArn": arn(Kind::Endpoint, &name)}))
    }

    /// `UpdateEndpointWeightsAndCapacities`: weights change at once, for every request after.
    pub fn update_weights(&self, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "EndpointName")?;
        self.find(Kind::Endpoint, &name)?;
        let endpoint = self.serving(&name)?;
        let changes: Vec<(String, f64)> = input
            .get("DesiredWeightsAndCapacities")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                HostingError::Validation("DesiredWeightsAndCapacities must list variants".into())
            })?
            .iter()
            .filter_map(|c| {
                Some((
                    c.get("VariantName")?.as_str()?.to_owned(),
                    c.get("DesiredWeight")?.as_f64()?,
                ))
            })
            .collect();
        endpoint
            .set_weights(&changes)
            .map_err(|e| HostingError::Validation(e.to_string()))?;
        Ok(json!({"EndpointArn": arn(Kind::Endpoint, &name)}))
    }

    fn serving(&self, name: &str) -> Result<Arc<Endpoint>, HostingError> {
        self.live
            .read()
            .expect("never poisoned")
            .get(name)
            .cloned()
            .ok_or_else(|| {
                HostingError::Validation(format!(
                    "Endpoint {name} of account {ACCOUNT} is not in service."
                ))
            })
    }

    /// `InvokeEndpoint`, for the runtime.
    pub fn invoke(&self, name: &str, call: &Invocation) -> Result<Answer, InvokeError> {
        let endpoint = self
            .live
            .read()
            .expect("never poisoned")
            .get(name)
            .cloned()
            .ok_or_else(|| {
                InvokeError::Validation(format!("Endpoint {name} of account {ACCOUNT} not found."))
            })?;
        endpoint.invoke(call, Utc::now())
    }

    /// Serves again every endpoint the store says was serving (after a restart).
    pub fn recover(self: &Arc<Self>) -> Result<Vec<String>, HostingError> {
        self.recover_executions()?;
        let mut started = Vec::new();
        for e in self.all(Kind::Endpoint)? {
            let name = e["EndpointName"].as_str().unwrap_or_default().to_owned();
            let config = e["EndpointConfigName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if matches!(
                e["EndpointStatus"].as_str(),
                Some("InService" | "Creating" | "Updating")
            ) {
                // Nothing writes this endpoint's capture yet: files a crash left are mended.
                let capture = self
                    .get(Kind::EndpointConfig, &config)?
                    .and_then(|c| {
                        CaptureConfig::from_sagemaker(c.get("DataCaptureConfig")?).ok()?
                    })
                    .and_then(|c| self.spooled(c).ok());
                if let Some(c) = capture {
                    crate::capture::recover_orphans(&Path::new(&c.destination).join(&name));
                }
                self.start(&name, &config);
                started.push(name);
            }
        }
        Ok(started)
    }

    /// The live endpoint `name`, if it is serving.
    pub(crate) fn live_endpoint(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.live.read().expect("never poisoned").get(name).cloned()
    }

    /// Closes capture files open past their age, on every endpoint (for a timer).
    pub fn roll_captures(&self) {
        let now = Utc::now();
        for e in self.live.read().expect("never poisoned").values() {
            let _ = e.roll_captures(now);
        }
    }

    /// `CreateTransformJob`: the model over a local file or folder (`S3Uri`), into the
    /// output folder, on a thread of its own; InProgress, then Completed, Failed or Stopped.
    pub fn create_transform_job(self: &Arc<Self>, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "TransformJobName")?;
        let model = name_of(input, "ModelName")?;
        self.find(Kind::Model, &model)?;
        let bad = |m: String| HostingError::Validation(m);
        let text = |path: &str| {
            input
                .pointer(path)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let source = text("/TransformInput/DataSource/S3DataSource/S3Uri").ok_or_else(|| {
            bad("TransformInput.DataSource.S3DataSource.S3Uri is required: the file or folder to transform".into())
        })?;
        let output = text("/TransformOutput/S3OutputPath").ok_or_else(|| {
            bad("TransformOutput.S3OutputPath is required: the folder the .out files go to".into())
        })?;
        for (what, uri) in [("S3Uri", &source), ("S3OutputPath", &output)] {
            if uri.starts_with("s3://") && self.store.is_none() {
                return Err(bad(format!(
                    "{what} {uri}: this service has no S3 access; give a local path"
                )));
            }
        }
        let choice =
            |path: &str, allowed: &[&str], default: &str| -> Result<String, HostingError> {
                let v = text(path).unwrap_or_else(|| default.to_owned());
                if allowed.contains(&v.as_str()) {
                    Ok(v)
                } else {
                    Err(bad(format!(
                        "{} `{v}` is not one of {}",
                        path.trim_start_matches('/').replace('/', "."),
                        allowed.join(", ")
                    )))
                }
            };
        let split = choice("/TransformInput/SplitType", &["Line", "None"], "None")?;
        let strategy = choice(
            "/BatchStrategy",
            &["SingleRecord", "MultiRecord"],
            "MultiRecord",
        )?;
        let assemble = choice("/TransformOutput/AssembleWith", &["Line", "None"], "None")?;
        let join = choice("/DataProcessing/JoinSource", &["Input", "None"], "None")?;
        let compression = choice("/TransformInput/CompressionType", &["None", "Gzip"], "None")?;
        let max_mb = match input.get("MaxPayloadInMB") {
            None => 6,
            Some(v) => v
                .as_u64()
                .filter(|m| (1..=100).contains(m))
                .ok_or_else(|| {
                    bad(format!(
                        "MaxPayloadInMB is {v}: give a whole number from 1 to 100"
                    ))
                })?,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let options = transform::Options {
            content_type: text("/TransformInput/ContentType"),
            accept: text("/TransformOutput/Accept"),
            split: if split == "Line" {
                SplitType::Line
            } else {
                SplitType::None
            },
            strategy: if strategy == "SingleRecord" {
                BatchStrategy::SingleRecord
            } else {
                BatchStrategy::MultiRecord
            },
            max_payload_bytes: max_mb as usize * 1024 * 1024,
            assemble: if assemble == "Line" {
                AssembleWith::Line
            } else {
                AssembleWith::None
            },
            input_filter: text("/DataProcessing/InputFilter"),
            join_input: join == "Input",
            output_filter: text("/DataProcessing/OutputFilter"),
            stop: Some(stop.clone()),
            gzip: compression == "Gzip",
        };
        let t = now();
        let mut body = input.clone();
        body["TransformJobArn"] = json!(arn(Kind::TransformJob, &name));
        body["TransformJobStatus"] = json!("InProgress");
        body["CreationTime"] = json!(t);
        body["TransformStartTime"] = json!(t);
        self.insert_new(Kind::TransformJob, &name, &body)?;
        self.stops
            .lock()
            .expect("never poisoned")
            .insert(name.clone(), stop);
        let (me, job) = (self.clone(), name.clone());
        std::thread::spawn(move || {
            let name = job;
            let result = me.run_transform(&name, &model, &source, &output, &options);
            me.stops.lock().expect("never poisoned").remove(&name);
            let Ok(Some(mut body)) = me.get(Kind::TransformJob, &name) else {
                return;
            };
            match result {
                Ok(()) => body["TransformJobStatus"] = json!("Completed"),
                Err(crate::DeployError::Stopped) => body["TransformJobStatus"] = json!("Stopped"),
                Err(e) => {
                    body["TransformJobStatus"] = json!("Failed");
                    body["FailureReason"] = json!(e.to_string());
                }
            }
            body["TransformEndTime"] = json!(now());
            let _ = me.put(Kind::TransformJob, &name, &body);
        });
        Ok(json!({"TransformJobArn": arn(Kind::TransformJob, &name)}))
    }

    /// Runs the job; an `s3://` input is downloaded first and an `s3://` output uploaded
    /// after, file by file, so the job's files are never half there.
    fn run_transform(
        &self,
        job: &str,
        model: &str,
        source: &str,
        output: &str,
        options: &transform::Options,
    ) -> Result<(), crate::DeployError> {
        let served = self.load(model).map_err(crate::DeployError::Payload)?;
        let work = self.spool.with_file_name("transform-work").join(job);
        let result = (|| {
            let store = || {
                self.store.as_ref().ok_or_else(|| {
                    crate::DeployError::Config("this service has no S3 access".into())
                })
            };
            let input = if source.starts_with("s3://") {
                store()?
                    .fetch(source, &work.join("input"), None)
                    .map_err(|e| crate::DeployError::Payload(e.to_string()))?
            } else {
                PathBuf::from(source)
            };
            let out = if output.starts_with("s3://") {
                work.join("output")
            } else {
                PathBuf::from(output)
            };
            let written = transform::run(served.as_ref(), &input, &out, options)?;
            if output.starts_with("s3://") {
                let mut console = rustmaker_magics::console::Console::new();
                for file in written {
                    let relative = file.output.strip_prefix(&out).unwrap_or(&file.output);
                    let url = format!("{}/{}", output.trim_end_matches('/'), relative.display());
                    store()?
                        .put(&file.output, &url, &mut console)
                        .map_err(|e| {
                            crate::DeployError::Payload(format!("cannot upload {url}: {e}"))
                        })?;
                }
            }
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&work);
        result
    }

    pub fn describe_transform_job(&self, input: &Value) -> Result<Value, HostingError> {
        self.find(Kind::TransformJob, &name_of(input, "TransformJobName")?)
    }

    pub fn list_transform_jobs(&self) -> Result<Value, HostingError> {
        let jobs: Vec<Value> = self
            .all(Kind::TransformJob)?
            .iter()
            .map(|j| {
                let mut s = json!({"TransformJobName": j["TransformJobName"], "TransformJobArn": j["TransformJobArn"],
                                   "TransformJobStatus": j["TransformJobStatus"], "CreationTime": j["CreationTime"]});
                for k in ["TransformEndTime", "FailureReason"] {
                    if let Some(v) = j.get(k) {
                        s[k] = v.clone();
                    }
                }
                s
            })
            .collect();
        Ok(json!({ "TransformJobSummaries": jobs }))
    }

    /// `StopTransformJob`: the job stops before its next request.
    pub fn stop_transform_job(&self, input: &Value) -> Result<Value, HostingError> {
        let name = name_of(input, "TransformJobName")?;
        let mut body = self.find(Kind::TransformJob, &name)?;
        if let Some(flag) = self.stops.lock().expect("never poisoned").get(&name) {
            flag.store(true, Ordering::SeqCst);
            body["TransformJobStatus"] = json!("Stopping");
            self.put(Kind::TransformJob, &name, &body)?;
        }
        Ok(json!({}))
    }
}
