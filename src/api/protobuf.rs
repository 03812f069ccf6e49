//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), which `kubectl create
//! namespace|configmap|secret` sends with no JSON fallback (kubectl-api.md §7.3): the `k8s\0`
//! envelope (a `runtime.Unknown`) and the objects of the kinds converted here, turned into
//! the `Value` the same object has as JSON, i.e. Go's `encoding/json` of the decoded type:
//! `omitempty` fields left out when empty, a zero time left out, bytes as base64, times as
//! RFC 3339 (`MicroTime` with microseconds), `fieldsV1` as the JSON it holds.
//!
//! Converted: Namespace, ConfigMap, Secret, Service (`kubectl create service`), Event (`v1`) and
//! Lease (`coordination.k8s.io/v1`), with the prost types of the `k8s-pb` crate. Any other kind
//! is [`ProtobufError::Unsupported`] (the caller's 415); Pods are not converted, as no kubectl
//! command sends one as protobuf.
//!
//! Must not: default or validate values (the result goes through the same checks and
//! `model::manifest::decode_for_api` as a JSON body; only what JSON cannot hold is refused, a
//! time out of range or `fieldsV1` that is not JSON), touch the store, or encode responses
//! (answers stay JSON, which clients accept). It builds a `Value` and nothing else.
//!
//! Deviations from kube-apiserver 1.32: protobuf kinds upstream serves but podvisor does not
//! convert (a Pod, an EndpointSlice) are 415s, not decoded; the reason an object does not decode is
//! prost's wording, not gogo-protobuf's.

use std::collections::BTreeMap;

use base64::Engine;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value};

/// The four bytes before every Kubernetes protobuf message.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body is not an object.
#[derive(Debug, PartialEq, Eq)]
pub enum ProtobufError {
    /// Not a `k8s\0` envelope holding a `runtime.Unknown`: the decoder's error, which upstream
    /// reports as an unrecognized object.
    NotAnEnvelope(String),
    /// The envelope's object is not a valid message of the kind it names.
    Undecodable {
        api_version: String,
        kind: String,
        why: String,
    },
    /// A kind without a conversion here.
    Unsupported,
}

/// Decodes a protobuf body into the object as JSON. A missing `apiVersion` or `kind` in the
/// envelope is the endpoint's (`default_api_version`, `default_kind`), as upstream's decoder
/// defaults them; the result carries the envelope's, so that a body of another kind meets
/// the same kind check as a JSON one.
pub fn decode(
    body: &[u8],
    default_api_version: &str,
    default_kind: &str,
) -> Result<Value, ProtobufError> {
    let not_envelope = |why: &str| Err(ProtobufError::NotAnEnvelope(why.to_owned()));
    if body.is_empty() {
        return not_envelope("empty data");
    }
    let Some(data) = body.strip_prefix(MAGIC.as_slice()) else {
        return not_envelope(&format!(
            "provided data does not appear to be a protobuf message, expected prefix {}",
            go_bytes(MAGIC)
        ));
    };
    if data.is_empty() {
        return not_envelope("empty body");
    }
    let unknown = Unknown::decode(data).map_err(|e| ProtobufError::NotAnEnvelope(e.to_string()))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta
        .api_version
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default_api_version.to_owned());
    let kind = type_meta
        .kind
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| default_kind.to_owned());
    let raw = unknown.raw.unwrap_or_default();
    let converted = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => message(&raw).and_then(namespace),
        ("v1", "ConfigMap") => message(&raw).and_then(config_map),
        ("v1", "Secret") => message(&raw).and_then(secret),
        ("v1", "Service") => message(&raw).and_then(service),
        ("v1", "Event") => message(&raw).and_then(event),
        ("coordination.k8s.io/v1", "Lease") => message(&raw).and_then(lease),
        _ => return Err(ProtobufError::Unsupported),
    };
    let mut object = converted.map_err(|why| ProtobufError::Undecodable {
        api_version: api_version.clone(),
        kind: kind.clone(),
        why,
    })?;
    object.insert("apiVersion".to_owned(), Value::String(api_version));
    object.insert("kind".to_owned(), Value::String(kind));
    Ok(Value::Object(object))
}

/// Go's `%v` of a byte slice: `[107 56 115 0]`.
fn go_bytes(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", items.join(" "))
}

fn message<M: Message + Default>(raw: &[u8]) -> Result<M, String> {
    M::decode(raw).map_err(|e| e.to_string())
}

/// A JSON object built field by field with Go's `encoding/json` rules.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.to_owned(), value);
        self
    }

    /// A `string` field with `omitempty`: left out when empty.
    fn string(self, key: &str, value: Option<String>) -> Self {
        match value.filter(|s| !s.is_empty()) {
            Some(s) => self.put(key, Value::String(s)),
            None => self,
        }
    }

    /// A `string` field without `omitempty`: always there.
    fn required_string(self, key: &str, value: Option<String>) -> Self {
        self.put(key, Value::String(value.unwrap_or_default()))
    }

    /// A pointer field (`*string`, `*int32`, `*bool`): there when set, even to a zero value.
    fn pointer(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.put(key, v.into()),
            None => self,
        }
    }

    /// An integer field with `omitempty`: left out when zero.
    fn int(self, key: &str, value: Option<impl Into<i64>>) -> Self {
        match value.map(Into::into).filter(|n| *n != 0) {
            Some(n) => self.put(key, Value::from(n)),
            None => self,
        }
    }

    /// A `[]string` with `omitempty`.
    fn strings(self, key: &str, values: Vec<String>) -> Self {
        self.list(key, values.into_iter().map(Value::String).collect())
    }

    /// A list with `omitempty`.
    fn list(self, key: &str, values: Vec<Value>) -> Self {
        if values.is_empty() {
            self
        } else {
            self.put(key, Value::Array(values))
        }
    }

    /// A `map[string]string` with `omitempty`.
    fn map(self, key: &str, values: BTreeMap<String, String>) -> Self {
        if values.is_empty() {
            return self;
        }
        let map = values
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        self.put(key, Value::Object(map))
    }

    /// A `map[string][]byte` with `omitempty`: the values in base64, as `[]byte` is in JSON.
    fn bytes_map(self, key: &str, values: BTreeMap<String, Vec<u8>>) -> Self {
        if values.is_empty() {
            return self;
        }
        let base64 = base64::engine::general_purpose::STANDARD;
        let map = values
            .into_iter()
            .map(|(k, v)| (k, Value::String(base64.encode(v))))
            .collect();
        self.put(key, Value::Object(map))
    }

    /// A `metav1.Time`: RFC 3339 in seconds; a zero time (an empty message) is left out
    /// (Go writes `null`, which decodes as absent).
    fn time(self, key: &str, value: Option<meta::Time>) -> Result<Self, String> {
        let Some(t) = value else { return Ok(self) };
        Ok(match timestamp(t.seconds, t.nanos)? {
            Some(ts) => self.put(key, Value::String(format_time(ts, false))),
            None => self,
        })
    }

    /// A `metav1.MicroTime`: RFC 3339 with microseconds; a zero time is left out.
    fn micro_time(self, key: &str, value: Option<meta::MicroTime>) -> Result<Self, String> {
        let Some(t) = value else { return Ok(self) };
        Ok(match timestamp(t.seconds, t.nanos)? {
            Some(ts) => self.put(key, Value::String(format_time(ts, true))),
            None => self,
        })
    }

    fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// Go's `time.Time{}` as Unix seconds.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// The instant of a protobuf time; None for Go's zero time, which an empty message is.
fn timestamp(seconds: Option<i64>, nanos: Option<i32>) -> Result<Option<Timestamp>, String> {
    if seconds.is_none() && nanos.is_none() {
        return Ok(None);
    }
    let (seconds, nanos) = (seconds.unwrap_or(0), nanos.unwrap_or(0));
    if seconds == GO_ZERO_TIME && nanos == 0 {
        return Ok(None);
    }
    Timestamp::new(seconds, nanos)
        .map(Some)
        .map_err(|e| format!("invalid time {seconds}s {nanos}ns: {e}"))
}

/// `2006-01-02T15:04:05Z`, or with `.000000` (Go's `RFC3339Micro`), in UTC.
fn format_time(ts: Timestamp, micro: bool) -> String {
    let civil = ts.to_zoned(TimeZone::UTC).datetime();
    let seconds = civil.strftime("%Y-%m-%dT%H:%M:%S");
    if micro {
        format!("{seconds}.{:06}Z", civil.subsec_nanosecond() / 1000)
    } else {
        format!("{seconds}Z")
    }
}

fn object_meta(m: Option<meta::ObjectMeta>) -> Result<Value, String> {
    let m = m.unwrap_or_default();
    let owners = m
        .owner_references
        .into_iter()
        .map(owner_reference)
        .collect();
    let managed = m
        .managed_fields
        .into_iter()
        .map(managed_fields_entry)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Obj::default()
        .string("name", m.name)
        .string("generateName", m.generate_name)
        .string("namespace", m.namespace)
        .string("selfLink", m.self_link)
        .string("uid", m.uid)
        .string("resourceVersion", m.resource_version)
        .int("generation", m.generation)
        .time("creationTimestamp", m.creation_timestamp)?
        .time("deletionTimestamp", m.deletion_timestamp)?
        .pointer(
            "deletionGracePeriodSeconds",
            m.deletion_grace_period_seconds,
        )
        .map("labels", m.labels)
        .map("annotations", m.annotations)
        .list("ownerReferences", owners)
        .strings("finalizers", m.finalizers)
        .list("managedFields", managed)
        .build())
}

fn owner_reference(o: meta::OwnerReference) -> Value {
    Obj::default()
        .required_string("apiVersion", o.api_version)
        .required_string("kind", o.kind)
        .required_string("name", o.name)
        .required_string("uid", o.uid)
        .pointer("controller", o.controller)
        .pointer("blockOwnerDeletion", o.block_owner_deletion)
        .build()
}

fn managed_fields_entry(e: meta::ManagedFieldsEntry) -> Result<Value, String> {
    let fields = match e.fields_v1.and_then(|f| f.raw).filter(|r| !r.is_empty()) {
        Some(raw) => Some(
            serde_json::from_slice::<Value>(&raw)
                .map_err(|err| format!("managedFields: fieldsV1 is not JSON: {err}"))?,
        ),
        None => None,
    };
    Ok(Obj::default()
        .string("manager", e.manager)
        .string("operation", e.operation)
        .string("apiVersion", e.api_version)
        .time("time", e.time)?
        .string("fieldsType", e.fields_type)
        .pointer("fieldsV1", fields)
        .string("subresource", e.subresource)
        .build())
}

type Fields = Map<String, Value>;

fn into_fields(value: Value) -> Fields {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn namespace(n: core::Namespace) -> Result<Fields, String> {
    let spec = n.spec.unwrap_or_default();
    let status = n.status.unwrap_or_default();
    let conditions = status
        .conditions
        .into_iter()
        .map(|c| {
            Ok(Obj::default()
                .required_string("type", c.r#type)
                .required_string("status", c.status)
                .time("lastTransitionTime", c.last_transition_time)?
                .string("reason", c.reason)
                .string("message", c.message)
                .build())
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(into_fields(
        Obj::default()
            .put("metadata", object_meta(n.metadata)?)
            .put(
                "spec",
                Obj::default()
                    .strings("finalizers", spec.finalizers)
                    .build(),
            )
            .put(
                "status",
                Obj::default()
                    .string("phase", status.phase)
                    .list("conditions", conditions)
                    .build(),
            )
            .build(),
    ))
}

fn config_map(c: core::ConfigMap) -> Result<Fields, String> {
    Ok(into_fields(
        Obj::default()
            .put("metadata", object_meta(c.metadata)?)
            .pointer("immutable", c.immutable)
            .map("data", c.data)
            .bytes_map("binaryData", c.binary_data)
            .build(),
    ))
}

fn secret(s: core::Secret) -> Result<Fields, String> {
    Ok(into_fields(
        Obj::default()
            .put("metadata", object_meta(s.metadata)?)
            .pointer("immutable", s.immutable)
            .bytes_map("data", s.data)
            .map("stringData", s.string_data)
            .string("type", s.r#type)
            .build(),
    ))
}

fn service(s: core::Service) -> Result<Fields, String> {
    let spec = s.spec.unwrap_or_default();
    let ports: Vec<Value> = spec
        .ports
        .into_iter()
        .map(|p| {
            // IntOrString is a struct: `omitempty` never leaves it out (Type 0 is an int).
            let target = p.target_port.unwrap_or_default();
            let target = if target.r#type == Some(1) {
                Value::String(target.str_val.unwrap_or_default())
            } else {
                Value::from(target.int_val.unwrap_or(0))
            };
            Obj::default()
                .string("name", p.name)
                .string("protocol", p.protocol)
                .pointer("appProtocol", p.app_protocol)
                .put("port", Value::from(p.port.unwrap_or(0)))
                .put("targetPort", target)
                .int("nodePort", p.node_port)
                .build()
        })
        .collect();
    let affinity = spec.session_affinity_config.map(|c| {
        Obj::default()
            .pointer(
                "clientIP",
                c.client_ip.map(|ip| {
                    Obj::default()
                        .pointer("timeoutSeconds", ip.timeout_seconds)
                        .build()
                }),
            )
            .build()
    });
    let status = s.status.unwrap_or_default();
    let ingress: Vec<Value> = status
        .load_balancer
        .unwrap_or_default()
        .ingress
        .into_iter()
        .map(|i| {
            Obj::default()
                .string("ip", i.ip)
                .string("hostname", i.hostname)
                .pointer("ipMode", i.ip_mode)
                .build()
        })
        .collect();
    Ok(into_fields(
        Obj::default()
            .put("metadata", object_meta(s.metadata)?)
            .put(
                "spec",
                Obj::default()
                    .list("ports", ports)
                    .map("selector", spec.selector)
                    .string("clusterIP", spec.cluster_ip)
                    .strings("clusterIPs", spec.cluster_ips)
                    .string("type", spec.r#type)
                    .strings("externalIPs", spec.external_ips)
                    .string("sessionAffinity", spec.session_affinity)
                    .string("loadBalancerIP", spec.load_balancer_ip)
                    .strings("loadBalancerSourceRanges", spec.load_balancer_source_ranges)
                    .string("externalName", spec.external_name)
                    .string("externalTrafficPolicy", spec.external_traffic_policy)
                    .int("healthCheckNodePort", spec.health_check_node_port)
                    .pointer(
                        "publishNotReadyAddresses",
                        spec.publish_not_ready_addresses.filter(|b| *b),
                    )
                    .pointer("sessionAffinityConfig", affinity)
                    .strings("ipFamilies", spec.ip_families)
                    .pointer("ipFamilyPolicy", spec.ip_family_policy)
                    .pointer(
                        "allocateLoadBalancerNodePorts",
                        spec.allocate_load_balancer_node_ports,
                    )
                    .pointer("loadBalancerClass", spec.load_balancer_class)
                    .pointer("internalTrafficPolicy", spec.internal_traffic_policy)
                    .pointer("trafficDistribution", spec.traffic_distribution)
                    .build(),
            )
            .put(
                "status",
                Obj::default()
                    .put(
                        "loadBalancer",
                        Obj::default().list("ingress", ingress).build(),
                    )
                    .build(),
            )
            .build(),
    ))
}

fn object_reference(r: core::ObjectReference) -> Value {
    Obj::default()
        .string("kind", r.kind)
        .string("namespace", r.namespace)
        .string("name", r.name)
        .string("uid", r.uid)
        .string("apiVersion", r.api_version)
        .string("resourceVersion", r.resource_version)
        .string("fieldPath", r.field_path)
        .build()
}

fn event(e: core::Event) -> Result<Fields, String> {
    let source = e.source.unwrap_or_default();
    let series = match e.series {
        Some(s) => Some(
            Obj::default()
                .int("count", s.count)
                .micro_time("lastObservedTime", s.last_observed_time)?
                .build(),
        ),
        None => None,
    };
    Ok(into_fields(
        Obj::default()
            .put("metadata", object_meta(e.metadata)?)
            .put(
                "involvedObject",
                object_reference(e.involved_object.unwrap_or_default()),
            )
            .string("reason", e.reason)
            .string("message", e.message)
            .put(
                "source",
                Obj::default()
                    .string("component", source.component)
                    .string("host", source.host)
                    .build(),
            )
            .time("firstTimestamp", e.first_timestamp)?
            .time("lastTimestamp", e.last_timestamp)?
            .int("count", e.count)
            .string("type", e.r#type)
            .micro_time("eventTime", e.event_time)?
            .pointer("series", series)
            .string("action", e.action)
            .pointer("related", e.related.map(object_reference))
            .required_string("reportingComponent", e.reporting_component)
            .required_string("reportingInstance", e.reporting_instance)
            .build(),
    ))
}

fn lease(l: coordination::Lease) -> Result<Fields, String> {
    let spec = l.spec.unwrap_or_default();
    Ok(into_fields(
        Obj::default()
            .put("metadata", object_meta(l.metadata)?)
            .put(
                "spec",
                Obj::default()
                    .pointer("holderIdentity", spec.holder_identity)
                    .pointer("leaseDurationSeconds", spec.lease_duration_seconds)
                    .micro_time("acquireTime", spec.acquire_time)?
                    .micro_time("renewTime", spec.renew_time)?
                    .pointer("leaseTransitions", spec.lease_transitions)
                    .pointer("strategy", spec.strategy)
                    .pointer("preferredHolder", spec.preferred_holder)
                    .build(),
            )
            .build(),
    ))
}

#[cfg(test)]
mod tests;
