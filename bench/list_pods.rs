//! Benchmark: a node with 1,000 running pods, listed through the API.
//!
//! Starts `podvisor up` (release build) on a fresh data dir, creates N pods through the API
//! (`POST`, 16 at a time), waits until all run, then measures side by side in one run: a full
//! JSON list, the same list as a server-side Table (what `kubectl get` asks for), a list with a
//! label selector matching 10 %, a list with a field selector, and `kubectl get pods` end to end
//! (when kubectl is installed). Reports latency percentiles, body sizes, ratios against the
//! JSON list, and the node's RSS. Then watch latency: a watch of every pod of the namespace
//! is open while pods are patched one at a time (a label), and each event's arrival is timed
//! from just before its PATCH was sent (with the PATCH's own round trip beside it).
//! Bounded: N pods, a fixed number of iterations, deadlines.
//!
//! Run: `bench/list-pods.sh` (or `cargo run --release --example list_pods -- --help`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use podvisor::cli::client::Client;
use serde_json::json;

struct Options {
    pods: usize,
    iterations: usize,
    podvisor: PathBuf,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        pods: 1000,
        iterations: 50,
        podvisor: PathBuf::from("target/release/podvisor"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().context(format!("{a} needs a value"));
        match a.as_str() {
            "--pods" => o.pods = value()?.parse().context("--pods: a number")?,
            "--iterations" => o.iterations = value()?.parse().context("--iterations: a number")?,
            "--podvisor" => o.podvisor = PathBuf::from(value()?),
            "--help" | "-h" => {
                println!(
                    "list_pods [--pods N (1000)] [--iterations N (50)] [--podvisor PATH (target/release/podvisor)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    if o.pods == 0 || o.pods > 5000 || o.iterations == 0 || o.iterations > 1000 {
        bail!("--pods must be 1..=5000 and --iterations 1..=1000");
    }
    Ok(o)
}

struct Node {
    child: Child,
    output: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Row {
    name: &'static str,
    samples: Vec<Duration>,
    bytes: usize,
}

impl Row {
    fn p50(&self) -> Duration {
        percentile(&self.samples, 0.5)
    }
}

async fn measure(
    client: &Client,
    name: &'static str,
    path: &str,
    accept: &str,
    iterations: usize,
    expect_items: usize,
) -> anyhow::Result<Row> {
    let mut samples = Vec::with_capacity(iterations);
    let mut bytes = 0;
    for _ in 0..iterations {
        let t = Instant::now();
        let reply = client.get(path, accept).await?;
        samples.push(t.elapsed());
        if reply.status != 200 {
            bail!("{path}: {}", reply.error());
        }
        bytes = reply.body.len();
        let v = reply.json()?;
        let n = v["items"]
            .as_array()
            .or(v["rows"].as_array())
            .map_or(0, Vec::len);
        if n != expect_items {
            bail!("{path}: {n} items, want {expect_items}");
        }
    }
    samples.sort();
    Ok(Row {
        name,
        samples,
        bytes,
    })
}

/// Sorted samples of the watch-latency phase.
struct WatchLatency {
    event: Vec<Duration>,
    answer: Vec<Duration>,
}

/// Opens a watch of the namespace's pods at the current resourceVersion, then patches a label
/// `seq=i` on pod `i % pods`, one PATCH at a time, and times the MODIFIED event carrying it.
async fn watch_latency(
    client: &Client,
    pods: usize,
    patches: usize,
) -> anyhow::Result<WatchLatency> {
    let list = client
        .get(
            "/api/v1/namespaces/default/pods?limit=1",
            "application/json",
        )
        .await?
        .json()?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("list without resourceVersion")?
        .to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Option<String>)>();
    let watcher = {
        let client = client.clone();
        let path = format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}");
        tokio::spawn(async move {
            client
                .watch(&path, "application/json", move |event| {
                    let seq = event["object"]["metadata"]["labels"]["seq"]
                        .as_str()
                        .map(str::to_owned);
                    Ok(tx.send((Instant::now(), seq)).is_ok())
                })
                .await
        })
    };
    let mut event = Vec::with_capacity(patches);
    let mut answer = Vec::with_capacity(patches);
    for i in 0..patches {
        let name = format!("p-{:04}", i % pods);
        let body = serde_json::to_vec(&json!({"metadata": {"labels": {"seq": i.to_string()}}}))?;
        let t0 = Instant::now();
        let reply = client
            .call(
                "PATCH",
                &format!("/api/v1/namespaces/default/pods/{name}"),
                Some("application/merge-patch+json"),
                "application/json",
                body,
            )
            .await?;
        answer.push(t0.elapsed());
        if reply.status != 200 {
            bail!("patch {name}: {}", reply.error());
        }
        let want = i.to_string();
        let arrived = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some((at, seq)) = rx.recv().await {
                if seq.as_deref() == Some(want.as_str()) {
                    return Some(at);
                }
            }
            None
        })
        .await;
        match arrived {
            Ok(Some(at)) => event.push(at.saturating_duration_since(t0)),
            Ok(None) => bail!("the watch ended before the event of patch {i}"),
            Err(_) => bail!("no watch event for patch {i} within 10 s"),
        }
    }
    watcher.abort();
    event.sort();
    answer.sort();
    Ok(WatchLatency { event, answer })
}

fn kubectl_row(kubeconfig: &Path, home: &Path, iterations: usize) -> Option<Row> {
    let found = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("kubectl not found: its row is skipped");
        return None;
    }
    let mut samples = Vec::new();
    let mut bytes = 0;
    for _ in 0..iterations {
        let t = Instant::now();
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(home.join("cache"))
            .args(["get", "pods"])
            .env("HOME", home)
            .output()
            .ok()?;
        samples.push(t.elapsed());
        if !out.status.success() {
            eprintln!(
                "kubectl get pods failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        bytes = out.stdout.len();
    }
    samples.sort();
    Some(Row {
        name: "`kubectl get pods` (process, end to end)",
        samples,
        bytes,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let output = dir.path().join("up.out");
    let log = std::fs::File::create(&output)?;
    let child = Command::new(&o.podvisor)
        .arg("up")
        .arg("--data-dir")
        .arg(&data)
        .args(["--api-port", "0", "--color", "never"])
        .args(["--pod-cidr", "127.30.0.0/16"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {}", o.podvisor.display()))?;
    let node = Node { child, output };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&node.output)?.contains("API at") {
        if Instant::now() > deadline {
            bail!(
                "the node did not start: {}",
                std::fs::read_to_string(&node.output)?
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kubeconfig = data.join("kubeconfig");
    let client = Client::from_config(Some(&kubeconfig), &data)?;

    // Create the pods, 16 requests in flight.
    let started = Instant::now();
    let mut create_samples = Vec::new();
    for chunk in (0..o.pods).collect::<Vec<_>>().chunks(16) {
        let requests = chunk.iter().map(|i| {
            let client = client.clone();
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("p-{i:04}"), "labels": {"app": "bench", "tenth": (i % 10).to_string()}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "100000"]}],
                },
            });
            async move {
                let t = Instant::now();
                let reply = client
                    .call(
                        "POST",
                        "/api/v1/namespaces/default/pods",
                        Some("application/json"),
                        "application/json",
                        serde_json::to_vec(&pod)?,
                    )
                    .await?;
                if reply.status != 201 {
                    bail!("create: {}", reply.error());
                }
                anyhow::Ok(t.elapsed())
            }
        });
        for r in futures_util::future::join_all(requests).await {
            create_samples.push(r?);
        }
    }
    let created_in = started.elapsed();
    create_samples.sort();
    // Wait until every pod runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply = client
            .get(
                "/api/v1/pods?fieldSelector=status.phase%3DRunning",
                "application/json",
            )
            .await?;
        let running = reply.json()?["items"].as_array().map_or(0, Vec::len);
        if running == o.pods {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {running} of {} pods run after 120 s", o.pods);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let running_in = started.elapsed();

    let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let n = o.pods;
    let mut rows = vec![
        measure(
            &client,
            "list, JSON (`GET /api/v1/namespaces/default/pods`)",
            "/api/v1/namespaces/default/pods",
            "application/json",
            o.iterations,
            n,
        )
        .await?,
        measure(
            &client,
            "list, Table (what `kubectl get` asks for)",
            "/api/v1/namespaces/default/pods",
            table,
            o.iterations,
            n,
        )
        .await?,
        measure(
            &client,
            "list, all namespaces, JSON",
            "/api/v1/pods",
            "application/json",
            o.iterations,
            n,
        )
        .await?,
        measure(
            &client,
            "list, label selector `tenth=3` (10 %)",
            "/api/v1/namespaces/default/pods?labelSelector=tenth%3D3",
            "application/json",
            o.iterations,
            (0..n).filter(|i| i % 10 == 3).count(),
        )
        .await?,
        measure(
            &client,
            "list, field selector `status.phase=Running`",
            "/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DRunning",
            "application/json",
            o.iterations,
            n,
        )
        .await?,
    ];
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home)?;
    if let Some(row) = kubectl_row(&kubeconfig, &home, o.iterations.min(10)) {
        rows.push(row);
    }
    let rss = rss_kib(node.child.id());
    let watch = watch_latency(&client, n, o.iterations * 4).await?;

    println!("## Listing {n} pods through the API\n");
    println!(
        "{n} pods created through the API in {:.2} s (create p50 {:.1} ms, p99 {:.1} ms, 16 in flight); all Running {:.2} s after the first create.\n",
        created_in.as_secs_f64(),
        create_samples[create_samples.len() / 2].as_secs_f64() * 1e3,
        percentile(&create_samples, 0.99).as_secs_f64() * 1e3,
        running_in.as_secs_f64()
    );
    println!(
        "| request ({} iterations; kubectl 10) | p50 ms | p90 ms | max ms | body | p50 vs JSON list |",
        o.iterations
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let base = rows[0].p50().as_secs_f64();
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.0} KiB | {:.2}x |",
            r.name,
            r.p50().as_secs_f64() * 1e3,
            percentile(&r.samples, 0.9).as_secs_f64() * 1e3,
            r.samples.last().unwrap().as_secs_f64() * 1e3,
            r.bytes as f64 / 1024.0,
            r.p50().as_secs_f64() / base
        );
    }
    println!(
        "\nNode RSS with {n} pods after the lists: {:.1} MiB.",
        rss as f64 / 1024.0
    );
    println!(
        "\n| watch of {n} pods, {} PATCHes one at a time | p50 ms | p90 ms | p99 ms | max ms |",
        watch.event.len()
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, samples) in [
        ("PATCH sent → its watch event received", &watch.event),
        (
            "PATCH sent → PATCH answered (written to disk)",
            &watch.answer,
        ),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(samples, 0.5).as_secs_f64() * 1e3,
            percentile(samples, 0.9).as_secs_f64() * 1e3,
            percentile(samples, 0.99).as_secs_f64() * 1e3,
            samples.last().unwrap().as_secs_f64() * 1e3,
        );
    }

    // Stop the node (every pod gracefully) and wait for it.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(node.child.id() as i32).context("pid")?,
        rustix::process::Signal::INT,
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&node.output)?.contains("node stopped") {
        if Instant::now() > deadline {
            bail!("the node did not stop within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
