//! The object endpoints: list, get, create, update, patch (JSON, merge, strategic, apply),
//! delete and delete-collection, for every served resource (kubectl-api.md §4–7, §11).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::query::{Query, Target};
use super::status::{ApiError, from_store};
use super::{Ctx, json};
use crate::model::manifest::{ApiDecoded, FieldValidation, decode_for_api};
use crate::model::selector::{FieldSelector, LabelSelector};
use crate::model::{patch, table};
use crate::store::resources::{self, Resource};
use crate::store::{Backend, DeleteOutcome, ObjectKey, Part};

/// The parts of a request the handlers read.
pub struct RequestInfo {
    pub query: Query,
    pub accept: String,
    pub content_type: String,
    pub user_agent: String,
}

impl RequestInfo {
    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }

    fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    fn field_validation(&self) -> Result<FieldValidation, ApiError> {
        match self.query.get("fieldValidation") {
            None | Some("") | Some("Strict") => Ok(FieldValidation::Strict),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }

    /// The field manager of a write: `fieldManager`, else the user agent's program name.
    fn manager(&self) -> String {
        match self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            Some(m) => m.to_owned(),
            None => self
                .user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_owned(),
        }
    }
}

fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The selectors of a list or watch, checked against the resource's kind.
pub struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
    kind: &'static str,
}

impl Selectors {
    pub fn parse(query: &Query, resource: &Resource) -> Result<Selectors, ApiError> {
        let labels = match query.get("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => LabelSelector::everything(),
        };
        let fields = match query.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => FieldSelector::parse(s)
                .and_then(|f| f.for_kind(resource.kind))
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => FieldSelector::everything(),
        };
        Ok(Selectors {
            labels,
            fields,
            kind: resource.kind,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches_object(object)
            && self.fields.matches(self.kind, object).unwrap_or(false)
    }
}

/// The objects of a collection request, filtered.
pub fn select(ctx: &Ctx, target: &Target, selectors: &Selectors) -> (Vec<Arc<Value>>, u64) {
    let (items, rv) = ctx.store.list(target.resource, target.namespace.as_deref());
    (
        items.into_iter().filter(|o| selectors.matches(o)).collect(),
        rv,
    )
}

/// `GET <collection>`: the `<Kind>List`, or a Table for kubectl's human output.
pub fn list_objects(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
) -> Result<Response, ApiError> {
    let selectors = Selectors::parse(&request.query, target.resource)?;
    let (items, rv) = select(ctx, target, &selectors);
    if request.wants_table() {
        let include = table::IncludeObject::parse(request.query.get("includeObject").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let objects: Vec<Value> = items.iter().map(|v| Value::clone(v)).collect();
        return Ok(table_response(&table::table(
            target.resource.kind,
            &objects,
            &rv.to_string(),
            include,
            Timestamp::now(),
        )));
    }
    let list = json!({
        "kind": target.resource.list_kind(),
        "apiVersion": target.resource.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items.iter().map(|v| Value::clone(v)).collect::<Vec<_>>(),
    });
    Ok(json(StatusCode::OK, &list))
}

fn table_response(table: &Value) -> Response {
    let mut r = json(StatusCode::OK, table);
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io"),
    );
    r
}

fn namespace_of(target: &Target) -> &str {
    target.namespace.as_deref().unwrap_or("")
}

fn fetch(ctx: &Ctx, target: &Target) -> Result<Arc<Value>, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    ctx.store
        .get(target.resource, namespace_of(target), name)
        .ok_or_else(|| ApiError::not_found(target.resource, name))
}

/// `GET <object>` (and its `status`).
pub fn get_object(ctx: &Ctx, target: &Target, request: &RequestInfo) -> Result<Response, ApiError> {
    if target.subresource.as_deref() == Some("status") && !target.resource.has_status {
        return Err(ApiError::not_found_path());
    }
    let object = fetch(ctx, target)?;
    if request.wants_table() {
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let include = table::IncludeObject::parse(request.query.get("includeObject").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        return Ok(table_response(&table::table(
            target.resource.kind,
            &[Value::clone(&object)],
            &rv,
            include,
            Timestamp::now(),
        )));
    }
    Ok(json(StatusCode::OK, &object))
}

/// Parses a body as JSON, or YAML when the content type says so.
fn parse_body(body: &Bytes, content_type: &str, resource: &Resource) -> Result<Value, ApiError> {
    let kind = resource.kind;
    let version = resource.api_version();
    let cannot = |e: String| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"
        ))
    };
    if content_type.contains("protobuf") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    let value: Value = if content_type.contains("yaml") {
        let text = std::str::from_utf8(body).map_err(|e| cannot(e.to_string()))?;
        serde_saphyr::from_str(text).map_err(|e| cannot(e.to_string()))?
    } else {
        serde_json::from_slice(body).map_err(|e| cannot(e.to_string()))?
    };
    if !value.is_object() {
        return Err(cannot("the body must be an object".to_owned()));
    }
    Ok(value)
}

/// Checks the body's type and namespace against the request, filling what is missing.
fn check_identity(value: &mut Value, target: &Target) -> Result<(), ApiError> {
    let r = target.resource;
    let expected_version = r.api_version();
    match value.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => value["apiVersion"] = json!(expected_version),
        Some(v) if v == expected_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
    }
    match value.get("kind").and_then(Value::as_str) {
        None | Some("") => value["kind"] = json!(r.kind),
        Some(k) if k == r.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )));
        }
    }
    if !value.get("metadata").is_some_and(Value::is_object) {
        value["metadata"] = json!({});
    }
    if r.namespaced {
        let path_ns = target.namespace.as_deref().unwrap_or("default");
        match value["metadata"].get("namespace").and_then(Value::as_str) {
            None | Some("") => value["metadata"]["namespace"] = json!(path_ns),
            Some(ns) if ns == path_ns => {}
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    Ok(())
}

/// Decodes, defaults and validates an object for storage; returns it and the warnings.
fn admit(
    target: &Target,
    value: &Value,
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let r = target.resource;
    let decoded = decode_for_api(&r.api_version(), r.kind, value, validation);
    reject_undecodable(target, &decoded)?;
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    if !decoded.invalid.is_empty() {
        return Err(ApiError::invalid(r, name, &decoded.invalid));
    }
    let object = decoded
        .object
        .ok_or_else(|| ApiError::bad_request("the object could not be decoded"))?;
    Ok((object, decoded.warnings))
}

/// 400 when the value does not decode as the kind (unknown or duplicate fields under Strict,
/// wrong types).
fn reject_undecodable(target: &Target, decoded: &ApiDecoded) -> Result<(), ApiError> {
    if decoded.bad_request.is_empty() {
        return Ok(());
    }
    let r = target.resource;
    let kind = r.kind;
    Err(ApiError::bad_request(format!(
        "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
        r.api_version(),
        decoded.bad_request.join(", ")
    )))
}

fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{}\"", w.replace('"', "\\\""))) {
            response.headers_mut().append("Warning", v);
        }
    }
    response
}

fn require_namespace(ctx: &Ctx, target: &Target) -> Result<(), ApiError> {
    if target.resource.namespaced {
        let ns = target.namespace.as_deref().unwrap_or("default");
        if ctx.store.get(&resources::NAMESPACES, "", ns).is_none() {
            return Err(ApiError::not_found(&resources::NAMESPACES, ns));
        }
    }
    Ok(())
}

/// Records the manager of a non-apply write in `managedFields`.
fn record_manager(target: &Target, old: Option<&Value>, new: Value, manager: &str) -> Value {
    let r = target.resource;
    patch::record_update(&r.api_version(), r.kind, old, &new, manager, &now_rfc3339())
}

/// Stores a new object (shared by POST and by apply on a missing object).
async fn store_new(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    mut object: Value,
) -> Result<Value, ApiError> {
    require_namespace(ctx, target)?;
    if target.resource == &resources::PODS {
        crate::store::bind_new_pod(&mut object, &ctx.node_name);
    }
    if request.dry_run() {
        return Ok(object);
    }
    let stored = ctx
        .store
        .create(target.resource, object)
        .map_err(|e| from_store(target.resource, e))?;
    let rv = resource_version(&stored);
    ctx.store.wait_durable(rv).await;
    Ok(Value::clone(&stored))
}

fn resource_version(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `POST <collection>`.
pub async fn create_object(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let mut value = parse_body(body, &request.content_type, target.resource)?;
    check_identity(&mut value, target)?;
    let (object, warnings) = admit(target, &value, request.field_validation()?)?;
    let object = record_manager(target, None, object, &request.manager());
    let stored = store_new(ctx, target, request, object).await?;
    Ok(with_warnings(json(StatusCode::CREATED, &stored), &warnings))
}

/// Rejects changes Kubernetes forbids on update (pod specs, immutable ConfigMaps/Secrets).
fn check_update_allowed(target: &Target, old: &Value, new: &Value) -> Result<(), ApiError> {
    let r = target.resource;
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    if r == &resources::PODS {
        let strip = |v: &Value| {
            let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
            for list in ["containers", "initContainers"] {
                if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs {
                        if let Some(o) = c.as_object_mut() {
                            o.remove("image");
                        }
                    }
                }
            }
            if let Some(o) = spec.as_object_mut() {
                o.remove("activeDeadlineSeconds");
                o.remove("tolerations");
            }
            spec
        };
        if strip(old) != strip(new) {
            let field = crate::model::field::FieldPath::new("spec");
            return Err(ApiError::invalid(
                r,
                name,
                &[crate::model::field::FieldError::forbidden(
                    &field,
                    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                )],
            ));
        }
    }
    if (r == &resources::CONFIG_MAPS || r == &resources::SECRETS)
        && old.get("immutable") == Some(&json!(true))
    {
        for field in ["data", "binaryData", "immutable"] {
            if old.get(field) != new.get(field) {
                let path = crate::model::field::FieldPath::new(field);
                return Err(ApiError::invalid(
                    r,
                    name,
                    &[crate::model::field::FieldError::forbidden(
                        &path,
                        "field is immutable when `immutable` is set",
                    )],
                ));
            }
        }
    }
    Ok(())
}

/// Stores a changed object: checks, managedFields, precondition, durability.
async fn store_update(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    current: &Value,
    object: Value,
) -> Result<Value, ApiError> {
    let part = if target.subresource.as_deref() == Some("status") {
        Part::Status
    } else {
        check_update_allowed(target, current, &object)?;
        Part::Main
    };
    if request.dry_run() {
        return Ok(object);
    }
    let stored = ctx
        .store
        .update(target.resource, object, part)
        .map_err(|e| from_store(target.resource, e))?;
    ctx.store.wait_durable(resource_version(&stored)).await;
    Ok(Value::clone(&stored))
}

/// `PUT <object>` (and its `status`).
pub async fn update_object(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let current = fetch(ctx, target)?;
    let mut value = parse_body(body, &request.content_type, target.resource)?;
    check_identity(&mut value, target)?;
    let name = target.name.as_deref().unwrap_or_default();
    match value["metadata"].get("name").and_then(Value::as_str) {
        None | Some("") => value["metadata"]["name"] = json!(name),
        Some(n) if n == name => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
    }
    let (object, warnings) = admit(target, &value, request.field_validation()?)?;
    let object = record_manager(target, Some(&current), object, &request.manager());
    let stored = store_update(ctx, target, request, &current, object).await?;
    Ok(with_warnings(json(StatusCode::OK, &stored), &warnings))
}

/// `PATCH <object>`: JSON patch, merge patch, strategic merge patch, or server-side apply.
pub async fn patch_object(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let r = target.resource;
    let media = request
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let name = target.name.clone().unwrap_or_default();
    if media == "application/apply-patch+yaml" || media == "application/apply-patch+json" {
        return apply_object(ctx, target, request, body).await;
    }
    let current = fetch(ctx, target)?;
    let patch_doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let patched = match media.as_str() {
        "application/json-patch+json" => {
            patch::json_patch(&current, &patch_doc).map_err(patch_error)?
        }
        "application/merge-patch+json" => patch::json_merge(&current, &patch_doc),
        "application/strategic-merge-patch+json" => {
            patch::strategic_merge(&r.api_version(), r.kind, &current, &patch_doc)
                .map_err(patch_error)?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let mut value = patched;
    check_identity(&mut value, target)?;
    value["metadata"]["name"] = json!(name);
    let (object, warnings) = admit(target, &value, request.field_validation()?)?;
    let object = record_manager(target, Some(&current), object, &request.manager());
    let stored = store_update(ctx, target, request, &current, object).await?;
    Ok(with_warnings(json(StatusCode::OK, &stored), &warnings))
}

/// The Status upstream answers a failed patch with (each variant documents its own).
fn patch_error(e: patch::PatchError) -> ApiError {
    use patch::PatchError as E;
    match &e {
        E::BadRequest(message) => ApiError::bad_request(message.clone()),
        E::OperationFailed { .. } | E::Invalid(_) => ApiError::new(422, "Invalid", e.to_string()),
        E::TooManyOperations { .. } => ApiError::new(413, "RequestEntityTooLarge", e.to_string()),
        E::Unmergeable(_) => ApiError::new(500, "InternalError", e.to_string()),
        E::Unsupported => ApiError::new(415, "UnsupportedMediaType", e.to_string()),
    }
}

/// Server-side apply: creates the object if missing (201), else merges per field ownership.
async fn apply_object(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let r = target.resource;
    let Some(manager) = request.query.get("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    };
    let force = request.query.flag("force");
    let mut applied = parse_body(body, "application/yaml", r)?;
    check_identity(&mut applied, target)?;
    let name = target.name.clone().unwrap_or_default();
    match applied["metadata"].get("name").and_then(Value::as_str) {
        None | Some("") => applied["metadata"]["name"] = json!(name),
        Some(n) if n == name => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
    }
    // Strict checking of the applied configuration itself.
    let validation = request.field_validation()?;
    // An applied configuration is partial: it is checked against the schema only (unknown
    // fields, types); the merged object is what gets validated.
    let schema = decode_for_api(&r.api_version(), r.kind, &applied, validation);
    reject_undecodable(target, &schema)?;
    let current = ctx.store.get(r, namespace_of(target), &name);
    let merged = patch::apply(
        &r.api_version(),
        r.kind,
        current.as_deref(),
        &applied,
        manager,
        force,
        &now_rfc3339(),
    )
    .map_err(|e| match &e {
        patch::ApplyError::Conflict { conflicts } => {
            let causes: Vec<Value> = patch::conflict_causes(conflicts)
                .into_iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            let mut err = ApiError::new(409, "Conflict", e.to_string());
            err.details = Some(json!({"causes": causes}));
            err
        }
        patch::ApplyError::BadRequest(message) => ApiError::bad_request(message.clone()),
        patch::ApplyError::Invalid(message) => ApiError::new(422, "Invalid", message.clone()),
        patch::ApplyError::BadManagedFields(_) => {
            ApiError::new(500, "InternalError", e.to_string())
        }
    })?;
    let (mut object, merged_warnings) = admit(target, &merged, FieldValidation::Ignore)?;
    let mut warnings = schema.warnings;
    warnings.extend(merged_warnings);
    // Keep the ownership the apply computed (admission re-decodes the object).
    object["metadata"]["managedFields"] = merged["metadata"]["managedFields"].clone();
    match current {
        None => {
            let stored = store_new(ctx, target, request, object).await?;
            Ok(with_warnings(json(StatusCode::CREATED, &stored), &warnings))
        }
        Some(current) => {
            let stored = store_update(ctx, target, request, &current, object).await?;
            Ok(with_warnings(json(StatusCode::OK, &stored), &warnings))
        }
    }
}

/// DeleteOptions from the body and the query.
struct DeleteOptions {
    grace: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn delete_options(request: &RequestInfo, body: &Bytes) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let grace = match body.get("gracePeriodSeconds").and_then(Value::as_i64) {
        Some(g) => Some(g),
        None => request
            .query
            .int("gracePeriodSeconds")
            .map_err(ApiError::bad_request)?,
    };
    Ok(DeleteOptions {
        grace,
        uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
    })
}

/// `DELETE <object>`: pods terminate gracefully (the object comes back with its deletion
/// timestamp; DELETED follows once the node removed it); other kinds go at once.
pub async fn delete_object(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let options = delete_options(request, body)?;
    let r = target.resource;
    let name = target.name.clone().unwrap_or_default();
    let current = fetch(ctx, target)?;
    if let Some(rv) = &options.resource_version
        && current["metadata"]["resourceVersion"].as_str() != Some(rv.as_str())
    {
        return Err(from_store(
            r,
            crate::store::Error::Conflict {
                resource: r.qualified_plural(),
                name,
            },
        ));
    }
    if request.dry_run() {
        return Ok(json(StatusCode::OK, &current));
    }
    if r == &resources::PODS {
        let key = ObjectKey::new(namespace_of(target), &name);
        let outcome = ctx
            .store
            .delete_pod_if(&key, options.grace, options.uid.as_deref())
            .map_err(|e| from_store(r, e))?;
        let pod = match outcome {
            DeleteOutcome::Removed(p) | DeleteOutcome::Terminating(p) => p,
        };
        let value = serde_json::to_value(&*pod).unwrap_or(Value::Null);
        ctx.store.wait_durable(ctx.store.resource_version()).await;
        return Ok(json(StatusCode::OK, &value));
    }
    if r == &resources::NAMESPACES {
        return delete_namespace(ctx, &name).await;
    }
    let removed = ctx
        .store
        .remove(r, namespace_of(target), &name, options.uid.as_deref())
        .map_err(|e| from_store(r, e))?;
    ctx.store.wait_durable(resource_version(&removed)).await;
    let mut details = json!({"name": name, "kind": r.plural, "uid": removed["metadata"]["uid"]});
    if !r.group.is_empty() {
        details["group"] = json!(r.group);
    }
    Ok(json(
        StatusCode::OK,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
    ))
}

/// Namespace deletion: the namespace turns `Terminating`, everything in it is deleted (pods
/// gracefully), and the namespace goes once it is empty.
async fn delete_namespace(ctx: &Ctx, name: &str) -> Result<Response, ApiError> {
    if matches!(name, "default" | "kube-system" | "kube-public") {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    let current = ctx
        .store
        .get(&resources::NAMESPACES, "", name)
        .ok_or_else(|| ApiError::not_found(&resources::NAMESPACES, name))?;
    let mut next = Value::clone(&current);
    if next["metadata"].get("deletionTimestamp").is_none() {
        next["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    }
    next["status"]["phase"] = json!("Terminating");
    let stored = ctx
        .store
        .update(&resources::NAMESPACES, next, Part::Status)
        .map_err(|e| from_store(&resources::NAMESPACES, e))?;
    for r in resources::ALL.iter().filter(|r| r.namespaced) {
        for obj in ctx.store.list(r, Some(name)).0 {
            let n = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if *r == &resources::PODS {
                // Why ignored: a pod removed meanwhile is what we want.
                let _ = ctx.store.delete_pod(&ObjectKey::new(name, &n), None);
            } else {
                let _ = ctx.store.remove(r, name, &n, None);
            }
        }
    }
    // The namespace goes when its last pod is gone.
    let store = ctx.store.clone();
    let ns = name.to_owned();
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        loop {
            if store.list(&resources::PODS, Some(&ns)).0.is_empty() {
                let _ = store.remove(&resources::NAMESPACES, "", &ns, None);
                return;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            }
        }
    });
    ctx.store.wait_durable(resource_version(&stored)).await;
    Ok(json(StatusCode::OK, &stored))
}

/// `DELETE <collection>`: every selected object, returned as a list.
pub async fn delete_collection(
    ctx: &Ctx,
    target: &Target,
    request: &RequestInfo,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let options = delete_options(request, body)?;
    let selectors = Selectors::parse(&request.query, target.resource)?;
    let (items, _) = select(ctx, target, &selectors);
    let mut deleted = Vec::new();
    for item in items {
        let name = item["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ns = item["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if target.resource == &resources::PODS {
            if let Ok(DeleteOutcome::Removed(p) | DeleteOutcome::Terminating(p)) = ctx
                .store
                .delete_pod(&ObjectKey::new(&ns, &name), options.grace)
            {
                deleted.push(serde_json::to_value(&*p).unwrap_or(Value::Null));
            }
        } else if let Ok(v) = ctx.store.remove(target.resource, &ns, &name, None) {
            deleted.push(Value::clone(&v));
        }
    }
    ctx.store.wait_durable(ctx.store.resource_version()).await;
    Ok(json(
        StatusCode::OK,
        &json!({"kind": target.resource.list_kind(), "apiVersion": target.resource.api_version(),
                "metadata": {}, "items": deleted}),
    ))
}
