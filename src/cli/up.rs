//! `podvisor up`: validate everything, start a node, apply the manifests, print the stream,
//! and on SIGINT/SIGTERM terminate every pod in order before exiting 0.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast::error::RecvError;

use super::output::{Printer, chain, print_report};
use super::{CgroupsArg, ColorArg, UpArgs};
use crate::daemon::{Applied, Daemon, DaemonConfig};
use crate::model::check::{self, CheckOptions};
use crate::model::env::NodeAllocatable;
use crate::model::image_map::ImageMap;
use crate::model::manifest::Object;
use crate::model::quantity::Quantity;
use crate::node::NodeConfig;
use crate::node::ipam::Cidr;
use crate::runtime::CgroupMode;
use crate::runtime::logs::Rotation;
use crate::store::{Change, ChangeType};

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    // Every problem with flags, the image map and the manifests, before anything starts.
    let mut problems = Vec::new();
    let pod_cidr = match args.pod_cidr.parse::<Cidr>() {
        Ok(c) if c.is_loopback() => Some(c),
        Ok(c) => {
            problems.push(format!(
                "--pod-cidr {c}: must be part of 127.0.0.0/8 (podvisor gives pods loopback addresses)"
            ));
            None
        }
        Err(e) => {
            problems.push(format!("--pod-cidr: {e}"));
            None
        }
    };
    let service_cidr = match args.service_cidr.parse::<Cidr>() {
        Ok(c) if !c.is_loopback() => {
            problems.push(format!(
                "--service-cidr {c}: must be part of 127.0.0.0/8 (podvisor gives Services loopback addresses)"
            ));
            None
        }
        Ok(c) if pod_cidr.is_some_and(|p| p.overlaps(&c)) => {
            problems.push(format!(
                "--service-cidr {c}: overlaps --pod-cidr {}; the two ranges must be disjoint",
                pod_cidr.expect("checked")
            ));
            None
        }
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(format!("--service-cidr: {e}"));
            None
        }
    };
    if !args.node_address.is_loopback() {
        problems.push(format!(
            "--node-address {}: must be a loopback address (127.0.0.0/8)",
            args.node_address
        ));
    }
    let log_max_bytes = match Quantity::parse(&args.container_log_max_size) {
        Ok(q) if q.value() > 0 => Some(q.value() as u64),
        _ => {
            problems.push(format!(
                "--container-log-max-size {:?}: must be a positive quantity such as 10Mi",
                args.container_log_max_size
            ));
            None
        }
    };
    let image_map = match &args.manifests.image_map {
        Some(path) => match ImageMap::load(&path.to_string_lossy()) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(chain(&e));
                None
            }
        },
        None => None,
    };
    let options = CheckOptions {
        validation: args.manifests.validate,
        image_map: image_map.clone(),
        missing_image_is_error: true,
    };
    let report = check::check(&args.manifests.filenames, &options);
    let manifests_bad = report.has_errors();
    if manifests_bad || !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        print_report(&report, false);
        eprintln!("podvisor: nothing was started");
        return Ok(ExitCode::from(1));
    }
    // Warnings (unimplemented fields …) are printed once, before the stream.
    print_report(&report, false);
    let objects: Vec<Object> = report.objects().cloned().collect();
    // The report holds every document decoded (twice over): 9 MB for 1,000 pods, kept for
    // the node's whole life if not dropped here.
    drop(report);

    let data_dir = match args.data_dir.clone() {
        Some(d) => d,
        None => super::default_data_dir()?,
    };
    let node_name = match args.node_name.clone() {
        Some(n) => n,
        None => hostname(),
    };
    let config = DaemonConfig {
        data_dir: data_dir.clone(),
        node: NodeConfig {
            node_name,
            host_ip: args.node_address,
            pod_cidr: pod_cidr.expect("checked above"),
            service_cidr: service_cidr.expect("checked above"),
            image_map: image_map.map(Arc::new),
            max_container_backoff: Duration::from_secs(args.max_container_backoff),
            allocatable: allocatable(&data_dir),
            endpoint_barrier: (!args.unordered_termination)
                .then(|| Duration::from_millis(args.endpoint_barrier_timeout_ms)),
        },
        cgroups: match args.cgroups {
            CgroupsArg::Auto => CgroupMode::Auto,
            CgroupsArg::Off => CgroupMode::Off,
        },
        log_rotation: Rotation {
            max_bytes: log_max_bytes.expect("checked above"),
            max_files: args.container_log_max_files as usize,
        },
        api_port: Some(args.api_port),
        workload_controllers: true,
    };
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let width = objects
        .iter()
        .flat_map(prefix_names)
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(config, objects, Printer::new(color, width)))
}

async fn serve(
    config: DaemonConfig,
    objects: Vec<Object>,
    mut printer: Printer,
) -> anyhow::Result<ExitCode> {
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let data_dir = config.data_dir.clone();
    let pod_cidr = config.node.pod_cidr;
    let service_cidr = config.node.service_cidr;
    let mut daemon = Daemon::start(config).map_err(|e| anyhow::anyhow!(chain(&e)))?;
    printer.note(&format!(
        "node up; data dir {}; pod IPs from {pod_cidr}; service IPs from {service_cidr}; {}",
        data_dir.display(),
        daemon.runtime.describe()
    ));
    let (_, mut changes) = daemon.store.watch();
    let mut logs = daemon.runtime.subscribe_logs();
    // `apply` answers one `Applied` per object, in order.
    let kinds: Vec<String> = objects.iter().map(|o| o.kind().to_lowercase()).collect();
    let mut apply_failed = false;
    match daemon.apply(objects) {
        Ok(applied) => {
            for (a, kind) in applied.into_iter().zip(&kinds) {
                match a {
                    Applied::Created(_) => {}
                    Applied::Unchanged(name) => printer.note(&format!("{kind}/{name} unchanged")),
                    Applied::Replaced(name) if kind == "pod" => {
                        printer.note(&format!("pod/{name} replaced (its spec changed)"))
                    }
                    Applied::Replaced(name) => printer.note(&format!("{kind}/{name} replaced")),
                }
            }
        }
        Err(e) => {
            printer.note(&format!("error: {}", chain(&e)));
            apply_failed = true;
            daemon.shutdown(1);
        }
    }
    daemon.run().await.map_err(|e| anyhow::anyhow!(chain(&e)))?;
    if let Some(api) = &daemon.api {
        printer.note(&format!(
            "API at {}; kubectl --kubeconfig {}",
            api.url,
            api.kubeconfig.display()
        ));
    }
    let store = daemon.store.clone();
    let shutdown = daemon.shutdown_handle();
    let mut done = std::pin::pin!(daemon.wait());
    let mut level = 0u8;
    loop {
        tokio::select! {
            () = &mut done => break,
            change = changes.recv() => match change {
                Ok(c) => show(&mut printer, &c),
                Err(RecvError::Lagged(n)) => printer.note(&format!("({n} state changes not shown)")),
                Err(RecvError::Closed) => {}
            },
            line = logs.recv() => match line {
                Ok(l) => printer.log(&l),
                Err(RecvError::Lagged(n)) => printer.note(&format!("({n} log lines not shown; see the log files)")),
                Err(RecvError::Closed) => {}
            },
            _ = sigint.recv() => level = escalate(&printer, &store, &shutdown, level),
            _ = sigterm.recv() => level = escalate(&printer, &store, &shutdown, level),
        }
    }
    // What happened last (final statuses, last lines) is still in the channels.
    while let Ok(c) = changes.try_recv() {
        show(&mut printer, &c);
    }
    while let Ok(l) = logs.try_recv() {
        printer.log(&l);
    }
    printer.note("node stopped; no process of any pod is left");
    Ok(if apply_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// First signal: terminate every pod in order; second: grace 1 s.
fn escalate(
    printer: &Printer,
    store: &crate::store::Store,
    shutdown: &crate::daemon::ShutdownHandle,
    level: u8,
) -> u8 {
    let level = level + 1;
    let n = store.list_pods().len();
    match level {
        1 => printer.note(&format!(
            "stopping {n} pod{} (preStop hooks, stop signal, grace period); again to force",
            if n == 1 { "" } else { "s" }
        )),
        _ => printer.note("forcing: every grace period is now 1s"),
    }
    shutdown.request(level.min(2));
    level.min(2)
}

fn show(printer: &mut Printer, change: &Change) {
    if change.resource == &crate::store::resources::DEPLOYMENTS {
        printer.deployment(&change.object, change.change_type == ChangeType::Deleted);
    } else if let Some(p) = change.pod() {
        match change.change_type {
            ChangeType::Deleted => printer.deleted(&p),
            _ => printer.pod(&p),
        }
    } else if let Some(e) = change
        .event()
        .filter(|_| change.change_type != ChangeType::Deleted)
    {
        printer.event(&e);
    }
}

fn prefix_names(object: &Object) -> Vec<String> {
    match object {
        Object::Pod(pod) => {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let spec = pod.spec.as_ref();
            spec.into_iter()
                .flat_map(|s| {
                    s.init_containers
                        .iter()
                        .flatten()
                        .chain(s.containers.iter())
                })
                .map(|c| format!("{name}/{}", c.name))
                .collect()
        }
        Object::ConfigMap(_)
        | Object::Secret(_)
        | Object::Namespace(_)
        | Object::Service(_)
        | Object::Endpoints(_)
        | Object::EndpointSlice(_)
        | Object::Deployment(_)
        | Object::ReplicaSet(_)
        | Object::ReplicationController(_) => Vec::new(),
    }
}

fn hostname() -> String {
    let uname = rustix::system::uname();
    uname.nodename().to_string_lossy().into_owned()
}

/// The node's allocatable resources, for `resourceFieldRef` of containers without limits.
fn allocatable(data_dir: &std::path::Path) -> NodeAllocatable {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    let storage = rustix::fs::statvfs(data_dir)
        .map(|s| (s.f_blocks * s.f_frsize) as i64)
        .unwrap_or(0);
    NodeAllocatable {
        cpu_millis: cpus * 1000,
        memory_bytes: memory,
        ephemeral_storage_bytes: storage,
    }
}
