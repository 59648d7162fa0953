//! A small SageMaker JSON 1.1 client for `rustmaker instance`: signs each call with
//! Signature Version 4 and turns SageMaker's error shape into a message.

use serde_json::Value;

use crate::sigv4;

/// Why a call to the instance service failed; a refusal keeps SageMaker's error code and
/// the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the endpoint {endpoint} is not a URL: {source}")]
    BadEndpoint {
        endpoint: String,
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    #[error(
        "cannot reach the instance service at {endpoint}: {source}; is `rustmaker serve` running?"
    )]
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

pub struct Client {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(endpoint: &str, access_key: &str, secret_key: &str, region: &str) -> Client {
        Client {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            http: reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// Calls `SageMaker.<operation>` with `input`.
    pub fn call(&self, operation: &str, input: &Value) -> Result<Value, ClientError> {
        let url: reqwest::Url =
            format!("{}/", self.endpoint)
                .parse()
                .map_err(|source| ClientError::BadEndpoint {
                    endpoint: self.endpoint.clone(),
                    source,
                })?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_owned(),
        };
        let body = input.to_string();
        let base = vec![
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            ("host".to_owned(), host),
            ("x-amz-target".to_owned(), format!("SageMaker.{operation}")),
        ];
        let signed = sigv4::sign(
            "POST",
            "/",
            "",
            &base,
            body.as_bytes(),
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
        let response = request.send().map_err(|source| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            source,
        })?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let code = value
            .get("__type")
            .and_then(Value::as_str)
            .unwrap_or("Error");
        let message = value
            .get("message")
            .or_else(|| value.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or(&text);
        Err(ClientError::Refused {
            status: status.as_u16(),
            code: code.to_owned(),
            message: message.to_owned(),
        })
    }
}
