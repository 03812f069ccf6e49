//! `ApiError`: every failure the API returns, rendered as a `meta/v1` Status with the code,
//! reason and message a real API server uses (kubectl-api.md §11). Domain errors convert
//! into it in one place each (`From` impls).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::model::field::FieldError;
use crate::store::{self, resources::Resource};

/// An API failure.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `BadRequest`, …
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (name, group, kind, causes), when there are any.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn not_found(resource: &Resource, name: &str) -> Self {
        ApiError {
            details: Some(details(resource, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", resource.qualified_plural()),
            )
        }
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 422 with one cause per field error, as `StatusError` from `NewInvalid`.
    pub fn invalid(resource: &Resource, name: &str, errors: &[FieldError]) -> Self {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                json!({
                    "reason": e.kind.cause_reason(),
                    "message": e.body(),
                    "field": e.field.as_str(),
                })
            })
            .collect();
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let message = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let kind = if resource.group.is_empty() {
            resource.kind.to_owned()
        } else {
            format!("{}.{}", resource.kind, resource.group)
        };
        let mut d = details(resource, name);
        d["kind"] = json!(resource.kind);
        d["causes"] = json!(causes);
        ApiError {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: {message}"),
            )
        }
    }

    /// The Status object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

fn details(resource: &Resource, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": resource.plural});
    if !resource.group.is_empty() {
        d["group"] = json!(resource.group);
    }
    d
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, self.to_status().to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Maps a store error on `resource`.
pub fn from_store(resource: &Resource, error: store::Error) -> ApiError {
    match error {
        store::Error::NotFound { name, .. } => ApiError::not_found(resource, &name),
        store::Error::AlreadyExists { name, .. } => ApiError {
            details: Some(details(resource, &name)),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", resource.qualified_plural()),
            )
        },
        e @ store::Error::Conflict { .. } => {
            let name = match &e {
                store::Error::Conflict { name, .. } => name.clone(),
                _ => String::new(),
            };
            ApiError {
                details: Some(details(resource, &name)),
                ..ApiError::new(409, "Conflict", e.to_string())
            }
        }
        e @ store::Error::UidPrecondition { .. } => ApiError::new(409, "Conflict", e.to_string()),
        e @ store::Error::Expired { .. } => ApiError::expired(e.to_string()),
        store::Error::Invalid(m) => ApiError::bad_request(m),
    }
}
