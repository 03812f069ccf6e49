//! What the user asked for: manifests, their typed objects, defaults and validation, and the
//! image map. Pure apart from reading manifest files: no tokio, no processes.

pub mod check;
pub mod cidr;
pub mod config;
pub mod endpoints;
pub mod env;
pub mod event;
pub mod expansion;
pub mod field;
pub mod image_map;
pub mod lease;
pub mod manifest;
pub mod namespace;
pub mod patch;
pub mod pod;
pub mod quantity;
pub mod selector;
pub mod service;
pub mod table;
pub mod unimplemented;
pub mod validation;
pub mod workload;
