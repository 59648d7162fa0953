//! A small client of `rustmaker serve`: SageMaker's JSON 1.1 control plane
//! (`X-Amz-Target: SageMaker.<operation>`) and the runtime's `InvokeEndpoint`, each call
//! signed with Signature Version 4, with SageMaker's error shape turned into a message.
//! `rustmaker instance` and the deployment magics use it.

use std::time::Duration;

use serde_json::Value;

use crate::sigv4;

/// Why a call to the service failed; a refusal keeps SageMaker's error code and the HTTP
/// status.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the endpoint {endpoint} is not a URL: {source}")]
    BadEndpoint {
        endpoint: String,
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    #[error("cannot reach the service at {endpoint}: {source}; is `rustmaker serve` running?")]
    Unreachable {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

/// What `InvokeEndpoint` answered.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub body: Vec<u8>,
    pub content_type: String,
    /// `x-Amzn-Invoked-Production-Variant`.
    pub variant: String,
}

/// One call's extra runtime headers (`X-Amzn-SageMaker-*`), as `sagemaker-runtime` sends them.
#[derive(Debug, Clone, Default)]
pub struct InvokeOptions {
    pub content_type: String,
    pub accept: Option<String>,
    pub target_variant: Option<String>,
    pub custom_attributes: Option<String>,
    pub inference_id: Option<String>,
}

pub struct Client {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    http: reqwest::blocking::Client,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Client {
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Client {
        Client::with_timeout(
            endpoint,
            access_key,
            secret_key,
            region,
            Duration::from_secs(60),
        )
    }

    pub fn with_timeout(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
        timeout: Duration,
    ) -> Client {
        Client {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            http: reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Calls `SageMaker.<operation>` with `input`.
    pub fn call(&self, operation: &str, input: &Value) -> Result<Value, ClientError> {
        let headers = vec![
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            ("x-amz-target".to_owned(), format!("SageMaker.{operation}")),
        ];
        let reply = self.post("/", headers, input.to_string().into_bytes())?;
        let value: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if (200..300).contains(&reply.status) {
            return Ok(value);
        }
        Err(refusal(&reply, &value))
    }

    /// `InvokeEndpoint`: `body` to the endpoint's `invocations`.
    pub fn invoke(
        &self,
        endpoint: &str,
        body: Vec<u8>,
        options: &InvokeOptions,
    ) -> Result<Invoked, ClientError> {
        let mut headers = vec![("content-type".to_owned(), options.content_type.clone())];
        let optional = [
            ("accept", &options.accept),
            ("x-amzn-sagemaker-target-variant", &options.target_variant),
            (
                "x-amzn-sagemaker-custom-attributes",
                &options.custom_attributes,
            ),
            ("x-amzn-sagemaker-inference-id", &options.inference_id),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                headers.push((name.to_owned(), v.clone()));
            }
        }
        let reply = self.post(&format!("/endpoints/{endpoint}/invocations"), headers, body)?;
        if !(200..300).contains(&reply.status) {
            let value: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            return Err(refusal(&reply, &value));
        }
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Invoked {
            content_type: header("content-type"),
            variant: header("x-amzn-invoked-production-variant"),
            body: reply.body,
        })
    }

    fn post(
        &self,
        path: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Reply, ClientError> {
        let url: reqwest::Url = format!("{}{path}", self.endpoint)
            .parse()
            .map_err(|source| ClientError::BadEndpoint {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_owned(),
        };
        let mut base = headers;
        base.push(("host".to_owned(), host));
        let signed = sigv4::sign(
            "POST",
            url.path(),
            "",
            &base,
            &body,
            &self.access_key,
            &self.secret_key,
            &self.region,
            "sagemaker",
            chrono::Utc::now(),
        );
        let mut request = self.http.post(url).body(body);
        for (k, v) in base.iter().chain(&signed).filter(|(k, _)| k != "host") {
            request = request.header(k.as_str(), v.as_str());
        }
        let unreachable = |source| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            source,
        };
        let response = request.send().map_err(unreachable)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().map_err(unreachable)?.to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

fn refusal(reply: &Reply, value: &Value) -> ClientError {
    let text = String::from_utf8_lossy(&reply.body);
    let header_code = reply
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned());
    let code = value
        .get("__type")
        .and_then(Value::as_str)
        .map(|c| c.rsplit('#').next().unwrap_or(c).to_owned())
        .or(header_code)
        .unwrap_or_else(|| "Error".to_owned());
    let message = value
        .get("message")
        .or_else(|| value.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| text.into_owned());
    ClientError::Refused {
        status: reply.status,
        code,
        message,
    }
}
