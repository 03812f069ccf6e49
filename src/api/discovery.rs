//! `/version`, discovery (aggregated v2 when asked for, legacy otherwise) and the minimal
//! OpenAPI v3 that makes `kubectl apply` send `fieldValidation=Strict` (kubectl-api.md §1–3).
//! Everything is derived from `store::resources`.

use serde_json::{Value, json};

use crate::store::resources::{self, Resource};

/// The media type of aggregated discovery.
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `GET /version`: minor 32 so kubectl's dispatcher picks its 1.32 client.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": concat!("v1.32.0-podvisor.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "rustc",
        "platform": "linux/amd64"
    })
}

/// Whether an `Accept` header asks for aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|t| {
        let t = t.replace(' ', "");
        t.contains("g=apidiscovery.k8s.io")
            && t.contains("as=APIGroupDiscoveryList")
            && (t.contains("v=v2;") || t.ends_with("v=v2") || t.contains("v=v2beta1"))
    })
}

/// The groups served, with their versions, in a stable order ("" first).
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in resources::ALL {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

fn in_group(group: &str, version: &str) -> impl Iterator<Item = &'static Resource> {
    let group = group.to_owned();
    let version = version.to_owned();
    resources::ALL
        .iter()
        .copied()
        .filter(move |r| r.group == group && r.version == version)
}

fn aggregated_resource(r: &Resource) -> Value {
    let mut subresources: Vec<Value> = Vec::new();
    if r.has_status {
        subresources.push(json!({"subresource": "status",
            "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
            "verbs": ["get", "patch", "update"]}));
    }
    for s in r.subresources {
        subresources.push(json!({"subresource": s.name,
            "responseKind": {"group": s.kind.0, "version": s.kind.1, "kind": s.kind.2},
            "verbs": s.verbs}));
    }
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": resources::verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if r.in_all {
        v["categories"] = json!(["all"]);
    }
    if !subresources.is_empty() {
        v["subresources"] = json!(subresources);
    }
    v
}

fn aggregated_group(group: &str, version: &str) -> Value {
    json!({
        "metadata": {"name": group, "creationTimestamp": null},
        "versions": [{
            "version": version,
            "freshness": "Current",
            "resources": in_group(group, version).map(aggregated_resource).collect::<Vec<_>>(),
        }]
    })
}

/// `GET /api`.
pub fn api(aggregated: bool, server_address: &str) -> Value {
    if aggregated {
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
               "metadata": {}, "items": [aggregated_group("", "v1")]})
    } else {
        json!({"kind": "APIVersions", "versions": ["v1"],
               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
    }
}

/// `GET /apis`.
pub fn apis(aggregated: bool) -> Value {
    let groups: Vec<(&str, &str)> = groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .collect();
    if aggregated {
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
               "metadata": {},
               "items": groups.iter().map(|(g, v)| aggregated_group(g, v)).collect::<Vec<_>>()})
    } else {
        json!({"kind": "APIGroupList", "apiVersion": "v1",
            "groups": groups.iter().map(|(g, v)| {
                let gv = format!("{g}/{v}");
                json!({"name": g, "versions": [{"groupVersion": gv, "version": v}],
                       "preferredVersion": {"groupVersion": gv, "version": v}})
            }).collect::<Vec<_>>()})
    }
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`; None for a group-version not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Resource> = in_group(group, version).collect();
    if served.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in served {
        let mut entry = json!({"name": r.plural, "singularName": r.singular,
            "namespaced": r.namespaced, "kind": r.kind, "verbs": resources::verbs()});
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if r.in_all {
            entry["categories"] = json!(["all"]);
        }
        list.push(entry);
        if r.has_status {
            list.push(
                json!({"name": format!("{}/status", r.plural), "singularName": "",
                "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
        for s in r.subresources {
            let mut e = json!({"name": format!("{}/{}", r.plural, s.name), "singularName": "",
                "namespaced": r.namespaced, "kind": s.kind.2, "verbs": s.verbs});
            if (s.kind.0, s.kind.1) != (r.group, r.version) {
                e["group"] = json!(s.kind.0);
                e["version"] = json!(s.kind.1);
            }
            list.push(e);
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

/// The OpenAPI v3 path of a group-version: `api/v1`, `apis/apps/v1`.
fn openapi_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A stable content hash for an OpenAPI document (kubectl caches by it).
fn hash(group: &str, version: &str) -> String {
    let doc = openapi_group(group, version)
        .unwrap_or_default()
        .to_string();
    format!(
        "{:016X}",
        crate::lifecycle::container::fnv1a(doc.as_bytes())
    )
}

/// `GET /openapi/v3`.
pub fn openapi_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in groups() {
        let p = openapi_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(g, v))}),
        );
    }
    json!({ "paths": paths })
}

/// `GET /openapi/v3/<path>`: one PATCH operation per kind carrying its GVK and the
/// `fieldValidation` parameter, and no schemas (kubectl then uses its compiled-in patch
/// metadata and leaves unknown-field checks to the server).
pub fn openapi_group(group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for r in in_group(group, version) {
        let path = if r.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}/{{name}}",
                r.group_version_path(),
                r.plural
            )
        } else {
            format!("{}/{}/{{name}}", r.group_version_path(), r.plural)
        };
        paths.insert(path, json!({"patch": {
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OK"}}
        }}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths, "components": {"schemas": {}}}),
    )
}

/// The group-version of an OpenAPI v3 document path (`api/v1`, `apis/apps/v1`).
pub fn parse_openapi_path(path: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", v] => Some((String::new(), (*v).to_owned())),
        ["apis", g, v] => Some(((*g).to_owned(), (*v).to_owned())),
        _ => None,
    }
}
