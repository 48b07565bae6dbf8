//! Stable error codes for the console's own endpoints (`/api/*`): the JSON error body there
//! carries `code` next to `error`, and the console translates by code (never by matching the
//! English text). The codes are [`ApiError::code`]'s, the one table (OpenAI's spellings where
//! OpenAI has the error). The gateway surface (`/llmage/v1`) keeps the seed's exact `{"error": "…"}`
//! for API-key clients; the console calling it with its session (no `Authorization`) gets the
//! code too.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::api::error::ApiError;

/// The code of an error and its variable part (a field name, a model id), attached to its
/// response by `ApiError::into_response`.
#[derive(Clone, Debug)]
pub struct ErrorCode {
    pub code: &'static str,
    pub detail: Option<String>,
}

impl ErrorCode {
    pub fn of(e: &ApiError) -> ErrorCode {
        let detail = match e {
            ApiError::MissingParameter(d)
            | ApiError::InvalidParameter(d)
            | ApiError::InvalidJson(d)
            | ApiError::ModelNotFound(d)
            | ApiError::NotFound(d)
            | ApiError::NoChannel(d)
            | ApiError::UpstreamFailed(d) => Some(d.clone()),
            ApiError::UpstreamRejected { message, .. } => Some(message.clone()),
            ApiError::RateLimited { retry_after_secs }
            | ApiError::UpstreamBusy { retry_after_secs } => Some(retry_after_secs.to_string()),
            _ => None,
        };
        ErrorCode {
            code: e.code(),
            detail,
        }
    }
}

/// Most bytes of an error body this layer will rewrite (errors are short).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// On `/api/*` and for the console's session: add `code` (and `detail`) to an [`ApiError`] body.
pub async fn add_code(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let console = request.uri().path().starts_with("/api/")
        || (!headers.contains_key(header::AUTHORIZATION)
            && super::auth::has_session_cookie(headers));
    let response = next.run(request).await;
    let Some(found) = response.extensions().get::<ErrorCode>().cloned() else {
        return response;
    };
    if !console {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let out = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut obj)) => {
            obj.insert("code".into(), found.code.into());
            if let Some(detail) = found.detail {
                obj.insert("detail".into(), detail.into());
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            serde_json::Value::Object(obj).to_string().into_bytes()
        }
        _ => bytes.to_vec(),
    };
    Response::from_parts(parts, Body::from(out))
}

#[cfg(test)]
mod tests {
    use crate::api::error::ApiError;

    /// One of every variant; the match below stops compiling when a variant is added, so it
    /// cannot be forgotten here.
    fn every() -> Vec<ApiError> {
        let s = || String::from("x");
        let all = vec![
            ApiError::InvalidApiKey,
            ApiError::MissingParameter(s()),
            ApiError::InvalidParameter(s()),
            ApiError::InvalidJson(s()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::ModelNotFound(s()),
            ApiError::NotFound(s()),
            ApiError::Conflict(s()),
            ApiError::InsufficientBalance,
            ApiError::BalanceShort {
                needed: s(),
                balance: s(),
            },
            ApiError::KeySpendLimit {
                limit: s(),
                spent: s(),
                hold: s(),
            },
            ApiError::RateLimited {
                retry_after_secs: 1,
            },
            ApiError::NoChannel(s()),
            ApiError::UpstreamRejected {
                status: 400,
                message: s(),
            },
            ApiError::UpstreamFailed(s()),
            ApiError::UpstreamTimeout,
            ApiError::UpstreamBusy {
                retry_after_secs: 1,
            },
            ApiError::Unavailable,
            ApiError::NotConfigured(s()),
            ApiError::Internal,
            ApiError::LoginRequired,
            ApiError::Forbidden(s()),
            ApiError::BadCode(s()),
            ApiError::CodeRefused {
                message: s(),
                retry_after_secs: None,
            },
            ApiError::IdempotencyKeyReused(s()),
            ApiError::Timeout(s()),
        ];
        for e in &all {
            match e {
                ApiError::InvalidApiKey
                | ApiError::MissingParameter(_)
                | ApiError::InvalidParameter(_)
                | ApiError::InvalidJson(_)
                | ApiError::PayloadTooLarge { .. }
                | ApiError::ModelNotFound(_)
                | ApiError::NotFound(_)
                | ApiError::Conflict(_)
                | ApiError::InsufficientBalance
                | ApiError::BalanceShort { .. }
                | ApiError::KeySpendLimit { .. }
                | ApiError::RateLimited { .. }
                | ApiError::NoChannel(_)
                | ApiError::UpstreamRejected { .. }
                | ApiError::UpstreamFailed(_)
                | ApiError::UpstreamTimeout
                | ApiError::UpstreamBusy { .. }
                | ApiError::Unavailable
                | ApiError::NotConfigured(_)
                | ApiError::Internal
                | ApiError::LoginRequired
                | ApiError::Forbidden(_)
                | ApiError::BadCode(_)
                | ApiError::CodeRefused { .. }
                | ApiError::IdempotencyKeyReused(_)
                | ApiError::Timeout(_) => {}
            }
        }
        all
    }

    /// The console's translations (`errcode.<code>` in `web/assets/i18n.js`), per language.
    fn console_codes(lang: &str) -> Vec<String> {
        let js = include_str!("../../web/assets/i18n.js");
        let start = js
            .find(&format!("\n  {lang}: {{"))
            .unwrap_or_else(|| panic!("no {lang} table"));
        let section = &js[start + 1..];
        let end = section.find("\n  },").expect("end of the table");
        section[..end]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("'errcode."))
            .filter_map(|l| l.split_once('\''))
            .map(|(code, _)| code.to_owned())
            .collect()
    }

    #[test]
    fn every_code_is_translated_in_both_languages_and_none_is_stale() {
        let codes: std::collections::BTreeSet<&str> = every().iter().map(ApiError::code).collect();
        for lang in ["zh", "en"] {
            let table: std::collections::BTreeSet<String> =
                console_codes(lang).into_iter().collect();
            for code in &codes {
                assert!(
                    table.contains(*code),
                    "errcode.{code} is missing from the console's {lang} table"
                );
            }
            for code in &table {
                assert!(
                    codes.contains(code.as_str()),
                    "errcode.{code} in the {lang} table is no server code"
                );
            }
        }
    }

    #[test]
    fn the_console_body_carries_the_one_code() {
        for e in every() {
            assert_eq!(super::ErrorCode::of(&e).code, e.code());
        }
        assert_eq!(ApiError::InsufficientBalance.code(), "insufficient_quota");
        assert_eq!(
            ApiError::RateLimited {
                retry_after_secs: 1
            }
            .code(),
            "rate_limit_exceeded"
        );
    }
}
