//! Services through the gateway: the endpoint controllers (spec §10.9, EP-01), the ordered
//! termination that drops no request (issue 5 "Done when"), TCP, NodePort and LoadBalancer
//! listeners, service environment variables, and the registry (`podvisor register` with a
//! Lease).
//!
//! Every load loop is bounded in count and time and targets this test's own loopback
//! addresses only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use podvisor::store::Backend;
use podvisor::store::resources;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// A pod of the test app serving HTTP on `$POD_IP:8080` (port name `http`), ready once
/// `/readyz` answers, finishing in-flight requests on SIGTERM.
fn web_pod(name: &str, labels: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: app
    image: podvisor/testapp
    command: ["$TESTAPP", "serve", "--name", "{name}", "--record", "$RECORD", "--port", "8080", "--on-signal", "TERM=exit"]
    env:
    - name: POD_IP
      valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      httpGet: {{path: /readyz, port: http}}
      periodSeconds: 1
{extra}
"#
    )
}

fn service(name: &str, spec: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
{spec}
"#
    )
}

async fn wait_ready(node: &TestNode, name: &str) {
    node.wait_pod(name, SECS(20), "ready", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await;
}

fn stored(
    node: &TestNode,
    resource: &'static podvisor::store::resources::Resource,
    name: &str,
) -> Option<Arc<Value>> {
    node.store.get(resource, "default", name)
}

/// The cluster IP and first port of a Service.
fn vip(node: &TestNode, name: &str) -> SocketAddr {
    let svc = stored(node, &resources::SERVICES, name).expect("service stored");
    let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    let port = svc["spec"]["ports"][0]["port"].as_u64().unwrap() as u16;
    SocketAddr::new(ip.into(), port)
}

/// Every endpoint of the Service's slices as (address, ready, serving, terminating).
fn slice_endpoints(node: &TestNode, service: &str) -> Vec<(String, bool, bool, bool)> {
    let mut out = Vec::new();
    for slice in node
        .store
        .list(&resources::ENDPOINT_SLICES, Some("default"))
        .0
    {
        if slice["metadata"]["labels"]["kubernetes.io/service-name"] != service {
            continue;
        }
        for e in slice["endpoints"].as_array().into_iter().flatten() {
            let c = &e["conditions"];
            out.push((
                e["addresses"][0].as_str().unwrap_or("").to_owned(),
                c["ready"].as_bool().unwrap_or(true),
                c["serving"].as_bool().unwrap_or(true),
                c["terminating"].as_bool().unwrap_or(false),
            ));
        }
    }
    out.sort();
    out
}

/// Polls `pred` every 20 ms until it holds or `timeout` passes (then panics with `what`).
async fn eventually<T>(timeout: Duration, what: &str, mut pred: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = pred() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET `http://addr/path`: the status and the `x-testapp-name` header, or the error.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(
        SECS(5),
        client.get(format!("http://{addr}{path}").parse().unwrap()),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let name = response
        .headers()
        .get("x-testapp-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, name))
}

/// What a load loop saw.
#[derive(Debug, Default)]
struct Load {
    ok: usize,
    failed: Vec<String>,
    by_backend: std::collections::BTreeMap<String, usize>,
}

/// `total` POSTs to `/` over `workers` keep-alive connections, as fast as they go; `midway`
/// is called once after a third of them. Bounded by 90 s.
async fn load_while(
    addr: SocketAddr,
    total: usize,
    workers: usize,
    midway: impl FnOnce() + Send + 'static,
) -> Load {
    let sent = Arc::new(AtomicUsize::new(0));
    let midway = Arc::new(std::sync::Mutex::new(Some(midway)));
    let deadline = Instant::now() + SECS(90);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let sent = sent.clone();
        let midway = midway.clone();
        tasks.spawn(async move {
            let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http();
            let uri: hyper::Uri = format!("http://{addr}/").parse().unwrap();
            let mut load = Load::default();
            while sent.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
                if sent.load(Ordering::Relaxed) == total / 3
                    && let Some(f) = midway.lock().unwrap().take()
                {
                    f();
                }
                // POST: the gateway never retries it, so a request sent to a pod that is
                // going away fails instead of being hidden by a retry.
                let request = hyper::Request::post(uri.clone())
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                match tokio::time::timeout(SECS(5), client.request(request)).await {
                    Ok(Ok(response)) => {
                        let status = response.status();
                        let name = response
                            .headers()
                            .get("x-testapp-name")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = response.into_body().collect().await;
                        if status == 200 && body.is_ok() {
                            load.ok += 1;
                            *load.by_backend.entry(name).or_default() += 1;
                        } else {
                            load.failed.push(format!("{status} {body:?}"));
                        }
                    }
                    Ok(Err(e)) => load.failed.push(format!("{e:?}")),
                    Err(_) => load.failed.push("timed out".to_owned()),
                }
            }
            load
        });
    }
    let mut all = Load::default();
    while let Some(load) = tasks.join_next().await {
        let load = load.unwrap();
        all.ok += load.ok;
        all.failed.extend(load.failed);
        for (k, v) in load.by_backend {
            *all.by_backend.entry(k).or_default() += v;
        }
    }
    all
}

/// Three ready pods behind an HTTP Service; one is deleted while 3,000 requests run over
/// keep-alive connections. Returns what the load saw and the deleted pod's events.
async fn delete_under_load(ordered: bool) -> (Load, Vec<String>) {
    let node = TestNode::start_with(NodeOptions {
        ordered_termination: ordered,
        ..Default::default()
    })
    .await;
    for name in ["web-a", "web-b", "web-c"] {
        node.apply(&web_pod(name, "app: web", ""));
    }
    node.apply(&service(
        "web",
        "  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}",
    ));
    for name in ["web-a", "web-b", "web-c"] {
        wait_ready(&node, name).await;
    }
    let addr = vip(&node, "web");
    eventually(SECS(10), "three ready endpoints routed", || {
        (slice_endpoints(&node, "web").iter().filter(|e| e.1).count() == 3).then_some(())
    })
    .await;
    eventually_async(SECS(10), "the gateway answers", || async move {
        get(addr, "/").await.ok().filter(|r| r.0 == 200)
    })
    .await;
    let store = node.store.clone();
    let load = load_while(addr, 3000, 4, move || {
        store
            .delete_pod(&podvisor::store::ObjectKey::new("default", "web-b"), None)
            .unwrap();
    })
    .await;
    node.wait_gone("web-b", SECS(20)).await;
    let events = node
        .events("web-b")
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    node.stop().await;
    (load, events)
}

#[tokio::test]
async fn ordered_deletion_under_load_drops_no_request() {
    let (load, events) = delete_under_load(true).await;
    println!("ordered: {load:?}\nevents of web-b: {events:#?}");
    assert!(
        load.failed.is_empty(),
        "{} failed: {:?}",
        load.failed.len(),
        load.failed
    );
    assert_eq!(load.ok, 3000);
    assert_eq!(
        load.by_backend.len(),
        3,
        "every pod served: {:?}",
        load.by_backend
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("RemovedFromEndpoints: Removed from every gateway pool in")),
        "{events:#?}"
    );
}

/// Upstream's race, for comparison: the failures are reported, not asserted (on a fast
/// machine the race can be won).
#[tokio::test]
async fn unordered_deletion_under_load_reports_its_failures() {
    let (load, events) = delete_under_load(false).await;
    println!(
        "unordered (--unordered-termination): {} ok, {} failed: {:?}",
        load.ok,
        load.failed.len(),
        load.failed
    );
    assert_eq!(load.ok + load.failed.len(), 3000);
    assert!(
        !events.iter().any(|e| e.starts_with("RemovedFromEndpoints")),
        "{events:#?}"
    );
}

/// EP-01: a ready pod deleted with a long preStop is at once `ready=false, terminating=true,
/// serving=true`; failing readiness then makes it `serving=false`; removal drops it.
#[tokio::test]
async fn ep_01_endpoint_conditions_follow_deletion_and_readiness() {
    let node = TestNode::start().await;
    node.apply(&web_pod(
        "web-a",
        "app: web",
        "    lifecycle:\n      preStop:\n        sleep: {seconds: 5}",
    ));
    node.apply(&service(
        "web",
        "  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}",
    ));
    wait_ready(&node, "web-a").await;
    let ip = node
        .pod("web-a")
        .unwrap()
        .status
        .as_ref()
        .unwrap()
        .pod_ip
        .clone()
        .unwrap();
    eventually(SECS(5), "ready endpoint", || {
        (slice_endpoints(&node, "web") == [(ip.clone(), true, true, false)]).then_some(())
    })
    .await;
    let t = Instant::now();
    node.delete("web-a", None);
    eventually(
        SECS(1),
        "not ready, serving, terminating within 1 s",
        || (slice_endpoints(&node, "web") == [(ip.clone(), false, true, true)]).then_some(()),
    )
    .await;
    assert!(t.elapsed() < SECS(1));
    // The app still answers; make its readiness fail.
    let (status, _) = get(SocketAddr::new(ip.parse().unwrap(), 8080), "/fail-ready")
        .await
        .unwrap();
    assert_eq!(status, 200);
    eventually(SECS(5), "serving=false after readiness fails", || {
        (slice_endpoints(&node, "web") == [(ip.clone(), false, false, true)]).then_some(())
    })
    .await;
    node.wait_gone("web-a", SECS(20)).await;
    eventually(SECS(2), "endpoint removed", || {
        slice_endpoints(&node, "web").is_empty().then_some(())
    })
    .await;
    node.stop().await;
}

/// An L4 Service (port without an HTTP name or appProtocol): bytes go through unchanged.
#[tokio::test]
async fn tcp_service_forwards_bytes() {
    let node = TestNode::start().await;
    node.apply(&web_pod("raw", "app: raw", ""));
    node.apply(&service(
        "raw",
        "  selector: {app: raw}\n  ports:\n  - {name: data, port: 7000, targetPort: 8080}",
    ));
    wait_ready(&node, "raw").await;
    let addr = vip(&node, "raw");
    let reply = eventually_async(
        SECS(10),
        "a reply through the TCP listener",
        || async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
            s.write_all(
                b"GET /echo?msg=through-l4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await
            .ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).await.ok()?;
            out.contains("through-l4").then_some(out)
        },
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    node.stop().await;
}

/// Polls the async `f` every 20 ms until it gives a value or `timeout` passes.
async fn eventually_async<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pods started after a Service get its variables (the kubelet's `envvars.FromServices`).
#[tokio::test]
async fn pods_started_after_a_service_get_its_variables() {
    let node = TestNode::start().await;
    node.apply(&service(
        "my-web",
        "  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}",
    ));
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: podvisor/testapp
    command: ["$TESTAPP", "record", "--name", "reader", "--record", "$RECORD", "env",
              "host=$(MY_WEB_SERVICE_HOST)", "port=$(MY_WEB_SERVICE_PORT_HTTP)", "link=$(MY_WEB_PORT)"]
"#,
    );
    let record = node
        .wait_record(SECS(10), "env recorded", |r| r.is("reader", "env"))
        .await;
    let vip = vip(&node, "my-web");
    assert_eq!(record.get("host"), Some(vip.ip().to_string().as_str()));
    assert_eq!(record.get("port"), Some("80"));
    assert_eq!(
        record.get("link"),
        Some(format!("tcp://{}:80", vip.ip()).as_str())
    );
    node.stop().await;
}

/// A NodePort Service answers on the node address at its allocated node port, and a
/// LoadBalancer Service on the node address at the service port itself.
#[tokio::test]
async fn node_port_and_load_balancer_listen_on_the_node_address() {
    let node = TestNode::start().await;
    node.apply(&web_pod("web-a", "app: web", ""));
    node.apply(&service(
        "np",
        "  type: NodePort\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}",
    ));
    node.apply(&service(
        "lb",
        "  type: LoadBalancer\n  selector: {app: web}\n  ports:\n  - {name: http, port: 8081, targetPort: http}",
    ));
    wait_ready(&node, "web-a").await;
    let node_ip: std::net::IpAddr = node.node_address().into();
    let np = stored(&node, &resources::SERVICES, "np").unwrap();
    let node_port = np["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    for addr in [
        SocketAddr::new(node_ip, node_port),
        SocketAddr::new(node_ip, 8081),
        vip(&node, "lb"),
    ] {
        let (status, name) =
            eventually_async(SECS(10), "the node address answers", || async move {
                get(addr, "/").await.ok().filter(|r| r.0 == 200)
            })
            .await;
        assert_eq!((status, name.as_str()), (200, "web-a"), "{addr}");
    }
    let lb = stored(&node, &resources::SERVICES, "lb").unwrap();
    assert_eq!(
        lb["status"]["loadBalancer"]["ingress"][0]["ip"],
        node_ip.to_string()
    );
    node.stop().await;
}

/// No endpoint: the gateway answers 503 with a body that names the Service.
#[tokio::test]
async fn no_ready_endpoint_is_a_clear_503() {
    let node = TestNode::start().await;
    node.apply(&service(
        "empty",
        "  selector: {app: nothing}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}",
    ));
    let addr = vip(&node, "empty");
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let (status, body) = eventually_async(SECS(10), "a 503 from the gateway", || {
        let client = client.clone();
        async move {
            let r = client
                .get(format!("http://{addr}/").parse().unwrap())
                .await
                .ok()?;
            let status = r.status().as_u16();
            let body = r.into_body().collect().await.ok()?.to_bytes();
            Some((status, String::from_utf8_lossy(&body).into_owned()))
        }
    })
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("default/empty"), "{body}");
    node.stop().await;
}

/// Kills and reaps a child process when dropped (by pid, never by name).
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `podvisor register` for `addr` with a TTL of 3 s against the node's API.
fn register(node: &TestNode, service: &str, addr: SocketAddr) -> ChildGuard {
    let kubeconfig = node.dir.path().join("data/kubeconfig");
    ChildGuard(
        std::process::Command::new(PODVISOR)
            .args([
                "register",
                service,
                &addr.to_string(),
                "--ttl",
                "3s",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The registry: an instance podvisor does not run, registered with a 3 s lease. `kill -9`
/// of its `podvisor register` removes it from the gateway within TTL + 1 s; SIGTERM removes
/// it at once. (Issue 5 "Done when".)
#[tokio::test]
async fn registered_instance_leaves_on_lease_expiry_and_on_sigterm() {
    let node = TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await;
    node.apply(&service(
        "ext",
        "  ports:\n  - {name: http, port: 80, targetPort: 8080}",
    ));
    let addr_ip = node.node_address();
    // A free port on the node address (the test app needs a concrete one).
    let port = std::net::TcpListener::bind((addr_ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = ChildGuard(
        std::process::Command::new(TESTAPP)
            .args([
                "serve",
                "--name",
                "outside",
                "--port",
                &port.to_string(),
                "--addr",
            ])
            .arg(addr_ip.to_string())
            .arg("--record")
            .arg(&node.record)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let listening = node
        .wait_record(SECS(10), "outside listening", |r| {
            r.is("outside", "listening")
        })
        .await;
    let instance: SocketAddr = listening.get("addr").unwrap().parse().unwrap();
    let vip = vip(&node, "ext");
    let routed = |want: bool| async move {
        let r = get(vip, "/").await.ok();
        let is_routed = r.as_ref().is_some_and(|(s, n)| *s == 200 && n == "outside");
        (is_routed == want).then_some(())
    };

    // kill -9: the lease is not renewed; gone within TTL + 1 s.
    let mut client = register(&node, "ext", instance);
    eventually_async(SECS(10), "the registered instance is routed", || {
        routed(true)
    })
    .await;
    client.0.kill().unwrap();
    client.0.wait().unwrap();
    let killed = Instant::now();
    eventually_async(SECS(6), "routing stops after the lease expires", || {
        routed(false)
    })
    .await;
    let took = killed.elapsed();
    println!("lease expiry removed the instance {took:?} after kill -9 (ttl 3s)");
    assert!(took <= SECS(4), "{took:?} > TTL + 1 s");
    assert!(
        node.store
            .list_events()
            .iter()
            .any(|e| e.reason.as_deref() == Some("RegistrationExpired")),
        "an event says the registration expired"
    );

    // SIGTERM: deregistered at once.
    let client = register(&node, "ext", instance);
    eventually_async(SECS(10), "registered again", || routed(true)).await;
    let pid = client.0.id() as i32;
    sigterm(pid);
    let signalled = Instant::now();
    eventually_async(SECS(3), "routing stops on SIGTERM", || routed(false)).await;
    let took = signalled.elapsed();
    println!("SIGTERM deregistered the instance in {took:?}");
    assert!(took < SECS(1), "{took:?}");
    drop(client);
    drop(app);
    node.stop().await;
}

fn sigterm(pid: i32) {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}

/// `/metrics` on the API: the gateway's counters per service port, the barrier's histogram,
/// pods by phase.
#[tokio::test]
async fn metrics_count_gateway_requests_barriers_and_pods() {
    let node = TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await;
    node.apply(&web_pod("web-a", "app: web", ""));
    node.apply(&service(
        "web",
        "  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}",
    ));
    wait_ready(&node, "web-a").await;
    let addr = vip(&node, "web");
    eventually_async(SECS(10), "the gateway answers", || async move {
        get(addr, "/").await.ok().filter(|r| r.0 == 200)
    })
    .await;
    node.delete("web-a", None);
    node.wait_gone("web-a", SECS(20)).await;
    let client = podvisor::cli::client::Client::from_config(
        Some(&node.dir.path().join("data/kubeconfig")),
        std::path::Path::new(""),
    )
    .unwrap();
    let reply = client.get("/metrics", "text/plain").await.unwrap();
    assert_eq!(reply.status, 200);
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"))
            .to_owned()
    };
    let requests = line(r#"podvisor_gateway_requests_total{service="default/web",port="http"}"#);
    let n: f64 = requests.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1.0, "{requests}");
    assert_eq!(
        line("podvisor_endpoint_barrier_duration_seconds_count"),
        "podvisor_endpoint_barrier_duration_seconds_count 1"
    );
    assert_eq!(
        line(r#"podvisor_pods{phase="Running"}"#),
        r#"podvisor_pods{phase="Running"} 0"#
    );
    node.stop().await;
}

/// A LoadBalancer whose port another process holds on the node address: the Service is
/// stored (the API cannot know), and a Warning event on it says why nothing listens.
#[tokio::test]
async fn a_taken_port_is_a_warning_event_on_the_service() {
    let node = TestNode::start().await;
    let taken = std::net::TcpListener::bind((node.node_address(), 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    node.apply(&service(
        "lb",
        &format!("  type: LoadBalancer\n  selector: {{app: web}}\n  ports:\n  - {{name: http, port: {port}}}"),
    ));
    node.wait_event("lb", "FailedToListen", "address already in use", SECS(10))
        .await;
    drop(taken);
    node.stop().await;
}

/// A selected pod without the container port a named targetPort asks for gets no endpoint for
/// it, and one Warning event on the Service says why.
#[tokio::test]
async fn an_unresolvable_target_port_is_a_warning_event() {
    let node = TestNode::start().await;
    node.apply(&web_pod("web-a", "app: web", ""));
    node.apply(&service(
        "web",
        "  selector: {app: web}\n  ports:\n  - {name: admin, port: 81, targetPort: admin}",
    ));
    node.wait_event(
        "web",
        "FailedToResolvePort",
        "pod web-a has no container port named \"admin\"",
        SECS(10),
    )
    .await;
    wait_ready(&node, "web-a").await;
    assert!(slice_endpoints(&node, "web").is_empty());
    node.stop().await;
}

/// One instance registered on two ports of a Service (`--port-name`): two registrations (a
/// Lease and an EndpointSlice each, named after the port), both routed; one leaving does not
/// take the other with it.
#[tokio::test]
async fn one_address_registered_on_two_ports() {
    let node = TestNode::start_with(NodeOptions {
        api: true,
        ..Default::default()
    })
    .await;
    node.apply(&service(
        "ext",
        "  ports:\n  - {name: http, port: 80, targetPort: 8080}\n  - {name: alt, port: 81, targetPort: 8080, appProtocol: http}",
    ));
    let addr_ip = node.node_address();
    let port = std::net::TcpListener::bind((addr_ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = ChildGuard(
        std::process::Command::new(TESTAPP)
            .args([
                "serve",
                "--name",
                "outside",
                "--port",
                &port.to_string(),
                "--addr",
            ])
            .arg(addr_ip.to_string())
            .arg("--record")
            .arg(&node.record)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    node.wait_record(SECS(10), "outside listening", |r| {
        r.is("outside", "listening")
    })
    .await;
    let instance = SocketAddr::new(addr_ip.into(), port);
    let kubeconfig = node.dir.path().join("data/kubeconfig");
    let register_port = |name: &str| {
        ChildGuard(
            std::process::Command::new(PODVISOR)
                .args([
                    "register",
                    "ext",
                    &instance.to_string(),
                    "--port-name",
                    name,
                ])
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let http = register_port("http");
    let alt = register_port("alt");
    let vip = vip(&node, "ext");
    let routed = |port: u16, want: bool| async move {
        let r = get(SocketAddr::new(vip.ip(), port), "/").await.ok();
        let is_routed = r.as_ref().is_some_and(|(s, n)| *s == 200 && n == "outside");
        (is_routed == want).then_some(())
    };
    eventually_async(SECS(10), "routed on port 80", || routed(80, true)).await;
    eventually_async(SECS(10), "routed on port 81", || routed(81, true)).await;
    let ip = addr_ip.to_string().replace('.', "-");
    for name in ["http", "alt"] {
        let lease = format!("ext-{name}-{ip}-{port}");
        assert!(
            node.store
                .get(&resources::LEASES, "default", &lease)
                .is_some(),
            "no Lease {lease}"
        );
    }
    // SIGTERM to the http registration: port 80 stops routing, port 81 goes on.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(http.0.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    eventually_async(SECS(10), "port 80 no longer routed", || routed(80, false)).await;
    eventually_async(SECS(5), "port 81 still routed", || routed(81, true)).await;
    drop(http);
    drop(alt);
    drop(app);
    node.stop().await;
}
