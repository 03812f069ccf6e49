//! The only integration-test binary. Each module ports upstream scenarios (named in each test)
//! onto real processes; `harness` runs a node inside the test.

mod cli;
mod harness;
mod hooks;
mod processes;
mod termination;
mod tidy;
