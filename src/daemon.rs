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

use crate::model::manifest::Object;
use crate::node::{Node, NodeConfig, ShutdownLevel};
use crate::runtime::logs::Rotation;
use crate::runtime::{CgroupMode, Runtime, RuntimeConfig};
use crate::store::{self, Store};

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
}

/// A running node.
pub struct Daemon {
    pub store: Arc<Store>,
    pub runtime: Arc<Runtime>,
    node_name: String,
    shutdown: ShutdownHandle,
    node_task: JoinHandle<()>,
    /// Held for the node's lifetime; the lock is released when it is dropped.
    _lock: File,
}

impl Daemon {
    /// Starts a node with an empty store. Must be called inside a tokio runtime.
    pub fn start(config: DaemonConfig) -> Result<Daemon, Error> {
        let data_dir = &config.data_dir;
        fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let lock = lock_data_dir(data_dir)?;
        let runtime = Runtime::new(RuntimeConfig {
            data_dir: data_dir.clone(),
            node_id: node_id(data_dir),
            cgroups: config.cgroups,
            log_rotation: config.log_rotation,
        });
        let store = Arc::new(Store::new());
        let (shutdown, shutdown_rx) = watch::channel(0);
        let node_name = config.node.node_name.clone();
        let node = Node::new(config.node, store.clone(), runtime.clone());
        let node_task = tokio::spawn(node.run(shutdown_rx));
        Ok(Daemon {
            store,
            runtime,
            node_name,
            shutdown: ShutdownHandle(Arc::new(shutdown)),
            node_task,
            _lock: lock,
        })
    }

    /// Creates decoded objects in the store, in order. Stops at the first that cannot be
    /// created (the callers validate beforehand, so this is a name clash at most).
    pub fn apply(&self, objects: impl IntoIterator<Item = Object>) -> Result<(), Error> {
        for object in objects {
            match object {
                Object::Pod(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    self.store
                        .create_pod(*pod, &self.node_name)
                        .map_err(|source| Error::Create {
                            kind: "pod",
                            name,
                            source,
                        })?;
                }
            }
        }
        Ok(())
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
        if let Err(error) = self.node_task.await {
            tracing::error!(%error, "the node task failed");
        }
        self.runtime.shutdown().await;
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
