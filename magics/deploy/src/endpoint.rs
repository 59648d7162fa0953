//! An endpoint served in process: its production variants' models loaded once, each request
//! routed to a variant, read in its content type, answered in its accept type, and captured
//! when sampled. Many threads invoke one endpoint at once; weights change live.

use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use rustmaker_magics::services::ServedModel;

use crate::capture::{CaptureConfig, CaptureWriter, Exchange, Rolling};
use crate::payload::{self, Format};
use crate::variants::{Draws, Weights};
use crate::DeployError;

/// InvokeEndpoint's limit on a request body, as SageMaker's.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// A production variant to serve.
pub struct VariantSpec {
    pub name: String,
    pub model: Arc<dyn ServedModel>,
    pub weight: f64,
    /// `InitialInstanceCount`: how many requests the variant's model answers at once.
    pub instances: usize,
}

/// One request, as `InvokeEndpoint` sends it.
#[derive(Debug, Clone, Default)]
pub struct Invocation<'a> {
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub target_variant: Option<&'a str>,
    pub inference_id: Option<&'a str>,
    pub custom_attributes: Option<&'a str>,
}

/// The answer and the variant that gave it (`x-Amzn-Invoked-Production-Variant`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub body: Vec<u8>,
    pub content_type: String,
    pub variant: String,
}

/// A request that failed, in the runtime's two kinds: the request itself was wrong
/// (`ValidationError`), or the model could not answer it (`ModelError`, with its message).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Model(String),
}

struct Variant {
    name: String,
    model: Arc<dyn ServedModel>,
    workers: Workers,
    capture: Option<Mutex<CaptureWriter>>,
}

/// A variant's instances: a request waits for a free one, as it would queue on SageMaker's.
struct Workers {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Workers {
    fn new(count: usize) -> Workers {
        Workers {
            free: Mutex::new(count.max(1)),
            freed: std::sync::Condvar::new(),
        }
    }

    fn run<T>(&self, work: impl FnOnce() -> T) -> T {
        let mut free = self.free.lock().expect("never poisoned");
        while *free == 0 {
            free = self.freed.wait(free).expect("never poisoned");
        }
        *free -= 1;
        drop(free);
        // Given back even if the model panics.
        struct Release<'a>(&'a Workers);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.free.lock().expect("never poisoned") += 1;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        work()
    }
}

/// Capture settings and the last failure to write, which `DescribeEndpoint` reports.
struct Capture {
    config: CaptureConfig,
    failure: Mutex<Option<String>>,
}

pub struct Endpoint {
    name: String,
    variants: Vec<Variant>,
    weights: RwLock<Weights>,
    capture: Option<Capture>,
    draws: Draws,
}

impl Endpoint {
    /// Captures go to the local folder `capture.destination`; an `s3://` destination is the
    /// caller's to upload from a local spool, so it is refused here.
    pub fn new(
        name: &str,
        variants: Vec<VariantSpec>,
        capture: Option<CaptureConfig>,
        rolling: Rolling,
    ) -> Result<Endpoint, DeployError> {
        let weights = Weights::new(
            &variants
                .iter()
                .map(|v| (v.name.clone(), v.weight))
                .collect::<Vec<_>>(),
        )?;
        if let Some(c) = &capture {
            if c.destination.starts_with("s3://") {
                return Err(DeployError::Config(format!(
                    "{}: give the capture's local folder here; s3:// destinations are spooled and uploaded by the service",
                    c.destination
                )));
            }
        }
        let variants = variants
            .into_iter()
            .map(|v| Variant {
                capture: capture.as_ref().map(|c| {
                    Mutex::new(CaptureWriter::new(
                        c.destination.as_ref(),
                        name,
                        &v.name,
                        rolling,
                    ))
                }),
                name: v.name,
                model: v.model,
                workers: Workers::new(v.instances),
            })
            .collect();
        Ok(Endpoint {
            name: name.to_owned(),
            variants,
            weights: RwLock::new(weights),
            capture: capture.map(|config| Capture {
                config,
                failure: Mutex::new(None),
            }),
            draws: Draws::new(seed()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Serves one request at `now`.
    pub fn invoke(&self, call: &Invocation, now: DateTime<Utc>) -> Result<Answer, InvokeError> {
        if call.body.len() > MAX_PAYLOAD_BYTES {
            return Err(InvokeError::Validation(format!(
                "the request body is {} bytes; InvokeEndpoint takes at most {MAX_PAYLOAD_BYTES} (6 MB): send fewer rows a request, or use a batch transform",
                call.body.len()
            )));
        }
        let index = {
            let weights = self.weights.read().expect("weights are never poisoned");
            weights
                .route(call.target_variant, self.draws.unit())
                .map_err(|e| InvokeError::Validation(e.to_string()))?
        };
        let variant = &self.variants[index];
        let answered = variant.workers.run(|| answer(variant.model.as_ref(), call));
        if let (Some(capture), Some(writer), Ok(answer)) =
            (&self.capture, &variant.capture, &answered)
        {
            if capture.config.sampled(self.draws.unit()) {
                let line = capture.config.record(&Exchange {
                    request_type: call.content_type,
                    request: call.body,
                    response_type: Some(&answer.1),
                    response: &answer.0,
                    inference_id: call.inference_id,
                    custom_attributes: call.custom_attributes,
                    time: now,
                });
                let written = writer
                    .lock()
                    .expect("a capture writer is never poisoned")
                    .write(&line, now);
                // Serving goes on; the failure is reported where DescribeEndpoint reads it.
                *capture.failure.lock().expect("never poisoned") =
                    written.err().map(|e| e.to_string());
            }
        }
        let (body, content_type) = answered.map_err(|e| InvokeError::Model(e.to_string()))?;
        Ok(Answer {
            body,
            content_type,
            variant: variant.name.clone(),
        })
    }

    /// New weights for the named variants (the others keep theirs), all or nothing.
    pub fn set_weights(&self, changes: &[(String, f64)]) -> Result<(), DeployError> {
        let mut weights = self.weights.write().expect("weights are never poisoned");
        let mut next = weights.pairs();
        for (name, weight) in changes {
            match next.iter_mut().find(|(n, _)| n == name) {
                Some(pair) => pair.1 = *weight,
                None => {
                    return Err(DeployError::UnknownVariant {
                        given: name.clone(),
                        known: weights.names().join(", "),
                    })
                }
            }
        }
        *weights = Weights::new(&next)?;
        Ok(())
    }

    /// Each variant's current weight.
    pub fn weights(&self) -> Vec<(String, f64)> {
        self.weights.read().expect("never poisoned").pairs()
    }

    /// Why the last captured record could not be written, if it could not.
    pub fn capture_failure(&self) -> Option<String> {
        self.capture
            .as_ref()
            .and_then(|c| c.failure.lock().expect("never poisoned").clone())
    }

    /// Closes every open capture file now, so that a monitoring run sees every record.
    pub fn flush_captures(&self) -> Result<(), DeployError> {
        for v in &self.variants {
            if let Some(w) = &v.capture {
                w.lock().expect("never poisoned").roll()?;
            }
        }
        Ok(())
    }

    /// Closes capture files open longer than their rolling age (for a timer).
    pub fn roll_captures(&self, now: DateTime<Utc>) -> Result<(), DeployError> {
        for v in &self.variants {
            if let Some(w) = &v.capture {
                w.lock().expect("never poisoned").roll_if_old(now)?;
            }
        }
        Ok(())
    }
}

/// The answer's body and content type: a script-mode model reads and writes the body itself;
/// a built-in one is scored by [`payload::score`].
fn answer(model: &dyn ServedModel, call: &Invocation) -> Result<(Vec<u8>, String), DeployError> {
    let raw = model.answer_bytes(
        call.body,
        call.content_type.unwrap_or("text/csv"),
        call.accept.unwrap_or(""),
    );
    if let Some(answered) = raw {
        return answered.map_err(|e| DeployError::Payload(e.to_string()));
    }
    let format = Format::of_content_type(call.content_type)?;
    let accept = Format::of_accept(call.accept, format)?;
    let body = payload::score(model, call.body, format, accept)?;
    Ok((body, accept.mime().to_owned()))
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use polars::prelude::{Column, DataFrame};
    use rustmaker_magics::MagicError;

    /// Answers `score` = the sum of its two features, times its factor.
    pub(crate) struct Summer {
        pub(crate) features: Vec<String>,
        pub(crate) factor: f64,
    }

    impl ServedModel for Summer {
        fn features(&self) -> &[String] {
            &self.features
        }
        fn predict(&self, rows: &DataFrame) -> Result<DataFrame, MagicError> {
            let column = |name: &str| -> Result<Vec<f64>, MagicError> {
                let c = rows
                    .column(name)
                    .map_err(|e| MagicError::Data(e.to_string()))?;
                let values = c
                    .f64()
                    .map_err(|_| MagicError::Data(format!("`{name}` must be numeric")))?;
                Ok(values.iter().map(|v| v.unwrap_or(0.0)).collect())
            };
            let (a, b) = (column("a")?, column("b")?);
            let score: Vec<f64> = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x + y) * self.factor)
                .collect();
            DataFrame::new(rows.height(), vec![Column::new("score".into(), score)])
                .map_err(|e| MagicError::Failed(e.to_string()))
        }
    }

    fn variant(name: &str, factor: f64, weight: f64) -> VariantSpec {
        VariantSpec {
            name: name.into(),
            model: Arc::new(Summer {
                features: vec!["a".into(), "b".into()],
                factor,
            }),
            weight,
            instances: 1,
        }
    }

    fn call(body: &[u8]) -> Invocation<'_> {
        Invocation {
            body,
            content_type: Some("text/csv"),
            ..Invocation::default()
        }
    }

    #[test]
    fn requests_are_answered_by_the_routed_variant_and_captured() {
        let dir = tempfile::tempdir().unwrap();
        let capture = CaptureConfig {
            sampling_percentage: 100,
            destination: dir.path().to_str().unwrap().to_owned(),
            input: true,
            output: true,
            csv_types: vec!["text/csv".into()],
            json_types: vec!["application/json".into()],
        };
        let endpoint = Endpoint::new(
            "sums",
            vec![variant("one", 1.0, 1.0), variant("ten", 10.0, 0.0)],
            Some(capture),
            Rolling::default(),
        )
        .unwrap();
        let now = Utc::now();
        let a = endpoint.invoke(&call(b"1,2\n3,4\n"), now).unwrap();
        assert_eq!(
            (
                a.body.as_slice(),
                a.content_type.as_str(),
                a.variant.as_str()
            ),
            (&b"3.0\n7.0\n"[..], "text/csv", "one")
        );
        let json = Invocation {
            accept: Some("application/json"),
            target_variant: Some("ten"),
            ..call(b"1,2")
        };
        let a = endpoint.invoke(&json, now).unwrap();
        assert_eq!(a.body, br#"{"predictions":[{"score":30.0}]}"#);
        assert_eq!(a.variant, "ten");
        // Weights changed live: all traffic to "ten" now.
        endpoint
            .set_weights(&[("one".into(), 0.0), ("ten".into(), 2.0)])
            .unwrap();
        assert_eq!(endpoint.invoke(&call(b"1,1"), now).unwrap().variant, "ten");
        assert!(endpoint.set_weights(&[("ten".into(), 0.0)]).is_err());
        assert!(endpoint.set_weights(&[("red".into(), 1.0)]).is_err());
        assert_eq!(
            endpoint.weights(),
            [("one".to_string(), 0.0), ("ten".to_string(), 2.0)]
        );
        drop(endpoint);
        let hour = now.format("%Y/%m/%d/%H").to_string();
        let mut lines = Vec::new();
        for v in ["one", "ten"] {
            let folder = dir.path().join("sums").join(v).join(&hour);
            for f in std::fs::read_dir(folder).unwrap() {
                let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
                lines.extend(text.lines().map(|l| (v, l.to_owned())));
            }
        }
        assert_eq!(lines.len(), 3, "every request captured once");
        let (_, first) = lines.iter().find(|(v, _)| *v == "one").unwrap();
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["captureData"]["endpointInput"]["data"], "1,2\n3,4\n");
        assert_eq!(v["captureData"]["endpointOutput"]["data"], "3.0\n7.0\n");
    }

    #[test]
    fn bad_requests_fail_alone_and_the_endpoint_keeps_serving() {
        let endpoint = Endpoint::new(
            "sums",
            vec![variant("one", 1.0, 1.0)],
            None,
            Rolling::default(),
        )
        .unwrap();
        let now = Utc::now();
        let big = vec![b'1'; MAX_PAYLOAD_BYTES + 1];
        for (inv, want) in [
            (
                call(&big),
                InvokeError::Validation("at most 6291456 (6 MB)".into()),
            ),
            (
                Invocation {
                    target_variant: Some("two"),
                    ..call(b"1,2")
                },
                InvokeError::Validation("no variant `two`; its variants are one".into()),
            ),
            (
                call(b"1,2\n3\n"),
                InvokeError::Model("row 2: has 1 values".into()),
            ),
            (
                call(b"1,x\n"),
                InvokeError::Model("`b` must be numeric".into()),
            ),
            (
                Invocation {
                    content_type: Some("image/png"),
                    ..call(b"1,2")
                },
                InvokeError::Model("unsupported content type `image/png`".into()),
            ),
        ] {
            let got = endpoint.invoke(&inv, now).unwrap_err();
            let same_kind = std::mem::discriminant(&got) == std::mem::discriminant(&want);
            let (InvokeError::Validation(w) | InvokeError::Model(w)) = &want;
            assert!(
                same_kind && got.to_string().contains(w.as_str()),
                "{got:?} for {want:?}"
            );
        }
        assert_eq!(endpoint.invoke(&call(b"2,2"), now).unwrap().body, b"4.0\n");
    }

    #[test]
    fn a_capture_that_cannot_be_written_is_reported_and_serving_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-folder");
        std::fs::write(&blocker, "x").unwrap();
        let capture = CaptureConfig {
            sampling_percentage: 100,
            destination: blocker.to_str().unwrap().to_owned(),
            input: true,
            output: true,
            csv_types: vec!["text/csv".into()],
            json_types: vec![],
        };
        let endpoint = Endpoint::new(
            "e",
            vec![variant("v", 1.0, 1.0)],
            Some(capture),
            Rolling::default(),
        )
        .unwrap();
        let a = endpoint.invoke(&call(b"1,2"), Utc::now()).unwrap();
        assert_eq!(a.body, b"3.0\n");
        let failure = endpoint.capture_failure().unwrap();
        assert!(failure.contains("not-a-folder/e/v"), "{failure}");
        let s3 = CaptureConfig {
            destination: "s3://bucket/capture".into(),
            ..CaptureConfig::from_sagemaker(&serde_json::json!({
                "InitialSamplingPercentage": 5,
                "DestinationS3Uri": "s3://bucket/capture",
                "CaptureOptions": [{"CaptureMode": "Input"}],
            }))
            .unwrap()
            .unwrap()
        };
        assert!(Endpoint::new(
            "e",
            vec![variant("v", 1.0, 1.0)],
            Some(s3),
            Rolling::default()
        )
        .is_err());
    }

    #[test]
    fn a_variant_answers_as_many_requests_at_once_as_it_has_instances() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Slow {
            features: Vec<String>,
            now: AtomicUsize,
            most: AtomicUsize,
        }
        impl ServedModel for Slow {
            fn features(&self) -> &[String] {
                &self.features
            }
            fn predict(&self, rows: &DataFrame) -> Result<DataFrame, MagicError> {
                let at = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(at, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(30));
                self.now.fetch_sub(1, Ordering::SeqCst);
                let v = vec![1.0; rows.height()];
                Ok(DataFrame::new(rows.height(), vec![Column::new("score".into(), v)]).unwrap())
            }
        }
        for instances in [1, 3] {
            let model = Arc::new(Slow {
                features: vec!["a".into()],
                now: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
            });
            let endpoint = Endpoint::new(
                "slow",
                vec![VariantSpec {
                    name: "v".into(),
                    model: model.clone(),
                    weight: 1.0,
                    instances,
                }],
                None,
                Rolling::default(),
            )
            .unwrap();
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| endpoint.invoke(&call(b"1"), Utc::now()).unwrap());
                }
            });
            assert_eq!(model.most.load(Ordering::SeqCst), instances);
        }
    }
}
