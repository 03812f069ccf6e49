//! Controllers: loops that watch objects in the store and write other objects so that they
//! match (the EndpointSlice and Endpoints controllers of kube-controller-manager).
//!
//! Must not: touch processes, pod workers or the gateway; read and write the store only.

pub mod endpoints;
