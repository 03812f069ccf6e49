//! `podvisor describe`: kubectl's describers (`pkg/describe/describe.go`, 1.32) for Pod,
//! ConfigMap, Secret (sizes only, never values), Namespace, Service (with the endpoints of its
//! EndpointSlices), Endpoints and EndpointSlice, and its generic describer for every other
//! kind; the events of the object come from a field-selected event list, as kubectl asks for
//! them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EnvVar, Pod, PodTemplateSpec, Probe, Toleration,
    Volume,
};
use serde_json::Value;

use super::client::{self, ApiResource, JSON, encode};
use super::get::{requests, selectors};
use super::print::{TabWriter, age, format_labels, parse_time, rfc1123z};
use super::{ClientArgs, Session, report};

/// The annotation describe never shows.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Longer annotations are shortened, as kubectl does.
const MAX_ANNOTATION_LEN: usize = 140;

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// TYPE [NAME_PREFIX...], or TYPE/NAME...
    #[arg(value_name = "TYPE [NAME...]", required = true)]
    pub resources: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Describe the objects of TYPE matching this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show the events of each object (--show-events=false not to).
    #[arg(long, action = clap::ArgAction::Set, default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub show_events: bool,
}

pub async fn run(args: DescribeArgs) -> anyhow::Result<ExitCode> {
    let session = Session::connect(&args.client)?;
    let discovery = session.client.discover().await?;
    let requests = requests(&discovery, &args.resources)?;
    let mut objects: Vec<(ApiResource, Value)> = Vec::new();
    let mut failed = false;
    let query = selectors(args.selector.as_deref(), None);
    for r in &requests {
        let ns = (!args.all_namespaces || r.name.is_some()).then_some(session.namespace.as_str());
        match &r.name {
            Some(name) => {
                let reply = session
                    .client
                    .get(&r.resource.path(ns, Some(name)), JSON)
                    .await?;
                if reply.ok() {
                    objects.push((r.resource.clone(), reply.json()?));
                    continue;
                }
                let error = reply.error();
                // Like kubectl: a name that is no object's is tried as a prefix.
                let mut found = false;
                if client::is_not_found(&error) {
                    let list = session
                        .client
                        .get(&format!("{}?limit=500", r.resource.path(ns, None)), JSON)
                        .await?;
                    if list.ok() {
                        for item in list.json()?["items"].as_array().into_iter().flatten() {
                            if item["metadata"]["name"]
                                .as_str()
                                .is_some_and(|n| n.starts_with(name.as_str()))
                            {
                                found = true;
                                objects.push((r.resource.clone(), item.clone()));
                            }
                        }
                    }
                }
                if !found {
                    report(&error);
                    failed = true;
                }
            }
            None => {
                let path = format!("{}?limit=500{query}", r.resource.path(ns, None));
                let list = client::check(session.client.get(&path, JSON).await?)?.json()?;
                for item in list["items"].as_array().into_iter().flatten() {
                    objects.push((r.resource.clone(), item.clone()));
                }
            }
        }
    }
    if objects.is_empty() && !failed {
        if args.all_namespaces || requests.iter().any(|r| !r.resource.namespaced) {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", session.namespace);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut first = true;
    for (r, object) in &objects {
        let events = if args.show_events && r.kind != "Secret" && r.kind != "Namespace" {
            Some(events_of(&session, r, object).await?)
        } else {
            None
        };
        let related = match (r.group.as_str(), r.kind.as_str()) {
            ("", "Service") => slices_of(&session, object).await?,
            ("apps", "Deployment") => {
                controlled_by(&session, object, "/apis/apps/v1", "replicasets", false).await?
            }
            ("apps", "ReplicaSet") => {
                controlled_by(&session, object, "/api/v1", "pods", false).await?
            }
            ("", "ReplicationController") => {
                controlled_by(&session, object, "/api/v1", "pods", true).await?
            }
            _ => Vec::new(),
        };
        let text = describe(r, object, events.as_deref(), &related, Timestamp::now());
        if first {
            super::print::out(&text);
            first = false;
        } else {
            super::print::out(&format!("\n\n{text}"));
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The events about an object, as kubectl's `searchEvents` asks for them (a pod's reference
/// has no kind).
async fn events_of(
    session: &Session,
    r: &ApiResource,
    object: &Value,
) -> anyhow::Result<Vec<Value>> {
    let meta = &object["metadata"];
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    if r.kind != "Pod" {
        fields.insert("involvedObject.kind", &r.kind);
    }
    fields.insert(
        "involvedObject.name",
        meta["name"].as_str().unwrap_or_default(),
    );
    let namespace = meta["namespace"].as_str().unwrap_or_default();
    fields.insert("involvedObject.namespace", namespace);
    if let Some(uid) = meta["uid"].as_str() {
        fields.insert("involvedObject.uid", uid);
    }
    let selector = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let ns_path = if namespace.is_empty() {
        String::new()
    } else {
        format!("/namespaces/{}", encode(namespace))
    };
    let path = format!(
        "/api/v1{ns_path}/events?fieldSelector={}&limit=500",
        encode(&selector)
    );
    let reply = session.client.get(&path, JSON).await?;
    if !reply.ok() {
        // kubectl describes the object without its events when they cannot be read.
        return Ok(Vec::new());
    }
    let mut events: Vec<Value> = reply.json()?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    super::events::sort_events(&mut events);
    Ok(events)
}

/// The objects (`resource` under `api`) a workload controls, as kubectl finds a
/// Deployment's ReplicaSets (`deploymentutil.GetAllReplicaSets`) and a ReplicaSet's pods
/// (`getPodStatusForController`): by the owner's selector (`is_map` for a
/// ReplicationController's), then by controller reference. None when they cannot be read.
async fn controlled_by(
    session: &Session,
    owner: &Value,
    api: &str,
    resource: &str,
    is_map: bool,
) -> anyhow::Result<Vec<Value>> {
    let meta = &owner["metadata"];
    let selector = crate::model::workload::selector_string(owner.pointer("/spec/selector"), is_map);
    let path = format!(
        "{api}/namespaces/{}/{resource}?labelSelector={}",
        encode(s(&meta["namespace"])),
        encode(&selector)
    );
    let reply = session.client.get(&path, JSON).await?;
    if !reply.ok() {
        return Ok(Vec::new());
    }
    let uid = s(&meta["uid"]);
    Ok(reply.json()?["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["controller"] == true && s(&o["uid"]) == uid)
        })
        .cloned()
        .collect())
}

/// The EndpointSlices of a Service, as kubectl's ServiceDescriber lists them (by the
/// `kubernetes.io/service-name` label; none when they cannot be read).
async fn slices_of(session: &Session, service: &Value) -> anyhow::Result<Vec<Value>> {
    let meta = &service["metadata"];
    let path = format!(
        "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices?labelSelector={}",
        encode(s(&meta["namespace"])),
        encode(&format!("kubernetes.io/service-name={}", s(&meta["name"])))
    );
    let reply = session.client.get(&path, JSON).await?;
    if !reply.ok() {
        return Ok(Vec::new());
    }
    Ok(reply.json()?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The description of one object; `related` are a Service's EndpointSlices or a
/// Deployment's ReplicaSets.
pub(crate) fn describe(
    r: &ApiResource,
    object: &Value,
    events: Option<&[Value]>,
    related: &[Value],
    now: Timestamp,
) -> String {
    let mut w = Writer::default();
    match (r.group.as_str(), r.kind.as_str()) {
        ("", "Pod") => match serde_json::from_value::<Pod>(object.clone()) {
            Ok(pod) => describe_pod(&mut w, &pod, events, now),
            Err(_) => describe_generic(&mut w, object, events, now),
        },
        ("", "ConfigMap") => describe_config_map(&mut w, object, events, now),
        ("", "Secret") => describe_secret(&mut w, object),
        ("", "Namespace") => describe_namespace(&mut w, object),
        ("", "Service") => describe_service(&mut w, object, related, events, now),
        ("apps", "Deployment") => describe_deployment(&mut w, object, related, events, now),
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            describe_replica_set(&mut w, r, object, related, events, now);
        }
        ("", "Endpoints") => describe_endpoints(&mut w, object, events, now),
        ("discovery.k8s.io", "EndpointSlice") => {
            describe_endpoint_slice(&mut w, object, events, now)
        }
        _ => describe_generic(&mut w, object, events, now),
    }
    w.tab.take()
}

/// kubectl's `PrefixWriter` over a describe tab writer: two spaces per level. `raw` holds the
/// text instead when the writer is kubectl's bare `NewPrefixWriter` (tabs left as they are).
#[derive(Default)]
struct Writer {
    tab: TabWriterDefault,
    raw: Option<String>,
}

struct TabWriterDefault(TabWriter);

impl Default for TabWriterDefault {
    fn default() -> Self {
        TabWriterDefault(TabWriter::for_describe())
    }
}

impl TabWriterDefault {
    fn take(&mut self) -> String {
        self.0.take()
    }
}

impl Writer {
    fn write(&mut self, level: usize, text: &str) {
        let mut s = "  ".repeat(level);
        s.push_str(text);
        match &mut self.raw {
            Some(raw) => raw.push_str(&s),
            None => self.tab.0.write(&s),
        }
    }

    fn flush(&mut self) {
        self.tab.0.flush();
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), s(v).to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `printLabelsMultiline`.
fn labels_multiline(w: &mut Writer, title: &str, labels: &BTreeMap<String, String>) {
    w.write(0, &format!("{title}:\t"));
    if labels.is_empty() {
        w.write(0, "<none>\n");
        return;
    }
    for (i, (k, v)) in labels.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        w.write(0, &format!("{k}={v}\n"));
    }
}

/// `printAnnotationsMultiline`: the last-applied annotation is skipped, long or multi-line
/// values go on their own lines, shortened.
fn annotations_multiline(w: &mut Writer, title: &str, annotations: &BTreeMap<String, String>) {
    w.write(0, &format!("{title}:\t"));
    let keys: Vec<&String> = annotations.keys().filter(|k| *k != LAST_APPLIED).collect();
    if keys.is_empty() {
        w.write(0, "<none>\n");
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let value = annotations[*key].trim_end_matches('\n');
        if value.len() + key.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.write(0, &format!("{key}:\n"));
            for line in value.split('\n') {
                let short = if line.len() > MAX_ANNOTATION_LEN - 2 {
                    let mut end = MAX_ANNOTATION_LEN - 2;
                    while !line.is_char_boundary(end) {
                        end -= 1;
                    }
                    format!("{}...", &line[..end])
                } else {
                    line.to_owned()
                };
                w.write(0, &format!("\t  {short}\n"));
            }
        } else {
            w.write(0, &format!("{key}: {value}\n"));
        }
    }
}

/// `DescribeEvents`.
fn describe_events(w: &mut Writer, events: &[Value], now: Timestamp) {
    if events.is_empty() {
        w.write(0, "Events:\t<none>\n");
        return;
    }
    w.flush();
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.write(1, "----\t------\t----\t----\t-------\n");
    for e in events {
        let mut source = s(&e["source"]["component"]);
        if source.is_empty() {
            source = s(&e["reportingComponent"]);
        }
        w.write(
            1,
            &format!(
                "{}\t{}\t{}\t{}\t{}\n",
                s(&e["type"]),
                s(&e["reason"]),
                super::events::interval(e, now),
                source,
                s(&e["message"]).trim()
            ),
        );
    }
}

fn time_of(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<Timestamp> {
    t.as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| parse_time(&v))
}

fn describe_pod(w: &mut Writer, pod: &Pod, events: Option<&[Value]>, now: Timestamp) {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or_default()),
    );
    w.write(
        0,
        &format!(
            "Namespace:\t{}\n",
            meta.namespace.as_deref().unwrap_or_default()
        ),
    );
    if let Some(p) = spec.priority {
        w.write(0, &format!("Priority:\t{p}\n"));
    }
    if let Some(p) = spec
        .priority_class_name
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        w.write(0, &format!("Priority Class Name:\t{p}\n"));
    }
    if let Some(r) = spec.runtime_class_name.as_deref().filter(|r| !r.is_empty()) {
        w.write(0, &format!("Runtime Class Name:\t{r}\n"));
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("Service Account:\t{sa}\n"));
    }
    match spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        None => w.write(0, "Node:\t<none>\n"),
        Some(n) => w.write(
            0,
            &format!(
                "Node:\t{n}/{}\n",
                status.host_ip.as_deref().unwrap_or_default()
            ),
        ),
    }
    if let Some(t) = time_of(&status.start_time) {
        w.write(0, &format!("Start Time:\t{}\n", rfc1123z(t)));
    }
    labels_multiline(w, "Labels", &meta.labels.clone().unwrap_or_default());
    annotations_multiline(
        w,
        "Annotations",
        &meta.annotations.clone().unwrap_or_default(),
    );
    let phase = status.phase.clone().unwrap_or_default();
    if meta.deletion_timestamp.is_some() && phase != "Failed" && phase != "Succeeded" {
        w.write(
            0,
            &format!(
                "Status:\tTerminating (lasts {})\n",
                age(time_of(&meta.deletion_timestamp), now)
            ),
        );
        w.write(
            0,
            &format!(
                "Termination Grace Period:\t{}s\n",
                meta.deletion_grace_period_seconds.unwrap_or(0)
            ),
        );
    } else {
        w.write(0, &format!("Status:\t{phase}\n"));
    }
    if let Some(r) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        w.write(0, &format!("Reason:\t{r}\n"));
    }
    if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
        w.write(0, &format!("Message:\t{m}\n"));
    }
    w.write(
        0,
        &format!("IP:\t{}\n", status.pod_ip.as_deref().unwrap_or_default()),
    );
    match status.pod_ips.as_deref().filter(|ips| !ips.is_empty()) {
        None => w.write(0, "IPs:\t<none>\n"),
        Some(ips) => {
            w.write(0, "IPs:\n");
            for ip in ips {
                w.write(1, &format!("IP:\t{}\n", ip.ip));
            }
        }
    }
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        w.write(
            0,
            &format!("Controlled By:\t{}/{}\n", owner.kind, owner.name),
        );
    }
    if let Some(n) = status
        .nominated_node_name
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        w.write(0, &format!("NominatedNodeName:\t{n}\n"));
    }
    let env_pod = pod.clone();
    if let Some(init) = spec.init_containers.as_deref().filter(|c| !c.is_empty()) {
        describe_containers(
            w,
            "Init Containers",
            init,
            status
                .init_container_statuses
                .as_deref()
                .unwrap_or_default(),
            &env_pod,
            "",
        );
    }
    describe_containers(
        w,
        "Containers",
        &spec.containers,
        status.container_statuses.as_deref().unwrap_or_default(),
        &env_pod,
        "",
    );
    if let Some(gates) = spec.readiness_gates.as_deref().filter(|g| !g.is_empty()) {
        w.write(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in gates {
            let status = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == g.condition_type)
                .map_or("<none>".to_owned(), |c| c.status.clone());
            w.write(1, &format!("{} \t{status} \n", g.condition_type));
        }
    }
    if let Some(conditions) = status.conditions.as_deref().filter(|c| !c.is_empty()) {
        w.write(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w.write(1, &format!("{} \t{} \n", c.type_, c.status));
        }
    }
    describe_volumes(w, spec.volumes.as_deref().unwrap_or_default(), "");
    w.write(0, &format!("QoS Class:\t{}\n", qos_class(pod)));
    let node_selector: BTreeMap<String, String> = spec.node_selector.clone().unwrap_or_default();
    labels_multiline(w, "Node-Selectors", &node_selector);
    tolerations_multiline(
        w,
        "Tolerations",
        spec.tolerations.clone().unwrap_or_default(),
    );
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

/// `qos.GetPodQOS`: the status's class, else computed from requests and limits.
fn qos_class(pod: &Pod) -> String {
    if let Some(q) = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.clone())
        .filter(|q| !q.is_empty())
    {
        return q;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let containers: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let res = c.resources.clone().unwrap_or_default();
        let limits = res.limits.unwrap_or_default();
        let requests = res.requests.unwrap_or_default();
        let mut requests = requests.clone();
        for (k, v) in &limits {
            requests.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let relevant =
            |m: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
                m.iter()
                    .filter(|(k, v)| (k.as_str() == "cpu" || k.as_str() == "memory") && v.0 != "0")
                    .map(|(k, v)| (k.clone(), v.0.clone()))
                    .collect::<BTreeMap<_, _>>()
            };
        let l = relevant(&limits);
        let r = relevant(&requests);
        if !l.is_empty() || !r.is_empty() {
            any = true;
        }
        if l.len() != 2 || l != r {
            guaranteed = false;
        }
    }
    if !any {
        "BestEffort".to_owned()
    } else if guaranteed {
        "Guaranteed".to_owned()
    } else {
        "Burstable".to_owned()
    }
}

/// `describeContainers`; `space` prefixes the title (a pod template's), and then the names
/// get one more space, as kubectl does.
fn describe_containers(
    w: &mut Writer,
    label: &str,
    containers: &[Container],
    statuses: &[ContainerStatus],
    pod: &Pod,
    space: &str,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    w.write(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in containers {
        let status = statuses.iter().find(|s| s.name == c.name);
        w.write(1, &format!("{name_indent}{}:\n", c.name));
        if let Some(st) = status {
            w.write(
                2,
                &format!(
                    "Container ID:\t{}\n",
                    st.container_id.as_deref().unwrap_or_default()
                ),
            );
        }
        w.write(
            2,
            &format!("Image:\t{}\n", c.image.as_deref().unwrap_or_default()),
        );
        if let Some(st) = status {
            w.write(2, &format!("Image ID:\t{}\n", st.image_id));
        }
        let ports: Vec<String> = c
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.container_port,
                    p.protocol.as_deref().unwrap_or("TCP")
                )
            })
            .collect();
        let host_ports: Vec<String> = c
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.host_port.unwrap_or(0),
                    p.protocol.as_deref().unwrap_or("TCP")
                )
            })
            .collect();
        if ports.len() > 1 {
            w.write(2, &format!("Ports:\t{}\n", ports.join(", ")));
            w.write(2, &format!("Host Ports:\t{}\n", host_ports.join(", ")));
        } else {
            w.write(
                2,
                &format!(
                    "Port:\t{}\n",
                    ports.first().map_or("<none>", String::as_str)
                ),
            );
            w.write(
                2,
                &format!(
                    "Host Port:\t{}\n",
                    host_ports.first().map_or("<none>", String::as_str)
                ),
            );
        }
        for (title, list) in [("Command", &c.command), ("Args", &c.args)] {
            if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
                w.write(2, &format!("{title}:\n"));
                for item in list {
                    for line in item.split('\n') {
                        w.write(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            describe_state(w, "State", st.state.as_ref());
            if st
                .last_state
                .as_ref()
                .is_some_and(|s| s.terminated.is_some())
            {
                describe_state(w, "Last State", st.last_state.as_ref());
            }
            w.write(
                2,
                &format!("Ready:\t{}\n", if st.ready { "True" } else { "False" }),
            );
            w.write(2, &format!("Restart Count:\t{}\n", st.restart_count));
        }
        if let Some(res) = &c.resources {
            for (title, list) in [("Limits", &res.limits), ("Requests", &res.requests)] {
                if let Some(list) = list.as_ref().filter(|l| !l.is_empty()) {
                    w.write(2, &format!("{title}:\n"));
                    for (k, v) in list {
                        w.write(3, &format!("{k}:\t{}\n", v.0));
                    }
                }
            }
        }
        for (title, probe) in [
            ("Liveness", &c.liveness_probe),
            ("Readiness", &c.readiness_probe),
            ("Startup", &c.startup_probe),
        ] {
            if let Some(p) = probe {
                w.write(2, &format!("{title}:\t{}\n", describe_probe(p)));
            }
        }
        if let Some(from) = c.env_from.as_deref().filter(|f| !f.is_empty()) {
            w.write(2, "Environment Variables from:\n");
            for e in from {
                let (kind, name, optional) = if let Some(cm) = &e.config_map_ref {
                    ("ConfigMap", cm.name.clone(), cm.optional.unwrap_or(false))
                } else if let Some(sec) = &e.secret_ref {
                    ("Secret", sec.name.clone(), sec.optional.unwrap_or(false))
                } else {
                    ("", String::new(), false)
                };
                match e.prefix.as_deref().filter(|p| !p.is_empty()) {
                    None => w.write(3, &format!("{name}\t{kind}\tOptional: {optional}\n")),
                    Some(p) => w.write(
                        3,
                        &format!("{name}\t{kind} with prefix '{p}'\tOptional: {optional}\n"),
                    ),
                }
            }
        }
        let env = c.env.as_deref().unwrap_or_default();
        w.write(
            2,
            &format!(
                "Environment:{}\n",
                if env.is_empty() { "\t<none>" } else { "" }
            ),
        );
        for e in env {
            describe_env(w, e, c, pod);
        }
        let mut mounts = c.volume_mounts.clone().unwrap_or_default();
        w.write(
            2,
            &format!(
                "Mounts:{}\n",
                if mounts.is_empty() { "\t<none>" } else { "" }
            ),
        );
        mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
        for m in &mounts {
            let mut flags = vec![if m.read_only == Some(true) {
                "ro".to_owned()
            } else {
                "rw".to_owned()
            }];
            if let Some(sp) = m.sub_path.as_deref().filter(|p| !p.is_empty()) {
                flags.push(format!("path={sp:?}"));
            }
            w.write(
                3,
                &format!("{} from {} ({})\n", m.mount_path, m.name, flags.join(",")),
            );
        }
    }
}

fn describe_env(w: &mut Writer, e: &EnvVar, c: &Container, pod: &Pod) {
    let Some(from) = &e.value_from else {
        for (i, line) in e
            .value
            .as_deref()
            .unwrap_or_default()
            .split('\n')
            .enumerate()
        {
            if i == 0 {
                w.write(3, &format!("{}:\t{line}\n", e.name));
            } else {
                w.write(3, &format!("\t{line}\n"));
            }
        }
        return;
    };
    if let Some(f) = &from.field_ref {
        let value = field_value(pod, &f.field_path);
        w.write(
            3,
            &format!(
                "{}:\t{value} ({}:{})\n",
                e.name,
                f.api_version.as_deref().unwrap_or("v1"),
                f.field_path
            ),
        );
    } else if let Some(r) = &from.resource_field_ref {
        let res = c.resources.clone().unwrap_or_default();
        let (list, key) = match r.resource.split_once('.') {
            Some(("limits", k)) => (res.limits, k.to_owned()),
            Some(("requests", k)) => (res.requests, k.to_owned()),
            _ => (None, String::new()),
        };
        let mut value = list
            .and_then(|l| l.get(&key).map(|q| q.0.clone()))
            .unwrap_or_else(|| "0".to_owned());
        if value == "0" && (r.resource == "limits.cpu" || r.resource == "limits.memory") {
            value = "node allocatable".to_owned();
        }
        w.write(3, &format!("{}:\t{value} ({})\n", e.name, r.resource));
    } else if let Some(k) = &from.secret_key_ref {
        w.write(
            3,
            &format!(
                "{}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                e.name,
                k.key,
                k.name,
                k.optional.unwrap_or(false)
            ),
        );
    } else if let Some(k) = &from.config_map_key_ref {
        w.write(
            3,
            &format!(
                "{}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                e.name,
                k.key,
                k.name,
                k.optional.unwrap_or(false)
            ),
        );
    }
}

/// The downward API value of a field path, as the describer's `EnvValueRetriever`.
fn field_value(pod: &Pod, path: &str) -> String {
    let meta = &pod.metadata;
    let status = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    };
    if let Some(key) = path
        .strip_prefix("metadata.labels['")
        .and_then(|k| k.strip_suffix("']"))
    {
        return from_map(&meta.labels, key);
    }
    if let Some(key) = path
        .strip_prefix("metadata.annotations['")
        .and_then(|k| k.strip_suffix("']"))
    {
        return from_map(&meta.annotations, key);
    }
    match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.podIP" => status.pod_ip.unwrap_or_default(),
        "status.hostIP" => status.host_ip.unwrap_or_default(),
        "status.podIPs" => status
            .pod_ips
            .unwrap_or_default()
            .iter()
            .map(|i| i.ip.clone())
            .collect::<Vec<_>>()
            .join(","),
        "status.hostIPs" => status
            .host_ips
            .unwrap_or_default()
            .iter()
            .map(|i| i.ip.clone())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

fn describe_state(w: &mut Writer, title: &str, state: Option<&ContainerState>) {
    let state = state.cloned().unwrap_or_default();
    if let Some(r) = &state.running {
        w.write(2, &format!("{title}:\tRunning\n"));
        let started = time_of(&r.started_at).map(rfc1123z).unwrap_or_default();
        w.write(3, &format!("Started:\t{started}\n"));
    } else if let Some(wt) = &state.waiting {
        w.write(2, &format!("{title}:\tWaiting\n"));
        if let Some(r) = wt.reason.as_deref().filter(|r| !r.is_empty()) {
            w.write(3, &format!("Reason:\t{r}\n"));
        }
    } else if let Some(t) = &state.terminated {
        w.write(2, &format!("{title}:\tTerminated\n"));
        if let Some(r) = t.reason.as_deref().filter(|r| !r.is_empty()) {
            w.write(3, &format!("Reason:\t{r}\n"));
        }
        if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
            w.write(3, &format!("Message:\t{m}\n"));
        }
        w.write(3, &format!("Exit Code:\t{}\n", t.exit_code));
        if let Some(sig) = t.signal.filter(|s| *s > 0) {
            w.write(3, &format!("Signal:\t{sig}\n"));
        }
        let fmt = |ts: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            time_of(ts)
                .map(rfc1123z)
                .unwrap_or_else(|| "Mon, 01 Jan 0001 00:00:00 +0000".to_owned())
        };
        w.write(3, &format!("Started:\t{}\n", fmt(&t.started_at)));
        w.write(3, &format!("Finished:\t{}\n", fmt(&t.finished_at)));
    } else {
        w.write(2, &format!("{title}:\tWaiting\n"));
    }
}

/// `DescribeProbe`.
fn describe_probe(p: &Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(1),
        p.period_seconds.unwrap_or(10),
        p.success_threshold.unwrap_or(1),
        p.failure_threshold.unwrap_or(3)
    );
    let port = |p: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString| match p {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    };
    if let Some(e) = &p.exec {
        format!(
            "exec [{}] {attrs}",
            e.command.clone().unwrap_or_default().join(" ")
        )
    } else if let Some(h) = &p.http_get {
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
        let host = h.host.clone().unwrap_or_default();
        let host_port = if host.contains(':') {
            format!("[{host}]:{}", port(&h.port))
        } else {
            format!("{host}:{}", port(&h.port))
        };
        format!(
            "http-get {scheme}://{host_port}{} {attrs}",
            h.path.as_deref().unwrap_or_default()
        )
    } else if let Some(t) = &p.tcp_socket {
        format!(
            "tcp-socket {}:{} {attrs}",
            t.host.as_deref().unwrap_or_default(),
            port(&t.port)
        )
    } else if let Some(g) = &p.grpc {
        format!(
            "grpc <pod>:{} {} {attrs}",
            g.port,
            g.service.as_deref().unwrap_or_default()
        )
    } else {
        format!("unknown {attrs}")
    }
}

/// `describeVolumes`; `space` prefixes the title (a pod template's), and then the names get
/// one more space, as kubectl does.
fn describe_volumes(w: &mut Writer, volumes: &[Volume], space: &str) {
    if volumes.is_empty() {
        w.write(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.write(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w.write(1, &format!("{name_indent}{}:\n", v.name));
        if let Some(h) = &v.host_path {
            w.write(
                2,
                &format!(
                    "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                    h.path,
                    h.type_.as_deref().unwrap_or("<none>")
                ),
            );
        } else if let Some(e) = &v.empty_dir {
            let limit = e
                .size_limit
                .as_ref()
                .map(|q| q.0.clone())
                .filter(|q| q != "0")
                .unwrap_or_else(|| "<unset>".to_owned());
            w.write(
                2,
                &format!(
                    "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{limit}\n",
                    e.medium.as_deref().unwrap_or_default()
                ),
            );
        } else if let Some(sec) = &v.secret {
            w.write(
                2,
                &format!(
                    "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                    sec.secret_name.as_deref().unwrap_or_default(),
                    sec.optional.unwrap_or(false)
                ),
            );
        } else if let Some(cm) = &v.config_map {
            w.write(
                2,
                &format!(
                    "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                    cm.name,
                    cm.optional.unwrap_or(false)
                ),
            );
        } else if let Some(pvc) = &v.persistent_volume_claim {
            w.write(
                2,
                &format!(
                    "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                    pvc.claim_name,
                    pvc.read_only.unwrap_or(false)
                ),
            );
        } else if let Some(d) = &v.downward_api {
            w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n");
            for item in d.items.iter().flatten() {
                if let Some(f) = &item.field_ref {
                    w.write(3, &format!("{} -> {}\n", f.field_path, item.path));
                }
                if let Some(r) = &item.resource_field_ref {
                    w.write(3, &format!("{} -> {}\n", r.resource, item.path));
                }
            }
        } else if let Some(p) = &v.projected {
            w.write(
                2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
            );
            for source in p.sources.iter().flatten() {
                if let Some(sec) = &source.secret {
                    w.write(
                        2,
                        &format!(
                            "SecretName:\t{}\n    Optional:\t{}\n",
                            sec.name,
                            sec.optional.unwrap_or(false)
                        ),
                    );
                } else if source.downward_api.is_some() {
                    w.write(2, "DownwardAPI:\ttrue\n");
                } else if let Some(cm) = &source.config_map {
                    w.write(
                        2,
                        &format!(
                            "ConfigMapName:\t{}\n    Optional:\t{}\n",
                            cm.name,
                            cm.optional.unwrap_or(false)
                        ),
                    );
                } else if let Some(t) = &source.service_account_token {
                    w.write(
                        2,
                        &format!(
                            "TokenExpirationSeconds:\t{}\n",
                            t.expiration_seconds.unwrap_or(3600)
                        ),
                    );
                }
            }
        } else {
            w.write(1, "<unknown>\n");
        }
    }
}

fn describe_config_map(w: &mut Writer, cm: &Value, events: Option<&[Value]>, now: Timestamp) {
    let meta = &cm["metadata"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    w.write(0, "\nData\n====\n");
    for (k, v) in string_map(&cm["data"]) {
        w.write(0, &format!("{k}:\n----\n"));
        w.write(0, &format!("{v}\n"));
        w.write(0, "\n");
    }
    w.write(0, "\nBinaryData\n====\n");
    for (k, v) in string_map(&cm["binaryData"]) {
        w.write(0, &format!("{k}: {} bytes\n", decoded_len(&v)));
    }
    w.write(0, "\n");
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

/// The length of base64 data once decoded.
fn decoded_len(b64: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_or(0, |d| d.len())
}

fn describe_secret(w: &mut Writer, secret: &Value) {
    let meta = &secret["metadata"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    w.write(0, &format!("\nType:\t{}\n", s(&secret["type"])));
    w.write(0, "\nData\n====\n");
    // Never the values: their sizes only.
    for (k, v) in string_map(&secret["data"]) {
        w.write(0, &format!("{k}:\t{} bytes\n", decoded_len(&v)));
    }
}

fn describe_namespace(w: &mut Writer, ns: &Value) {
    let meta = &ns["metadata"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    w.write(0, &format!("Status:\t{}\n", s(&ns["status"]["phase"])));
}

/// `describeService`.
fn describe_service(
    w: &mut Writer,
    svc: &Value,
    slices: &[Value],
    events: Option<&[Value]>,
    now: Timestamp,
) {
    let meta = &svc["metadata"];
    let spec = &svc["spec"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    let selector = match spec["selector"].as_object() {
        Some(m) if !m.is_empty() => format_labels(&spec["selector"]),
        _ => "<none>".to_owned(),
    };
    w.write(0, &format!("Selector:\t{selector}\n"));
    w.write(0, &format!("Type:\t{}\n", s(&spec["type"])));
    if let Some(policy) = spec["ipFamilyPolicy"].as_str() {
        w.write(0, &format!("IP Family Policy:\t{policy}\n"));
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|x| s(x).to_owned()).collect())
            .unwrap_or_default()
    };
    let families = strings(&spec["ipFamilies"]);
    w.write(
        0,
        &format!("IP Families:\t{}\n", or_none_joined(&families, ",")),
    );
    w.write(0, &format!("IP:\t{}\n", s(&spec["clusterIP"])));
    w.write(
        0,
        &format!(
            "IPs:\t{}\n",
            or_none_joined(&strings(&spec["clusterIPs"]), ",")
        ),
    );
    let external = strings(&spec["externalIPs"]);
    if !external.is_empty() {
        w.write(0, &format!("External IPs:\t{}\n", external.join(",")));
    }
    let lb_ip = s(&spec["loadBalancerIP"]);
    if !lb_ip.is_empty() {
        w.write(0, &format!("Desired LoadBalancer IP:\t{lb_ip}\n"));
    }
    let external_name = s(&spec["externalName"]);
    if !external_name.is_empty() {
        w.write(0, &format!("External Name:\t{external_name}\n"));
    }
    let ingress = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !ingress.is_empty() {
        let list: Vec<String> = ingress
            .iter()
            .map(|i| {
                let ip = s(&i["ip"]);
                if ip.is_empty() {
                    return s(&i["hostname"]).to_owned();
                }
                match i["ipMode"].as_str() {
                    Some(mode) => format!("{ip} ({mode})"),
                    None => ip.to_owned(),
                }
            })
            .collect();
        w.write(0, &format!("LoadBalancer Ingress:\t{}\n", list.join(", ")));
    }
    for port in spec["ports"].as_array().into_iter().flatten() {
        let protocol = s(&port["protocol"]);
        let port_name = s(&port["name"]);
        let name = if port_name.is_empty() {
            "<unset>"
        } else {
            port_name
        };
        w.write(
            0,
            &format!(
                "Port:\t{name}\t{}/{protocol}\n",
                port["port"].as_i64().unwrap_or(0)
            ),
        );
        let target = match &port["targetPort"] {
            Value::String(t) => t.clone(),
            other => other.as_i64().unwrap_or(0).to_string(),
        };
        w.write(0, &format!("TargetPort:\t{target}/{protocol}\n"));
        let node_port = port["nodePort"].as_i64().unwrap_or(0);
        if node_port != 0 {
            w.write(0, &format!("NodePort:\t{name}\t{node_port}/{protocol}\n"));
        }
        w.write(
            0,
            &format!(
                "Endpoints:\t{}\n",
                format_endpoint_slices(slices, Some(port_name))
            ),
        );
    }
    w.write(
        0,
        &format!("Session Affinity:\t{}\n", s(&spec["sessionAffinity"])),
    );
    for (field, title) in [
        ("externalTrafficPolicy", "External Traffic Policy"),
        ("internalTrafficPolicy", "Internal Traffic Policy"),
    ] {
        let value = s(&spec[field]);
        if !value.is_empty() || (field == "internalTrafficPolicy" && spec[field].is_string()) {
            w.write(0, &format!("{title}:\t{value}\n"));
        }
    }
    let hc = spec["healthCheckNodePort"].as_i64().unwrap_or(0);
    if hc != 0 {
        w.write(0, &format!("HealthCheck NodePort:\t{hc}\n"));
    }
    let ranges = strings(&spec["loadBalancerSourceRanges"]);
    if !ranges.is_empty() {
        w.write(
            0,
            &format!("LoadBalancer Source Ranges:\t{}\n", ranges.join(",")),
        );
    }
    let distribution = s(&spec["trafficDistribution"]);
    if !distribution.is_empty() {
        w.write(0, &format!("Traffic Distribution:\t{distribution}\n"));
    }
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

/// `strings.Join(list, sep)`, `<none>` for an empty list.
fn or_none_joined(list: &[String], sep: &str) -> String {
    if list.is_empty() {
        "<none>".to_owned()
    } else {
        list.join(sep)
    }
}

/// kubectl's `formatEndpointSlices`: the ready endpoints of the slices' ports named `port`
/// (every port when None) as `ip:port`, at most 3 and then `+ N more...`; `<none>` without
/// slices. A slice without ports lists bare addresses (a headless Service).
fn format_endpoint_slices(slices: &[Value], port: Option<&str>) -> String {
    if slices.is_empty() {
        return "<none>".to_owned();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    let ready = |e: &Value| e["conditions"]["ready"].as_bool().unwrap_or(true);
    let first_address = |e: &Value| {
        e["addresses"]
            .get(0)
            .map(|a| s(a).to_owned())
            .unwrap_or_default()
    };
    for slice in slices {
        let endpoints = slice["endpoints"].as_array().cloned().unwrap_or_default();
        let ports = slice["ports"].as_array().cloned().unwrap_or_default();
        if ports.is_empty() {
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(first_address(e));
                }
                count += 1;
            }
            continue;
        }
        for p in &ports {
            if port.is_some_and(|name| s(&p["name"]) != name) {
                continue;
            }
            for e in &endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    let address = first_address(e);
                    let number = p["port"].as_i64().unwrap_or(0);
                    list.push(if address.contains(':') {
                        format!("[{address}]:{number}")
                    } else {
                        format!("{address}:{number}")
                    });
                }
                count += 1;
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

/// `describeEndpoints`.
fn describe_endpoints(w: &mut Writer, ep: &Value, events: Option<&[Value]>, now: Timestamp) {
    let meta = &ep["metadata"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    w.write(0, "Subsets:\n");
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        let ips = |field: &str| -> String {
            let list: Vec<String> = subset[field]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| s(&a["ip"]).to_owned())
                .collect();
            or_none_joined(&list, ",")
        };
        w.write(1, &format!("Addresses:\t{}\n", ips("addresses")));
        w.write(
            1,
            &format!("NotReadyAddresses:\t{}\n", ips("notReadyAddresses")),
        );
        let ports = subset["ports"].as_array().cloned().unwrap_or_default();
        if !ports.is_empty() {
            w.write(1, "Ports:\n");
            w.write(2, "Name\tPort\tProtocol\n");
            w.write(2, "----\t----\t--------\n");
            for port in &ports {
                let name = match s(&port["name"]) {
                    "" => "<unset>",
                    n => n,
                };
                w.write(
                    2,
                    &format!(
                        "{name}\t{}\t{}\n",
                        port["port"].as_i64().unwrap_or(0),
                        s(&port["protocol"])
                    ),
                );
            }
        }
        w.write(0, "\n");
    }
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

/// `describeEndpointSliceV1`.
fn describe_endpoint_slice(
    w: &mut Writer,
    slice: &Value,
    events: Option<&[Value]>,
    now: Timestamp,
) {
    let meta = &slice["metadata"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    w.write(0, &format!("AddressType:\t{}\n", s(&slice["addressType"])));
    let ports = slice["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() {
        w.write(0, "Ports: <unset>\n");
    } else {
        w.write(0, "Ports:\n");
        w.write(1, "Name\tPort\tProtocol\n");
        w.write(1, "----\t----\t--------\n");
        for port in &ports {
            let name = match s(&port["name"]) {
                "" => "<unset>",
                n => n,
            };
            let number = port["port"]
                .as_i64()
                .map_or("<unset>".to_owned(), |p| p.to_string());
            w.write(1, &format!("{name}\t{number}\t{}\n", s(&port["protocol"])));
        }
    }
    let endpoints = slice["endpoints"].as_array().cloned().unwrap_or_default();
    if endpoints.is_empty() {
        w.write(0, "Endpoints: <none>\n");
    } else {
        w.write(0, "Endpoints:\n");
        let or_unset = |v: &Value| v.as_str().unwrap_or("<unset>").to_owned();
        for e in &endpoints {
            let addresses: Vec<String> = e["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| s(a).to_owned())
                .collect();
            w.write(
                1,
                &format!("- Addresses:\t{}\n", or_none_joined(&addresses, ", ")),
            );
            w.write(2, "Conditions:\n");
            let ready = e["conditions"]["ready"]
                .as_bool()
                .map_or("<unset>".to_owned(), |b| b.to_string());
            w.write(3, &format!("Ready:\t{ready}\n"));
            w.write(2, &format!("Hostname:\t{}\n", or_unset(&e["hostname"])));
            if e["targetRef"].is_object() {
                w.write(
                    2,
                    &format!(
                        "TargetRef:\t{}/{}\n",
                        s(&e["targetRef"]["kind"]),
                        s(&e["targetRef"]["name"])
                    ),
                );
            }
            w.write(2, &format!("NodeName:\t{}\n", or_unset(&e["nodeName"])));
            w.write(2, &format!("Zone:\t{}\n", or_unset(&e["zone"])));
        }
    }
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

/// kubectl's generic describer: name, namespace, labels, annotations, then every other field
/// with "smart" labels (`creationTimestamp` → `Creation Timestamp`), sorted.
fn describe_generic(w: &mut Writer, object: &Value, events: Option<&[Value]>, now: Timestamp) {
    let meta = &object["metadata"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    if let Some(map) = object.as_object() {
        unstructured(
            w,
            0,
            map,
            "",
            &[
                ".metadata.managedFields",
                ".metadata.name",
                ".metadata.namespace",
                ".metadata.labels",
                ".metadata.annotations",
            ],
        );
    }
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

fn unstructured(
    w: &mut Writer,
    level: usize,
    content: &serde_json::Map<String, Value>,
    prefix: &str,
    skip: &[&str],
) {
    for (field, value) in content {
        let path = format!("{prefix}.{field}");
        if skip.contains(&path.as_str()) {
            continue;
        }
        match value {
            Value::Object(map) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                unstructured(w, level + 1, map, &path, skip);
            }
            Value::Array(items) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(map) => unstructured(w, level + 1, map, &path, skip),
                        other => w.write(level + 1, &format!("{}\n", go_value(other))),
                    }
                }
            }
            other => w.write(
                level,
                &format!("{}:\t{}\n", smart_label(field), go_value(other)),
            ),
        }
    }
}

/// A scalar as Go's `%v` prints it.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".to_owned(),
        other => other.to_string(),
    }
}

/// kubectl's `smartLabelFor`: camel case split into capitalised words, common acronyms upper
/// case; fields with characters other than letters and `-` are left alone.
fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_owned();
    }
    let chars: Vec<char> = field.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase())
                    && chars[i - 1].is_uppercase());
        if boundary && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
        .into_iter()
        .map(|p| {
            let upper = p.to_uppercase();
            if ["API", "URL", "UID", "OSB", "GUID"].contains(&upper.as_str()) {
                upper
            } else {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// kubectl's `DeploymentDescriber`.
fn describe_deployment(
    w: &mut Writer,
    d: &Value,
    replica_sets: &[Value],
    events: Option<&[Value]>,
    now: Timestamp,
) {
    let meta = &d["metadata"];
    let spec = &d["spec"];
    let status = &d["status"];
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    if let Some(t) = parse_time(&meta["creationTimestamp"]) {
        w.write(0, &format!("CreationTimestamp:\t{}\n", rfc1123z(t)));
    }
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    let selector = crate::model::workload::selector_string(spec.get("selector"), false);
    w.write(0, &format!("Selector:\t{selector}\n"));
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    w.write(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            n(&spec["replicas"]),
            n(&status["updatedReplicas"]),
            n(&status["replicas"]),
            n(&status["availableReplicas"]),
            n(&status["unavailableReplicas"])
        ),
    );
    w.write(
        0,
        &format!("StrategyType:\t{}\n", s(&spec["strategy"]["type"])),
    );
    w.write(
        0,
        &format!("MinReadySeconds:\t{}\n", n(&spec["minReadySeconds"])),
    );
    let rolling = &spec["strategy"]["rollingUpdate"];
    if rolling.is_object() {
        let int_or_string = |v: &Value| match v {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => "0".to_owned(),
        };
        w.write(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(&rolling["maxUnavailable"]),
                int_or_string(&rolling["maxSurge"])
            ),
        );
    }
    describe_pod_template(w, &spec["template"]);
    describe_conditions(w, status);
    let owned: Vec<ReplicaSet> = replica_sets
        .iter()
        .filter_map(|rs| serde_json::from_value(rs.clone()).ok())
        .collect();
    if let Ok(deployment) = serde_json::from_value::<Deployment>(d.clone()) {
        let new = crate::controller::deployment::find_new_replica_set(&deployment, &owned);
        let old: Vec<&ReplicaSet> =
            crate::controller::deployment::find_old_replica_sets(&deployment, &owned)
                .into_iter()
                .filter(|rs| rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) != 0)
                .collect();
        if !old.is_empty() || new.is_some() {
            w.write(
                0,
                &format!("OldReplicaSets:\t{}\n", replica_sets_line(&old)),
            );
            let new: Vec<&ReplicaSet> = new.into_iter().collect();
            w.write(0, &format!("NewReplicaSet:\t{}\n", replica_sets_line(&new)));
        }
    }
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

/// kubectl's `printReplicaSetsByLabels`: `name (created/desired replicas created)`, or
/// `<none>`.
fn replica_sets_line(replica_sets: &[&ReplicaSet]) -> String {
    let list: Vec<String> = replica_sets
        .iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                rs.metadata.name.as_deref().unwrap_or_default(),
                rs.status.as_ref().map_or(0, |s| s.replicas),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            )
        })
        .collect();
    if list.is_empty() {
        "<none>".to_owned()
    } else {
        list.join(", ")
    }
}

/// kubectl's `ReplicaSetDescriber` and `ReplicationControllerDescriber`; `pods` are the pods
/// it controls.
fn describe_replica_set(
    w: &mut Writer,
    r: &ApiResource,
    rs: &Value,
    pods: &[Value],
    events: Option<&[Value]>,
    now: Timestamp,
) {
    let meta = &rs["metadata"];
    let spec = &rs["spec"];
    let status = &rs["status"];
    let is_rc = r.kind == "ReplicationController";
    w.write(0, &format!("Name:\t{}\n", s(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", s(&meta["namespace"])));
    let selector = crate::model::workload::selector_string(spec.get("selector"), is_rc);
    w.write(0, &format!("Selector:\t{selector}\n"));
    labels_multiline(w, "Labels", &string_map(&meta["labels"]));
    annotations_multiline(w, "Annotations", &string_map(&meta["annotations"]));
    if let Some(owner) = meta["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["controller"] == true)
    {
        w.write(
            0,
            &format!(
                "Controlled By:\t{}/{}\n",
                s(&owner["kind"]),
                s(&owner["name"])
            ),
        );
    }
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let desired = spec["replicas"].as_i64().unwrap_or(1);
    w.write(
        0,
        &format!(
            "Replicas:\t{} current / {desired} desired\n",
            n(&status["replicas"])
        ),
    );
    let phase = |p: &str| {
        pods.iter()
            .filter(|pod| s(&pod["status"]["phase"]) == p)
            .count()
    };
    w.write(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            phase("Running"),
            phase("Pending"),
            phase("Succeeded"),
            phase("Failed")
        ),
    );
    describe_pod_template(w, &spec["template"]);
    describe_conditions(w, status);
    if let Some(events) = events {
        describe_events(w, events, now);
    }
}

/// A pod template as `kubectl rollout history --revision N` prints it: `DescribePodTemplate`
/// on a bare prefix writer (tabs not aligned).
pub(crate) fn pod_template_untabbed(template: &Value) -> String {
    let mut w = Writer {
        raw: Some(String::new()),
        ..Writer::default()
    };
    describe_pod_template(&mut w, template);
    w.raw.unwrap_or_default()
}

/// kubectl's `DescribePodTemplate`: labels, annotations, service account, containers and
/// volumes of a template, one level in.
fn describe_pod_template(w: &mut Writer, template: &Value) {
    w.write(0, "Pod Template:\n");
    let Ok(template) = serde_json::from_value::<PodTemplateSpec>(template.clone()) else {
        w.write(1, "<unset>");
        return;
    };
    let meta = template.metadata.clone().unwrap_or_default();
    let spec = template.spec.clone().unwrap_or_default();
    labels_multiline(w, "  Labels", &meta.labels.clone().unwrap_or_default());
    if let Some(annotations) = meta.annotations.clone().filter(|a| !a.is_empty()) {
        annotations_multiline(w, "  Annotations", &annotations);
    }
    if let Some(account) = spec
        .service_account_name
        .as_deref()
        .filter(|a| !a.is_empty())
    {
        w.write(1, &format!("Service Account:\t{account}\n"));
    }
    let pod = Pod {
        metadata: meta,
        spec: Some(spec.clone()),
        status: None,
    };
    if let Some(init) = spec.init_containers.as_deref().filter(|c| !c.is_empty()) {
        describe_containers(w, "Init Containers", init, &[], &pod, "  ");
    }
    describe_containers(w, "Containers", &spec.containers, &[], &pod, "  ");
    describe_volumes(w, spec.volumes.as_deref().unwrap_or_default(), "  ");
    if let Some(class) = spec
        .priority_class_name
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        w.write(1, &format!("Priority Class Name:\t{class}\n"));
    }
    labels_multiline(
        w,
        "  Node-Selectors",
        &spec.node_selector.clone().unwrap_or_default(),
    );
    tolerations_multiline(
        w,
        "  Tolerations",
        spec.tolerations.clone().unwrap_or_default(),
    );
}

/// The `Conditions:` table of a workload's status (Type, Status, Reason), if it has any.
fn describe_conditions(w: &mut Writer, status: &Value) {
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    if conditions.is_empty() {
        return;
    }
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n");
    w.write(1, "----\t------\t------\n");
    for c in &conditions {
        w.write(
            1,
            &format!(
                "{} \t{}\t{}\n",
                s(&c["type"]),
                s(&c["status"]),
                s(&c["reason"])
            ),
        );
    }
}

/// `printPodTolerationsMultiline`: `key=value:Effect`, `op=Exists`, `for Ns`, sorted by key.
fn tolerations_multiline(w: &mut Writer, title: &str, mut tolerations: Vec<Toleration>) {
    w.write(0, &format!("{title}:\t"));
    if tolerations.is_empty() {
        w.write(0, "<none>\n");
    }
    tolerations.sort_by(|a, b| a.key.cmp(&b.key));
    for (i, t) in tolerations.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let mut line = t.key.clone().unwrap_or_default();
        if let Some(v) = t.value.as_deref().filter(|v| !v.is_empty()) {
            line.push_str(&format!("={v}"));
        }
        if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
            line.push_str(&format!(":{e}"));
        }
        if t.operator.as_deref() == Some("Exists") && t.value.as_deref().unwrap_or("").is_empty() {
            if t.key.as_deref().unwrap_or("").is_empty()
                && t.effect.as_deref().unwrap_or("").is_empty()
            {
                line.push_str("op=Exists");
            } else {
                line.push_str(" op=Exists");
            }
        }
        if let Some(secs) = t.toleration_seconds {
            line.push_str(&format!(" for {secs}s"));
        }
        w.write(0, &format!("{line}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_labels() {
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("holderIdentity"), "Holder Identity");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("a.b"), "a.b");
    }

    #[test]
    fn secrets_show_sizes_never_values() {
        let r = ApiResource {
            group: String::new(),
            version: "v1".into(),
            plural: "secrets".into(),
            singular: "secret".into(),
            kind: "Secret".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            verbs: vec![],
        };
        let secret = serde_json::json!({"metadata": {"name": "s", "namespace": "default"},
            "type": "Opaque", "data": {"pw": "aHVudGVyMg=="}});
        let text = describe(&r, &secret, None, &[], Timestamp::now());
        assert!(text.contains("pw:  7 bytes"), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("aHVudGVyMg"),
            "{text}"
        );
    }
}
