//! `ValidatePodCreate` and everything it calls for the fields podvisor reads, in upstream's
//! order, with upstream's field paths and messages.
//!
//! Not ported (podvisor does not use these, and upstream's rules for them are long): affinity,
//! topologySpreadConstraints, the details of ephemeral containers (they are rejected on create
//! anyway), pod-level `resources` (alpha in 1.33), `windowsOptions` and Windows host-process
//! rules, IP address syntax in `dnsConfig.nameservers` and `hostAliases[].ip`, sysctls that
//! clash with host namespaces, `managedFields`, the tolerations annotation, the consistency of
//! seccomp/AppArmor annotations with the matching fields, and the details of volume sources
//! other than emptyDir, hostPath, secret, configMap, downwardAPI, projected,
//! persistentVolumeClaim, nfs, csi and ephemeral (they are still counted: one source per volume).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, Lifecycle, LifecycleHandler, Pod,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceFieldSelector,
    ResourceRequirements, SeccompProfile, SecurityContext, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::volumes::{Volumes, validate_volume_devices, validate_volume_mounts, validate_volumes};
use crate::model::env::{convert_downward_api_field_label, split_maybe_subscripted_path};
use crate::model::field::{FieldError, FieldPath};
use crate::model::quantity::Quantity;
use crate::model::validation::{
    IS_NEGATIVE_ERROR_MSG, go_quote, go_string_slice, inclusive_range_error, is_config_map_key,
    is_dns1123_subdomain_with_underscore, is_http_header_name, is_qualified_name,
    is_relaxed_env_var_name, is_valid_group_id, is_valid_label_value, is_valid_port_name,
    is_valid_port_num, is_valid_user_id, name_is_dns_subdomain, validate_annotations,
    validate_dns1123_label, validate_labels, validate_nonnegative, validate_object_meta,
    validate_port_num_or_name, validate_qualified_name,
};

type Errs = Vec<FieldError>;

/// Upstream `ValidatePodCreate` on a defaulted pod ([`super::set_defaults`]): every problem,
/// in upstream's order.
pub fn validate(pod: &Pod) -> Vec<FieldError> {
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    let meta_path = FieldPath::new("metadata");
    let spec_path = FieldPath::new("spec");

    // validatePodMetadataAndSpec.
    let mut errs = validate_object_meta(&pod.metadata, &meta_path, true, name_is_dns_subdomain);
    errs.extend(validate_pod_specific_annotations(
        pod.metadata.annotations.as_ref(),
        spec,
        &meta_path.child("annotations"),
    ));
    errs.extend(validate_pod_spec(spec, &pod.metadata, &spec_path));
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        for (vi, volume) in spec.volumes.iter().flatten().enumerate() {
            let path = spec_path.child("volumes").index(vi).child("projected");
            if let Some(projected) = &volume.projected {
                for (si, source) in projected.sources.iter().flatten().enumerate() {
                    if source.service_account_token.is_some() {
                        errs.push(FieldError::forbidden(
                            &path.child("sources").index(si).child("serviceAccountToken"),
                            "must not be specified when serviceAccountName is not set",
                        ));
                    }
                }
            }
        }
    }
    for (list, name) in [
        (Some(&spec.containers), "containers"),
        (spec.init_containers.as_ref(), "initContainers"),
    ] {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let image = c.image.as_deref().unwrap_or_default();
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(
                    &spec_path.child(name).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    // ValidatePodCreate.
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !spec.node_name.as_deref().unwrap_or_default().is_empty()
        && spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
    {
        errs.push(FieldError::forbidden(
            &spec_path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

/// Upstream `ValidatePodTemplateSpec` on a defaulted template (see
/// [`super::set_pod_spec_defaults`]): labels and annotations (on `<path>.labels` and
/// `<path>.annotations`, as upstream names them), the pod-specific annotations, the pod spec
/// under `<path>.spec` and no ephemeral containers.
pub fn validate_pod_template_spec(template: &PodTemplateSpec, path: &FieldPath) -> Vec<FieldError> {
    let default_spec = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&default_spec);
    let default_meta = ObjectMeta::default();
    let meta = template.metadata.as_ref().unwrap_or(&default_meta);
    let mut errs = Errs::new();
    if let Some(labels) = &meta.labels {
        errs.extend(validate_labels(labels, &path.child("labels")));
    }
    if let Some(annotations) = &meta.annotations {
        errs.extend(validate_annotations(
            annotations,
            &path.child("annotations"),
        ));
    }
    errs.extend(validate_pod_specific_annotations(
        meta.annotations.as_ref(),
        spec,
        &path.child("annotations"),
    ));
    // Upstream passes no pod metadata for a template.
    errs.extend(validate_pod_spec(spec, &default_meta, &path.child("spec")));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Upstream `ValidatePodSpecificAnnotations` (mirror pods, deletion cost, seccomp and AppArmor
/// annotations).
fn validate_pod_specific_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    spec: &PodSpec,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    let Some(annotations) = annotations else {
        return errs;
    };
    if let Some(value) = annotations.get("kubernetes.io/config.mirror")
        && spec.node_name.as_deref().unwrap_or_default().is_empty()
    {
        errs.push(FieldError::invalid(
            &path.key("kubernetes.io/config.mirror"),
            value.as_str(),
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(value) = annotations.get("controller.kubernetes.io/pod-deletion-cost") {
        let b = value.as_bytes();
        let valid_first =
            b.is_empty() || b[0] == b'-' || value == "0" || (b'1'..=b'9').contains(&b[0]);
        if !valid_first || value.parse::<i32>().is_err() {
            errs.push(FieldError::invalid(
                &path.key("controller.kubernetes.io/pod-deletion-cost"),
                value.as_str(),
                "must be a 32bit integer",
            ));
        }
    }
    for (key, value) in annotations {
        if key == "seccomp.security.alpha.kubernetes.io/pod"
            || key.starts_with("container.seccomp.security.alpha.kubernetes.io/")
        {
            let ok = matches!(
                value.as_str(),
                "runtime/default" | "docker/default" | "unconfined"
            ) || value
                .strip_prefix("localhost/")
                .is_some_and(|p| local_descending_path_errors(p).is_empty());
            if !ok {
                let p = path.child(key);
                match value.strip_prefix("localhost/") {
                    Some(profile) => {
                        for msg in local_descending_path_errors(profile) {
                            errs.push(FieldError::invalid(&p, profile, msg));
                        }
                    }
                    None => errs.push(FieldError::invalid(
                        &p,
                        value.as_str(),
                        "must be a valid seccomp profile",
                    )),
                }
            }
        }
        if let Some(container) = key.strip_prefix("container.apparmor.security.beta.kubernetes.io/")
        {
            let exists = spec
                .init_containers
                .iter()
                .flatten()
                .chain(spec.containers.iter())
                .any(|c| c.name == container)
                || spec
                    .ephemeral_containers
                    .iter()
                    .flatten()
                    .any(|c| c.name == container);
            if !exists {
                errs.push(FieldError::invalid(
                    &path.key(key),
                    container,
                    "container not found",
                ));
            }
            if !(value.is_empty()
                || value == "runtime/default"
                || value == "unconfined"
                || value.starts_with("localhost/"))
            {
                errs.push(FieldError::invalid(
                    &path.key(key),
                    value.as_str(),
                    format!("invalid AppArmor profile name: {}", go_quote(value)),
                ));
            }
        }
    }
    errs
}

/// Everything container validation needs from the pod.
struct PodContext<'a> {
    /// `spec.terminationGracePeriodSeconds` after defaulting.
    grace_period: Option<i64>,
    /// `spec.os`, for stop signals.
    os: Option<&'a str>,
    /// `spec.restartPolicy`.
    restart_policy: &'a str,
    /// Whether the pod uses the host's user namespace.
    host_users: bool,
    /// The volumes that validated, by name.
    volumes: &'a Volumes,
    /// `spec.resourceClaims[*].name`.
    claim_names: BTreeSet<String>,
}

/// Upstream `ValidatePodSpec`.
fn validate_pod_spec(spec: &PodSpec, meta: &ObjectMeta, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let host_users = spec.host_users.unwrap_or(true);
    let (volumes, volume_errs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
        &path.child("volumes"),
    );
    errs.extend(volume_errs);
    let mut claim_names = BTreeSet::new();
    for (i, claim) in spec.resource_claims.iter().flatten().enumerate() {
        let p = path.child("resourceClaims").index(i).child("name");
        if claim.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if claim_names.contains(&claim.name) {
            errs.push(FieldError::duplicate(&p, claim.name.as_str()));
        } else {
            errs.extend(validate_dns1123_label(&claim.name, &p));
            claim_names.insert(claim.name.clone());
        }
    }
    let ctx = PodContext {
        grace_period: spec.termination_grace_period_seconds,
        os: spec.os.as_ref().map(|o| o.name.as_str()),
        restart_policy: spec.restart_policy.as_deref().unwrap_or_default(),
        host_users,
        volumes: &volumes,
        claim_names,
    };
    errs.extend(validate_containers(
        &spec.containers,
        &ctx,
        &path.child("containers"),
    ));
    errs.extend(validate_init_containers(
        spec.init_containers.as_deref().unwrap_or_default(),
        &spec.containers,
        &ctx,
        &path.child("initContainers"),
    ));
    errs.extend(validate_host_network_ports(spec, path));
    errs.extend(validate_restart_policy(
        spec.restart_policy.as_deref().unwrap_or_default(),
        &path.child("restartPolicy"),
    ));
    errs.extend(validate_dns_policy(
        spec.dns_policy.as_deref().unwrap_or_default(),
        &path.child("dnsPolicy"),
    ));
    if let Some(selector) = &spec.node_selector {
        errs.extend(validate_labels(selector, &path.child("nodeSelector")));
    }
    if let Some(sc) = &spec.security_context {
        errs.extend(validate_pod_security_context(
            sc,
            spec,
            &path.child("securityContext"),
        ));
    }
    errs.extend(validate_dns_config(spec, &path.child("dnsConfig")));
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        errs.extend(validate_qualified_name(
            &gate.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
        ));
    }
    let mut seen_gates = HashSet::new();
    for (i, gate) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = path.child("schedulingGates").index(i);
        errs.extend(validate_qualified_name(&gate.name, &p));
        if !seen_gates.insert(gate.name.clone()) {
            errs.push(FieldError::duplicate(&p, gate.name.as_str()));
        }
    }
    errs.extend(validate_host_users(spec, path));
    let service_account = spec.service_account_name.as_deref().unwrap_or_default();
    if !service_account.is_empty() {
        for msg in name_is_dns_subdomain(service_account, false) {
            errs.push(FieldError::invalid(
                &path.child("serviceAccountName"),
                service_account,
                msg,
            ));
        }
    }
    let node_name = spec.node_name.as_deref().unwrap_or_default();
    if !node_name.is_empty() {
        for msg in name_is_dns_subdomain(node_name, false) {
            errs.push(FieldError::invalid(&path.child("nodeName"), node_name, msg));
        }
    }
    if let Some(deadline) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&deadline)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            deadline,
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    if let Some(hostname) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(validate_dns1123_label(hostname, &path.child("hostname")));
    }
    if let Some(subdomain) = spec.subdomain.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(validate_dns1123_label(subdomain, &path.child("subdomain")));
    }
    if let Some(tolerations) = spec.tolerations.as_ref().filter(|t| !t.is_empty()) {
        errs.extend(validate_tolerations(
            tolerations,
            &path.child("tolerations"),
        ));
    }
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        for (j, hostname) in alias.hostnames.iter().flatten().enumerate() {
            errs.extend(crate::model::validation::validate_dns1123_subdomain(
                hostname,
                &path
                    .child("hostAliases")
                    .index(i)
                    .child("hostnames")
                    .index(j),
            ));
        }
    }
    if let Some(class) = spec
        .priority_class_name
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        for msg in name_is_dns_subdomain(class, false) {
            errs.push(FieldError::invalid(
                &path.child("priorityClassName"),
                class,
                msg,
            ));
        }
    }
    if let Some(class) = &spec.runtime_class_name {
        for msg in name_is_dns_subdomain(class, false) {
            errs.push(FieldError::invalid(
                &path.child("runtimeClassName"),
                class.as_str(),
                msg,
            ));
        }
    }
    if let Some(policy) = &spec.preemption_policy {
        let p = path.child("preemptionPolicy");
        match policy.as_str() {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required(&p, "")),
            other => errs.push(FieldError::not_supported(
                &p,
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(os) = &spec.os {
        let p = path.child("os");
        if os.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), "cannot be empty"));
        } else if !matches!(os.name.as_str(), "linux" | "windows") {
            errs.push(FieldError::not_supported(
                &p,
                os.name.as_str(),
                &["linux", "windows"],
            ));
        } else if os.name == "linux" {
            errs.extend(validate_linux(spec, path));
        } else {
            errs.extend(validate_windows(spec, path));
        }
    }
    errs
}

/// Upstream `validateContainers`.
fn validate_containers(containers: &[Container], ctx: &PodContext<'_>, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, ctx, &p));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        }
        if let Some(lifecycle) = &c.lifecycle {
            errs.extend(validate_lifecycle(lifecycle, ctx, &p.child("lifecycle")));
        }
        errs.extend(validate_probes(c, ctx, &p));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(check_host_port_conflicts(
        containers.iter().enumerate(),
        path,
    ));
    errs
}

/// Upstream `validateInitContainers`.
fn validate_init_containers(
    containers: &[Container],
    regular: &[Container],
    ctx: &PodContext<'_>,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    let mut names: HashSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, ctx, &p));
        let mut restart_always = false;
        if let Some(policy) = &c.restart_policy {
            if policy != "Always" {
                errs.push(FieldError::not_supported(
                    &p.child("restartPolicy"),
                    policy.as_str(),
                    &["Always"],
                ));
            }
            restart_always = policy == "Always";
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        // Init containers run one by one, so host ports only conflict within one of them.
        errs.extend(check_host_port_conflicts(std::iter::once((i, c)), path));
        if restart_always {
            if let Some(lifecycle) = &c.lifecycle {
                errs.extend(validate_lifecycle(lifecycle, ctx, &p.child("lifecycle")));
            }
            errs.extend(validate_probes(c, ctx, &p));
        } else {
            for (set, field) in [
                (c.lifecycle.is_some(), "lifecycle"),
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if set {
                    errs.push(FieldError::forbidden(
                        &p.child(field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// Upstream `validateContainerCommon`.
fn validate_container_common(c: &Container, ctx: &PodContext<'_>, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validate_dns1123_label(&c.name, &name_path));
    }
    if c.image.as_deref().unwrap_or_default().is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    let policy_path = path.child("terminationMessagePolicy");
    match c.termination_message_policy.as_deref().unwrap_or_default() {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(&policy_path, "")),
        other => errs.push(FieldError::not_supported(
            &policy_path,
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or_default(),
        &path.child("ports"),
    ));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &path.child("envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        c,
        ctx.volumes,
        &path.child("volumeMounts"),
    ));
    errs.extend(validate_volume_devices(
        c,
        ctx.volumes,
        &path.child("volumeDevices"),
    ));
    errs.extend(validate_pull_policy(
        c.image_pull_policy.as_deref().unwrap_or_default(),
        &path.child("imagePullPolicy"),
    ));
    if let Some(resources) = &c.resources {
        errs.extend(validate_resource_requirements(
            resources,
            &ctx.claim_names,
            &path.child("resources"),
        ));
    }
    errs.extend(validate_resize_policy(
        c,
        ctx.restart_policy,
        &path.child("resizePolicy"),
    ));
    if let Some(sc) = &c.security_context {
        errs.extend(validate_security_context(
            sc,
            ctx.host_users,
            &path.child("securityContext"),
        ));
    }
    errs
}

/// Upstream `validateContainerPorts`.
fn validate_container_ports(ports: &[ContainerPort], path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = port.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(&p.child("name"), name, msg));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for msg in is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    &p.child("containerPort"),
                    port.container_port,
                    msg,
                ));
            }
        }
        let host_port = port.host_port.unwrap_or(0);
        if host_port != 0 {
            for msg in is_valid_port_num(i64::from(host_port)) {
                errs.push(FieldError::invalid(&p.child("hostPort"), host_port, msg));
            }
        }
        match port.protocol.as_deref().unwrap_or_default() {
            "" => errs.push(FieldError::required(&p.child("protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(
                &p.child("protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
    errs
}

/// Upstream `AccumulateUniqueHostPorts`.
fn check_host_port_conflicts<'a>(
    containers: impl Iterator<Item = (usize, &'a Container)>,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    let mut seen = HashSet::new();
    for (ci, c) in containers {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{}",
                port.protocol.as_deref().unwrap_or_default(),
                port.host_ip.as_deref().unwrap_or_default(),
                host_port
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

/// Upstream `ValidateEnv` with `AllowRelaxedEnvironmentVariableValidation` (on in 1.33).
fn validate_env(vars: &[EnvVar], path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    for (i, var) in vars.iter().enumerate() {
        let p = path.index(i);
        if var.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            for msg in is_relaxed_env_var_name(&var.name) {
                errs.push(FieldError::invalid(
                    &p.child("name"),
                    var.name.as_str(),
                    msg,
                ));
            }
        }
        errs.extend(validate_env_var_value_from(var, &p.child("valueFrom")));
    }
    errs
}

/// The field paths `env[].valueFrom.fieldRef` accepts.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// The resources `resourceFieldRef` accepts (besides `requests.hugepages-*`/`limits.hugepages-*`).
const CONTAINER_RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Upstream `validateEnvVarValueFrom`.
fn validate_env_var_value_from(var: &EnvVar, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let Some(from) = &var.value_from else {
        return errs;
    };
    let mut sources = 0;
    if let Some(field_ref) = &from.field_ref {
        sources += 1;
        errs.extend(validate_object_field_selector(
            field_ref.api_version.as_deref().unwrap_or_default(),
            &field_ref.field_path,
            ENV_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
    }
    if let Some(resource_ref) = &from.resource_field_ref {
        sources += 1;
        errs.extend(validate_container_resource_field_selector(
            resource_ref,
            &path.child("resourceFieldRef"),
            false,
        ));
    }
    if let Some(cm) = &from.config_map_key_ref {
        sources += 1;
        errs.extend(validate_key_selector(
            &cm.name,
            &cm.key,
            &path.child("configMapKeyRef"),
        ));
    }
    if let Some(s) = &from.secret_key_ref {
        sources += 1;
        errs.extend(validate_key_selector(
            &s.name,
            &s.key,
            &path.child("secretKeyRef"),
        ));
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if !var.value.as_deref().unwrap_or_default().is_empty() {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// Upstream `validateObjectFieldSelector`.
pub(super) fn validate_object_field_selector(
    api_version: &str,
    field_path: &str,
    expressions: &[&str],
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    if api_version.is_empty() {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
        return errs;
    }
    if field_path.is_empty() {
        errs.push(FieldError::required(&path.child("fieldPath"), ""));
        return errs;
    }
    let internal = match convert_downward_api_field_label(api_version, field_path) {
        Ok(internal) => internal,
        Err(e) => {
            errs.push(FieldError::invalid(
                &path.child("fieldPath"),
                field_path,
                format!("error converting fieldPath: {e}"),
            ));
            return errs;
        }
    };
    if let Some((base, subscript)) = split_maybe_subscripted_path(&internal) {
        match base {
            "metadata.annotations" => {
                errs.extend(validate_qualified_name(&subscript.to_lowercase(), path));
            }
            "metadata.labels" => errs.extend(validate_qualified_name(subscript, path)),
            _ => errs.push(FieldError::invalid(
                path,
                base,
                "does not support subscript",
            )),
        }
    } else if !expressions.contains(&internal.as_str()) {
        errs.push(FieldError::not_supported(
            &path.child("fieldPath"),
            internal.as_str(),
            expressions,
        ));
    }
    errs
}

/// Upstream `validateContainerResourceFieldSelector`.
pub(super) fn validate_container_resource_field_selector(
    selector: &ResourceFieldSelector,
    path: &FieldPath,
    volume: bool,
) -> Errs {
    let mut errs = Errs::new();
    let resource = selector.resource.as_str();
    if volume
        && selector
            .container_name
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !CONTAINER_RESOURCE_FIELD_PATHS.contains(&resource)
        && !resource.starts_with("limits.hugepages-")
        && !resource.starts_with("requests.hugepages-")
    {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            resource,
            CONTAINER_RESOURCE_FIELD_PATHS,
        ));
    }
    if let Some(divisor) = &selector.divisor {
        match Quantity::parse(&divisor.0) {
            Ok(d) => errs.extend(validate_container_resource_divisor(resource, &d, path)),
            Err(e) => errs.push(FieldError::invalid(
                &path.child("divisor"),
                divisor.0.as_str(),
                e.to_string(),
            )),
        }
    }
    errs
}

/// Upstream `validateContainerResourceDivisor`.
fn validate_container_resource_divisor(
    resource: &str,
    divisor: &Quantity,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    if divisor.is_zero() {
        return errs;
    }
    const BYTES: &[&str] = &[
        "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
    ];
    const BYTES_LIST: &str = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei";
    let text = divisor.to_string();
    let p = path.child("divisor");
    let rule: Option<(&[&str], String)> = match resource {
        "limits.cpu" | "requests.cpu" => Some((
            &["1m", "1"],
            "only divisor's values 1m and 1 are supported with the cpu resource".to_owned(),
        )),
        "limits.memory" | "requests.memory" => Some((
            BYTES,
            format!("only divisor's values {BYTES_LIST} are supported with the memory resource"),
        )),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => Some((
            BYTES,
            format!(
                "only divisor's values {BYTES_LIST} are supported with the local ephemeral storage resource"
            ),
        )),
        _ => None,
    };
    if let Some((allowed, msg)) = rule
        && !allowed.contains(&text.as_str())
    {
        errs.push(FieldError::invalid(&p, resource, msg));
    }
    if (resource.starts_with("requests.hugepages-") || resource.starts_with("limits.hugepages-"))
        && !BYTES.contains(&text.as_str())
    {
        errs.push(FieldError::invalid(
            &p,
            resource,
            format!("only divisor's values {BYTES_LIST} are supported with the hugepages resource"),
        ));
    }
    errs
}

/// Upstream `validateConfigMapKeySelector` / `validateSecretKeySelector`.
fn validate_key_selector(name: &str, key: &str, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    for msg in name_is_dns_subdomain(name, false) {
        errs.push(FieldError::invalid(&path.child("name"), name, msg));
    }
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.child("key"), key, msg));
        }
    }
    errs
}

/// Upstream `ValidateEnvFrom` with relaxed names (on in 1.33).
fn validate_env_from(sources: &[EnvFromSource], path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    for (i, source) in sources.iter().enumerate() {
        let p = path.index(i);
        let prefix = source.prefix.as_deref().unwrap_or_default();
        if !prefix.is_empty() {
            for msg in is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(&p.child("prefix"), prefix, msg));
            }
        }
        let mut count = 0;
        if let Some(cm) = &source.config_map_ref {
            count += 1;
            errs.extend(validate_env_source_name(&cm.name, &p.child("configMapRef")));
        }
        if let Some(s) = &source.secret_ref {
            count += 1;
            errs.extend(validate_env_source_name(&s.name, &p.child("secretRef")));
        }
        // Upstream reports these two on the list, not on the entry.
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_env_source_name(name: &str, path: &FieldPath) -> Errs {
    if name.is_empty() {
        return vec![FieldError::required(&path.child("name"), "")];
    }
    // Upstream validates these names as prefixes (a trailing dash is accepted).
    name_is_dns_subdomain(name, true)
        .into_iter()
        .map(|msg| FieldError::invalid(&path.child("name"), name, msg))
        .collect()
}

/// Upstream `validatePullPolicy`.
fn validate_pull_policy(policy: &str, path: &FieldPath) -> Errs {
    match policy {
        "Always" | "IfNotPresent" | "Never" => Errs::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "IfNotPresent", "Never"],
        )],
    }
}

/// Upstream `ValidateContainerResourceRequirements`.
fn validate_resource_requirements(
    requirements: &ResourceRequirements,
    claim_names: &BTreeSet<String>,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let mut lim_cpu_or_memory = false;
    let mut req_cpu_or_memory = false;
    let mut lim_hugepages = false;
    let mut req_hugepages = false;
    let empty = BTreeMap::new();
    let limits = requirements.limits.as_ref().unwrap_or(&empty);
    let requests = requirements.requests.as_ref().unwrap_or(&empty);
    let mut parsed_limits: HashMap<&str, Quantity> = HashMap::new();
    for (name, raw) in limits {
        let p = lim_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        let Some(q) = parse_quantity_field(&raw.0, &p, &mut errs) else {
            continue;
        };
        errs.extend(validate_resource_quantity_value(name, &q, &p));
        if name.starts_with("hugepages-") {
            lim_hugepages = true;
            if let Some(msg) = hugepage_value_error(name, &q) {
                errs.push(FieldError::invalid(&p, q.to_string(), msg));
            }
        }
        if name == "cpu" || name == "memory" {
            lim_cpu_or_memory = true;
        }
        parsed_limits.insert(name.as_str(), q);
    }
    for (name, raw) in requests {
        let p = req_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        let Some(q) = parse_quantity_field(&raw.0, &p, &mut errs) else {
            continue;
        };
        errs.extend(validate_resource_quantity_value(name, &q, &p));
        let overcommit = is_overcommit_allowed(name);
        match parsed_limits.get(name.as_str()) {
            Some(limit) => {
                if q != *limit && !overcommit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.to_string(),
                        format!("must be equal to {name} limit of {limit}"),
                    ));
                } else if q > *limit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.to_string(),
                        format!("must be less than or equal to {name} limit of {limit}"),
                    ));
                }
            }
            None if !limits.contains_key(name) && !overcommit => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
        if name.starts_with("hugepages-") {
            req_hugepages = true;
            if let Some(msg) = hugepage_value_error(name, &q) {
                errs.push(FieldError::invalid(&p, q.to_string(), msg));
            }
        }
        if name == "cpu" || name == "memory" {
            req_cpu_or_memory = true;
        }
    }
    if !lim_cpu_or_memory && !req_cpu_or_memory && (req_hugepages || lim_hugepages) {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    let mut seen = HashSet::new();
    for (i, claim) in requirements.claims.iter().flatten().enumerate() {
        let p = path.child("claims").index(i);
        if claim.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        if !seen.insert(claim.name.clone()) {
            errs.push(FieldError::duplicate(&p, claim.name.as_str()));
        }
        if !claim_names.contains(&claim.name) {
            let mut e = FieldError::not_found(&p, claim.name.as_str());
            e.detail = if claim_names.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_owned()
            } else {
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    claim_names.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            errs.push(e);
        }
    }
    errs
}

/// Parses a quantity of the manifest. Upstream rejects a malformed quantity while decoding the
/// request ("quantities must match the regular expression …"); podvisor decodes quantities as
/// strings, so it reports that message as a field error instead.
pub(super) fn parse_quantity_field(
    raw: &str,
    path: &FieldPath,
    errs: &mut Errs,
) -> Option<Quantity> {
    match Quantity::parse(raw) {
        Ok(q) => Some(q),
        Err(e) => {
            errs.push(FieldError::invalid(path, raw, e.to_string()));
            None
        }
    }
}

/// Upstream `ValidateResourceQuantityValue`.
fn validate_resource_quantity_value(name: &str, q: &Quantity, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if q.sign() < 0 {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            IS_NEGATIVE_ERROR_MSG,
        ));
    }
    if is_extended_resource_name(name) && !q.is_integer() {
        // Upstream prints the Quantity itself, unquoted.
        errs.push(FieldError::invalid_raw(
            path,
            &q.to_string(),
            "must be an integer",
        ));
    }
    errs
}

/// Upstream `IsHugePageResourceValueDivisible`, as an error message.
fn hugepage_value_error(name: &str, q: &Quantity) -> Option<String> {
    let size = name.strip_prefix("hugepages-")?;
    let divisible = match Quantity::parse(size) {
        Ok(page) if page.sign() > 0 && page.milli_value() % 1000 == 0 => {
            q.value() % page.value() == 0
        }
        _ => false,
    };
    if divisible {
        None
    } else {
        Some(format!("{q} is not positive integer multiple of {name}"))
    }
}

/// Upstream `IsNativeResource`.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Upstream `IsOvercommitAllowed`.
fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

/// Upstream `IsExtendedResourceName`.
fn is_extended_resource_name(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// Upstream `IsStandardResourceName`.
fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "resourcequotas",
        "services",
        "replicationcontrollers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    ];
    STANDARD.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// Upstream `validateContainerResourceName`.
fn validate_container_resource_name(name: &str, path: &FieldPath) -> Errs {
    let mut errs: Errs = is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect();
    if errs.is_empty() && !name.contains('/') && !is_standard_resource_name(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
    }
    if !name.contains('/') {
        let container_resource = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !container_resource {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Upstream `validateResizePolicy`.
fn validate_resize_policy(c: &Container, pod_restart_policy: &str, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let mut seen = HashSet::new();
    for (i, p) in c.resize_policy.iter().flatten().enumerate() {
        if !seen.insert(p.resource_name.as_str()) {
            errs.push(FieldError::duplicate(
                &path.index(i),
                p.resource_name.as_str(),
            ));
        }
        match p.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(path, other, &["cpu", "memory"])),
        }
        match p.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if pod_restart_policy == "Never" && p.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                p.restart_policy.as_str(),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

/// Upstream `ValidateSecurityContext` (container level).
fn validate_security_context(sc: &SecurityContext, host_users: bool, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    // `privileged` is allowed: podvisor runs with the API server's --allow-privileged=true.
    if let Some(uid) = sc.run_as_user {
        for msg in is_valid_user_id(uid) {
            errs.push(FieldError::invalid(&path.child("runAsUser"), uid, msg));
        }
    }
    if let Some(gid) = sc.run_as_group {
        for msg in is_valid_group_id(gid) {
            errs.push(FieldError::invalid(&path.child("runAsGroup"), gid, msg));
        }
    }
    if let Some(proc_mount) = &sc.proc_mount {
        let p = path.child("procMount");
        if !matches!(proc_mount.as_str(), "Default" | "Unmasked") {
            errs.push(FieldError::not_supported(
                &p,
                proc_mount.as_str(),
                &["Default", "Unmasked"],
            ));
        }
        if host_users && proc_mount == "Unmasked" {
            errs.push(FieldError::invalid(
                &p,
                proc_mount.as_str(),
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    errs.extend(validate_seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    if sc.allow_privilege_escalation == Some(false) {
        let raw = serde_json::to_string(sc).unwrap_or_default();
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid_raw(
                path,
                &raw,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        for cap in sc.capabilities.iter().flat_map(|c| c.add.iter().flatten()) {
            if cap == "CAP_SYS_ADMIN" {
                errs.push(FieldError::invalid_raw(
                    path,
                    &raw,
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                ));
            }
        }
    }
    if let Some(profile) = &sc.app_armor_profile {
        errs.extend(validate_app_armor_profile(
            &profile.type_,
            profile.localhost_profile.as_deref(),
            &path.child("appArmorProfile"),
        ));
    }
    errs
}

/// Upstream `validatePodSpecSecurityContext`.
fn validate_pod_security_context(
    sc: &PodSecurityContext,
    spec: &PodSpec,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    if let Some(gid) = sc.fs_group {
        for msg in is_valid_group_id(gid) {
            errs.push(FieldError::invalid(&path.child("fsGroup"), gid, msg));
        }
    }
    if let Some(uid) = sc.run_as_user {
        for msg in is_valid_user_id(uid) {
            errs.push(FieldError::invalid(&path.child("runAsUser"), uid, msg));
        }
    }
    if let Some(gid) = sc.run_as_group {
        for msg in is_valid_group_id(gid) {
            errs.push(FieldError::invalid(&path.child("runAsGroup"), gid, msg));
        }
    }
    for (i, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        for msg in is_valid_group_id(*gid) {
            errs.push(FieldError::invalid(
                &path.child("supplementalGroups").index(i),
                *gid,
                msg,
            ));
        }
    }
    // In the v1 API these two live in the spec; upstream validates them as security context.
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut names = HashSet::new();
    for (i, sysctl) in sc.sysctls.iter().flatten().enumerate() {
        let p = path.child("sysctls").index(i).child("name");
        if sysctl.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !is_valid_sysctl_name(&sysctl.name) {
            errs.push(FieldError::invalid(
                &p,
                sysctl.name.as_str(),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if names.contains(&sysctl.name) {
            errs.push(FieldError::duplicate(&p, sysctl.name.as_str()));
        }
        names.insert(sysctl.name.clone());
    }
    if let Some(policy) = &sc.fs_group_change_policy
        && !matches!(policy.as_str(), "Always" | "OnRootMismatch")
    {
        errs.push(FieldError::not_supported(
            &path.child("fsGroupChangePolicy"),
            policy.as_str(),
            &["Always", "OnRootMismatch"],
        ));
    }
    errs.extend(validate_seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    if let Some(profile) = &sc.app_armor_profile {
        errs.extend(validate_app_armor_profile(
            &profile.type_,
            profile.localhost_profile.as_deref(),
            &path.child("appArmorProfile"),
        ));
    }
    if let Some(policy) = &sc.supplemental_groups_policy
        && !matches!(policy.as_str(), "Merge" | "Strict")
    {
        errs.push(FieldError::not_supported(
            &path.child("supplementalGroupsPolicy"),
            policy.as_str(),
            &["Merge", "Strict"],
        ));
    }
    if let Some(policy) = &sc.se_linux_change_policy
        && !matches!(policy.as_str(), "MountOption" | "Recursive")
    {
        errs.push(FieldError::not_supported(
            &path.child("seLinuxChangePolicy"),
            policy.as_str(),
            &["MountOption", "Recursive"],
        ));
    }
    errs
}

/// Matches upstream's sysctl name expression: segments `[a-z0-9]([-_a-z0-9]*[a-z0-9])?` joined
/// by `.` or `/`, at most 253 characters.
fn is_valid_sysctl_name(name: &str) -> bool {
    name.len() <= 253
        && name.split(['.', '/']).all(|segment| {
            let b = segment.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter().all(|&c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
                })
        })
}

/// Upstream `validateSeccompProfileField`.
fn validate_seccomp_profile(profile: Option<&SeccompProfile>, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let Some(profile) = profile else {
        return errs;
    };
    match profile.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if profile.type_ == "Localhost" {
        match &profile.localhost_profile {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(p) => {
                for msg in local_descending_path_errors(p) {
                    errs.push(FieldError::invalid(
                        &path.child("localhostProfile"),
                        p.as_str(),
                        msg,
                    ));
                }
            }
        }
    } else if profile.localhost_profile.is_some() {
        errs.push(FieldError::invalid_raw(
            &path.child("localhostProfile"),
            &serde_json::to_string(profile).unwrap_or_default(),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

/// Upstream `validateLocalDescendingPath`: relative, without `..` elements.
pub(super) fn local_descending_path_errors(target: &str) -> Vec<&'static str> {
    let mut msgs = Vec::new();
    if target.starts_with('/') {
        msgs.push("must be a relative path");
    }
    if target.split('/').any(|part| part == "..") {
        msgs.push("must not contain '..'");
    }
    msgs
}

/// Upstream `ValidateAppArmorProfileField`.
fn validate_app_armor_profile(kind: &str, localhost: Option<&str>, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    match kind {
        "Localhost" => match localhost {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(profile) => {
                let trimmed = profile.trim();
                if trimmed != profile {
                    errs.push(FieldError::invalid(
                        &path.child("localhostProfile"),
                        profile,
                        "must not be padded with whitespace",
                    ));
                } else if trimmed.is_empty() {
                    errs.push(FieldError::required(
                        &path.child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if profile.len() > 4095 {
                    errs.push(FieldError::too_long(&path.child("localhostProfile"), 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(profile) = localhost {
                errs.push(FieldError::invalid(
                    &path.child("localhostProfile"),
                    profile,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    errs
}

/// The probes of a container, with their kind-specific rules.
fn validate_probes(c: &Container, ctx: &PodContext<'_>, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if let Some(probe) = &c.liveness_probe {
        let p = path.child("livenessProbe");
        errs.extend(validate_probe(probe, ctx, &p));
        errs.extend(success_threshold_must_be_one(probe, &p));
    }
    if let Some(probe) = &c.readiness_probe {
        let p = path.child("readinessProbe");
        errs.extend(validate_probe(probe, ctx, &p));
        if let Some(grace) = probe.termination_grace_period_seconds {
            errs.push(FieldError::invalid(
                &p.child("terminationGracePeriodSeconds"),
                grace,
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(probe) = &c.startup_probe {
        let p = path.child("startupProbe");
        errs.extend(validate_probe(probe, ctx, &p));
        errs.extend(success_threshold_must_be_one(probe, &p));
    }
    errs
}

fn success_threshold_must_be_one(probe: &Probe, path: &FieldPath) -> Errs {
    let threshold = probe.success_threshold.unwrap_or(0);
    if threshold != 1 {
        vec![FieldError::invalid(
            &path.child("successThreshold"),
            threshold,
            "must be 1",
        )]
    } else {
        Errs::new()
    }
}

/// Upstream `validateProbe`.
fn validate_probe(probe: &Probe, ctx: &PodContext<'_>, path: &FieldPath) -> Errs {
    let handler = Handler {
        exec: probe
            .exec
            .as_ref()
            .map(|e| e.command.as_deref().unwrap_or_default()),
        http_get: probe.http_get.as_ref(),
        tcp_socket: probe.tcp_socket.as_ref().map(|t| &t.port),
        grpc: probe.grpc.as_ref().map(|g| g.port),
        sleep: None,
    };
    let mut errs = validate_handler(&handler, ctx, path);
    for (value, field) in [
        (probe.initial_delay_seconds, "initialDelaySeconds"),
        (probe.timeout_seconds, "timeoutSeconds"),
        (probe.period_seconds, "periodSeconds"),
        (probe.success_threshold, "successThreshold"),
        (probe.failure_threshold, "failureThreshold"),
    ] {
        errs.extend(validate_nonnegative(
            i64::from(value.unwrap_or(0)),
            &path.child(field),
        ));
    }
    if let Some(grace) = probe.termination_grace_period_seconds
        && grace <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            grace,
            "must be greater than 0",
        ));
    }
    errs
}

/// Upstream `commonHandler`: the handler fields of a probe or a lifecycle hook.
struct Handler<'a> {
    exec: Option<&'a [String]>,
    http_get: Option<&'a k8s_openapi::api::core::v1::HTTPGetAction>,
    tcp_socket: Option<&'a IntOrString>,
    grpc: Option<i32>,
    sleep: Option<i64>,
}

impl<'a> Handler<'a> {
    fn from_lifecycle(h: &'a LifecycleHandler) -> Self {
        Handler {
            exec: h
                .exec
                .as_ref()
                .map(|e| e.command.as_deref().unwrap_or_default()),
            http_get: h.http_get.as_ref(),
            tcp_socket: h.tcp_socket.as_ref().map(|t| &t.port),
            grpc: None,
            sleep: h.sleep.as_ref().map(|s| s.seconds),
        }
    }
}

/// Upstream `validateHandler`: exactly one handler, each valid.
fn validate_handler(handler: &Handler<'_>, ctx: &PodContext<'_>, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let mut count = 0;
    let mut one = |name: &str, errs: &mut Errs| -> bool {
        if count > 0 {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            count += 1;
            true
        }
    };
    if let Some(command) = handler.exec
        && one("exec", &mut errs)
        && command.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("exec").child("command"),
            "",
        ));
    }
    if let Some(http) = handler.http_get
        && one("httpGet", &mut errs)
    {
        errs.extend(validate_http_get(http, &path.child("httpGet")));
    }
    if let Some(port) = handler.tcp_socket
        && one("tcpSocket", &mut errs)
    {
        errs.extend(validate_port_num_or_name(
            port,
            &path.child("tcpSocket").child("port"),
        ));
    }
    if let Some(port) = handler.grpc
        && one("grpc", &mut errs)
    {
        errs.extend(validate_port_num_or_name(
            &IntOrString::Int(port),
            &path.child("grpc").child("port"),
        ));
    }
    if let Some(seconds) = handler.sleep
        && one("sleep", &mut errs)
    {
        // The grace period may be missing when it is itself invalid; upstream then skips this.
        if let Some(grace) = ctx.grace_period
            && (seconds < 0 || seconds > grace)
        {
            errs.push(FieldError::invalid(
                &path.child("sleep"),
                seconds,
                format!(
                    "must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                ),
            ));
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// Upstream `validateHTTPGetAction`.
fn validate_http_get(http: &k8s_openapi::api::core::v1::HTTPGetAction, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if http.path.as_deref().unwrap_or_default().is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(validate_port_num_or_name(&http.port, &path.child("port")));
    let scheme = http.scheme.as_deref().unwrap_or_default();
    if !matches!(scheme, "HTTP" | "HTTPS") {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in http.http_headers.iter().flatten() {
        for msg in is_http_header_name(&header.name) {
            errs.push(FieldError::invalid(
                &path.child("httpHeaders"),
                header.name.as_str(),
                msg,
            ));
        }
    }
    errs
}

/// Stop signals a Linux pod may use (upstream `supportedStopSignalsLinux`), sorted like
/// upstream's `sets.List`. The image map accepts the same names.
pub const STOP_SIGNALS_LINUX: &[&str] = &[
    "SIGABRT",
    "SIGALRM",
    "SIGBUS",
    "SIGCHLD",
    "SIGCLD",
    "SIGCONT",
    "SIGFPE",
    "SIGHUP",
    "SIGILL",
    "SIGINT",
    "SIGIO",
    "SIGIOT",
    "SIGKILL",
    "SIGPIPE",
    "SIGPOLL",
    "SIGPROF",
    "SIGPWR",
    "SIGQUIT",
    "SIGRTMAX",
    "SIGRTMAX-1",
    "SIGRTMAX-10",
    "SIGRTMAX-11",
    "SIGRTMAX-12",
    "SIGRTMAX-13",
    "SIGRTMAX-14",
    "SIGRTMAX-2",
    "SIGRTMAX-3",
    "SIGRTMAX-4",
    "SIGRTMAX-5",
    "SIGRTMAX-6",
    "SIGRTMAX-7",
    "SIGRTMAX-8",
    "SIGRTMAX-9",
    "SIGRTMIN",
    "SIGRTMIN+1",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGSEGV",
    "SIGSTKFLT",
    "SIGSTOP",
    "SIGSYS",
    "SIGTERM",
    "SIGTRAP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGUSR1",
    "SIGUSR2",
    "SIGVTALRM",
    "SIGWINCH",
    "SIGXCPU",
    "SIGXFSZ",
];

/// Stop signals a Windows pod may use.
const STOP_SIGNALS_WINDOWS: &[&str] = &["SIGKILL", "SIGTERM"];

/// Upstream `validateLifecycle`, including `validateStopSignal` (KEP-4960).
fn validate_lifecycle(lifecycle: &Lifecycle, ctx: &PodContext<'_>, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if let Some(h) = &lifecycle.post_start {
        errs.extend(validate_handler(
            &Handler::from_lifecycle(h),
            ctx,
            &path.child("postStart"),
        ));
    }
    if let Some(h) = &lifecycle.pre_stop {
        errs.extend(validate_handler(
            &Handler::from_lifecycle(h),
            ctx,
            &path.child("preStop"),
        ));
    }
    if let Some(signal) = &lifecycle.stop_signal {
        let p = path.child("stopSignal");
        match ctx.os {
            None => errs.push(FieldError::forbidden(
                &p,
                "may not be set for containers with empty `spec.os.name`",
            )),
            Some("windows") if !STOP_SIGNALS_WINDOWS.contains(&signal.as_str()) => {
                errs.push(FieldError::not_supported(
                    &p,
                    signal.as_str(),
                    STOP_SIGNALS_WINDOWS,
                ));
            }
            Some("linux") if !STOP_SIGNALS_LINUX.contains(&signal.as_str()) => {
                errs.push(FieldError::not_supported(
                    &p,
                    signal.as_str(),
                    STOP_SIGNALS_LINUX,
                ));
            }
            _ => {}
        }
    }
    errs
}

/// Upstream `validatePodHostNetworkDeps` for a Pod (`ResourceIsPod`).
fn validate_host_network_ports(spec: &PodSpec, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if spec.host_network != Some(true) {
        return errs;
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if host_port != port.container_port {
                errs.push(FieldError::invalid(
                    &path
                        .child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort"),
                    host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

/// Upstream `validateRestartPolicy`.
fn validate_restart_policy(policy: &str, path: &FieldPath) -> Errs {
    match policy {
        "Always" | "OnFailure" | "Never" => Errs::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "OnFailure", "Never"],
        )],
    }
}

/// Upstream `validateDNSPolicy`.
fn validate_dns_policy(policy: &str, path: &FieldPath) -> Errs {
    match policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => Errs::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )],
    }
}

/// The parts of upstream `validatePodDNSConfig` that do not parse IP addresses.
fn validate_dns_config(spec: &PodSpec, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let config = spec.dns_config.as_ref();
    if spec.dns_policy.as_deref() == Some("None") {
        let Some(config) = config else {
            errs.push(FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
            return errs;
        };
        if config.nameservers.as_ref().is_none_or(|n| n.is_empty()) {
            errs.push(FieldError::required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
            return errs;
        }
    }
    let Some(config) = config else {
        return errs;
    };
    if let Some(nameservers) = &config.nameservers
        && nameservers.len() > 3
    {
        errs.push(FieldError::invalid_raw(
            &path.child("nameservers"),
            &go_string_slice(nameservers),
            "must not have more than 3 nameservers",
        ));
    }
    if let Some(searches) = &config.searches {
        if searches.len() > 32 {
            errs.push(FieldError::invalid_raw(
                &path.child("searches"),
                &go_string_slice(searches),
                "must not have more than 32 search paths",
            ));
        }
        if searches.join(" ").len() > 2048 {
            errs.push(FieldError::invalid_raw(
                &path.child("searches"),
                &go_string_slice(searches),
                "must not have more than 2048 characters (including spaces) in the search list",
            ));
        }
        // RelaxedDNSSearchValidation (on in 1.33): "." and underscores are allowed.
        for (i, search) in searches.iter().enumerate() {
            if search == "." {
                continue;
            }
            let search = search.strip_suffix('.').unwrap_or(search);
            for msg in is_dns1123_subdomain_with_underscore(search) {
                errs.push(FieldError::invalid(
                    &path.child("searches").index(i),
                    search,
                    msg,
                ));
            }
        }
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if option.name.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

/// Upstream `ValidateTolerations`.
fn validate_tolerations(tolerations: &[Toleration], path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or_default();
        let operator = t.operator.as_deref().unwrap_or_default();
        let value = t.value.as_deref().unwrap_or_default();
        let effect = t.effect.as_deref().unwrap_or_default();
        if !key.is_empty() {
            errs.extend(validate_qualified_name(key, &p.child("key")));
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// Upstream `validateHostUsers`.
fn validate_host_users(spec: &PodSpec, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if spec.host_users != Some(false) {
        return errs;
    }
    for (set, field) in [
        (spec.host_network == Some(true), "hostNetwork"),
        (spec.host_pid == Some(true), "HostPID"),
        (spec.host_ipc == Some(true), "HostIPC"),
    ] {
        if set {
            errs.push(FieldError::forbidden(
                &path.child(field),
                "when `pod.Spec.HostUsers` is false",
            ));
        }
    }
    errs
}

/// All containers of a pod with their paths, in upstream's `VisitContainersWithPath` order
/// (ephemeral containers are rejected on create and not visited).
fn containers_with_paths<'a>(
    spec: &'a PodSpec,
    path: &FieldPath,
) -> Vec<(&'a Container, FieldPath)> {
    let mut out = Vec::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        out.push((c, path.child("initContainers").index(i)));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        out.push((c, path.child("containers").index(i)));
    }
    out
}

/// Upstream `validateLinux`.
fn validate_linux(spec: &PodSpec, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    const MSG: &str = "windows options cannot be set for a linux pod";
    if spec
        .security_context
        .as_ref()
        .is_some_and(|s| s.windows_options.is_some())
    {
        errs.push(FieldError::forbidden(
            &path.child("securityContext").child("windowsOptions"),
            MSG,
        ));
    }
    for (c, p) in containers_with_paths(spec, path) {
        if c.security_context
            .as_ref()
            .is_some_and(|s| s.windows_options.is_some())
        {
            errs.push(FieldError::forbidden(
                &p.child("securityContext").child("windowsOptions"),
                MSG,
            ));
        }
    }
    errs
}

/// Upstream `validateWindows`.
fn validate_windows(spec: &PodSpec, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    const MSG: &str = "cannot be set for a windows pod";
    let sc_path = path.child("securityContext");
    if let Some(sc) = &spec.security_context {
        for (set, p) in [
            (
                sc.app_armor_profile.is_some(),
                sc_path.child("appArmorProfile"),
            ),
            (
                sc.se_linux_options.is_some(),
                sc_path.child("seLinuxOptions"),
            ),
            (spec.host_users.is_some(), path.child("hostUsers")),
            (spec.host_pid == Some(true), path.child("hostPID")),
            (spec.host_ipc == Some(true), path.child("hostIPC")),
            (
                sc.seccomp_profile.is_some(),
                sc_path.child("seccompProfile"),
            ),
            (sc.fs_group.is_some(), sc_path.child("fsGroup")),
            (
                sc.fs_group_change_policy.is_some(),
                sc_path.child("fsGroupChangePolicy"),
            ),
            (
                sc.sysctls.as_ref().is_some_and(|s| !s.is_empty()),
                sc_path.child("sysctls"),
            ),
            (
                spec.share_process_namespace.is_some(),
                path.child("shareProcessNamespace"),
            ),
            (sc.run_as_user.is_some(), sc_path.child("runAsUser")),
            (sc.run_as_group.is_some(), sc_path.child("runAsGroup")),
            (
                sc.supplemental_groups.is_some(),
                sc_path.child("supplementalGroups"),
            ),
            (
                sc.supplemental_groups_policy.is_some(),
                sc_path.child("supplementalGroupsPolicy"),
            ),
            (
                sc.se_linux_change_policy.is_some(),
                sc_path.child("seLinuxChangePolicy"),
            ),
        ] {
            if set {
                errs.push(FieldError::forbidden(&p, MSG));
            }
        }
    }
    for (c, p) in containers_with_paths(spec, path) {
        let Some(sc) = &c.security_context else {
            continue;
        };
        let p = p.child("securityContext");
        for (set, field) in [
            (sc.app_armor_profile.is_some(), "appArmorProfile"),
            (sc.se_linux_options.is_some(), "seLinuxOptions"),
            (sc.seccomp_profile.is_some(), "seccompProfile"),
            (sc.capabilities.is_some(), "capabilities"),
            (
                sc.read_only_root_filesystem.is_some(),
                "readOnlyRootFilesystem",
            ),
            (sc.privileged.is_some(), "privileged"),
            (
                sc.allow_privilege_escalation.is_some(),
                "allowPrivilegeEscalation",
            ),
            (sc.proc_mount.is_some(), "procMount"),
            (sc.run_as_user.is_some(), "runAsUser"),
            (sc.run_as_group.is_some(), "runAsGroup"),
        ] {
            if set {
                errs.push(FieldError::forbidden(&p.child(field), MSG));
            }
        }
    }
    errs
}
