//! Building `v1` Event objects the way client-go's recorder does.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};

/// Who emits an event: `kubelet` on the node, `default-scheduler` for `Scheduled`.
#[derive(Clone, Debug)]
pub struct Source {
    pub component: String,
    pub host: Option<String>,
}

/// An event about `pod` (and, with `field_path` such as `spec.containers{app}`, one of its
/// containers). The name is `<pod>.<unique hex>`, as client-go names events.
pub fn pod_event(
    pod: &Pod,
    field_path: Option<String>,
    type_: &str,
    reason: &str,
    message: &str,
    source: &Source,
) -> Event {
    let involved = ObjectReference {
        field_path,
        ..pod_reference(pod)
    };
    object_event(involved, type_, reason, message, source)
}

/// What an event about `pod` names as its `involvedObject` (without a field path): what
/// `pod_event` keeps of the pod.
pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        name: pod.metadata.name.clone(),
        namespace: Some(
            pod.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
        ),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// An event about the object `involved` names (its namespace is the event's). The name is
/// `<object>.<unique hex>`, as client-go names events.
pub fn object_event(
    involved: ObjectReference,
    type_: &str,
    reason: &str,
    message: &str,
    source: &Source,
) -> Event {
    let now = Timestamp::now();
    let namespace = involved
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let name = format!(
        "{}.{:x}",
        involved.name.as_deref().unwrap_or_default(),
        now.as_nanosecond()
    );
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            ..ObjectMeta::default()
        },
        involved_object: involved,
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        type_: Some(type_.to_owned()),
        source: Some(EventSource {
            component: Some(source.component.clone()),
            host: source.host.clone(),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        reporting_component: Some(source.component.clone()),
        reporting_instance: source.host.clone(),
        ..Event::default()
    }
}

pub fn aggregation_key(e: &Event) -> String {
    let o = &e.involved_object;
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        o.uid.as_deref().unwrap_or_default(),
        o.field_path.as_deref().unwrap_or_default(),
        e.reason.as_deref().unwrap_or_default(),
        e.message.as_deref().unwrap_or_default(),
        e.type_.as_deref().unwrap_or_default(),
        e.source
            .as_ref()
            .and_then(|s| s.component.as_deref())
            .unwrap_or_default(),
    )
}
