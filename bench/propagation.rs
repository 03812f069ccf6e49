//! Benchmark: from a pod's deletion to the last new request a gateway sends it (issue 5).
//!
//! Starts `podvisor up` (release build) on a fresh data dir with its own loopback ranges, a
//! Service `web` and 3 pods of the test app recording every request they serve, and a paced
//! background load through the Service's cluster IP over keep-alive connections. Then, N times:
//! note the wall clock `t0`, `DELETE` a pod (round robin, default grace; sent on an API
//! connection opened beforehand, so that no TLS handshake is counted), wait until it is
//! gone, read its record file: the last request it served at or after `t0` gives
//! `last - t0` (0 when it served none after `t0`); read its `RemovedFromEndpoints` event (the
//! termination barrier's duration); create a replacement and wait until it is a ready endpoint
//! of the Service, so that 3 ready pods serve before the next deletion. The same is repeated,
//! by default, on a second node with `--unordered-termination` (upstream's race), and both are
//! printed side by side. Bounded: N deletions, deadlines on every wait, the load capped in
//! time and count, every process killed by pid at the end and on error.
//!
//! Run: `bench/propagation.sh` (or `cargo run --release --example propagation -- --help`).

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use podvisor::cli::client::{Client, encode};
use serde_json::{Value, json};

const POD_CIDR: &str = "127.41.0.0/24";
const SERVICE_CIDR: &str = "127.42.0.0/24";
const NODE_ADDRESS: &str = "127.43.0.1";
/// The longest a run's load may last, whatever happens (a deletion with its replacement
/// takes under a second).
const LOAD_MAX: Duration = Duration::from_secs(420);
const PODS: usize = 3;
/// Requests a pod served in this window before a deletion give its request interval.
const WINDOW: Duration = Duration::from_millis(50);

struct Options {
    deletions: usize,
    unordered_deletions: usize,
    rate: u32,
    connections: u32,
    method: hyper::Method,
    verbose: bool,
    keep: bool,
    podvisor: PathBuf,
    testapp: PathBuf,
}

const USAGE: &str = "propagation [--deletions N (100)] [--unordered-deletions N (100; 0 skips the \
--unordered-termination run)] [--rate REQ_PER_S (2000)] [--connections N (8)] \
[--method POST|GET (POST)] [--verbose (a line per deletion on stderr)] [--keep (keep each run's data dir, node output and record files)] [--podvisor PATH (target/release/podvisor)] \
[--testapp PATH (target/release/podvisor-testapp)]";

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        deletions: 100,
        unordered_deletions: 100,
        rate: 2000,
        connections: 8,
        method: hyper::Method::POST,
        verbose: false,
        keep: false,
        podvisor: PathBuf::from("target/release/podvisor"),
        testapp: PathBuf::from("target/release/podvisor-testapp"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().context(format!("{a} needs a value"));
        match a.as_str() {
            "--deletions" => o.deletions = value()?.parse().context("--deletions: a number")?,
            "--unordered-deletions" => {
                o.unordered_deletions = value()?
                    .parse()
                    .context("--unordered-deletions: a number")?
            }
            "--rate" => o.rate = value()?.parse().context("--rate: a number")?,
            "--connections" => {
                o.connections = value()?.parse().context("--connections: a number")?
            }
            "--method" => {
                o.method = match value()?.as_str() {
                    "POST" => hyper::Method::POST,
                    "GET" => hyper::Method::GET,
                    other => bail!("--method: POST or GET, not {other:?}"),
                }
            }
            "--verbose" => o.verbose = true,
            "--keep" => o.keep = true,
            "--podvisor" => o.podvisor = PathBuf::from(value()?),
            "--testapp" => o.testapp = PathBuf::from(value()?),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    if !(1..=200).contains(&o.deletions) || o.unordered_deletions > 200 {
        bail!("--deletions must be 1..=200 and --unordered-deletions 0..=200");
    }
    if !(1..=20_000).contains(&o.rate) || !(1..=64).contains(&o.connections) {
        bail!("--rate must be 1..=20000 and --connections 1..=64");
    }
    // The pods' command needs an absolute path (the node does not search the bench's cwd).
    o.testapp = std::fs::canonicalize(&o.testapp)
        .with_context(|| format!("cannot find the test app at {}", o.testapp.display()))?;
    Ok(o)
}

/// The node's process: killed by pid (and reaped) when dropped, on success and on error.
struct Node {
    child: Child,
    output: PathBuf,
}

impl Drop for Node {
    /// SIGINT first, so that the node stops its pods' processes (a killed node leaves them
    /// to its next start), then SIGKILL if it has not exited within 15 s.
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32)
            && matches!(self.child.try_wait(), Ok(None))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the last 64 KiB of `path` contain `needle` (the node's output grows with every
/// request: the test app echoes its record lines, which the node prints as container logs).
fn tail_contains(path: &Path, needle: &str) -> anyhow::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    Ok(String::from_utf8_lossy(&text).contains(needle))
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The `p` quantile of sorted samples (nearest rank, as list_pods).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn web_pod(name: &str, testapp: &Path, record: &Path) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "app",
                "image": "podvisor/testapp",
                "command": [
                    testapp, "serve", "--name", name, "--port", "8080",
                    "--record", record, "--record-requests",
                ],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
            }],
        },
    })
}

async fn post(client: &Client, path: &str, object: &Value) -> anyhow::Result<Value> {
    let reply = client
        .call(
            "POST",
            path,
            Some("application/json"),
            "application/json",
            serde_json::to_vec(object)?,
        )
        .await?;
    if reply.status != 201 {
        bail!("POST {path}: {}", reply.error());
    }
    reply.json()
}

/// Polls `f` every `every` until it returns `Some`, or fails with `what` after `limit`.
async fn until<T, F, Fut>(
    limit: Duration,
    every: Duration,
    what: &str,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {limit:?}: {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// The pod's IP once its Ready condition is True.
async fn ready_ip(client: &Client, name: &str) -> anyhow::Result<Option<String>> {
    let reply = client
        .get(
            &format!("/api/v1/namespaces/default/pods/{name}"),
            "application/json",
        )
        .await?;
    if reply.status != 200 {
        bail!("GET pod {name}: {}", reply.error());
    }
    let pod = reply.json()?;
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    Ok(ready
        .then(|| pod["status"]["podIP"].as_str().map(str::to_owned))
        .flatten())
}

/// The addresses of the Service's ready endpoints, from its EndpointSlices.
async fn ready_endpoints(client: &Client) -> anyhow::Result<Vec<String>> {
    let reply = client
        .get(
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb",
            "application/json",
        )
        .await?;
    if reply.status != 200 {
        bail!("list endpointslices: {}", reply.error());
    }
    let mut out = Vec::new();
    for slice in reply.json()?["items"].as_array().into_iter().flatten() {
        for e in slice["endpoints"].as_array().into_iter().flatten() {
            if e["conditions"]["ready"].as_bool().unwrap_or(true) {
                out.extend(
                    e["addresses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_owned)),
                );
            }
        }
    }
    Ok(out)
}

/// Creates a pod and waits until it is Ready and a ready endpoint of the Service.
async fn create_ready(
    client: &Client,
    o: &Options,
    records: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let record = records.join(format!("{name}.log"));
    post(
        client,
        "/api/v1/namespaces/default/pods",
        &web_pod(name, &o.testapp, &record),
    )
    .await?;
    let ip = until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        &format!("pod {name} Ready"),
        || ready_ip(client, name),
    )
    .await?;
    until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        &format!("pod {name} ({ip}) a ready endpoint of web"),
        || async { Ok(ready_endpoints(client).await?.contains(&ip).then_some(())) },
    )
    .await
}

/// One kept-alive HTTPS connection to the API for the DELETEs, opened before `t0`, so that
/// the measured time holds no TCP or TLS handshake (`Client` opens a connection per request).
struct ApiConnection {
    kubeconfig: PathBuf,
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: String,
    token: String,
}

impl ApiConnection {
    async fn open(kubeconfig: &Path) -> anyhow::Result<ApiConnection> {
        use base64::Engine;
        use rustls::pki_types::pem::PemObject;
        let config: Value = serde_saphyr::from_str(&std::fs::read_to_string(kubeconfig)?)?;
        // The node writes one cluster and one user.
        let server = config["clusters"][0]["cluster"]["server"]
            .as_str()
            .context("kubeconfig: no server")?;
        let host = server
            .strip_prefix("https://")
            .context("kubeconfig: not https")?
            .trim_end_matches('/')
            .to_owned();
        let ca = base64::engine::general_purpose::STANDARD.decode(
            config["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .context("kubeconfig: no CA")?,
        )?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert?)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let (ip, _) = host.rsplit_once(':').context("kubeconfig: no port")?;
        let name = rustls::pki_types::ServerName::try_from(ip.to_owned())?;
        let tcp = tokio::net::TcpStream::connect(&host).await?;
        tcp.set_nodelay(true)?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Why ignored: a broken connection shows up on the next request, or is reopened.
            let _ = connection.await;
        });
        Ok(ApiConnection {
            kubeconfig: kubeconfig.to_owned(),
            sender,
            host,
            token: config["users"][0]["user"]["token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Waits until the connection can send, reopening it if the server closed it.
    async fn ready(&mut self) -> anyhow::Result<()> {
        if self.sender.is_closed() || self.sender.ready().await.is_err() {
            *self = ApiConnection::open(&self.kubeconfig).await?;
            self.sender.ready().await?;
        }
        Ok(())
    }

    /// `DELETE path` (default grace); the status, once the body is read.
    async fn delete(&mut self, path: &str) -> anyhow::Result<u16> {
        let request = hyper::Request::delete(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok(status)
    }
}

/// What the background load saw.
#[derive(Default)]
struct Load {
    ok: u64,
    failed: u64,
    /// The first failures: when the request was sent (unix nanos), and what happened.
    samples: Vec<(u128, String)>,
    elapsed: Duration,
}

/// `connections` keep-alive connections to `addr`, each sending one request at a time, paced
/// together at `rate` requests per second until `stop`, for at most `LOAD_MAX` and
/// `rate × LOAD_MAX` requests.
fn start_load(
    addr: SocketAddr,
    o: &Options,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Load> {
    let connections = o.connections;
    let period = Duration::from_secs_f64(f64::from(connections) / f64::from(o.rate));
    let cap = u64::from(o.rate) * LOAD_MAX.as_secs() / u64::from(connections);
    let method = o.method.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let deadline = started + LOAD_MAX;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..connections {
            let stop = stop.clone();
            let method = method.clone();
            // Staggered, so that the connections do not all send at the same instant.
            let first = tokio::time::Instant::now() + period * i / connections;
            tasks.spawn(async move {
                let client: HttpClient<_, Empty<Bytes>> = HttpClient::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(1)
                    .build_http();
                let uri: hyper::Uri = format!("http://{addr}/").parse().unwrap();
                let mut tick = tokio::time::interval_at(first, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut load = Load::default();
                for _ in 0..cap {
                    tick.tick().await;
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let request = hyper::Request::builder()
                        .method(method.clone())
                        .uri(uri.clone())
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let sent = unix_nanos();
                    let failure =
                        match tokio::time::timeout(Duration::from_secs(5), client.request(request))
                            .await
                        {
                            Ok(Ok(response)) => {
                                let status = response.status();
                                match response.into_body().collect().await {
                                    Ok(_) if status.is_success() => None,
                                    Ok(body) => Some(format!(
                                        "{status} {}",
                                        String::from_utf8_lossy(&body.to_bytes()).trim()
                                    )),
                                    Err(e) => Some(format!("{status}, body: {e}")),
                                }
                            }
                            Ok(Err(e)) => Some(format!("{e:?}")),
                            Err(_) => Some("timed out after 5 s".to_owned()),
                        };
                    match failure {
                        None => load.ok += 1,
                        Some(f) => {
                            load.failed += 1;
                            if load.samples.len() < 10 {
                                load.samples.push((sent, f));
                            }
                        }
                    }
                }
                load
            });
        }
        let mut all = Load::default();
        while let Some(load) = tasks.join_next().await {
            let load = load.expect("a load task panicked");
            all.ok += load.ok;
            all.failed += load.failed;
            all.samples.extend(load.samples);
        }
        all.samples.sort();
        all.samples.truncate(10);
        all.elapsed = started.elapsed();
        all
    })
}

/// The requests to `/` that the pod recorded: how many at or after `t0` (unix nanos), the last
/// one's time, and how many in the `WINDOW` before `t0` (the pod's request rate, which is the
/// resolution of the measurement).
fn served_after(record: &Path, t0: u128) -> anyhow::Result<(usize, Option<u128>, usize)> {
    let text = std::fs::read_to_string(record)
        .with_context(|| format!("cannot read {}", record.display()))?;
    let mut count = 0;
    let mut last = None;
    let mut before = 0;
    for line in text.lines() {
        let mut fields = line.split(' ');
        let (Some(time), Some(_name), Some("http"), Some("path=/")) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let time: u128 = time.parse().context("a record line's time")?;
        if time >= t0 {
            count += 1;
            last = last.max(Some(time));
        } else if time + WINDOW.as_nanos() >= t0 {
            before += 1;
        }
    }
    Ok((count, last, before))
}

/// The barrier's duration in ms from the pod's `RemovedFromEndpoints` event ("Removed from
/// every gateway pool in 0.123ms; …"), or `Err(reason)` of an `EndpointsBarrierTimeout`;
/// `None` while neither is there.
async fn barrier_event(client: &Client, pod: &str) -> anyhow::Result<Option<Result<f64, String>>> {
    let reply = client
        .get(
            &format!(
                "/api/v1/namespaces/default/events?fieldSelector={}",
                encode(&format!("involvedObject.name={pod}"))
            ),
            "application/json",
        )
        .await?;
    if reply.status != 200 {
        bail!("list events of {pod}: {}", reply.error());
    }
    for e in reply.json()?["items"].as_array().into_iter().flatten() {
        let message = e["message"].as_str().unwrap_or("");
        match e["reason"].as_str() {
            Some("RemovedFromEndpoints") => {
                let ms = message
                    .strip_prefix("Removed from every gateway pool in ")
                    .and_then(|m| m.split_once("ms"))
                    .and_then(|(ms, _)| ms.parse().ok())
                    .with_context(|| {
                        format!("unexpected RemovedFromEndpoints message {message:?}")
                    })?;
                return Ok(Some(Ok(ms)));
            }
            Some("EndpointsBarrierTimeout") => return Ok(Some(Err(message.to_owned()))),
            _ => {}
        }
    }
    Ok(None)
}

/// What one node run measured.
struct Run {
    unordered: bool,
    deletions: usize,
    /// delete → last request served, ms, sorted.
    last: Vec<f64>,
    /// Deletions after which the pod served no request.
    none_after: usize,
    /// Requests served after `t0`, per deletion.
    served_after: Vec<usize>,
    /// Each deletion's `t0` (unix nanos) and pod.
    deletes: Vec<(u128, String)>,
    /// The DELETE's round trip (t0 → reply), ms, sorted.
    round_trip: Vec<f64>,
    /// The mean interval between two requests to the deleted pod in the `WINDOW` before the
    /// deletion, ms, sorted.
    interval: Vec<f64>,
    /// The barrier's durations from the events, ms, sorted.
    barrier: Vec<f64>,
    barrier_timeouts: usize,
    load: Load,
    took: Duration,
}

async fn run(o: &Options, unordered: bool, deletions: usize) -> anyhow::Result<Run> {
    let started = Instant::now();
    let mut dir = tempfile::Builder::new().prefix("propagation-").tempdir()?;
    if o.keep {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    let data = dir.path().join("data");
    let records = dir.path().join("records");
    std::fs::create_dir_all(&records)?;
    let output = dir.path().join("up.out");
    let log = std::fs::File::create(&output)?;
    let mut command = Command::new(&o.podvisor);
    command
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .args(["--api-port", "0", "--color", "never"])
        .args(["--pod-cidr", POD_CIDR, "--service-cidr", SERVICE_CIDR])
        .args(["--node-address", NODE_ADDRESS]);
    if unordered {
        command.arg("--unordered-termination");
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {}", o.podvisor.display()))?;
    let mut node = Node { child, output };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&node.output)?.contains("API at") {
        if Instant::now() > deadline || node.child.try_wait()?.is_some() {
            bail!(
                "the node did not start: {}",
                std::fs::read_to_string(&node.output)?
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = Client::from_config(Some(&data.join("kubeconfig")), &data)?;
    let mut api = ApiConnection::open(&data.join("kubeconfig")).await?;

    let service = post(
        &client,
        "/api/v1/namespaces/default/services",
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }),
    )
    .await?;
    let ip: Ipv4Addr = service["spec"]["clusterIP"]
        .as_str()
        .context("the Service has no clusterIP")?
        .parse()?;
    let addr = SocketAddr::new(ip.into(), 80);
    let mut pods: Vec<String> = (0..PODS).map(|i| format!("web-{i:03}")).collect();
    let mut next = PODS;
    for name in &pods {
        create_ready(&client, o, &records, name).await?;
    }
    // The gateway answers through the cluster IP.
    until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        "the gateway answers on the cluster IP",
        || async {
            let http: HttpClient<_, Empty<Bytes>> =
                HttpClient::builder(TokioExecutor::new()).build_http();
            let reply = tokio::time::timeout(
                Duration::from_secs(2),
                http.get(format!("http://{addr}/").parse()?),
            )
            .await;
            Ok(matches!(reply, Ok(Ok(r)) if r.status() == 200).then_some(()))
        },
    )
    .await?;

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(addr, o, stop.clone());
    // Let the load settle on its connections before the first deletion.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut measured = Run {
        unordered,
        deletions,
        last: Vec::new(),
        none_after: 0,
        served_after: Vec::new(),
        deletes: Vec::new(),
        round_trip: Vec::new(),
        interval: Vec::new(),
        barrier: Vec::new(),
        barrier_timeouts: 0,
        load: Load::default(),
        took: Duration::ZERO,
    };
    let result: anyhow::Result<()> = async {
        for i in 0..deletions {
            let slot = i % PODS;
            let pod = pods[slot].clone();
            let path = format!("/api/v1/namespaces/default/pods/{pod}");
            api.ready().await?;
            let t0 = unix_nanos();
            let sent = Instant::now();
            let status = api.delete(&path).await?;
            let round_trip = sent.elapsed();
            measured.deletes.push((t0, pod.clone()));
            if status != 200 {
                bail!("DELETE {pod}: status {status}");
            }
            until(
                Duration::from_secs(30),
                Duration::from_millis(20),
                &format!("pod {pod} gone"),
                || async {
                    let reply = client.get(&path, "application/json").await?;
                    Ok((reply.status == 404).then_some(()))
                },
            )
            .await?;
            let (count, last, before) = served_after(&records.join(format!("{pod}.log")), t0)?;
            if before > 0 {
                measured
                    .interval
                    .push(WINDOW.as_secs_f64() * 1e3 / before as f64);
            }
            measured
                .last
                .push(last.map_or(0.0, |t| (t - t0) as f64 / 1e6));
            measured.served_after.push(count);
            if last.is_none() {
                measured.none_after += 1;
            }
            measured.round_trip.push(round_trip.as_secs_f64() * 1e3);
            if !unordered {
                match until(
                    Duration::from_secs(5),
                    Duration::from_millis(20),
                    &format!("the barrier event of {pod}"),
                    || barrier_event(&client, &pod),
                )
                .await?
                {
                    Ok(ms) => measured.barrier.push(ms),
                    Err(message) => {
                        eprintln!("{pod}: EndpointsBarrierTimeout: {message}");
                        measured.barrier_timeouts += 1;
                    }
                }
            }
            if o.verbose {
                eprintln!(
                    "{pod}: t0 {t0} (unix ns), last request {:+.3} ms ({count} after the delete), DELETE round trip {:.3} ms, barrier {}",
                    measured.last.last().unwrap_or(&0.0),
                    round_trip.as_secs_f64() * 1e3,
                    if unordered {
                        "none".to_owned()
                    } else {
                        measured.barrier.last().map_or("timeout".to_owned(), |b| format!("{b:.3} ms"))
                    }
                );
            }
            let replacement = format!("web-{next:03}");
            next += 1;
            create_ready(&client, o, &records, &replacement).await?;
            pods[slot] = replacement;
            if (i + 1) % 10 == 0 {
                eprintln!(
                    "{} run: {} of {deletions} deletions, {:.0} s",
                    if unordered { "unordered" } else { "ordered" },
                    i + 1,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    measured.load = load.await?;
    result?;
    for v in [
        &mut measured.last,
        &mut measured.round_trip,
        &mut measured.barrier,
    ] {
        v.sort_by(f64::total_cmp);
    }

    // Stop the node (every pod gracefully) and wait for it.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(node.child.id() as i32).context("pid")?,
        rustix::process::Signal::INT,
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = node.child.try_wait()? {
            break exit;
        }
        if Instant::now() > deadline {
            bail!("the node did not stop within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if !exit.success() || !tail_contains(&node.output, "node stopped")? {
        bail!("the node stopped with {exit} and without \"node stopped\"");
    }
    measured.took = started.elapsed();
    Ok(measured)
}

fn ms(v: f64) -> String {
    format!("{v:.3}")
}

fn quantiles(sorted: &[f64], ps: &[f64]) -> String {
    if sorted.is_empty() {
        return "–".to_owned();
    }
    ps.iter()
        .map(|&p| ms(percentile(sorted, p)))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn report(o: &Options, runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Deletion → last request routed (propagation)\n");
    let _ = writeln!(
        out,
        "3 ready pods behind Service `web` (L7, HTTP/1.1); load: {} req/s ({}) over {} keep-alive connections through the cluster IP; each deletion waits for the pod to be gone and a replacement to be a ready endpoint. Target (DESIGN): p99 ≤ 1 ms.\n",
        o.rate, o.method, o.connections
    );
    let mut header = "| | ".to_owned();
    let mut rule = "|---|".to_owned();
    for r in runs {
        header.push_str(if r.unordered {
            "unordered (`--unordered-termination`) | "
        } else {
            "ordered (default) | "
        });
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{}\n{rule}", header.trim_end());
    let mut row = |name: &str, f: &dyn Fn(&Run) -> String| {
        let cells: Vec<String> = runs.iter().map(f).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    row("deletions", &|r| r.deletions.to_string());
    row(
        "delete → last request served, p50 / p90 / p99 / max (ms)",
        &|r| quantiles(&r.last, &[0.5, 0.9, 0.99, 1.0]),
    );
    row("deletions with no request after the delete", &|r| {
        r.none_after.to_string()
    });
    row("requests served after the delete, mean / max", &|r| {
        let n = r.served_after.len().max(1) as f64;
        format!(
            "{:.1} / {}",
            r.served_after.iter().sum::<usize>() as f64 / n,
            r.served_after.iter().max().unwrap_or(&0)
        )
    });
    row(
        "DELETE round trip (t0 → reply, kept-alive connection), p50 / p99 (ms)",
        &|r| quantiles(&r.round_trip, &[0.5, 0.99]),
    );
    row(
        "interval between two requests to a pod before its deletion, p50 (ms)",
        &|r| quantiles(&r.interval, &[0.5]),
    );
    row(
        "barrier (`RemovedFromEndpoints`), p50 / p99 / max (ms)",
        &|r| {
            if r.unordered {
                "no barrier".to_owned()
            } else {
                quantiles(&r.barrier, &[0.5, 0.99, 1.0])
            }
        },
    );
    row("barrier timeouts (`EndpointsBarrierTimeout`)", &|r| {
        if r.unordered {
            "–".to_owned()
        } else {
            r.barrier_timeouts.to_string()
        }
    });
    row("load requests / failures", &|r| {
        format!(
            "{} / {} ({:.0} req/s)",
            r.load.ok + r.load.failed,
            r.load.failed,
            (r.load.ok + r.load.failed) as f64 / r.load.elapsed.as_secs_f64().max(1e-9)
        )
    });
    row("run (node start to stop)", &|r| {
        format!("{:.0} s", r.took.as_secs_f64())
    });
    for r in runs {
        if !r.load.samples.is_empty() {
            let _ = writeln!(
                out,
                "\n{} run, first failures (when the request was sent):\n",
                if r.unordered { "Unordered" } else { "Ordered" },
            );
        }
        for (sent, failure) in &r.load.samples {
            let when = match r.deletes.iter().rev().find(|(t0, _)| t0 <= sent) {
                Some((t0, pod)) => format!(
                    "{:+.3} ms after the DELETE of {pod}",
                    (sent - t0) as f64 / 1e6
                ),
                None => "before the first deletion".to_owned(),
            };
            let _ = writeln!(out, "- {when}: {failure}");
        }
    }
    if runs.len() == 2 && runs[1].deletions != runs[0].deletions {
        let _ = writeln!(
            out,
            "\nThe unordered run made {} deletions instead of {} (--unordered-deletions).",
            runs[1].deletions, runs[0].deletions
        );
    }
    // The arguments given to the script: the binaries' paths are the script's.
    let mut args = Vec::new();
    let mut given = std::env::args().skip(1);
    while let Some(a) = given.next() {
        if a == "--podvisor" || a == "--testapp" {
            given.next();
        } else {
            args.push(format!(" {a}"));
        }
    }
    let _ = writeln!(out, "\nCommand: `bench/propagation.sh{}`", args.concat());
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let mut runs = vec![run(&o, false, o.deletions).await?];
    if o.unordered_deletions > 0 {
        runs.push(run(&o, true, o.unordered_deletions).await?);
    }
    print!("{}", report(&o, &runs));
    Ok(())
}
