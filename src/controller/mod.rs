//! Controllers: loops that watch objects in the store and make something match them — the
//! EndpointSlice and Endpoints controllers of kube-controller-manager (`endpoints` decides,
//! `sync` writes), the registry's lease expiry (`lease`), and the service proxy (`proxy`,
//! kube-proxy's role), which turns Services and EndpointSlices into gateway listeners.
//!
//! Must not: touch processes or pod workers; only `proxy` calls the gateway, and it never
//! writes to the store except events.

pub mod endpoints;
pub mod lease;
pub mod proxy;
pub mod sync;
