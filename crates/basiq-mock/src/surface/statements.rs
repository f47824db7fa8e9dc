//! `POST /users/{id}/statements`: a real `multipart/form-data` parse (axum's extractor, on
//! `multer`) of `institutionId` and `statement`, answered with a statement job (202).
//!
//! Refusals, in Basiq's format: not multipart → 415 `unsupported-content-type`; a missing part →
//! 400 `parameter-not-supplied`; an empty file → 400 `empty-file`; neither PDF nor CSV → 400
//! `bank-statement-not-supported`; `AU00000` or an unknown institution → 400; a file over
//! [`STATEMENT_MAX_BYTES`] → 413 `payload-too-large`.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::{fresh_id, unsupported_content_type, SurfaceJob, SurfaceJobKind};
use crate::auth::ServerAuth;
use crate::error::ApiError;
use crate::jobs::job_ref;
use crate::logins::{ACCOUNTS, TRANSACTIONS, VERIFY};
use crate::state::AppState;
use crate::users::require_user;

use crate::STATEMENT_MAX_BYTES;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(
        "/users/{user_id}/statements",
        // Room for the form around the largest file, so an oversized file is read far enough
        // to answer Basiq's 413 rather than a cut connection.
        post(upload).layer(DefaultBodyLimit::max(STATEMENT_MAX_BYTES + 256 * 1024)),
    )
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
        format!("The statement file must be at most {STATEMENT_MAX_BYTES} bytes."),
    )
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-content",
            "Invalid content",
            format!("The multipart body is not valid: {}", e.body_text()),
        )
    }
}

struct StatementFile {
    file_name: String,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

async fn upload(
    _auth: ServerAuth,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(unsupported_content_type("multipart/form-data"));
    }
    let mut form = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::invalid("statement", e.body_text()))?;
    let mut institution_id = None;
    let mut file = None;
    let mut oversized = false;
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart_error(&e))? {
        match field.name() {
            Some("institutionId") => {
                institution_id = Some(field.text().await.map_err(|e| multipart_error(&e))?);
            }
            Some("statement") => {
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(str::to_owned);
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                    // Past the limit, keep reading (and dropping) to the end of the body, so the
                    // client finishes sending and reads the 413 instead of a broken pipe.
                    oversized |= bytes.len() + chunk.len() > STATEMENT_MAX_BYTES;
                    if !oversized {
                        bytes.extend_from_slice(&chunk);
                    }
                }
                file = Some(StatementFile {
                    file_name,
                    content_type,
                    bytes,
                });
            }
            // Unknown parts are ignored, as form handlers do.
            _ => {}
        }
    }
    if oversized {
        return Err(too_large());
    }
    let institution_id = institution_id
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("institutionId", "'institutionId' is required."))?;
    let file = file.ok_or_else(|| ApiError::missing("statement", "'statement' is required."))?;
    if file.bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty-file",
            "Empty file",
            "The statement file is empty.",
        )
        .at("statement"));
    }
    let name = file.file_name.to_ascii_lowercase();
    let mime = file
        .content_type
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let pdf = name.ends_with(".pdf") || mime == "application/pdf";
    let csv = name.ends_with(".csv") || mime == "text/csv";
    if !(pdf || csv) || (pdf && !file.bytes.starts_with(b"%PDF-")) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bank-statement-not-supported",
            "Bank statement not supported",
            "The statement must be a PDF or a CSV file.",
        )
        .at("statement"));
    }
    let now = state.now();
    let mut db = state.db();
    require_user(&db, &user_id)?;
    if institution_id == "AU00000" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "institution-not-supported",
            "Institution not supported",
            "Statements cannot be uploaded for the test institution AU00000.",
        )
        .at("institutionId"));
    }
    if !db.connectors.iter().any(|c| c.id == institution_id) {
        return Err(ApiError::invalid(
            "institutionId",
            format!("Institution '{institution_id}' is not known."),
        ));
    }
    let id = fresh_id(&mut db, "statement-job");
    let filter = format!("?filter=institution.id.eq('{institution_id}')");
    let job = SurfaceJob {
        id: id.clone(),
        user_id: Some(user_id.clone()),
        kind: SurfaceJobKind::Statement,
        created: now,
        steps: vec![
            (
                VERIFY,
                time::Duration::seconds(2),
                format!("/users/{user_id}/statements"),
            ),
            (
                ACCOUNTS,
                time::Duration::seconds(4),
                format!("/users/{user_id}/accounts{filter}"),
            ),
            (
                TRANSACTIONS,
                time::Duration::seconds(6),
                format!("/users/{user_id}/transactions{filter}"),
            ),
        ],
    };
    db.surface.jobs.insert(id.clone(), job);
    db.stats.jobs_created += 1;
    Ok((StatusCode::ACCEPTED, Json(job_ref(state.base(), &id))).into_response())
}
