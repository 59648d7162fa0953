//! AWS Signature Version 4 (HMAC-SHA256), both ways: the service checks every request with
//! it, and `rustmaker instance` signs its own. One canonicalisation serves both, so the two
//! cannot drift apart; boto3's requests check against it in the tests.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The largest difference between a request's X-Amz-Date and the service's clock (AWS: 15 min).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Why a request is refused, with AWS's error code and HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

fn auth_error(code: &'static str, status: u16, message: impl Into<String>) -> AuthError {
    AuthError {
        code,
        status,
        message: message.into(),
    }
}

pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Header names in any case, values as sent.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The string to sign for a request, given which headers are signed.
fn string_to_sign(r: &Request, signed: &[String], amz_date: &str, scope: &str) -> String {
    let mut canonical_headers = String::new();
    for name in signed {
        let values: Vec<String> = r
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = header(r.headers, "x-amz-content-sha256")
        .filter(|v| *v != "UNSIGNED-PAYLOAD")
        .map(str::to_owned)
        .unwrap_or_else(|| sha256_hex(r.body));
    let path = if r.path.is_empty() { "/" } else { r.path };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method,
        uri_encode(&percent_decode(path), true),
        canonical_query(r.query),
        canonical_headers,
        signed.join(";"),
        payload
    );
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
pub struct Credential {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(headers: &[(String, String)]) -> Result<Credential, AuthError> {
    let missing = || {
        auth_error(
            "MissingAuthenticationTokenException",
            403,
            "Missing Authentication Token: sign requests with AWS Signature Version 4",
        )
    };
    let value = header(headers, "authorization").ok_or_else(missing)?;
    let rest = value.strip_prefix(ALGORITHM).ok_or_else(|| {
        auth_error(
            "IncompleteSignatureException",
            400,
            format!("Authorization must use {ALGORITHM}"),
        )
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let incomplete = |what: &str| {
        auth_error(
            "IncompleteSignatureException",
            400,
            format!("Authorization header requires '{what}' parameter"),
        )
    };
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed = signed.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(auth_error(
            "IncompleteSignatureException",
            400,
            "Credential must be KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    }
    Ok(Credential {
        access_key: parts[0].to_owned(),
        date: parts[1].to_owned(),
        region: parts[2].to_owned(),
        service: parts[3].to_owned(),
        signed_headers: signed.split(';').map(|s| s.to_ascii_lowercase()).collect(),
        signature: signature.to_owned(),
    })
}

/// Checks a request signed for `service` against `secret_for(access key)`; returns the key.
pub fn verify(
    r: &Request,
    service: &str,
    now: chrono::DateTime<chrono::Utc>,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<String, AuthError> {
    let c = parse_authorization(r.headers)?;
    let secret = secret_for(&c.access_key).ok_or_else(|| {
        auth_error(
            "UnrecognizedClientException",
            400,
            "The security token included in the request is invalid.",
        )
    })?;
    if c.service != service {
        return Err(auth_error(
            "InvalidSignatureException",
            400,
            format!("Credential should be scoped to correct service: '{service}'."),
        ));
    }
    if !c.signed_headers.iter().any(|h| h == "host") {
        return Err(auth_error(
            "InvalidSignatureException",
            400,
            "'Host' must be a signed header",
        ));
    }
    let amz_date = header(r.headers, "x-amz-date")
        .ok_or_else(|| auth_error("IncompleteSignatureException", 400, "X-Amz-Date is missing"))?;
    let when = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            auth_error(
                "IncompleteSignatureException",
                400,
                format!("X-Amz-Date `{amz_date}` is not YYYYMMDDTHHMMSSZ"),
            )
        })?
        .and_utc();
    if (now - when).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(auth_error(
            "InvalidSignatureException",
            400,
            format!("Signature expired: {amz_date} is now earlier than or later than {} (15 minutes of skew are allowed); check this machine's clock", now.format("%Y%m%dT%H%M%SZ")),
        ));
    }
    if !amz_date.starts_with(&c.date) {
        return Err(auth_error(
            "InvalidSignatureException",
            400,
            "the credential's date does not match X-Amz-Date",
        ));
    }
    let scope = format!("{}/{}/{}/aws4_request", c.date, c.region, c.service);
    let to_sign = string_to_sign(r, &c.signed_headers, amz_date, &scope);
    let key = signing_key(&secret, &c.date, &c.region, &c.service);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(to_sign.as_bytes());
    let given = hex::decode(&c.signature).unwrap_or_default();
    // verify_slice compares in constant time.
    mac.verify_slice(&given).map_err(|_| {
        auth_error(
            "InvalidSignatureException",
            400,
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        )
    })?;
    Ok(c.access_key)
}

/// Signs a request: returns the headers to add (X-Amz-Date, Authorization).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let mut all: Vec<(String, String)> = headers.to_vec();
    all.push(("x-amz-date".into(), amz_date.clone()));
    let mut signed: Vec<String> = all.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    signed.sort();
    signed.dedup();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let r = Request {
        method,
        path,
        query,
        headers: &all,
        body,
    };
    let to_sign = string_to_sign(&r, &signed, &amz_date, &scope);
    let signature = hex::encode(hmac(
        &signing_key(secret, date, region, service),
        to_sign.as_bytes(),
    ));
    vec![
        ("x-amz-date".into(), amz_date),
        (
            "authorization".into(),
            format!(
                "{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={}, Signature={signature}",
                signed.join(";")
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published example (sig-v4 test suite, "get-vanilla").
    #[test]
    fn matches_the_aws_test_suite() {
        let headers = vec![
            ("Host".to_owned(), "example.amazonaws.com".to_owned()),
            ("X-Amz-Date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let r = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let signed = vec!["host".to_owned(), "x-amz-date".to_owned()];
        let to_sign = string_to_sign(
            &r,
            &signed,
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
        );
        assert_eq!(
            to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
        );
        assert_eq!(
            hex::encode(hmac(&key, to_sign.as_bytes())),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn sign_then_verify_and_refuse_tampering() {
        let now = chrono::Utc::now();
        let base = vec![
            ("host".to_owned(), "127.0.0.1:8080".to_owned()),
            (
                "x-amz-target".to_owned(),
                "SageMaker.ListNotebookInstances".to_owned(),
            ),
        ];
        let body = b"{}";
        let mut headers = base.clone();
        headers.extend(sign(
            "POST",
            "/",
            "",
            &base,
            body,
            "AKID",
            "secret",
            "us-east-1",
            "sagemaker",
            now,
        ));
        let secret = |k: &str| (k == "AKID").then(|| "secret".to_owned());
        let r = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        assert_eq!(verify(&r, "sagemaker", now, secret).unwrap(), "AKID");
        let tampered = Request {
            body: b"{\"x\":1}",
            ..r
        };
        assert_eq!(
            verify(&tampered, "sagemaker", now, secret)
                .unwrap_err()
                .code,
            "InvalidSignatureException"
        );
        let wrong = |k: &str| (k == "AKID").then(|| "other".to_owned());
        let r = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        assert_eq!(
            verify(&r, "sagemaker", now, wrong).unwrap_err().code,
            "InvalidSignatureException"
        );
        assert_eq!(
            verify(&r, "sagemaker", now, |_| None).unwrap_err().code,
            "UnrecognizedClientException"
        );
        let later = now + chrono::Duration::minutes(20);
        assert!(verify(&r, "sagemaker", later, secret)
            .unwrap_err()
            .message
            .contains("Signature expired"));
        let none = Request {
            headers: &base,
            ..r
        };
        assert_eq!(
            verify(&none, "sagemaker", now, secret).unwrap_err().code,
            "MissingAuthenticationTokenException"
        );
    }
}
