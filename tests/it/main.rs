//! The only integration-test binary. Each module ports upstream scenarios (named in each test)
//! onto real processes; `harness` runs a node inside the test.

mod api;
mod cli;
mod clients;
mod config;
mod crash;
mod deployment_e2e;
mod deployments;
mod harness;
mod hooks;
mod init;
mod probes;
mod processes;
mod rollout_cli;
mod services;
mod termination;
mod tidy;
