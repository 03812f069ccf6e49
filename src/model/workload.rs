//! Defaults and validation of the workload kinds that keep a number of pods: `apps/v1`
//! Deployment and ReplicaSet and `v1` ReplicationController, ported from Kubernetes 1.32:
//! `pkg/apis/apps/v1/defaults.go` (`SetDefaults_Deployment`, `SetDefaults_ReplicaSet`),
//! `pkg/apis/core/v1/defaults.go` (`SetDefaults_ReplicationController`), the registries'
//! `PrepareForCreate` (status cleared), `pkg/apis/apps/validation/validation.go`
//! (`ValidateDeployment`, `ValidateReplicaSet` and their updates, with the strategies' selector
//! immutability for `apps/v1`) and core's `ValidateReplicationController`.
//!
//! Pod templates get the pod spec defaults of [`pod::set_pod_spec_defaults`] and are validated
//! by [`pod::validate_pod_template_spec`] under `spec.template`.
//!
//! Bad values are rendered as the API server renders them, with Go's `%#v` for structs and
//! maps: `spec.template.metadata.labels: Invalid value: map[string]string{"app":"b"}: `selector`
//! does not match template `labels``.
//!
//! Pure: no IO, no tokio. What these objects make happen (pods, rollouts) is the controllers'.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetSpec,
    ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerSpec, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::model::field::{FieldError, FieldPath};
use crate::model::pod;
use crate::model::selector::LabelSelector as Selector;
use crate::model::validation::{
    go_quote, is_valid_label_value, name_is_dns_subdomain, regex_error, validate_labels,
    validate_nonnegative, validate_object_meta, validate_qualified_name,
};

#[cfg(test)]
mod tests;

type Errs = Vec<FieldError>;

/// Upstream `DefaultDeploymentUniqueLabelKey`-independent defaults: 25 % as a string.
const DEFAULT_MAX_SURGE_UNAVAILABLE: &str = "25%";
/// Upstream `SetDefaults_Deployment`: revisionHistoryLimit.
const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Upstream `SetDefaults_Deployment`: progressDeadlineSeconds.
const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

// ---------------------------------------------------------------------------------------------
// Defaults.
// ---------------------------------------------------------------------------------------------

/// `SetObjectDefaults_Deployment`: replicas 1, strategy RollingUpdate with maxSurge and
/// maxUnavailable 25 %, revisionHistoryLimit 10, progressDeadlineSeconds 600, and the pod spec
/// defaults of the template.
pub fn set_deployment_defaults(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(DeploymentSpec::default);
    if spec.replicas.is_none() {
        spec.replicas = Some(1);
    }
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    if strategy.type_.as_deref().unwrap_or_default().is_empty() {
        strategy.type_ = Some("RollingUpdate".to_owned());
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        for value in [&mut rolling.max_unavailable, &mut rolling.max_surge] {
            if value.is_none() {
                *value = Some(IntOrString::String(
                    DEFAULT_MAX_SURGE_UNAVAILABLE.to_owned(),
                ));
            }
        }
    }
    if spec.revision_history_limit.is_none() {
        spec.revision_history_limit = Some(DEFAULT_REVISION_HISTORY_LIMIT);
    }
    if spec.progress_deadline_seconds.is_none() {
        spec.progress_deadline_seconds = Some(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    }
    default_template(&mut spec.template);
}

/// `SetObjectDefaults_ReplicaSet`: replicas 1 and the template's pod spec defaults.
pub fn set_replica_set_defaults(rs: &mut ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(ReplicaSetSpec::default);
    if spec.replicas.is_none() {
        spec.replicas = Some(1);
    }
    if let Some(template) = spec.template.as_mut() {
        default_template(template);
    }
}

/// `SetObjectDefaults_ReplicationController`: the selector and (when it has none) the object's
/// labels default to the template's labels, replicas to 1, and the template gets the pod spec
/// defaults.
pub fn set_replication_controller_defaults(rc: &mut ReplicationController) {
    let spec = rc
        .spec
        .get_or_insert_with(ReplicationControllerSpec::default);
    let labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(labels) = labels {
        if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
            rc.metadata.labels = Some(labels);
        }
    }
    if spec.replicas.is_none() {
        spec.replicas = Some(1);
    }
    if let Some(template) = spec.template.as_mut() {
        default_template(template);
    }
}

fn default_template(template: &mut PodTemplateSpec) {
    pod::set_pod_spec_defaults(template.spec.get_or_insert_default());
}

/// The registries' `PrepareForCreate`: a new object's status is the empty status (the
/// controllers own it).
pub fn clear_deployment_status(d: &mut Deployment) {
    d.status = Some(DeploymentStatus::default());
}

/// See [`clear_deployment_status`].
pub fn clear_replica_set_status(rs: &mut ReplicaSet) {
    rs.status = Some(ReplicaSetStatus {
        replicas: 0,
        ..ReplicaSetStatus::default()
    });
}

/// See [`clear_deployment_status`].
pub fn clear_replication_controller_status(rc: &mut ReplicationController) {
    rc.status = Some(ReplicationControllerStatus {
        replicas: 0,
        ..ReplicationControllerStatus::default()
    });
}

// ---------------------------------------------------------------------------------------------
// Validation.
// ---------------------------------------------------------------------------------------------

/// Upstream `ValidateDeployment` (on create, `old` None) or `ValidateDeploymentUpdate` plus the
/// `apps/v1` strategy's selector immutability (on update). `selector_given`: whether the
/// object had a `spec.selector` at all (the typed object cannot tell a missing one from `{}`).
pub fn validate_deployment(d: &Deployment, selector_given: bool, old: Option<&Deployment>) -> Errs {
    let default_spec = DeploymentSpec::default();
    let spec = d.spec.as_ref().unwrap_or(&default_spec);
    let path = FieldPath::new("spec");
    let mut errs = validate_object_meta(
        &d.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(1)),
        &path.child("replicas"),
    ));
    let selector = selector_given.then_some(&spec.selector);
    errs.extend(validate_workload_selector(
        selector,
        &path.child("selector"),
    ));
    match Selector::from_optional_label_selector(selector) {
        Err(_) => errs.push(FieldError::invalid_raw(
            &path.child("selector"),
            &go_label_selector(selector),
            "invalid label selector",
        )),
        Ok(selector) => errs.extend(validate_template_for_replica_set(
            Some(&spec.template),
            &selector,
            &path.child("template"),
            "ReplicaSet",
        )),
    }
    let strategy = spec.strategy.clone().unwrap_or_default();
    errs.extend(validate_deployment_strategy(
        &strategy,
        &path.child("strategy"),
    ));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative(
        i64::from(min_ready),
        &path.child("minReadySeconds"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            i64::from(limit),
            &path.child("revisionHistoryLimit"),
        ));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let p = path.child("progressDeadlineSeconds");
        errs.extend(validate_nonnegative(i64::from(deadline), &p));
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                &p,
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old {
        let old_selector = old.spec.as_ref().map(|s| &s.selector);
        errs.extend(validate_selector_immutable(
            selector,
            old_selector,
            &path.child("selector"),
        ));
    }
    errs
}

/// Upstream `ValidateReplicaSet` / `ValidateReplicaSetUpdate` plus the `apps/v1` selector
/// immutability on update. `selector_given` as in [`validate_deployment`].
pub fn validate_replica_set(
    rs: &ReplicaSet,
    selector_given: bool,
    old: Option<&ReplicaSet>,
) -> Errs {
    let default_spec = ReplicaSetSpec::default();
    let spec = rs.spec.as_ref().unwrap_or(&default_spec);
    let path = FieldPath::new("spec");
    let mut errs = validate_object_meta(
        &rs.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(1)),
        &path.child("replicas"),
    ));
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    ));
    let selector = selector_given.then_some(&spec.selector);
    errs.extend(validate_workload_selector(
        selector,
        &path.child("selector"),
    ));
    match Selector::from_optional_label_selector(selector) {
        Err(_) => errs.push(FieldError::invalid_raw(
            &path.child("selector"),
            &go_label_selector(selector),
            "invalid label selector",
        )),
        Ok(selector) => errs.extend(validate_template_for_replica_set(
            spec.template.as_ref(),
            &selector,
            &path.child("template"),
            "ReplicaSet",
        )),
    }
    if let Some(old) = old {
        let old_selector = old.spec.as_ref().map(|s| &s.selector);
        errs.extend(validate_selector_immutable(
            selector,
            old_selector,
            &path.child("selector"),
        ));
    }
    errs
}

/// Upstream `ValidateReplicationController` (its update has the same spec rules; the selector
/// of a ReplicationController may change).
pub fn validate_replication_controller(rc: &ReplicationController) -> Errs {
    let default_spec = ReplicationControllerSpec::default();
    let spec = rc.spec.as_ref().unwrap_or(&default_spec);
    let path = FieldPath::new("spec");
    let mut errs = validate_object_meta(
        &rc.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    errs.extend(validate_nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    ));
    let empty = BTreeMap::new();
    let selector_map = spec.selector.as_ref().unwrap_or(&empty);
    if selector_map.is_empty() {
        errs.push(FieldError::required(&path.child("selector"), ""));
    }
    errs.extend(validate_nonnegative(
        i64::from(spec.replicas.unwrap_or(1)),
        &path.child("replicas"),
    ));
    errs.extend(validate_template_for_replica_set(
        spec.template.as_ref(),
        &Selector::from_set(selector_map),
        &path.child("template"),
        "ReplicationController",
    ));
    errs
}

/// The selector rules shared by Deployment and ReplicaSet: required, valid
/// (`ValidateLabelSelector` without invalid label values) and not empty.
fn validate_workload_selector(selector: Option<&LabelSelector>, path: &FieldPath) -> Errs {
    let Some(selector) = selector else {
        return vec![FieldError::required(path, "")];
    };
    let mut errs = validate_label_selector(selector, path);
    let n_terms = selector.match_labels.as_ref().map_or(0, BTreeMap::len)
        + selector.match_expressions.as_ref().map_or(0, Vec::len);
    if n_terms == 0 {
        // Upstream says "deployment" for ReplicaSets too.
        errs.push(FieldError::invalid_raw(
            path,
            &go_label_selector(Some(selector)),
            "empty selector is invalid for deployment",
        ));
    }
    errs
}

/// Upstream `ValidatePodTemplateSpecForReplicaSet` (and `ValidatePodTemplateSpecForRC`, whose
/// only difference is the word in the `activeDeadlineSeconds` message: `owner`).
fn validate_template_for_replica_set(
    template: Option<&PodTemplateSpec>,
    selector: &Selector,
    path: &FieldPath,
    owner: &str,
) -> Errs {
    let Some(template) = template else {
        return vec![FieldError::required(path, "")];
    };
    let mut errs = Errs::new();
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    if !selector.is_empty() {
        let empty = BTreeMap::new();
        if !selector.matches(labels.unwrap_or(&empty)) {
            errs.push(FieldError::invalid_raw(
                &path.child("metadata").child("labels"),
                &go_string_map(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs.extend(pod::validate_pod_template_spec(template, path));
    let spec = template.spec.as_ref();
    let restart_policy = spec
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or_default();
    if restart_policy != "Always" {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if spec.and_then(|s| s.active_deadline_seconds).is_some() {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
    errs
}

/// Upstream `ValidateDeploymentStrategy`.
fn validate_deployment_strategy(strategy: &DeploymentStrategy, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    match strategy.type_.as_deref().unwrap_or_default() {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(
                &path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(rolling) => {
                errs.extend(validate_rolling_update(
                    rolling,
                    &path.child("rollingUpdate"),
                ));
            }
        },
        other => {
            let rolling = if strategy.rolling_update.is_some() {
                // Go prints the pointer's address here; any fixed one stands in for it.
                "(*apps.RollingUpdateDeployment)(0xc000000000)"
            } else {
                "(*apps.RollingUpdateDeployment)(nil)"
            };
            let mut e = FieldError::invalid_raw(
                path,
                &format!(
                    "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{rolling}}}",
                    go_quote(other)
                ),
                "",
            );
            e.kind = crate::model::field::ErrorType::NotSupported;
            e.detail = "supported values: \"Recreate\", \"RollingUpdate\"".to_owned();
            errs.push(e);
        }
    }
    errs
}

/// Upstream `ValidateRollingUpdateDeployment`.
fn validate_rolling_update(rolling: &RollingUpdateDeployment, path: &FieldPath) -> Errs {
    let zero = IntOrString::Int(0);
    let max_unavailable = rolling.max_unavailable.as_ref().unwrap_or(&zero);
    let max_surge = rolling.max_surge.as_ref().unwrap_or(&zero);
    let mut errs = validate_positive_int_or_percent(max_unavailable, &path.child("maxUnavailable"));
    errs.extend(validate_positive_int_or_percent(
        max_surge,
        &path.child("maxSurge"),
    ));
    if int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0 {
        errs.push(FieldError::invalid_raw(
            &path.child("maxUnavailable"),
            &go_int_or_string(max_unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if let Some(percent) = percent_value(max_unavailable)
        && percent > 100
    {
        errs.push(FieldError::invalid_raw(
            &path.child("maxUnavailable"),
            &go_int_or_string(max_unavailable),
            "must not be greater than 100%",
        ));
    }
    errs
}

/// Upstream `ValidatePositiveIntOrPercent`.
fn validate_positive_int_or_percent(value: &IntOrString, path: &FieldPath) -> Errs {
    match value {
        IntOrString::Int(i) => validate_nonnegative(i64::from(*i), path),
        IntOrString::String(s) => is_valid_percent(s)
            .into_iter()
            .map(|msg| FieldError::invalid_raw(path, &go_int_or_string(value), msg))
            .collect(),
    }
}

/// Upstream `validation.IsValidPercent`: `^[0-9]+%$`.
fn is_valid_percent(s: &str) -> Vec<String> {
    let digits = s.strip_suffix('%').unwrap_or("");
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            "[0-9]+%",
            &["1%", "93%"],
        )]
    }
}

/// Upstream `getPercentValue`: the number of a valid percent string.
fn percent_value(value: &IntOrString) -> Option<i64> {
    match value {
        IntOrString::String(s) if is_valid_percent(s).is_empty() => {
            // A huge number of digits saturates rather than failing, as only "> 100" matters.
            Some(s.trim_end_matches('%').parse().unwrap_or(i64::MAX))
        }
        _ => None,
    }
}

/// Upstream `getIntOrPercentValue`: the percent, the integer, or a string's `Atoi` (0 when it
/// is not a number).
fn int_or_percent_value(value: &IntOrString) -> i64 {
    match (percent_value(value), value) {
        (Some(p), _) => p,
        (None, IntOrString::Int(i)) => i64::from(*i),
        (None, IntOrString::String(s)) => s.parse().unwrap_or(0),
    }
}

/// Upstream `ValidateImmutableField(newSelector, oldSelector, spec.selector)`.
fn validate_selector_immutable(
    new: Option<&LabelSelector>,
    old: Option<&LabelSelector>,
    path: &FieldPath,
) -> Errs {
    let normal = |s: Option<&LabelSelector>| {
        s.map(|s| {
            (
                s.match_labels.clone().unwrap_or_default(),
                s.match_expressions.clone().unwrap_or_default(),
            )
        })
    };
    if normal(new) == normal(old) {
        return Errs::new();
    }
    vec![FieldError::invalid_raw(
        path,
        &go_label_selector(new),
        "field is immutable",
    )]
}

/// apimachinery's `ValidateLabelSelector` with `AllowInvalidLabelValueInSelector: false`.
pub fn validate_label_selector(selector: &LabelSelector, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if let Some(labels) = &selector.match_labels {
        errs.extend(validate_labels(labels, &path.child("matchLabels")));
    }
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_label_selector_requirement(
            requirement,
            &path.child("matchExpressions").index(i),
        ));
    }
    errs
}

/// apimachinery's `ValidateLabelSelectorRequirement`.
fn validate_label_selector_requirement(r: &LabelSelectorRequirement, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let n_values = r.values.as_ref().map_or(0, Vec::len);
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if n_values == 0 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if n_values > 0 {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_qualified_name(&r.key, &path.child("key")));
    for (i, value) in r.values.iter().flatten().enumerate() {
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(
                &path.child("values").index(i),
                value.as_str(),
                msg,
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Go's `%#v` of the values upstream quotes.
// ---------------------------------------------------------------------------------------------

/// `%#v` of a `map[string]string` (keys sorted, as Go prints maps).
pub fn go_string_map(map: Option<&BTreeMap<String, String>>) -> String {
    match map {
        None => "map[string]string(nil)".to_owned(),
        Some(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
    }
}

/// `%#v` of a `metav1.LabelSelector` (the pointer is dereferenced by the error printer; a
/// missing one is `null`).
pub fn go_label_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return "null".to_owned();
    };
    let expressions = match &selector.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|r| {
                    let values = match &r.values {
                        None => "[]string(nil)".to_owned(),
                        Some(values) => {
                            let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
                            format!("[]string{{{}}}", quoted.join(", "))
                        }
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        go_quote(&r.key),
                        go_quote(&r.operator)
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{expressions}}}",
        go_string_map(selector.match_labels.as_ref())
    )
}

/// `%#v` of an `intstr.IntOrString`.
pub fn go_int_or_string(value: &IntOrString) -> String {
    match value {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => {
            format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                go_quote(s)
            )
        }
    }
}

/// The label selector string of a workload's `spec.selector` as the `scale` subresource's
/// `status.selector` carries it: `LabelSelectorAsSelector(...).String()` for Deployments and
/// ReplicaSets, `SelectorFromSet(...).String()` for ReplicationControllers (`is_map`). Empty
/// when the selector is missing or does not convert.
pub fn selector_string(selector: Option<&serde_json::Value>, is_map: bool) -> String {
    let Some(selector) = selector.filter(|v| !v.is_null()) else {
        return String::new();
    };
    if is_map {
        return serde_json::from_value::<BTreeMap<String, String>>(selector.clone())
            .map(|map| Selector::from_set(&map).to_string())
            .unwrap_or_default();
    }
    serde_json::from_value::<LabelSelector>(selector.clone())
        .ok()
        .and_then(|typed| Selector::from_label_selector(&typed).ok())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Where a Deployment's rollout stands, as kubectl's `DeploymentStatusViewer` words it
/// (`kubectl rollout status`, revision not pinned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutStatus {
    /// Still rolling out; the message says what it waits for.
    Waiting(String),
    /// `deployment "web" successfully rolled out`.
    Done(String),
    /// The Progressing condition says `ProgressDeadlineExceeded`.
    Failed(String),
}

impl RolloutStatus {
    pub fn message(&self) -> &str {
        match self {
            RolloutStatus::Waiting(m) | RolloutStatus::Done(m) | RolloutStatus::Failed(m) => m,
        }
    }
}

/// kubectl's `DeploymentStatusViewer.Status` over a Deployment as JSON.
pub fn rollout_status(d: &serde_json::Value) -> RolloutStatus {
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    let int = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
    let status = &d["status"];
    if int(&d["metadata"]["generation"]) > int(&status["observedGeneration"]) {
        return RolloutStatus::Waiting(
            "Waiting for deployment spec update to be observed...".to_owned(),
        );
    }
    let progress_deadline_exceeded = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    if progress_deadline_exceeded {
        return RolloutStatus::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let updated = int(&status["updatedReplicas"]);
    let replicas = int(&status["replicas"]);
    let available = int(&status["availableReplicas"]);
    if let Some(desired) = d["spec"]["replicas"].as_i64()
        && updated < desired
    {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutStatus::Done(format!("deployment {name:?} successfully rolled out"))
}
