//! Request ids: every answer carries `X-Request-Id` (a fresh random id per request), handlers
//! read it as the [`RequestId`] extension and store it with what the request made (the call's
//! usage row, the task), so the call log can show the id the client was answered. A chat
//! completion's id is its request id, so on `…/chat/completions` the id takes the shape the seed
//! and OpenAI give completion ids (`chatcmpl-…`); everywhere else `req_…`.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;

/// The `X-Request-Id` header.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// This request's id (`req_` or `chatcmpl-`, then 24 hex digits).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn fresh(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// The id prefix for a request path.
fn prefix_for(path: &str) -> &'static str {
    if path.ends_with("/chat/completions") {
        "chatcmpl-"
    } else {
        "req_"
    }
}

/// The middleware: an id for the request, echoed on the answer.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = fresh(prefix_for(request.uri().path()));
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_and_shaped() {
        let a = super::fresh(super::prefix_for("/llmage/v1/tasks"));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("req_"));
        assert_ne!(a, super::fresh("req_"));
        for path in ["/v1/chat/completions", "/llmage/v1/chat/completions"] {
            let chat = super::fresh(super::prefix_for(path));
            assert!(chat.starts_with("chatcmpl-") && chat.len() == 33, "{chat}");
        }
    }
}
