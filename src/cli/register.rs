//! `podvisor register SERVICE ADDRESS:PORT [--ttl 10s]`: the client of podvisor's registry,
//! what a Eureka, Nacos or Consul client does, in Kubernetes objects.
//!
//! It creates a `coordination.k8s.io/v1` Lease (`holderIdentity` host/pid,
//! `leaseDurationSeconds` = TTL) and an EndpointSlice for the Service owned by that Lease,
//! renews the Lease every third of the TTL, and on SIGTERM or SIGINT deletes both at once.
//! If it dies without deregistering, the node's lease controller removes the endpoint when the
//! Lease expires. A lost registration (the Lease expired while the node was unreachable) is
//! created again at the next renewal.
//!
//! Must not: talk to anything but the API.

use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

use super::client::{self, JSON};
use super::{ClientArgs, Session};

/// `endpointslice.kubernetes.io/managed-by` of registered slices; the endpoints controller
/// leaves slices of other managers alone.
pub const MANAGED_BY: &str = "podvisor-register";

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The Service (without selector) the instance serves.
    pub service: String,
    /// Where the instance listens: an IPv4 address and a port.
    #[arg(value_name = "ADDRESS:PORT")]
    pub address: String,
    /// How long the registration outlives the last renewal: whole seconds (`10`, `10s`,
    /// `2m`), 1 s to 1 h. Renewed every third of it.
    #[arg(long, default_value = "10s", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Which port of the Service this is; needed when the Service has several.
    #[arg(long, value_name = "NAME")]
    pub port_name: Option<String>,
    /// The name of the Lease and EndpointSlice. Default: SERVICE-ADDRESS-PORT, or
    /// SERVICE-PORTNAME-ADDRESS-PORT when the Service has several ports.
    #[arg(long)]
    pub name: Option<String>,
}

/// `10`, `10s`, `2m`: whole seconds from 1 to 3600.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.strip_suffix('s') {
        Some(d) => (d, 1),
        None => match text.strip_suffix('m') {
            Some(d) => (d, 60),
            None => (text, 1),
        },
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number of seconds or minutes (10s, 2m)"))?;
    let secs = n * unit;
    if !(1..=3600).contains(&secs) {
        return Err(format!("`{text}` must be between 1s and 1h"));
    }
    Ok(Duration::from_secs(secs))
}

fn micro_now() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

struct Registration {
    namespace: String,
    service: String,
    name: String,
    address: SocketAddrV4,
    port_name: String,
    ttl: Duration,
    holder: String,
}

impl Registration {
    fn lease_path(&self, name: bool) -> String {
        let base = format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            self.namespace
        );
        if name {
            format!("{base}/{}", self.name)
        } else {
            base
        }
    }

    fn slice_path(&self, name: bool) -> String {
        let base = format!(
            "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices",
            self.namespace
        );
        if name {
            format!("{base}/{}", self.name)
        } else {
            base
        }
    }

    fn lease(&self) -> Value {
        let now = micro_now();
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"kubernetes.io/service-name": self.service},
            },
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.ttl.as_secs(),
                "acquireTime": now,
                "renewTime": now,
            }
        })
    }

    fn slice(&self, lease_uid: &str) -> Value {
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {
                    "kubernetes.io/service-name": self.service,
                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                },
                "ownerReferences": [{
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "name": self.name,
                    "uid": lease_uid,
                }],
            },
            "addressType": "IPv4",
            "endpoints": [{
                "addresses": [self.address.ip().to_string()],
                "conditions": {"ready": true, "serving": true, "terminating": false},
            }],
            "ports": [{"name": self.port_name, "port": self.address.port(), "protocol": "TCP"}],
        })
    }
}

/// Creates `body` at `collection`, replacing an object of the same name (a registration left
/// over by an earlier run). Returns the stored object.
async fn create_or_replace(
    client: &client::Client,
    collection: &str,
    name: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let bytes = serde_json::to_vec(body)?;
    let reply = client
        .call("POST", collection, Some(JSON), JSON, bytes.clone())
        .await?;
    if reply.status != 409 {
        return client::check(reply)?.json();
    }
    let path = format!("{collection}/{name}");
    client::check(client.call("DELETE", &path, None, JSON, Vec::new()).await?)?;
    client::check(
        client
            .call("POST", collection, Some(JSON), JSON, bytes)
            .await?,
    )?
    .json()
}

async fn register(client: &client::Client, r: &Registration) -> anyhow::Result<()> {
    let lease = create_or_replace(client, &r.lease_path(false), &r.name, &r.lease()).await?;
    let uid = lease
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    create_or_replace(client, &r.slice_path(false), &r.name, &r.slice(&uid)).await?;
    Ok(())
}

/// Renews the Lease; a Lease that is gone (it expired) means registering again.
async fn renew(client: &client::Client, r: &Registration) -> anyhow::Result<()> {
    let patch = json!({"spec": {"renewTime": micro_now(), "holderIdentity": r.holder}});
    let reply = client
        .call(
            "PATCH",
            &r.lease_path(true),
            Some("application/merge-patch+json"),
            JSON,
            serde_json::to_vec(&patch)?,
        )
        .await?;
    if reply.status == 404 {
        eprintln!(
            "podvisor register: the lease {}/{} expired; registering again",
            r.namespace, r.name
        );
        return register(client, r).await;
    }
    client::check(reply)?;
    Ok(())
}

async fn deregister(client: &client::Client, r: &Registration) -> anyhow::Result<()> {
    for path in [r.slice_path(true), r.lease_path(true)] {
        let reply = client.call("DELETE", &path, None, JSON, Vec::new()).await?;
        if reply.status != 404 {
            client::check(reply)?;
        }
    }
    Ok(())
}

pub async fn run(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let address: SocketAddrV4 = args.address.parse().map_err(|_| {
        anyhow::anyhow!(
            "ADDRESS:PORT `{}` must be an IPv4 address and a port, such as 127.0.0.1:8080",
            args.address
        )
    })?;
    if address.port() == 0 {
        bail!(
            "ADDRESS:PORT `{}`: the port must be 1 to 65535",
            args.address
        );
    }
    let session = Session::connect(&args.client)?;
    let client = &session.client;
    let namespace = session.namespace.clone();
    let service_path = format!("/api/v1/namespaces/{namespace}/services/{}", args.service);
    let service = client::check(client.get(&service_path, JSON).await?)
        .map_err(|e| {
            e.context(format!(
                "service \"{}\" in namespace \"{namespace}\"",
                args.service
            ))
        })?
        .json()?;
    if service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_some_and(|s| !s.is_empty())
    {
        bail!(
            "service \"{}\" has a selector: its endpoints are its pods. Register instances with a Service without selector",
            args.service
        );
    }
    let port_names: Vec<String> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    let port_name = match (&args.port_name, port_names.as_slice()) {
        (Some(name), names) if names.contains(name) => name.clone(),
        (Some(name), names) => bail!(
            "--port-name {name}: service \"{}\" has no such port; its ports: {}",
            args.service,
            names.join(", ")
        ),
        (None, [only]) => only.clone(),
        (None, names) => bail!(
            "service \"{}\" has {} ports ({}); choose one with --port-name",
            args.service,
            names.len(),
            names.join(", ")
        ),
    };
    // The same address may serve several ports of a Service: each registration is its own
    // Lease and EndpointSlice, so the port's name is part of the default name then.
    let name = args.name.clone().unwrap_or_else(|| {
        let ip = address.ip().to_string().replace('.', "-");
        if port_names.len() > 1 {
            format!("{}-{port_name}-{ip}-{}", args.service, address.port())
        } else {
            format!("{}-{ip}-{}", args.service, address.port())
        }
    });
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let registration = Registration {
        namespace,
        service: args.service.clone(),
        name,
        address,
        port_name,
        ttl: args.ttl,
        holder: format!("{host}/{}", std::process::id()),
    };
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    register(client, &registration).await?;
    println!(
        "registered {} as an endpoint of service {}/{} (lease {}, ttl {}s); Ctrl-C deregisters",
        registration.address,
        registration.namespace,
        registration.service,
        registration.name,
        registration.ttl.as_secs()
    );
    let period = registration.ttl / 3;
    let mut next = tokio::time::Instant::now() + period;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {
                next += period;
                if let Err(error) = renew(client, &registration).await {
                    eprintln!("podvisor register: cannot renew the lease: {error:#}");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    deregister(client, &registration).await?;
    println!(
        "deregistered {} from service {}/{}",
        registration.address, registration.namespace, registration.service
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;
    use std::time::Duration;

    #[test]
    fn ttl_is_whole_seconds_or_minutes_within_an_hour() {
        assert_eq!(parse_ttl("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_ttl("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_ttl("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_ttl("0s").unwrap_err().contains("between 1s and 1h"));
        assert!(parse_ttl("2h").unwrap_err().contains("not a whole number"));
        assert!(
            parse_ttl("1.5s")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(parse_ttl("61m").is_err());
    }
}
