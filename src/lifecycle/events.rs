//! Event reasons and messages, with the kubelet's wording (spec §8; pinned to the 1.32/1.33
//! strings: `Created container: app`, `Started container: app`).

use k8s_openapi::api::core::v1::Pod;

pub const SCHEDULED: &str = "Scheduled";
pub const CREATED: &str = "Created";
pub const STARTED: &str = "Started";
pub const FAILED: &str = "Failed";
pub const KILLING: &str = "Killing";
pub const BACK_OFF: &str = "BackOff";
pub const FAILED_POST_START_HOOK: &str = "FailedPostStartHook";
pub const FAILED_PRE_STOP_HOOK: &str = "FailedPreStopHook";
pub const LIFECYCLE_HTTP_FALLBACK: &str = "LifecycleHTTPFallback";
pub const FAILED_KILL_POD: &str = "FailedKillPod";
pub const EXCEEDED_GRACE_PERIOD: &str = "ExceededGracePeriod";

/// Event type `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// `format.Pod`: `name_namespace(uid)`.
pub fn format_pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

pub fn scheduled_message(namespace: &str, name: &str, node: &str) -> String {
    format!("Successfully assigned {namespace}/{name} to {node}")
}

pub fn created_message(container: &str) -> String {
    format!("Created container: {container}")
}

pub fn started_message(container: &str) -> String {
    format!("Started container: {container}")
}

/// The default `Killing` message.
pub fn stopping_message(container: &str) -> String {
    format!("Stopping container {container}")
}

pub fn back_off_event_message(container: &str, pod: &Pod) -> String {
    format!(
        "Back-off restarting failed container {container} in pod {}",
        format_pod(pod)
    )
}

/// Since ~1.26 hook failure events carry no details (they may contain secrets); the details
/// go to the node log and, for postStart, to the container's waiting message.
pub const POST_START_HOOK_FAILED: &str = "PostStartHook failed";
pub const PRE_STOP_HOOK_FAILED: &str = "PreStopHook failed";
