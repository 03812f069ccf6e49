//! Wiring of a node: data dir, store, runtime and node, started together and stopped in
//! order (pods first, then the runtime's waiters and cgroups).
//!
//! Used by `podvisor up` and by the in-process test harness. Must not: parse flags or print
//! (that is `cli`).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controller;
use crate::gateway::{Gateway, GatewayConfig};
use crate::metrics::Metrics;
use crate::model::manifest::Object;
use crate::node::{Node, NodeConfig, Routing, ShutdownLevel};
use crate::runtime::logs::Rotation;
use crate::runtime::{CgroupMode, Runtime, RuntimeConfig};
use crate::store::{self, Backend, Part, Store};

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create data dir `{}`", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("another podvisor node is using data dir `{}` (lock file {})", path.display(), path.join(LOCK_FILE).display())]
    Locked { path: PathBuf },
    #[error("cannot create {kind} {name:?}")]
    Create {
        kind: &'static str,
        name: String,
        #[source]
        source: store::Error,
    },
    #[error(
        "pod {name:?} already exists with a different spec, and pod specs cannot change while it runs; delete it first"
    )]
    Changed { name: String },
    #[error("cannot create {kind} {name:?}: namespaces {namespace:?} not found")]
    NamespaceNotFound {
        kind: &'static str,
        name: String,
        namespace: String,
    },
    #[error("cannot open the state database")]
    Store(#[source] store::sqlite::Error),
    #[error("cannot start the API server")]
    Api(#[source] crate::api::Error),
    #[error("cannot start the gateway")]
    Gateway(#[source] crate::gateway::GatewayError),
}

/// What `apply` did to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Created(String),
    Unchanged(String),
    /// Replaced before the node started (the old pod had stopped).
    Replaced(String),
}

/// The lock that keeps two nodes off one data dir.
const LOCK_FILE: &str = "podvisor.lock";

/// What a node needs to start.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub data_dir: PathBuf,
    pub node: NodeConfig,
    pub cgroups: CgroupMode,
    pub log_rotation: Rotation,
    /// The API's port on 127.0.0.1 (0: any free port); None: no API.
    pub api_port: Option<u16>,
    /// Run the Deployment and ReplicaSet controllers (false: the API serves those objects and
    /// nothing acts on them, as an API server without kube-controller-manager; tests of the
    /// API's own semantics use it).
    pub workload_controllers: bool,
}

/// A running node.
pub struct Daemon {
    pub store: Arc<Store>,
    pub runtime: Arc<Runtime>,
    node_name: String,
    shutdown: ShutdownHandle,
    node_task: Option<JoinHandle<()>>,
    /// The node, until `run` starts it.
    pending: Option<(NodeConfig, watch::Receiver<ShutdownLevel>)>,
    /// The API server, once `run` started it.
    pub api: Option<crate::api::ApiServer>,
    /// The gateway: every Service's listeners (see `controller::proxy`).
    pub gateway: Gateway,
    pub metrics: Arc<Metrics>,
    /// The controllers, stopped after the node.
    controllers: tokio::task::JoinSet<()>,
    stop_controllers: watch::Sender<bool>,
    workload_controllers: bool,
    api_port: Option<u16>,
    data_dir: PathBuf,
    /// Held for the node's lifetime; the lock is released when it is dropped.
    _lock: File,
}

impl Daemon {
    /// Opens the node's data dir and store and starts its runtime, without running pods yet:
    /// `apply` the manifests, then `run`. Must be called inside a tokio runtime.
    pub fn start(config: DaemonConfig) -> Result<Daemon, Error> {
        let data_dir = &config.data_dir;
        fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let lock = lock_data_dir(data_dir)?;
        let store = Arc::new(Store::open(&data_dir.join("state.db")).map_err(Error::Store)?);
        store.set_service_network(store::services::ServiceNetwork {
            cidr: config.node.service_cidr,
            node_address: config.node.host_ip,
        });
        store.ensure_default_namespace();
        restart_after_node_shutdown(&store);
        // Kills what an earlier run of this node left behind (see README "Crash recovery").
        let runtime = Runtime::new(RuntimeConfig {
            data_dir: data_dir.clone(),
            node_id: node_id(data_dir),
            cgroups: config.cgroups,
            log_rotation: config.log_rotation,
        });
        let (shutdown, shutdown_rx) = watch::channel(0);
        let gateway = Gateway::new(GatewayConfig::default()).map_err(Error::Gateway)?;
        let metrics = Arc::new(Metrics::new(store.clone(), &gateway));
        Ok(Daemon {
            gateway,
            metrics,
            controllers: tokio::task::JoinSet::new(),
            stop_controllers: watch::channel(false).0,
            workload_controllers: config.workload_controllers,
            store,
            runtime,
            node_name: config.node.node_name.clone(),
            shutdown: ShutdownHandle(Arc::new(shutdown)),
            node_task: None,
            pending: Some((config.node, shutdown_rx)),
            api: None,
            api_port: config.api_port,
            data_dir: config.data_dir.clone(),
            _lock: lock,
        })
    }

    /// Starts the node (pod workers for every pod in the store) and the API.
    pub async fn run(&mut self) -> Result<(), Error> {
        if let Some((node_config, shutdown_rx)) = self.pending.take() {
            self.start_controllers(&node_config);
            let routing = Arc::new(GatewayRouting {
                gateway: self.gateway.clone(),
                metrics: self.metrics.clone(),
            });
            let node = Node::new(node_config, self.store.clone(), self.runtime.clone())
                .with_routing(routing);
            self.node_task = Some(tokio::spawn(node.run(shutdown_rx)));
        }
        if let Some(port) = self.api_port.take() {
            let api = crate::api::ApiServer::start(
                crate::api::ApiConfig {
                    address: std::net::Ipv4Addr::LOCALHOST.into(),
                    port,
                    data_dir: self.data_dir.clone(),
                    node_name: self.node_name.clone(),
                    metrics: Some({
                        let metrics = self.metrics.clone();
                        Arc::new(move || metrics.encode())
                    }),
                },
                self.store.clone(),
            )
            .await
            .map_err(Error::Api)?;
            self.api = Some(api);
        }
        Ok(())
    }

    /// Starts the endpoints controllers, the ReplicaSet and Deployment controllers, the lease
    /// controller and the service proxy.
    fn start_controllers(&mut self, node: &NodeConfig) {
        let stop = || self.stop_controllers.subscribe();
        let endpoints = controller::sync::run_endpoints(self.store.clone(), stop());
        let leases =
            controller::lease::run_leases(self.store.clone(), node.node_name.clone(), stop());
        let proxy = controller::proxy::run_proxy(
            self.store.clone(),
            self.gateway.clone(),
            node.host_ip,
            node.node_name.clone(),
            stop(),
        );
        self.controllers.spawn(endpoints);
        if self.workload_controllers {
            let apps =
                controller::apps::run_apps(self.store.clone(), node.node_name.clone(), stop());
            self.controllers.spawn(apps);
        }
        self.controllers.spawn(leases);
        self.controllers.spawn(proxy);
    }

    /// Creates decoded objects in the store, in order, through the same store path as the
    /// API. An existing pod with the same spec is left alone; one with a different spec is
    /// replaced if the node has not started yet (its processes are gone), else refused.
    pub fn apply(&self, objects: impl IntoIterator<Item = Object>) -> Result<Vec<Applied>, Error> {
        let objects: Vec<Object> = objects.into_iter().collect();
        self.check_apply(&objects)?;
        // Namespaces first, so objects in a namespace of the same batch find it; the answers
        // stay in the order of `objects`.
        let mut order: Vec<(usize, Object)> = objects.into_iter().enumerate().collect();
        order.sort_by_key(|(_, o)| !matches!(o, Object::Namespace(_)));
        let mut done: Vec<(usize, Applied)> = Vec::new();
        for (index, object) in order {
            let applied = match object {
                Object::Pod(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let key = store::ObjectKey::of_pod(&pod);
                    if let Some(existing) = self.store.get_pod(&key) {
                        if self.pod_unchanged(&existing, &pod) {
                            Applied::Unchanged(name)
                        } else {
                            let uid = existing.metadata.uid.clone().unwrap_or_default();
                            // Why ignored: it was just read; only a concurrent removal can fail.
                            let _ = self.store.remove_pod(&key, &uid);
                            self.create_pod(*pod, &name)?;
                            Applied::Replaced(name)
                        }
                    } else {
                        self.create_pod(*pod, &name)?;
                        Applied::Created(name)
                    }
                }
                other => self.apply_object(&other)?,
            };
            done.push((index, applied));
        }
        done.sort_by_key(|(index, _)| *index);
        Ok(done.into_iter().map(|(_, applied)| applied).collect())
    }

    /// Refuses the whole batch before anything is written: an object in a namespace that
    /// neither exists nor is in the batch, a changed pod while the node runs, or a Service
    /// whose cluster IP, node ports or LoadBalancer ports are taken (by a stored Service or
    /// an earlier one of the batch).
    fn check_apply(&self, objects: &[Object]) -> Result<(), Error> {
        let batch_namespaces: Vec<&str> = objects
            .iter()
            .filter(|o| matches!(o, Object::Namespace(_)))
            .filter_map(|o| o.metadata().name.as_deref())
            .collect();
        for object in objects {
            let meta = object.metadata();
            let name = meta.name.clone().unwrap_or_default();
            if let Some(namespace) = meta.namespace.as_deref()
                && !matches!(object, Object::Namespace(_))
                && !batch_namespaces.contains(&namespace)
                && self
                    .store
                    .get(&store::resources::NAMESPACES, "", namespace)
                    .is_none()
            {
                let kind = store::resources::by_kind(object.api_version(), object.kind())
                    .map_or("object", |r| r.singular);
                return Err(Error::NamespaceNotFound {
                    kind,
                    name,
                    namespace: namespace.to_owned(),
                });
            }
            if let Object::Pod(pod) = object
                && self.node_task.is_some()
                && let Some(existing) = self.store.get_pod(&store::ObjectKey::of_pod(pod))
                && !self.pod_unchanged(&existing, pod)
            {
                return Err(Error::Changed { name });
            }
        }
        let services: Vec<&Object> = objects
            .iter()
            .filter(|o| matches!(o, Object::Service(_)))
            .collect();
        let values: Vec<serde_json::Value> = services.iter().map(|o| o.to_json()).collect();
        if let Err((i, source)) = self.store.check_services(&values) {
            return Err(Error::Create {
                kind: "service",
                name: services[i].metadata().name.clone().unwrap_or_default(),
                source,
            });
        }
        Ok(())
    }

    /// Whether a stored pod already has the manifest's spec (bound to this node).
    fn pod_unchanged(
        &self,
        existing: &k8s_openapi::api::core::v1::Pod,
        pod: &k8s_openapi::api::core::v1::Pod,
    ) -> bool {
        let mut wanted = pod.spec.clone();
        if let Some(spec) = wanted.as_mut() {
            spec.node_name = spec.node_name.clone().or(Some(self.node_name.clone()));
        }
        existing.spec == wanted
    }

    /// Creates a ConfigMap, Secret, Namespace, Service, Endpoints or EndpointSlice; one that
    /// exists is updated (`Unchanged` when the store found nothing to change; a Service keeps
    /// the cluster IP and node ports it was given).
    fn apply_object(&self, object: &Object) -> Result<Applied, Error> {
        let meta = object.metadata();
        let name = meta.name.clone().unwrap_or_default();
        let resource = store::resources::by_kind(object.api_version(), object.kind())
            .expect("every manifest kind is a served resource");
        let create_error = |source| Error::Create {
            kind: resource.singular,
            name: name.clone(),
            source,
        };
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let Some(existing) = self.store.get(resource, namespace, &name) else {
            self.store
                .create(resource, object.to_json())
                .map_err(create_error)?;
            return Ok(Applied::Created(name));
        };
        let updated = self
            .store
            .update(resource, object.to_json(), Part::Main)
            .map_err(create_error)?;
        let rv = |v: &serde_json::Value| v["metadata"]["resourceVersion"].clone();
        Ok(if rv(&updated) == rv(&existing) {
            Applied::Unchanged(name)
        } else {
            Applied::Replaced(name)
        })
    }

    fn create_pod(&self, pod: k8s_openapi::api::core::v1::Pod, name: &str) -> Result<(), Error> {
        self.store
            .create_pod(pod, &self.node_name)
            .map(|_| ())
            .map_err(|source| Error::Create {
                kind: "pod",
                name: name.to_owned(),
                source,
            })
    }

    /// Asks the node to stop its pods: level 1 gracefully, level 2 with a grace of 1 s.
    pub fn shutdown(&self, level: ShutdownLevel) {
        self.shutdown.request(level);
    }

    /// A handle that can request shutdown while `wait` runs.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Waits until every pod is stopped, then stops the runtime (waiters, cgroups).
    pub async fn wait(self) {
        if let Some(task) = self.node_task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "the node task failed");
        }
        // Every pod is gone: the controllers and the gateway have nothing left to serve.
        self.stop_controllers.send_replace(true);
        let mut controllers = self.controllers;
        while controllers.join_next().await.is_some() {}
        self.gateway.shutdown().await;
        self.runtime.shutdown().await;
        // The API serves until every pod is gone (deletes wait for that), then stops.
        if let Some(api) = self.api {
            api.stop().await;
        }
        self.store.close();
    }
}

/// The gateway as the node's termination barrier sees it, with the barrier's metric.
struct GatewayRouting {
    gateway: Gateway,
    metrics: Arc<Metrics>,
}

impl Routing for GatewayRouting {
    fn routes_to(&self, ip: std::net::IpAddr) -> bool {
        self.gateway.routes_to(ip)
    }

    fn routes_new_traffic_to(&self, ip: std::net::IpAddr) -> bool {
        self.gateway.routes_new_traffic_to(ip)
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.gateway.applied()
    }

    fn barrier_done(&self, took: std::time::Duration, confirmed: bool) {
        self.metrics.barrier_done(took, confirmed);
    }
}

/// Requests node shutdown; cheap to clone.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<ShutdownLevel>>);

impl ShutdownHandle {
    /// Raises the shutdown level (never lowers it).
    pub fn request(&self, level: ShutdownLevel) {
        self.0.send_if_modified(|l| {
            let changed = level > *l;
            *l = (*l).max(level);
            changed
        });
    }
}

/// Pods that ended because this node shut down are started again when it starts: there is
/// no controller to recreate them, and a restarted node should run what it ran (as a
/// rebooted kubelet does). Pods that ended on their own stay as they are.
fn restart_after_node_shutdown(store: &Store) {
    for pod in store.list_pods() {
        let status = pod.status.as_ref();
        if status.and_then(|s| s.reason.as_deref()) == Some("Terminated")
            && pod.metadata.deletion_timestamp.is_none()
        {
            let key = store::ObjectKey::of_pod(&pod);
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let fresh = k8s_openapi::api::core::v1::PodStatus {
                phase: Some("Pending".to_owned()),
                ..Default::default()
            };
            // Why ignored: the pod was just listed; nothing else writes before the node runs.
            let _ = store.update_pod_status(&key, &uid, fresh);
        }
    }
}

fn lock_data_dir(dir: &Path) -> Result<File, Error> {
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| Error::Locked {
            path: dir.to_owned(),
        },
    )?;
    Ok(file)
}

/// A stable name for the node's cgroup, from its data dir.
fn node_id(data_dir: &Path) -> String {
    let canonical = fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let hash = crate::lifecycle::container::fnv1a(canonical.as_os_str().as_encoded_bytes());
    format!("node-{hash:016x}")
}
