//! podvisor runs Kubernetes Pod manifests on one machine as host processes, with the kubelet's
//! pod lifecycle. See ARCHITECTURE.md for the code map; in short:
//!
//! - [`model`]: manifests: loading, typed decoding, defaults, validation, the image map. Pure.
//! - [`lifecycle`]: the pod state machine and the kubelet's rules. Pure.
//! - [`store`]: the node's objects (desired state and status) with watches.
//! - [`node`]: the sync loop and one pod worker per pod; the only caller of `runtime`.
//! - [`runtime`]: host processes, cgroups, log files. The only module that spawns processes.
//! - [`hooks`]: postStart/preStop handlers (exec, httpGet, sleep).
//! - [`probe`]: running one probe (exec, httpGet, tcpSocket, gRPC); workers live in `node`.
//! - [`httpget`]: the HTTP GET client shared by hooks and (later) probes.
//! - [`grpcprobe`]: the gRPC health probe client (`grpc.health.v1.Health/Check` over h2c).
//! - [`gateway`]: the Services' data plane: listeners, endpoint sets, L7/L4 proxying.
//! - [`api`]: the Kubernetes API server (HTTPS, token, discovery, CRUD, watch, logs).
//! - [`cli`]: command-line parsing and the `check` and `up` commands.
//! - [`daemon`]: wiring of a node for `up`.

pub mod api;
pub mod cli;
pub mod controller;
pub mod daemon;
pub mod gateway;
pub mod grpcprobe;
pub mod hooks;
pub mod httpget;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod node;
pub mod probe;
pub mod runtime;
pub mod store;
