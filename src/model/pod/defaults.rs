//! `SetObjectDefaults_Pod` (`pkg/apis/core/v1/defaults.go` and its generated defaulters), plus
//! what the API server adds on create before validation: the `default` namespace, the
//! ServiceAccount admission plugin's `default` service account, and the mutation of a negative
//! `terminationGracePeriodSeconds` to 1.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, HTTPGetAction, Pod, PodSecurityContext, PodSpec, Probe, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::image::default_image_pull_policy;
use crate::model::quantity::Quantity;

/// Upstream `v1.DefaultTerminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Upstream `v1.TerminationMessagePathDefault`.
const TERMINATION_MESSAGE_PATH_DEFAULT: &str = "/dev/termination-log";
/// Upstream default `defaultMode` of secret, configMap, downwardAPI and projected volumes (0644).
const VOLUME_DEFAULT_MODE: i32 = 0o644;

/// Fills in every field the API server defaults when a Pod is created, in upstream's order.
///
/// Quantities in `resources` are rounded up to a milli and rewritten in canonical form, as the
/// API server stores them (`1.5Gi` becomes `1536Mi`); a quantity that does not parse is left
/// alone for [`super::validate`] to report.
pub fn set_defaults(pod: &mut Pod) {
    // Registry and admission: namespace and service account.
    if pod
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        pod.metadata.namespace = Some("default".to_owned());
    }
    let spec = pod.spec.get_or_insert_with(PodSpec::default);

    // SetDefaults_Pod.
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_requests_to_limits(c);
    }
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }

    set_pod_spec_defaults(spec);

    // The v1 conversion copies the deprecated `serviceAccount` into `serviceAccountName`; the
    // ServiceAccount admission plugin then defaults it, and the stored v1 object mirrors it.
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        spec.service_account_name = spec
            .service_account
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| Some("default".to_owned()));
    }
    spec.service_account = spec.service_account_name.clone();

    // PR #115606: a negative grace period is stored as 1.
    if let Some(grace) = spec.termination_grace_period_seconds.as_mut()
        && *grace < 0
    {
        *grace = 1;
    }
}

/// `SetDefaults_PodSpec` and the generated defaulters of containers, volumes and overhead: what
/// a pod template in a Deployment, ReplicaSet or ReplicationController gets (the Pod-only
/// defaults of [`set_defaults`] — service account, `enableServiceLinks`, requests from limits —
/// are not applied to templates upstream either).
pub fn set_pod_spec_defaults(spec: &mut PodSpec) {
    if spec.dns_policy.as_deref().unwrap_or_default().is_empty() {
        spec.dns_policy = Some("ClusterFirst".to_owned());
    }
    if spec
        .restart_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        spec.restart_policy = Some("Always".to_owned());
    }
    if spec.security_context.is_none() {
        spec.security_context = Some(PodSecurityContext::default());
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    }
    if spec
        .scheduler_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        spec.scheduler_name = Some("default-scheduler".to_owned());
    }

    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c);
    }
    for c in spec.containers.iter_mut() {
        default_container(c);
    }
    for ec in spec.ephemeral_containers.iter_mut().flatten() {
        if ec
            .image_pull_policy
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            let image = ec.image.as_deref().unwrap_or_default();
            ec.image_pull_policy = Some(default_image_pull_policy(image).to_owned());
        }
        if ec
            .termination_message_path
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            ec.termination_message_path = Some(TERMINATION_MESSAGE_PATH_DEFAULT.to_owned());
        }
        if ec
            .termination_message_policy
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            ec.termination_message_policy = Some("File".to_owned());
        }
    }
    if let Some(overhead) = spec.overhead.as_mut() {
        round_up_resource_list(overhead);
    }
}

/// SetDefaults_Pod: requests default to limits, for each resource that has a limit only.
fn default_requests_to_limits(c: &mut Container) {
    let Some(resources) = c.resources.as_mut() else {
        return;
    };
    let Some(limits) = resources.limits.as_ref() else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (name, value) in limits {
        requests
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
}

/// SetDefaults_Container and the generated defaulters of its nested fields.
fn default_container(c: &mut Container) {
    if c.image_pull_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        let image = c.image.as_deref().unwrap_or_default();
        c.image_pull_policy = Some(default_image_pull_policy(image).to_owned());
    }
    if c.termination_message_path
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        c.termination_message_path = Some(TERMINATION_MESSAGE_PATH_DEFAULT.to_owned());
    }
    if c.termination_message_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        c.termination_message_policy = Some("File".to_owned());
    }
    for p in c.ports.iter_mut().flatten() {
        if p.protocol.as_deref().unwrap_or_default().is_empty() {
            p.protocol = Some("TCP".to_owned());
        }
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(from) = e.value_from.as_mut() {
            if let Some(field_ref) = from.field_ref.as_mut()
                && field_ref
                    .api_version
                    .as_deref()
                    .unwrap_or_default()
                    .is_empty()
            {
                field_ref.api_version = Some("v1".to_owned());
            }
            // A zero-valued Quantity is serialized as "0" by the API server; it means "1".
            if let Some(resource_ref) = from.resource_field_ref.as_mut()
                && resource_ref.divisor.is_none()
            {
                resource_ref.divisor = Some(ApiQuantity("0".to_owned()));
            }
        }
    }
    if let Some(resources) = c.resources.as_mut() {
        if let Some(limits) = resources.limits.as_mut() {
            round_up_resource_list(limits);
        }
        if let Some(requests) = resources.requests.as_mut() {
            round_up_resource_list(requests);
        }
    }
    for probe in [
        c.liveness_probe.as_mut(),
        c.readiness_probe.as_mut(),
        c.startup_probe.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        for handler in [lifecycle.post_start.as_mut(), lifecycle.pre_stop.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(http) = handler.http_get.as_mut() {
                default_http_get(http);
            }
        }
    }
}

/// SetDefaults_Probe and the defaults of its handler.
fn default_probe(p: &mut Probe) {
    if p.timeout_seconds.unwrap_or(0) == 0 {
        p.timeout_seconds = Some(1);
    }
    if p.period_seconds.unwrap_or(0) == 0 {
        p.period_seconds = Some(10);
    }
    if p.success_threshold.unwrap_or(0) == 0 {
        p.success_threshold = Some(1);
    }
    if p.failure_threshold.unwrap_or(0) == 0 {
        p.failure_threshold = Some(3);
    }
    if let Some(http) = p.http_get.as_mut() {
        default_http_get(http);
    }
    if let Some(grpc) = p.grpc.as_mut()
        && grpc.service.is_none()
    {
        grpc.service = Some(String::new());
    }
}

/// SetDefaults_HTTPGetAction.
fn default_http_get(h: &mut HTTPGetAction) {
    if h.path.as_deref().unwrap_or_default().is_empty() {
        h.path = Some("/".to_owned());
    }
    if h.scheme.as_deref().unwrap_or_default().is_empty() {
        h.scheme = Some("HTTP".to_owned());
    }
}

/// SetDefaults_Volume and the defaults of the common volume sources.
fn default_volume(v: &mut Volume) {
    if !has_volume_source(v) {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    if let Some(host_path) = v.host_path.as_mut()
        && host_path.type_.is_none()
    {
        host_path.type_ = Some(String::new());
    }
    if let Some(secret) = v.secret.as_mut()
        && secret.default_mode.is_none()
    {
        secret.default_mode = Some(VOLUME_DEFAULT_MODE);
    }
    if let Some(config_map) = v.config_map.as_mut()
        && config_map.default_mode.is_none()
    {
        config_map.default_mode = Some(VOLUME_DEFAULT_MODE);
    }
    if let Some(downward) = v.downward_api.as_mut() {
        if downward.default_mode.is_none() {
            downward.default_mode = Some(VOLUME_DEFAULT_MODE);
        }
        for item in downward.items.iter_mut().flatten() {
            if let Some(field_ref) = item.field_ref.as_mut()
                && field_ref
                    .api_version
                    .as_deref()
                    .unwrap_or_default()
                    .is_empty()
            {
                field_ref.api_version = Some("v1".to_owned());
            }
        }
    }
    if let Some(projected) = v.projected.as_mut() {
        if projected.default_mode.is_none() {
            projected.default_mode = Some(VOLUME_DEFAULT_MODE);
        }
        for source in projected.sources.iter_mut().flatten() {
            if let Some(downward) = source.downward_api.as_mut() {
                for item in downward.items.iter_mut().flatten() {
                    if let Some(field_ref) = item.field_ref.as_mut()
                        && field_ref
                            .api_version
                            .as_deref()
                            .unwrap_or_default()
                            .is_empty()
                    {
                        field_ref.api_version = Some("v1".to_owned());
                    }
                }
            }
            if let Some(token) = source.service_account_token.as_mut()
                && token.expiration_seconds.is_none()
            {
                token.expiration_seconds = Some(3600);
            }
        }
    }
}

/// Whether any volume source is set (upstream `ptr.AllPtrFieldsNil` on `VolumeSource`).
pub(super) fn has_volume_source(v: &Volume) -> bool {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(map)) => map.keys().any(|k| k != "name"),
        _ => true,
    }
}

/// SetDefaults_ResourceList: every quantity is rounded up to a milli (and re-serialized).
fn round_up_resource_list(list: &mut BTreeMap<String, ApiQuantity>) {
    for value in list.values_mut() {
        if let Ok(mut q) = Quantity::parse(&value.0) {
            q.round_up(-3);
            value.0 = q.to_string();
        }
    }
}
