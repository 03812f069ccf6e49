//! `ApiError`: every failure the API returns, rendered as a `meta/v1` Status with the code,
//! reason and message a real API server uses (kubectl-api.md §11). Domain errors convert
//! into it in one place each (`From` impls).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::model::field::FieldError;
use crate::model::validation::go_quote;
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

    /// `NewInternalError(err)`: `Internal error occurred: <err>`, the error as the one cause.
    pub fn internal(why: &str) -> Self {
        ApiError {
            details: Some(json!({"causes": [{"message": why}]})),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {why}"),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// A path that serves nothing: upstream's `NewGenericServerResponse(404, …)`, whose empty
    /// `StatusDetails` still render as `"details": {}`.
    pub fn not_found_path() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// `NewForbidden(resource, name, err)`: `<resource> "<name>" is forbidden: <why>`.
    pub fn forbidden(resource: &Resource, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(details(resource, name)),
            ..Self::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{name}\" is forbidden: {why}",
                    resource.qualified_plural()
                ),
            )
        }
    }

    /// `NewConflict(resource, name, err)`: `Operation cannot be fulfilled on <resource>
    /// "<name>": <why>`. `resource` is what upstream passes as the group-resource: the plural,
    /// or the kind where `rest.BeforeDelete` passes `gvk.Kind` (delete preconditions).
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let mut d = json!({"name": name, "kind": resource});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        ApiError {
            details: Some(d),
            ..Self::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"),
            )
        }
    }

    /// An error upstream returns without a Status of its own (`ErrorToAPIStatus` on a plain
    /// error): the code, the message, and no reason.
    pub fn unknown(code: u16, message: impl Into<String>) -> Self {
        Self::new(code, "", message)
    }

    /// 422 on an options kind (`CreateOptions`, `ListOptions` …) of `meta.k8s.io`, as the
    /// handlers' `Validate*Options` answer: `<Kind>.meta.k8s.io "" is invalid: …`.
    pub fn invalid_options(kind: &str, errors: &[FieldError]) -> Self {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.kind.cause_reason(), "message": e.body(), "field": e.field.as_str()}))
            .collect();
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let message = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        ApiError {
            details: Some(json!({"group": "meta.k8s.io", "kind": kind, "causes": causes})),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind}.meta.k8s.io \"\" is invalid: {message}"),
            )
        }
    }

    /// `NewInvalid(schema.GroupKind{}, "", errs)`: the patch handlers' 422 for a patched object
    /// that does not decode, on the field `patch`.
    pub fn invalid_patch(patched: &str, why: &str) -> Self {
        let body = format!("Invalid value: {}: {why}", go_quote(patched));
        ApiError {
            details: Some(
                json!({"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]}),
            ),
            ..Self::new(422, "Invalid", format!("\"\" is invalid: patch: {body}"))
        }
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

    /// `negotiation.NewUnsupportedMediaTypeError(accepted)`: what a request body may be (the
    /// serializers of built-in types for create and update, the patch types for a patch).
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
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

    /// The Status object (no `reason` when it is empty, as Go's `omitempty`).
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
        if self.reason.is_empty()
            && let Some(o) = status.as_object_mut()
        {
            o.remove("reason");
        }
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
        store::Error::InvalidFields { name, errors, .. } => {
            ApiError::invalid(resource, &name, &errors)
        }
        store::Error::Internal(why) => ApiError::internal(&why),
    }
}
