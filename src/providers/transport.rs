//! The one HTTP transport of the media vendors: an adapter describes a call as a
//! [`VendorRequest`] (pure data, no secret in it), the transport sends it with the channel's key
//! and the configured timeouts, and reads the answer as JSON: a failure status becomes
//! [`ProviderError::Status`] with the vendor's own error message (the adapter reads its error
//! body; the key is never part of it), a success that is not a JSON object a
//! [`ProviderError::Decode`]. Failing over to another channel and cooling a failing one off
//! happen above it, in the task engine and `channels::health`.

use std::time::Duration;

use serde_json::Value;

use super::ProviderError;
use crate::channels::Channel;
use crate::vendor::Vendor;

/// How long a poll (a task query) may take.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP method of a vendor call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// How the channel's key travels (`Authorization: <scheme> <key>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `Authorization: Token <key>` (Vidu).
    Token,
}

impl Auth {
    /// The `Authorization` header value for a key.
    pub fn header_value(self, key: &str) -> String {
        match self {
            Auth::Bearer => format!("Bearer {key}"),
            Auth::Token => format!("Token {key}"),
        }
    }
}

/// One vendor call as an adapter builds it: everything but the key.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorRequest {
    pub method: Method,
    pub url: String,
    pub auth: Auth,
    /// Extra headers (`X-DashScope-Async: enable`).
    pub headers: Vec<(&'static str, &'static str)>,
    /// A JSON body (POST).
    pub body: Option<Value>,
}

impl VendorRequest {
    /// A GET of `url`.
    pub fn get(url: String, auth: Auth) -> VendorRequest {
        VendorRequest {
            method: Method::Get,
            url,
            auth,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST of `body` to `url`.
    pub fn post(url: String, auth: Auth, body: Value) -> VendorRequest {
        VendorRequest {
            method: Method::Post,
            url,
            auth,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    /// With one more header.
    pub fn header(mut self, name: &'static str, value: &'static str) -> VendorRequest {
        self.headers.push((name, value));
        self
    }
}

/// Reads a vendor's error body (`None`: the body says nothing usable).
pub type ErrorReader<'a> = &'a (dyn Fn(&Value) -> Option<String> + Sync);

/// The shared HTTP client and the configured vendor timings.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    /// First poll delay and the longest one (adapters may use their own).
    pub poll_delays: (Duration, Duration),
    /// How long creating a vendor task may take before the channel counts as failed.
    pub submit_timeout: Duration,
}

impl Transport {
    pub fn new(
        http: reqwest::Client,
        poll_delays: (Duration, Duration),
        submit_timeout: Duration,
    ) -> Transport {
        Transport {
            http,
            poll_delays,
            submit_timeout,
        }
    }

    /// Send `request` with the channel's key; the answer as a JSON object.
    pub async fn call(
        &self,
        vendor: Vendor,
        channel: &Channel,
        request: VendorRequest,
        timeout: Duration,
        error_reader: ErrorReader<'_>,
    ) -> Result<Value, ProviderError> {
        let mut builder = match request.method {
            Method::Get => self.http.get(&request.url),
            Method::Post => self.http.post(&request.url),
        }
        .header(
            reqwest::header::AUTHORIZATION,
            request.auth.header_value(channel.api_key.expose()),
        )
        .timeout(timeout);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(ProviderError::from_reqwest)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(ProviderError::from_reqwest)?;
        read_json(vendor, status, &text, error_reader)
    }
}

/// A vendor's answer as a JSON object: a failure status keeps the vendor's message (read by
/// `error_reader`, else `HTTP <status>`); a success must be a JSON object.
pub fn read_json(
    vendor: Vendor,
    status: u16,
    text: &str,
    error_reader: ErrorReader<'_>,
) -> Result<Value, ProviderError> {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        return Err(ProviderError::Status {
            status,
            message: error_reader(&body).unwrap_or_else(|| format!("HTTP {status}")),
        });
    }
    if !body.is_object() {
        return Err(ProviderError::Decode(format!(
            "{} sent a non-JSON answer",
            vendor.as_str()
        )));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_and_message(body: &Value) -> Option<String> {
        let code = body.get("code").and_then(Value::as_str)?;
        Some(format!(
            "{code}: {}",
            body["message"].as_str().unwrap_or("")
        ))
    }

    #[test]
    fn answers_are_read_with_the_vendors_error_kept() {
        let ok = read_json(Vendor::Vidu, 200, r#"{"task_id":"1"}"#, &code_and_message).unwrap();
        assert_eq!(ok["task_id"], "1");
        let err = read_json(
            Vendor::Vidu,
            400,
            r#"{"code":"BadRequest","message":"prompt too long"}"#,
            &code_and_message,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Status { status: 400, message } if message == "BadRequest: prompt too long"),
            "{err:?}"
        );
        let err = read_json(
            Vendor::Vidu,
            502,
            "<html>bad gateway</html>",
            &code_and_message,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Status { status: 502, message } if message == "HTTP 502"),
            "{err:?}"
        );
        let err = read_json(Vendor::Ark, 200, "[1]", &code_and_message).unwrap_err();
        assert!(matches!(err, ProviderError::Decode(_)), "{err:?}");
    }

    #[test]
    fn auth_header_values() {
        assert_eq!(Auth::Bearer.header_value("k"), "Bearer k");
        assert_eq!(Auth::Token.header_value("k"), "Token k");
    }
}
