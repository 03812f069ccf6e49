//! Upstream `ValidateVolumes`, `ValidateVolumeMounts` and `ValidateVolumeDevices`.
//!
//! podvisor does not implement volumes, but a manifest the API server rejects must be rejected
//! here too. Every source is counted ("exactly one volume type"); the sources people write by
//! hand (emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim,
//! nfs, csi, ephemeral) are also validated in detail.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Volume};

use super::validate::{
    local_descending_path_errors, parse_quantity_field, validate_container_resource_field_selector,
    validate_object_field_selector,
};
use crate::model::field::{FieldError, FieldPath};
use crate::model::validation::{
    go_quote, is_dns1123_subdomain, name_is_dns_subdomain, validate_dns1123_label,
};

type Errs = Vec<FieldError>;

/// The volumes that passed validation, by name, as upstream's `vols` map.
#[derive(Debug, Default)]
pub(super) struct Volumes {
    by_name: HashMap<String, VolumeKind>,
}

/// What mounts and devices need to know about a volume.
#[derive(Clone, Copy, Debug)]
struct VolumeKind {
    /// A persistentVolumeClaim or ephemeral volume (usable as a block device).
    claim: bool,
    /// An image volume (no subPath).
    image: bool,
}

/// The volume sources in upstream's order: the JSON field and the name upstream uses in the
/// "may not specify more than 1 volume type" error (two of them differ, as upstream).
const SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

const FILE_MODE_ERROR_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Upstream `ValidateVolumes`.
pub(super) fn validate_volumes(
    volumes: &[Volume],
    pod_name: &str,
    path: &FieldPath,
) -> (Volumes, Errs) {
    let mut errs = Errs::new();
    let mut result = Volumes::default();
    let mut names = HashSet::new();
    let created_claims: HashSet<String> = if pod_name.is_empty() {
        HashSet::new()
    } else {
        volumes
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod_name}-{}", v.name))
            .collect()
    };
    for (i, v) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name_path = p.child("name");
        let mut el = validate_volume_source(v, pod_name, &p);
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(validate_dns1123_label(&v.name, &name_path));
        }
        if names.contains(&v.name) {
            el.push(FieldError::duplicate(&name_path, v.name.as_str()));
        }
        if el.is_empty() {
            names.insert(v.name.clone());
            result.by_name.insert(
                v.name.clone(),
                VolumeKind {
                    claim: v.persistent_volume_claim.is_some() || v.ephemeral.is_some(),
                    image: v.image.is_some(),
                },
            );
        } else {
            errs.extend(el);
        }
        if let Some(claim) = &v.persistent_volume_claim
            && created_claims.contains(&claim.claim_name)
        {
            errs.push(FieldError::invalid(
                &p.child("persistentVolumeClaim").child("claimName"),
                claim.claim_name.as_str(),
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (result, errs)
}

/// Upstream `validateVolumeSource`.
fn validate_volume_source(v: &Volume, pod_name: &str, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let set: HashSet<String> = match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => HashSet::new(),
    };
    let mut count = 0;
    for (field, forbidden_name) in SOURCES {
        if !set.contains(*field) {
            continue;
        }
        if count > 0 {
            errs.push(FieldError::forbidden(
                &path.child(forbidden_name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        let p = path.child(field);
        match *field {
            "emptyDir" => {
                if let Some(limit) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
                    let mut parse_errs = Errs::new();
                    let q = parse_quantity_field(&limit.0, &p.child("sizeLimit"), &mut parse_errs);
                    errs.extend(parse_errs);
                    if q.is_some_and(|q| q.sign() < 0) {
                        errs.push(FieldError::forbidden(
                            &p.child("sizeLimit"),
                            "SizeLimit field must be a valid resource quantity",
                        ));
                    }
                }
            }
            "hostPath" => {
                let host_path = v.host_path.as_ref().expect("hostPath is set");
                if host_path.path.is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                } else {
                    errs.extend(no_backsteps(&host_path.path, &p.child("path")));
                    if let Some(kind) = &host_path.type_ {
                        const TYPES: &[&str] = &[
                            "",
                            "BlockDevice",
                            "CharDevice",
                            "Directory",
                            "DirectoryOrCreate",
                            "File",
                            "FileOrCreate",
                            "Socket",
                        ];
                        if !TYPES.contains(&kind.as_str()) {
                            errs.push(FieldError::not_supported(
                                &p.child("type"),
                                kind.as_str(),
                                TYPES,
                            ));
                        }
                    }
                }
            }
            "secret" => {
                let secret = v.secret.as_ref().expect("secret is set");
                if secret.secret_name.as_deref().unwrap_or_default().is_empty() {
                    errs.push(FieldError::required(&p.child("secretName"), ""));
                }
                errs.extend(validate_mode(secret.default_mode, &p.child("defaultMode")));
                for (j, item) in secret.items.iter().flatten().enumerate() {
                    errs.extend(validate_key_to_path(item, &p.child("items").index(j)));
                }
            }
            "nfs" => {
                let nfs = v.nfs.as_ref().expect("nfs is set");
                if nfs.server.is_empty() {
                    errs.push(FieldError::required(&p.child("server"), ""));
                }
                if nfs.path.is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                }
                if !nfs.path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        &p.child("path"),
                        nfs.path.as_str(),
                        "must be an absolute path",
                    ));
                }
            }
            "persistentVolumeClaim" => {
                let claim = v.persistent_volume_claim.as_ref().expect("claim is set");
                if claim.claim_name.is_empty() {
                    errs.push(FieldError::required(&p.child("claimName"), ""));
                }
            }
            "downwardAPI" => {
                let downward = v.downward_api.as_ref().expect("downwardAPI is set");
                errs.extend(validate_mode(
                    downward.default_mode,
                    &p.child("defaultMode"),
                ));
                for item in downward.items.iter().flatten() {
                    // Upstream reports item errors on the source's path, not the item's.
                    errs.extend(validate_downward_api_file(item, &p));
                }
            }
            "configMap" => {
                let config_map = v.config_map.as_ref().expect("configMap is set");
                if config_map.name.is_empty() {
                    errs.push(FieldError::required(&p.child("name"), ""));
                }
                errs.extend(validate_mode(
                    config_map.default_mode,
                    &p.child("defaultMode"),
                ));
                for (j, item) in config_map.items.iter().flatten().enumerate() {
                    errs.extend(validate_key_to_path(item, &p.child("items").index(j)));
                }
            }
            "projected" => {
                let projected = v.projected.as_ref().expect("projected is set");
                errs.extend(validate_mode(
                    projected.default_mode,
                    &p.child("defaultMode"),
                ));
                errs.extend(validate_projection_sources(projected, &p));
            }
            "csi" => {
                let csi = v.csi.as_ref().expect("csi is set");
                let driver_path = p.child("driver");
                if csi.driver.is_empty() {
                    errs.push(FieldError::required(&driver_path, ""));
                }
                if csi.driver.len() > 63 {
                    errs.push(FieldError::too_long(&driver_path, 63));
                }
                for msg in is_dns1123_subdomain(&csi.driver.to_lowercase()) {
                    errs.push(FieldError::invalid(&driver_path, csi.driver.as_str(), msg));
                }
            }
            "ephemeral" => {
                let ephemeral = v.ephemeral.as_ref().expect("ephemeral is set");
                if ephemeral.volume_claim_template.is_none() {
                    errs.push(FieldError::required(&p.child("volumeClaimTemplate"), ""));
                } else if !pod_name.is_empty() && !v.name.is_empty() {
                    let claim = format!("{pod_name}-{}", v.name);
                    for msg in name_is_dns_subdomain(&claim, false) {
                        errs.push(FieldError::invalid(
                            &p.child("name"),
                            v.name.as_str(),
                            format!("PVC name {}: {msg}", go_quote(&claim)),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn validate_mode(mode: Option<i32>, path: &FieldPath) -> Errs {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => {
            vec![FieldError::invalid(path, m, FILE_MODE_ERROR_MSG)]
        }
        _ => Errs::new(),
    }
}

/// Upstream `validatePathNoBacksteps`.
fn no_backsteps(target: &str, path: &FieldPath) -> Errs {
    if target.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Errs::new()
    }
}

/// Upstream `validateLocalDescendingPath`.
fn local_descending_path(target: &str, path: &FieldPath) -> Errs {
    local_descending_path_errors(target)
        .into_iter()
        .map(|msg| FieldError::invalid(path, target, msg))
        .collect()
}

/// Upstream `ValidateLocalNonReservedPath`.
fn local_non_reserved_path(target: &str, path: &FieldPath) -> Errs {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

/// Upstream `validateKeyToPath`.
fn validate_key_to_path(item: &KeyToPath, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if item.key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    }
    if item.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(&item.path, &path.child("path")));
    errs.extend(validate_mode(item.mode, &path.child("mode")));
    errs
}

/// The field paths a downwardAPI volume file accepts.
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// Upstream `validateDownwardAPIVolumeFile`.
fn validate_downward_api_file(file: &DownwardAPIVolumeFile, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    if file.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(local_non_reserved_path(&file.path, &path.child("path")));
    if let Some(field_ref) = &file.field_ref {
        errs.extend(validate_object_field_selector(
            field_ref.api_version.as_deref().unwrap_or_default(),
            &field_ref.field_path,
            VOLUME_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
        if file.resource_field_ref.is_some() {
            errs.push(FieldError::invalid(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(resource_ref) = &file.resource_field_ref {
        errs.extend(validate_container_resource_field_selector(
            resource_ref,
            &path.child("resourceFieldRef"),
            true,
        ));
    } else {
        errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.extend(validate_mode(file.mode, &path.child("mode")));
    errs
}

/// The parts of upstream `validateProjectionSources` for secret, configMap, downwardAPI and
/// serviceAccountToken sources.
fn validate_projection_sources(
    projected: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    path: &FieldPath,
) -> Errs {
    let mut errs = Errs::new();
    let mut all_paths = HashSet::new();
    for (i, source) in projected.sources.iter().flatten().enumerate() {
        let src_path = path.child("sources").index(i);
        let mut count = 0;
        if let Some(secret) = &source.secret {
            count += 1;
            let p = src_path.child("secret");
            if secret.name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            for (j, item) in secret.items.iter().flatten().enumerate() {
                errs.extend(validate_key_to_path(item, &p.child("items").index(j)));
                if !item.path.is_empty() && !all_paths.insert(item.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        secret.name.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(config_map) = &source.config_map {
            count += 1;
            let p = src_path.child("configMap");
            if config_map.name.is_empty() {
                errs.push(FieldError::required(&p.child("name"), ""));
            }
            for (j, item) in config_map.items.iter().flatten().enumerate() {
                errs.extend(validate_key_to_path(item, &p.child("items").index(j)));
                if !item.path.is_empty() && !all_paths.insert(item.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        config_map.name.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(downward) = &source.downward_api {
            count += 1;
            let p = src_path.child("downwardAPI");
            for item in downward.items.iter().flatten() {
                errs.extend(validate_downward_api_file(item, &p));
                if !item.path.is_empty() && !all_paths.insert(item.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        item.path.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(token) = &source.service_account_token {
            count += 1;
            let p = src_path.child("serviceAccountToken");
            let expiration = token.expiration_seconds.unwrap_or(0);
            if expiration < 600 {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    expiration,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if expiration > 1 << 32 {
                errs.push(FieldError::invalid(
                    &p.child("expirationSeconds"),
                    expiration,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if token.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else {
                errs.extend(local_non_reserved_path(&token.path, &path.child("path")));
            }
        }
        if source.cluster_trust_bundle.is_some() {
            count += 1;
        }
        if count > 1 {
            errs.push(FieldError::forbidden(
                &src_path,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

/// Upstream `ValidateVolumeMounts`.
pub(super) fn validate_volume_mounts(c: &Container, volumes: &Volumes, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let devices: HashMap<&str, &str> = c
        .volume_devices
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d.device_path.as_str()))
        .collect();
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false);
    let mut mount_points = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        let volume = volumes.by_name.get(&m.name);
        if volume.is_none() {
            errs.push(FieldError::not_found(&p.child("name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if devices.contains_key(m.name.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                m.name.as_str(),
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == m.mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                m.mount_path.as_str(),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = m.sub_path.as_deref().unwrap_or_default();
        let sub_path_expr = m.sub_path_expr.as_deref().unwrap_or_default();
        if volume.is_some_and(|v| v.image) {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPath"),
                    sub_path,
                    "not allowed in image volume sources",
                ));
            }
            if !sub_path_expr.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_path_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        // Upstream reports these on the list's path, not the mount's.
        if !sub_path.is_empty() {
            errs.extend(local_descending_path(sub_path, &path.child("subPath")));
        }
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(
                sub_path_expr,
                &path.child("subPathExpr"),
            ));
        }
        if let Some(propagation) = &m.mount_propagation {
            let pp = path.child("mountPropagation");
            if !matches!(
                propagation.as_str(),
                "Bidirectional" | "HostToContainer" | "None"
            ) {
                errs.push(FieldError::not_supported(
                    &pp,
                    propagation.as_str(),
                    &["Bidirectional", "HostToContainer", "None"],
                ));
            }
            if propagation == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = &m.recursive_read_only {
            let rp = path.child("recursiveReadOnly");
            match rro.as_str() {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if m.read_only != Some(true) {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if m.mount_propagation
                        .as_deref()
                        .is_some_and(|mp| mp != "None")
                    {
                        errs.push(FieldError::forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(
                    &rp,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
    errs
}

/// Upstream `ValidateVolumeDevices`.
pub(super) fn validate_volume_devices(c: &Container, volumes: &Volumes, path: &FieldPath) -> Errs {
    let mut errs = Errs::new();
    let mounts: HashMap<&str, &str> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    let mut device_paths = HashSet::new();
    let mut device_names = HashSet::new();
    for (i, d) in c.volume_devices.iter().flatten().enumerate() {
        let p = path.index(i);
        let volume = volumes.by_name.get(&d.name);
        if d.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if device_names.contains(d.name.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                d.name.as_str(),
                "must be unique",
            ));
        }
        match volume {
            Some(v) if !v.claim => errs.push(FieldError::invalid(
                &p.child("name"),
                d.name.as_str(),
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            Some(_) => {}
            None => errs.push(FieldError::not_found(&p.child("name"), d.name.as_str())),
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(&p.child("devicePath"), ""));
        }
        if device_paths.contains(d.device_path.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                d.device_path.as_str(),
                "must be unique",
            ));
        }
        if !d.device_path.is_empty() && d.device_path.split('/').any(|x| x == "..") {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                d.device_path.as_str(),
                "can not contain backsteps ('..')",
            ));
        } else {
            device_paths.insert(d.device_path.as_str());
        }
        if mounts.contains_key(d.name.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                d.name.as_str(),
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == d.device_path) {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                d.device_path.as_str(),
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !d.name.is_empty() {
            device_names.insert(d.name.as_str());
        }
    }
    errs
}
