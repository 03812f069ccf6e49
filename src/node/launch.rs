//! What exactly a container runs: the kubelet's `generateContainerConfig` for a host process.
//!
//! Environment in the kubelet's order (`model::env`), `$(VAR)` expansion of the container's
//! command and args, the image map's entrypoint when the container has no command, the base
//! environment a container runtime gives (`PATH`, `HOSTNAME`, `HOME`) under the image's and
//! the container's, the working directory, the user, the stop signal and the memory limit.
//! An error here is the kubelet's `CreateContainerConfigError`.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Pod, Service};
use serde_json::Value;

use super::NodeContext;
use crate::model::env::{EnvContext, EnvSourceLookup, container_env, service_env};
use crate::model::expansion::expand_command_and_args;
use crate::model::image_map;
use crate::model::quantity::Quantity;
use crate::runtime::process::ProcessSpec;
use crate::runtime::signals::parse_signal;
use crate::store::resources::{CONFIG_MAPS, SECRETS, SERVICES};
use crate::store::{Backend, Store};

/// The default `PATH` of a container when podvisor itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// SIGTERM, the stop signal when neither the container nor the image map names one.
const SIGTERM: i32 = 15;

/// A container's resolved launch.
#[derive(Clone, Debug)]
pub struct Launch {
    pub process: ProcessSpec,
    pub stop_signal: i32,
    /// The stop signal's name when the container or the image map sets one.
    pub stop_signal_name: Option<String>,
    pub memory_limit: Option<u64>,
    /// Things podvisor could not honour, for a Warning event.
    pub warnings: Vec<String>,
}

/// ConfigMaps and Secrets as the kubelet reads them when it starts a container: the objects
/// in the store at that moment (a later change reaches the next start, as upstream).
struct StoreEnvSources<'a>(&'a Store);

impl EnvSourceLookup for StoreEnvSources<'_> {
    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let object = self.0.get(&CONFIG_MAPS, namespace, name)?;
        Some(string_map(&object["data"], |s| Some(s.to_owned())))
    }

    /// Secret `data` is base64 in the object; the environment gets the bytes (invalid UTF-8
    /// is replaced, where Go passes the raw bytes).
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let object = self.0.get(&SECRETS, namespace, name)?;
        Some(string_map(&object["data"], |s| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }))
    }
}

fn string_map(data: &Value, decode: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    data.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), decode(value.as_str()?)?)))
        .collect()
}

/// The service variables of `pod`: the Services of its namespace as they are now (a Service
/// created later is seen by containers started later, as with the kubelet).
fn services_env(ctx: &NodeContext, pod: &Pod) -> Vec<(String, String)> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let enable = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    if !enable {
        return Vec::new();
    }
    let services: Vec<Service> = ctx
        .store
        .list(&SERVICES, Some(namespace))
        .0
        .iter()
        .filter_map(|v| serde_json::from_value(Value::clone(v)).ok())
        .collect();
    service_env(&services, namespace, enable)
}

/// Resolves what `container` of `pod` runs. `Err` is a `CreateContainerConfigError` message.
pub fn resolve(
    ctx: &NodeContext,
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
) -> Result<Launch, String> {
    let env_ctx = EnvContext {
        pod_ips: vec![pod_ip.to_owned()],
        host_ips: vec![ctx.config.host_ip.to_string()],
        node_allocatable: ctx.config.allocatable,
        service_env: services_env(ctx, pod),
    };
    let sources = StoreEnvSources(&ctx.store);
    let env = container_env(pod, container, &env_ctx, &sources).map_err(|e| e.to_string())?;
    let (command, args) = expand_command_and_args(container, &env);
    let mut expanded = container.clone();
    if container.command.is_some() {
        expanded.command = Some(command);
    }
    if container.args.is_some() {
        expanded.args = Some(args);
    }
    let resolved = image_map::resolve(ctx.config.image_map.as_deref(), &expanded)
        .map_err(|e| e.to_string())?;

    let mut warnings = Vec::new();
    let pod_security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let container_security = container.security_context.as_ref();
    let mut uid = container_security
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_security.and_then(|s| s.run_as_user));
    let mut gid = container_security
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_security.and_then(|s| s.run_as_group));
    let me = rustix::process::geteuid().as_raw();
    if me != 0 {
        if let Some(u) = uid.filter(|u| *u != i64::from(me)) {
            warnings.push(format!(
                "securityContext.runAsUser {u} ignored: podvisor runs as uid {me}, not root"
            ));
        }
        let my_gid = rustix::process::getegid().as_raw();
        if let Some(g) = gid.filter(|g| *g != i64::from(my_gid)) {
            warnings.push(format!(
                "securityContext.runAsGroup {g} ignored: podvisor runs as uid {me}, not root"
            ));
        }
        uid = None;
        gid = None;
    }
    let uid = uid.and_then(|u| u32::try_from(u).ok());
    let gid = gid.and_then(|g| u32::try_from(g).ok());

    let mut process_env: Vec<(String, String)> = Vec::new();
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned());
    set_var(&mut process_env, "PATH", &path);
    set_var(
        &mut process_env,
        "HOSTNAME",
        pod.metadata.name.as_deref().unwrap_or_default(),
    );
    set_var(&mut process_env, "HOME", &home_of(uid.unwrap_or(me)));
    for (k, v) in resolved.env.iter().chain(env.iter()) {
        set_var(&mut process_env, k, v);
    }

    let stop_signal = match resolved.stop_signal.as_deref() {
        Some(name) => parse_signal(name).ok_or_else(|| format!("unknown stop signal {name:?}"))?,
        None => SIGTERM,
    };
    let memory_limit = container
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| Quantity::parse(&q.0).map_err(|e| format!("invalid memory limit {:?}: {e}", q.0)))
        .transpose()?
        .map(|q| q.value().max(0) as u64);
    if memory_limit.is_some() && !ctx.runtime.memory_limits_supported() {
        warnings.push(format!(
            "resources.limits.memory not enforced: {}",
            ctx.runtime.describe()
        ));
    }

    Ok(Launch {
        process: ProcessSpec {
            argv: resolved.argv(),
            env: process_env,
            working_dir: Some(
                resolved
                    .working_dir
                    .unwrap_or_else(|| "/".to_owned())
                    .into(),
            ),
            uid,
            gid,
        },
        stop_signal,
        stop_signal_name: resolved.stop_signal.clone(),
        memory_limit,
        warnings,
    })
}

/// Sets `name` in place if present (a later source overrides), else appends it.
fn set_var(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == name) {
        Some(entry) => entry.1 = value.to_owned(),
        None => env.push((name.to_owned(), value.to_owned())),
    }
}

/// The home directory of `uid` from `/etc/passwd`, else `/` (as container runtimes do).
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 6 && fields[2].parse::<u32>().ok() == Some(uid))
                    .then(|| fields[5].to_owned())
            })
        })
        .unwrap_or_else(|| "/".to_owned())
}
