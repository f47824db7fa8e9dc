//! Basiq's error body and the layer that guarantees every error uses it.
//!
//! Basiq answers every failure with
//! `{"type":"list","correlationId":"…","data":[{"type":"error","code","title","detail","source"}]}`.
//! Handlers return [`ApiError`]; [`normalize`] rewrites anything else with an error status (axum's
//! own 404/405/extractor rejections, which are plain text) into the same shape, so the SDK never
//! meets an error body Basiq would not send.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::ids::correlation_id;

/// One Basiq error, rendered as a single-element error list with a fresh correlation id.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) title: String,
    pub(crate) detail: String,
    pub(crate) source: Option<Value>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &str,
        title: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.to_owned(),
            title: title.to_owned(),
            detail: detail.into(),
            source: None,
        }
    }

    /// Points at the offending field, like Basiq's `source {pointer, parameter}`.
    pub(crate) fn at(mut self, parameter: &str) -> Self {
        self.source = Some(json!({ "pointer": parameter, "parameter": parameter }));
        self
    }

    /// 400 `parameter-not-supplied`.
    pub(crate) fn missing(parameter: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "parameter-not-supplied",
            "Required parameter not supplied",
            detail,
        )
        .at(parameter)
    }

    /// 400 `parameter-not-valid`.
    pub(crate) fn invalid(parameter: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "parameter-not-valid",
            "Parameter value is not valid",
            detail,
        )
        .at(parameter)
    }

    /// 404 `resource-not-found`.
    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "resource-not-found",
            "Requested resource is not found.",
            detail,
        )
    }

    /// 500 `internal-server-error`: the emulator could not do what it should (an answer it
    /// cannot encode).
    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-server-error",
            "Internal Server Error",
            detail,
        )
    }

    /// A malformed request body: 400 `invalid-content` for syntax errors, `parameter-not-valid`
    /// for well-formed bodies with wrongly typed fields.
    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => Self::new(
                StatusCode::BAD_REQUEST,
                "parameter-not-valid",
                "Parameter value is not valid",
                format!("Request body is not valid: {err}"),
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid-content",
                "Invalid content",
                format!("Request body is not valid JSON: {err}"),
            ),
        }
    }

    pub(crate) fn body(&self) -> Value {
        // Basiq always sends `source`, `null` when the error points at nothing.
        let item = json!({
            "type": "error",
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "source": self.source,
        });
        json!({ "type": "list", "correlationId": correlation_id(), "data": [item] })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// Parses a JSON request body, mapping every failure to a Basiq 400 (never a panic, never
/// axum's plain-text rejection).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-content",
            "Invalid content",
            "Request body is required",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::from_json(&e))
}

/// Parses an `application/x-www-form-urlencoded` body (or query string) leniently.
pub(crate) fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-content",
            "Invalid content",
            format!("Form body is not valid: {e}"),
        )
    })
}

/// Middleware: any error response that is not already JSON becomes a Basiq error body.
pub(crate) async fn normalize(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::not_found("The requested resource could not be found."),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method-not-allowed",
            "Method not allowed",
            "The HTTP method is not allowed on this resource.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported-content-type",
            "Unsupported content type",
            text,
        ),
        s if s.is_client_error() => ApiError::new(
            // axum rejects undeserialisable bodies with 422; Basiq says 400.
            if s == StatusCode::UNPROCESSABLE_ENTITY {
                StatusCode::BAD_REQUEST
            } else {
                s
            },
            "parameter-not-valid",
            "Parameter value is not valid",
            if text.is_empty() {
                "Invalid request".to_owned()
            } else {
                text
            },
        ),
        _ => ApiError::new(
            status,
            "internal-server-error",
            "Internal server error",
            if text.is_empty() {
                "Internal server error".to_owned()
            } else {
                text
            },
        ),
    };
    let mut out = err.into_response();
    // Keep the headers the original response carried (e.g. `Allow` on 405).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The fallback for unknown routes.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("The requested resource could not be found.")
}

/// An empty body helper for 204 responses.
pub(crate) fn no_content() -> Response {
    (StatusCode::NO_CONTENT, Body::empty()).into_response()
}
