//! Query strings and request paths of the Kubernetes REST API.

use std::collections::HashMap;

use crate::store::resources::{self, Resource};

/// The query parameters of a request (the first value of a repeated one wins, as Go's
/// `url.Values.Get`; kubectl never repeats one).
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(decode(k)).or_insert_with(|| decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// Percent-decoding (`+` is a space, as in forms).
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a resource path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub resource: &'static Resource,
    /// The namespace in the path; None for cluster-scoped resources and all-namespace lists.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` or `/apis/<group>/<version>/...` below the group-version.
pub fn parse_target(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let version_ok = |r: &Resource| match parts.as_slice() {
        ["api", v, ..] => r.version == *v,
        ["apis", _, v, ..] => r.version == *v,
        _ => false,
    };
    let resource = |plural: &str| resources::by_plural(group, plural).filter(|r| version_ok(r));
    let owned = |s: &str| Some(s.to_owned());
    match rest {
        [plural] => Some(Target {
            resource: resource(plural)?,
            namespace: None,
            name: None,
            subresource: None,
        }),
        ["namespaces", ns, plural] if resource(plural).is_some() => {
            let r = resource(plural)?;
            r.namespaced.then(|| Target {
                resource: r,
                namespace: owned(ns),
                name: None,
                subresource: None,
            })
        }
        ["namespaces", name, sub] => Some(Target {
            // `/api/v1/namespaces/<name>/status` (or `/finalize`): a namespace's subresource.
            resource: resource("namespaces")?,
            namespace: None,
            name: owned(name),
            subresource: owned(sub),
        }),
        ["namespaces", ns, plural, name] => {
            let r = resource(plural)?;
            r.namespaced.then(|| Target {
                resource: r,
                namespace: owned(ns),
                name: owned(name),
                subresource: None,
            })
        }
        ["namespaces", ns, plural, name, sub] => {
            let r = resource(plural)?;
            r.namespaced.then(|| Target {
                resource: r,
                namespace: owned(ns),
                name: owned(name),
                subresource: owned(sub),
            })
        }
        [plural, name] => {
            let r = resource(plural)?;
            (!r.namespaced).then(|| Target {
                resource: r,
                namespace: None,
                name: owned(name),
                subresource: None,
            })
        }
        [plural, name, sub] => {
            let r = resource(plural)?;
            (!r.namespaced).then(|| Target {
                resource: r,
                namespace: None,
                name: owned(name),
                subresource: owned(sub),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = parse_target("/api/v1/namespaces/default/pods/web/log").unwrap();
        assert_eq!(t.resource.plural, "pods");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("log"));
        let t = parse_target("/api/v1/pods").unwrap();
        assert_eq!((t.namespace, t.name), (None, None));
        let t = parse_target("/api/v1/namespaces/demo").unwrap();
        assert_eq!(t.resource.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("demo"));
        let t = parse_target("/api/v1/namespaces/demo/status").unwrap();
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = parse_target("/apis/coordination.k8s.io/v1/namespaces/x/leases").unwrap();
        assert_eq!(t.resource.plural, "leases");
        assert!(parse_target("/api/v1/nodes").is_none());
        assert!(parse_target("/apis/apps/v2/deployments").is_none());
        assert!(
            parse_target("/api/v1/namespaces/default/pods")
                .unwrap()
                .name
                .is_none()
        );
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.get("watch"), Some("1"));
    }
}
