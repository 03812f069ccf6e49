//! Tests of `podvisor-testapp` itself: the behaviour podvisor's own tests rely on.
//!
//! Every test runs the built binary as real processes on 127.0.0.1 and reads back its record
//! file. Each spawned process is owned by a guard that kills it by pid and waits for it; states
//! are awaited by polling with a deadline, never by sleeping a fixed time.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tempfile::TempDir;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_podvisor-testapp");

/// How long any awaited state may take; generous because CI machines are slow.
const DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn serve_records_started_and_listening() {
    let env = Env::new();
    let app = env.serve("web", &[]);

    let records = env.records();
    let started = find(&records, "web", "started").expect("a started record");
    assert_eq!(started.num("pid"), i64::from(app.proc.pid()));
    // Spawned without setsid or a process group, the app shares the test's group and session.
    assert_eq!(
        started.num("pgid"),
        i64::from(rustix::process::getpgrp().as_raw_pid())
    );
    assert_eq!(started.num("ppid"), i64::from(std::process::id()));
    let listening = find(&records, "web", "listening").expect("a listening record");
    assert_eq!(listening.get("addr"), Some(app.addr.to_string().as_str()));
    assert!(started.nanos <= listening.nanos);
}

#[test]
fn endpoints_answer_and_carry_the_name_header() {
    let env = Env::new();
    let app = env.serve("web-1", &[]);

    for (path, status, body) in [
        ("/", 200, "web-1"),
        ("/hostname", 200, "web-1"),
        ("/echo?msg=hello%20world", 200, "hello world"),
        ("/hook/pre-stop", 200, "ok"),
        ("/status/418", 418, ""),
        (
            "/status/99",
            400,
            "expected /status/CODE with CODE in 200-599",
        ),
        ("/sleep?ms=20", 200, "slept ms=20"),
        ("/nope", 404, "not found"),
    ] {
        let response = get(app.addr, path);
        assert_eq!(
            (response.status, response.body.as_str()),
            (status, body),
            "{path}"
        );
        assert_eq!(response.header("x-testapp-name"), Some("web-1"), "{path}");
    }
    assert_eq!(get(app.addr, "/pid").body, app.proc.pid().to_string());

    let records = env.records();
    let echo = find(&records, "web-1", "http").expect("/echo is recorded");
    assert_eq!(echo.get("path"), Some("/echo"));
    assert_eq!(echo.get("msg"), Some("hello%20world"));
    let hook = find(&records, "web-1", "hook").expect("/hook/NAME is recorded");
    assert_eq!(
        (hook.get("name"), hook.get("via")),
        (Some("pre-stop"), Some("http"))
    );
    // Without --record-requests only /echo produces an `http` record.
    assert_eq!(records.iter().filter(|r| r.event == "http").count(), 1);
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let env = Env::new();
    let app = env.serve("h2", &[]);

    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{}/echo?msg=h2", app.addr))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.headers()["x-testapp-name"], "h2");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"h2");
    drop(sender);
    connection.abort();
}

#[test]
fn grpc_health_check_follows_healthz() {
    let env = Env::new();
    let app = env.serve("grpc-app", &["--record-requests"]);

    // The empty service and the app's own name report the app's health; other names are
    // unknown, as with grpc-go's health server.
    assert_eq!(grpc_check(app.addr, ""), Grpc::Status(SERVING));
    assert_eq!(grpc_check(app.addr, "grpc-app"), Grpc::Status(SERVING));
    assert_eq!(
        grpc_check(app.addr, "other"),
        Grpc::Error(5, "unknown service".to_owned())
    );
    assert_eq!(get(app.addr, "/fail-health").status, 200);
    assert_eq!(grpc_check(app.addr, ""), Grpc::Status(NOT_SERVING));
    assert_eq!(grpc_check(app.addr, "grpc-app"), Grpc::Status(NOT_SERVING));

    // gRPC needs HTTP/2: over HTTP/1.1 the path is a plain 400.
    let response = get(app.addr, "/grpc.health.v1.Health/Check");
    assert_eq!(response.status, 400);
    assert_eq!(response.header("x-testapp-name"), Some("grpc-app"));

    // Calls are recorded like any request.
    let calls = env
        .records()
        .into_iter()
        .filter(|r| r.event == "http" && r.get("path") == Some("/grpc.health.v1.Health/Check"))
        .collect::<Vec<_>>();
    assert_eq!(calls.len(), 6);
    assert_eq!(calls[0].get("method"), Some("POST"));

    let short_lived = env.serve("grpc-short", &["--healthy-for", "0.2"]);
    eventually(
        "the gRPC health check turns NOT_SERVING after --healthy-for",
        || (grpc_check(short_lived.addr, "") == Grpc::Status(NOT_SERVING)).then_some(()),
    );
}

#[test]
fn healthz_and_readyz_follow_their_flags() {
    let env = Env::new();
    let app = env.serve("probe", &["--ready-after", "1.5"]);

    // Well within 1.5 s of start: the app was listening before `serve` returned.
    assert_eq!(get(app.addr, "/readyz").status, 503);
    assert_eq!(get(app.addr, "/healthz").status, 200);
    eventually("readyz turns 200", || {
        (get(app.addr, "/readyz").status == 200).then_some(())
    });

    assert_eq!(get(app.addr, "/fail-health").status, 200);
    assert_eq!(get(app.addr, "/healthz").status, 500);
    assert_eq!(get(app.addr, "/readyz").status, 200);
    assert_eq!(get(app.addr, "/fail-ready").status, 200);
    assert_eq!(get(app.addr, "/readyz").status, 503);

    let short_lived = env.serve("short", &["--healthy-for", "0.2"]);
    eventually("healthz turns 500 after --healthy-for", || {
        (get(short_lived.addr, "/healthz").status == 500).then_some(())
    });
}

#[test]
fn unready_on_term_fails_readyz_while_draining() {
    let env = Env::new();
    let app = env.serve(
        "drainer",
        &["--unready-on-term", "--on-signal", "TERM=drain:30"],
    );
    assert_eq!(get(app.addr, "/readyz").status, 200);

    app.proc.signal(Signal::TERM);
    env.wait_for("drainer", "draining");
    assert_eq!(get(app.addr, "/readyz").status, 503);
    assert_eq!(get(app.addr, "/healthz").status, 200);
}

#[test]
fn term_exit_finishes_in_flight_requests_then_exits_0() {
    let env = Env::new();
    let mut app = env.serve("graceful", &["--record-requests"]);

    let addr = app.addr;
    let in_flight = std::thread::spawn(move || get(addr, "/sleep?ms=500"));
    let request = env.wait_for("graceful", "http");
    assert_eq!(request.get("path"), Some("/sleep"));

    app.proc.signal(Signal::TERM);
    let response = in_flight.join().unwrap();
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "slept ms=500")
    );
    assert_eq!(app.proc.wait_exit().code(), Some(0));

    let records = env.records();
    let signal = find(&records, "graceful", "signal").unwrap();
    assert_eq!(
        (signal.get("sig"), signal.get("mode")),
        (Some("SIGTERM"), Some("exit"))
    );
    let exiting = find(&records, "graceful", "exiting").unwrap();
    assert_eq!(
        (exiting.get("code"), exiting.get("reason")),
        (Some("0"), Some("signal"))
    );
    // The exit waited for the request: 500 ms from its start.
    assert!(exiting.nanos - request.nanos >= 500_000_000);
    assert!(signal.nanos < exiting.nanos);
}

#[test]
fn term_ignore_keeps_running_until_sigkill() {
    let env = Env::new();
    let mut app = env.serve("stubborn", &["--on-signal", "TERM=ignore"]);

    app.proc.signal(Signal::TERM);
    let signal = env.wait_for("stubborn", "signal");
    assert_eq!(signal.get("mode"), Some("ignore"));
    // Still serving after the signal was handled.
    assert_eq!(get(app.addr, "/").body, "stubborn");

    app.proc.signal(Signal::KILL);
    assert_eq!(app.proc.wait_exit().signal(), Some(9));
    assert!(find(&env.records(), "stubborn", "exiting").is_none());
}

#[test]
fn drain_keeps_serving_then_exits_with_its_code() {
    let env = Env::new();
    let mut app = env.serve("drain", &["--on-signal", "TERM=drain:1:3"]);

    // A keep-alive connection opened before the signal.
    let mut kept = Connection::open(app.addr);
    assert_eq!(kept.get("/").status, 200);

    app.proc.signal(Signal::TERM);
    let draining = env.wait_for("drain", "draining");
    assert_eq!(draining.get("secs"), Some("1"));
    // Both the kept-alive connection and new connections are still served.
    assert_eq!(kept.get("/hostname").body, "drain");
    assert_eq!(get(app.addr, "/echo?msg=after").body, "after");

    assert_eq!(app.proc.wait_exit().code(), Some(3));
    let records = env.records();
    let signal = find(&records, "drain", "signal").unwrap();
    let exiting = find(&records, "drain", "exiting").unwrap();
    assert_eq!(
        (exiting.get("code"), exiting.get("reason")),
        (Some("3"), Some("drain"))
    );
    assert!(exiting.nanos - signal.nanos >= 1_000_000_000);
}

#[test]
fn an_exit_signal_cuts_a_drain_short() {
    let env = Env::new();
    let mut app = env.serve(
        "impatient",
        &[
            "--port",
            "0",
            "--on-signal",
            "TERM=drain:60",
            "--on-signal",
            "INT=exit:2",
        ],
    );

    app.proc.signal(Signal::TERM);
    env.wait_for("impatient", "draining");
    app.proc.signal(Signal::INT);
    assert_eq!(app.proc.wait_exit().code(), Some(2));
    let exiting = find(&env.records(), "impatient", "exiting").unwrap();
    assert_eq!(exiting.get("reason"), Some("signal"));
}

#[test]
fn default_mode_dies_by_the_signal() {
    let env = Env::new();
    let mut app = env.serve("fragile", &["--on-signal", "TERM=default"]);

    app.proc.signal(Signal::TERM);
    assert_eq!(app.proc.wait_exit().signal(), Some(15));
    let records = env.records();
    assert!(find(&records, "fragile", "signal").is_none());
    assert!(find(&records, "fragile", "exiting").is_none());
}

#[test]
fn other_signals_follow_their_rules() {
    let env = Env::new();
    let mut app = env.serve(
        "multi",
        &[
            "--on-signal",
            "USR1=ignore",
            "--on-signal",
            "sigint=exit:4",
            "--port",
            "0",
        ],
    );

    app.proc.signal(Signal::USR1);
    let usr1 = env.wait_for("multi", "signal");
    assert_eq!(
        (usr1.get("sig"), usr1.get("mode")),
        (Some("SIGUSR1"), Some("ignore"))
    );
    app.proc.signal(Signal::INT);
    assert_eq!(app.proc.wait_exit().code(), Some(4));
    let records = env.records();
    let signals: Vec<_> = records.iter().filter(|r| r.event == "signal").collect();
    assert_eq!(signals.len(), 2);
    assert_eq!(signals[1].get("sig"), Some("SIGINT"));
}

#[test]
fn exit_after_and_http_exit_use_their_codes() {
    let env = Env::new();
    let mut timed = env.serve(
        "timed",
        &["--port", "0", "--exit-after", "0.2", "--exit-code", "7"],
    );
    assert_eq!(timed.proc.wait_exit().code(), Some(7));
    let exiting = find(&env.records(), "timed", "exiting").unwrap();
    assert_eq!(
        (exiting.get("code"), exiting.get("reason")),
        (Some("7"), Some("exit-after"))
    );

    let mut app = env.serve("quitter", &[]);
    let response = get(app.addr, "/exit?code=5");
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "exiting code=5")
    );
    assert_eq!(app.proc.wait_exit().code(), Some(5));
    let exiting = find(&env.records(), "quitter", "exiting").unwrap();
    assert_eq!(
        (exiting.get("code"), exiting.get("reason")),
        (Some("5"), Some("http"))
    );
}

#[test]
fn a_taken_port_is_recorded_and_exits_1() {
    let env = Env::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = env.run(&[
        "serve",
        "--name",
        "clash",
        "--addr",
        "127.0.0.1",
        "--port",
        &port,
    ]);

    // stderr is in the message: a CI run once saw exit code 101 (a panic) here.
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records = env.records();
    assert!(find(&records, "clash", "error").is_some());
    let exiting = find(&records, "clash", "exiting").unwrap();
    assert_eq!(
        (exiting.get("code"), exiting.get("reason")),
        (Some("1"), Some("error"))
    );
}

#[test]
fn grandchild_leaves_the_session_and_the_parent() {
    let env = Env::new();
    let app = env.serve("daemonizer", &["--grandchild"]);

    let record = env.wait_for("daemonizer", "grandchild");
    let orphan = Orphan(i32::try_from(record.num("pid")).unwrap());
    let stat = proc_stat(orphan.0).expect("the grandchild is running");
    let app_pid = i32::try_from(app.proc.pid()).unwrap();
    let app_stat = proc_stat(app_pid).unwrap();
    assert_ne!(stat.ppid, app_pid, "the grandchild's parent is not the app");
    assert_ne!(
        stat.session, app_stat.session,
        "the grandchild is in another session"
    );
    assert_eq!(
        stat.session, orphan.0,
        "the grandchild leads its own session"
    );
    assert_eq!(record.num("sid"), i64::from(orphan.0));

    // It ignores SIGTERM (and says so), so only SIGKILL ends it.
    orphan.signal(Signal::TERM);
    let ignored = env.wait_for_record(|r| r.event == "signal" && r.num("pid") == record.num("pid"));
    assert_eq!(ignored.get("mode"), Some("ignore"));
    assert!(proc_stat(orphan.0).is_some_and(|s| s.state != 'Z'));
    orphan.kill_and_wait();
}

#[test]
fn hook_records_start_and_end_and_exits_with_its_code() {
    let env = Env::new();
    let output = env.run(&[
        "hook",
        "pre-stop",
        "--name",
        "web",
        "--sleep",
        "0.05",
        "--exit-code",
        "3",
    ]);

    assert_eq!(output.status.code(), Some(3));
    let records = env.records();
    let hooks: Vec<_> = records.iter().filter(|r| r.event == "hook").collect();
    assert_eq!(hooks.len(), 2);
    let (start, end) = (hooks[0], hooks[1]);
    assert_eq!(
        (start.get("name"), start.get("via"), start.get("phase")),
        (Some("pre-stop"), Some("exec"), Some("start"))
    );
    assert_eq!(
        (end.get("phase"), end.get("code")),
        (Some("end"), Some("3"))
    );
    assert_eq!(start.get("pid"), end.get("pid"));
    assert!(end.nanos - start.nanos >= 50_000_000);
    // Hooks never write `exiting`: that word belongs to the app of the same name.
    assert!(find(&records, "web", "exiting").is_none());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("hook pre-stop stdout"), "{stdout}");
    assert!(stderr.contains("hook pre-stop stderr"), "{stderr}");
}

#[test]
fn hook_dies_by_sigterm_unless_told_to_ignore_it() {
    let env = Env::new();

    let mut fragile = env.spawn(&["hook", "fragile", "--name", "web", "--sleep", "30"]);
    env.wait_for_record(|r| r.get("name") == Some("fragile"));
    fragile.signal(Signal::TERM);
    assert_eq!(fragile.wait_exit().signal(), Some(15));

    let mut sturdy = env.spawn(&[
        "hook",
        "sturdy",
        "--name",
        "web",
        "--sleep",
        "0.5",
        "--ignore-term",
        "--exit-code",
        "1",
    ]);
    let start = env.wait_for_record(|r| r.get("name") == Some("sturdy"));
    sturdy.signal(Signal::TERM);
    let ignored = env.wait_for_record(|r| r.event == "signal" && r.get("pid") == start.get("pid"));
    assert_eq!(ignored.get("mode"), Some("ignore"));
    assert_eq!(sturdy.wait_exit().code(), Some(1));
    let end =
        env.wait_for_record(|r| r.get("name") == Some("sturdy") && r.get("phase") == Some("end"));
    assert_eq!(end.get("code"), Some("1"));
    assert!(find(&env.records(), "web", "exiting").is_none());
}

#[test]
fn record_appends_one_line() {
    let env = Env::new();
    let output = env.run(&[
        "record",
        "prestop",
        "phase=begin",
        "msg=two words",
        "--name",
        "sh",
    ]);
    assert!(output.status.success());
    let records = env.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, "sh");
    assert_eq!(records[0].event, "prestop");
    assert_eq!(records[0].get("phase"), Some("begin"));
    assert_eq!(records[0].get("msg"), Some("two%20words"));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .ends_with(" sh prestop phase=begin msg=two%20words\n")
    );
}

#[test]
fn concurrent_appends_from_several_processes_are_whole_lines() {
    const WRITERS: usize = 8;
    const LINES: usize = 300;
    let env = Env::new();
    // Long lines make a torn write (two partial lines interleaved) likely if writes were split.
    let padding = format!("pad={}", "x".repeat(3000));
    let mut writers: Vec<Proc> = (0..WRITERS)
        .map(|n| {
            env.spawn(&[
                "record",
                "burst",
                &padding,
                "--name",
                &format!("writer-{n}"),
                "--repeat",
                &LINES.to_string(),
            ])
        })
        .collect();
    for writer in &mut writers {
        assert!(writer.wait_exit().success());
    }

    let text = fs::read_to_string(&env.record).unwrap();
    assert!(text.ends_with('\n'));
    let mut seen = vec![vec![false; LINES]; WRITERS];
    for line in text.lines() {
        let record = Record::parse(line);
        assert_eq!(record.event, "burst");
        assert_eq!(
            record.get("pad").map(str::len),
            Some(3000),
            "torn line: {line:.80}"
        );
        let writer: usize = record
            .name
            .strip_prefix("writer-")
            .unwrap()
            .parse()
            .unwrap();
        let seq = usize::try_from(record.num("seq")).unwrap();
        assert!(!seen[writer][seq - 1], "duplicate line {line:.80}");
        seen[writer][seq - 1] = true;
    }
    assert!(seen.iter().flatten().all(|&s| s), "every line arrived");
}

#[test]
fn log_lines_go_to_stdout_and_stderr() {
    let env = Env::new();
    let stdout = env.dir.path().join("stdout");
    let stderr = env.dir.path().join("stderr");
    let mut app = Proc(
        Command::new(BIN)
            .args([
                "serve",
                "--port",
                "0",
                "--name",
                "logger",
                "--log-lines",
                "6",
            ])
            .args(["--log-line-bytes", "12", "--log-interval-ms", "1"])
            .arg("--record")
            .arg(&env.record)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    env.wait_for("logger", "logged");
    app.signal(Signal::TERM);
    assert_eq!(app.wait_exit().code(), Some(0));

    let stdout = fs::read_to_string(stdout).unwrap();
    let stderr = fs::read_to_string(stderr).unwrap();
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("line "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        lines(&stdout),
        ["line 1 xxxxx", "line 3 xxxxx", "line 5 xxxxx"]
    );
    assert_eq!(
        lines(&stderr),
        ["line 2 xxxxx", "line 4 xxxxx", "line 6 xxxxx"]
    );
    // Every record line is echoed to stdout, and only there.
    let record_file = fs::read_to_string(&env.record).unwrap();
    for line in record_file.lines() {
        assert!(stdout.contains(line), "{line} is on stdout");
        assert!(!stderr.contains(line), "{line} is not on stderr");
    }
}

#[test]
fn alloc_mb_makes_memory_resident() {
    let env = Env::new();
    let app = env.serve("hog", &["--port", "0", "--alloc-mb", "40"]);

    env.wait_for_record(|r| r.event == "allocated" && r.get("mb") == Some("40"));
    let steps: Vec<String> = env
        .records()
        .iter()
        .filter(|r| r.event == "allocated")
        .map(|r| r.get("mb").unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["16", "32", "40"]);
    let status = fs::read_to_string(format!("/proc/{}/status", app.proc.pid())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb >= 40 * 1024, "VmRSS {rss_kb} kB");
}

#[test]
fn name_and_addr_default_to_hostname_and_pod_ip() {
    let env = Env::new();
    let run = |args: &[&str], hostname: Option<&str>, pod_ip: Option<&str>| {
        let mut command = Command::new(BIN);
        command.args(args).arg("--record").arg(&env.record);
        command.env_remove("HOSTNAME").env_remove("POD_IP");
        if let Some(hostname) = hostname {
            command.env("HOSTNAME", hostname);
        }
        if let Some(pod_ip) = pod_ip {
            command.env("POD_IP", pod_ip);
        }
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let mut proc = Proc(command.spawn().unwrap());
        proc.wait_exit()
    };

    assert!(run(&["record", "one"], Some("pod-a"), None).success());
    assert!(run(&["record", "two"], None, None).success());
    // No subcommand means `serve`; POD_IP is the default address.
    let port = free_port().to_string();
    let status = run(
        &["--port", &port, "--exit-after", "0"],
        Some("pod-b"),
        Some("127.0.0.1"),
    );
    assert_eq!(status.code(), Some(0));
    // A POD_IP that is not an address is an error, not a silent fallback to 0.0.0.0.
    let status = run(&["serve", "--port", &port], Some("pod-c"), Some("nonsense"));
    assert_eq!(status.code(), Some(1));

    let records = env.records();
    assert_eq!(
        find(&records, "pod-a", "one").map(|r| r.event),
        Some("one".to_owned())
    );
    assert!(find(&records, "testapp", "two").is_some());
    let listening = find(&records, "pod-b", "listening").expect("pod-b listened");
    assert_eq!(
        listening.get("addr"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert!(find(&records, "pod-c", "error").is_some());
}

#[test]
fn alloc_mb_per_sec_spreads_the_allocation() {
    let env = Env::new();
    let _app = env.serve(
        "slow-hog",
        &["--port", "0", "--alloc-mb", "4", "--alloc-mb-per-sec", "20"],
    );

    let done = env.wait_for_record(|r| r.event == "allocated" && r.get("mb") == Some("4"));
    let started = find(&env.records(), "slow-hog", "started").unwrap();
    // The 4th MiB is due 3/20 s after the first.
    assert!(done.nanos - started.nanos >= 150_000_000);
}

#[test]
fn bad_flags_and_unwritable_record_files_exit_2() {
    let env = Env::new();
    for args in [
        &["serve", "--bogus"][..],
        &["serve", "--on-signal", "KILL=exit"],
        &["serve", "--on-signal", "TERM=drain"],
        &["serve", "--exit-after", "-1"],
        &["serve", "--name", "two words"],
        &["record", "event", "not-a-field"],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            !output.stderr.is_empty(),
            "{args:?} explains itself on stderr"
        );
    }
    let unwritable = env.dir.path().join("missing-dir").join("record");
    for args in [
        &["serve", "--port", "0"][..],
        &["hook", "x"],
        &["record", "x"],
    ] {
        let output = Command::new(BIN)
            .args(args)
            .arg("--record")
            .arg(&unwritable)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot open record file"),
            "{args:?}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A temporary directory with one record file shared by the processes of a test.
struct Env {
    dir: TempDir,
    record: PathBuf,
}

/// A running `serve` and the address it listens on.
struct App {
    proc: Proc,
    addr: SocketAddr,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record");
        Env { dir, record }
    }

    /// Starts `serve --name NAME` plus `args` recording into this env, listening on a free
    /// port of 127.0.0.1 (unless `args` has `--port`), and waits until it listens (or, with
    /// `--port 0`, until it started).
    fn serve(&self, name: &str, args: &[&str]) -> App {
        let own_port = args.contains(&"--port");
        // A free port can be taken between probing and binding; then try another one.
        for _ in 0..5 {
            let port = free_port().to_string();
            let mut argv = vec!["serve", "--name", name, "--addr", "127.0.0.1"];
            if !own_port {
                argv.extend(["--port", &port]);
            }
            argv.extend(args);
            // Records of an earlier attempt are skipped: the file only grows.
            let earlier = self.records().len();
            let proc = self.spawn(&argv);
            let record = eventually("the app listens or exits", || {
                self.records().into_iter().skip(earlier).find(|r| {
                    r.name == name
                        && (r.event == "exiting"
                            || (r.event == "listening" && !own_port)
                            || (r.event == "started" && own_port))
                })
            });
            if record.event == "exiting" {
                drop(proc);
                continue;
            }
            let addr = match record.get("addr") {
                Some(addr) => addr.parse().unwrap(),
                None => SocketAddr::from(([127, 0, 0, 1], 0)),
            };
            return App { proc, addr };
        }
        panic!(
            "`{name}` exited before listening five times; records: {:#?}",
            self.records()
        );
    }

    /// Spawns the binary with `args` and `--record` of this env; stdio is discarded.
    fn spawn(&self, args: &[&str]) -> Proc {
        Proc(
            Command::new(BIN)
                .args(args)
                .arg("--record")
                .arg(&self.record)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// Runs the binary with `args` and `--record` of this env to completion, capturing output.
    fn run(&self, args: &[&str]) -> Output {
        let child = Command::new(BIN)
            .args(args)
            .arg("--record")
            .arg(&self.record)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The guard kills a hanging process if the deadline below fails the test. The output
        // is small, so the pipes cannot fill up before the process exits.
        let mut proc = Proc(child);
        let status = proc.wait_exit();
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        proc.0
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        proc.0
            .stderr
            .take()
            .unwrap()
            .read_to_end(&mut stderr)
            .unwrap();
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Every record so far.
    fn records(&self) -> Vec<Record> {
        match fs::read_to_string(&self.record) {
            Ok(text) => text.lines().map(Record::parse).collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => panic!("cannot read {}: {error}", self.record.display()),
        }
    }

    /// Waits for the first record of `name` with `event`.
    fn wait_for(&self, name: &str, event: &str) -> Record {
        self.wait_for_record(|r| r.name == name && r.event == event)
    }

    /// Waits for the first record matching `pred`.
    fn wait_for_record(&self, pred: impl Fn(&Record) -> bool) -> Record {
        eventually("a matching record", || {
            self.records().into_iter().find(|r| pred(r))
        })
    }
}

/// A child process, killed by pid and waited for when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn signal(&self, signal: Signal) {
        kill_process(Pid::from_child(&self.0), signal).unwrap();
    }

    /// Waits for the process to exit, failing the test after the deadline.
    fn wait_exit(&mut self) -> ExitStatus {
        eventually("the process exits", || self.0.try_wait().unwrap())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Why errors are ignored: the process may have exited already.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process that is not our child (the `--grandchild` orphan); SIGKILLed on drop.
struct Orphan(i32);

impl Orphan {
    fn signal(&self, signal: Signal) {
        kill_process(Pid::from_raw(self.0).unwrap(), signal).unwrap();
    }

    /// SIGKILLs the orphan and waits until it is gone (or a zombie, if its new parent does
    /// not reap it).
    fn kill_and_wait(self) {
        self.signal(Signal::KILL);
        eventually("the orphan dies", || match proc_stat(self.0) {
            None => Some(()),
            Some(stat) if stat.state == 'Z' => Some(()),
            Some(_) => None,
        });
    }
}

impl Drop for Orphan {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.0) {
            // Why the result is ignored: normally the test killed it already.
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}

/// One parsed record line.
#[derive(Debug, Clone)]
struct Record {
    nanos: u128,
    name: String,
    event: String,
    fields: Vec<(String, String)>,
}

impl Record {
    /// Parses `<nanos> <name> <event> [k=v ...]`, failing the test on anything else.
    fn parse(line: &str) -> Record {
        let mut words = line.split(' ');
        let (Some(nanos), Some(name), Some(event)) = (words.next(), words.next(), words.next())
        else {
            panic!("malformed record line: {line:.100}");
        };
        let fields = words
            .map(|w| {
                let (k, v) = w
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad field in {line:.100}"));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Record {
            nanos: nanos
                .parse()
                .unwrap_or_else(|_| panic!("bad time in {line:.100}")),
            name: name.to_owned(),
            event: event.to_owned(),
            fields,
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric field; -1 if missing or not a number.
    fn num(&self, key: &str) -> i64 {
        self.get(key).and_then(|v| v.parse().ok()).unwrap_or(-1)
    }
}

/// The first record of `name` with `event`.
fn find(records: &[Record], name: &str, event: &str) -> Option<Record> {
    records
        .iter()
        .find(|r| r.name == name && r.event == event)
        .cloned()
}

/// Polls `f` every 10 ms until it returns `Some`, failing the test after the deadline.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fields of /proc/PID/stat that tests use.
struct Stat {
    state: char,
    ppid: i32,
    session: i32,
}

/// Reads /proc/PID/stat; `None` once the process is gone.
fn proc_stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(Stat {
        state: fields[0].chars().next()?,
        ppid: fields[1].parse().ok()?,
        session: fields[3].parse().ok()?,
    })
}

/// A parsed HTTP/1.1 response.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a new connection.
fn get(addr: SocketAddr, path: &str) -> Response {
    Connection::open(addr).get(path)
}

/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u8 = 1;

/// `HealthCheckResponse.ServingStatus.NOT_SERVING`.
const NOT_SERVING: u8 = 2;

/// The answer to a gRPC health check.
#[derive(Debug, PartialEq)]
enum Grpc {
    /// grpc-status 0 and this `status`.
    Status(u8),
    /// A non-zero grpc-status and its message.
    Error(u32, String),
}

/// Calls `grpc.health.v1.Health/Check` for `service` over h2c, checking the gRPC framing of
/// the answer. Written inline (the test app's tests do not use the library's client).
fn grpc_check(addr: SocketAddr, service: &str) -> Grpc {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    // HealthCheckRequest { service }: field 1, length-delimited; omitted when empty.
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        message.push(u8::try_from(service.len()).expect("a short service name"));
        message.extend_from_slice(service.as_bytes());
    }
    let mut body = vec![0];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        let connection = tokio::spawn(connection);
        let request = hyper::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/grpc");
        let headers = response.headers().clone();
        let collected = response.into_body().collect().await.unwrap();
        connection.abort();
        // A Trailers-Only answer carries its status in the headers.
        let status_fields = collected.trailers().cloned().unwrap_or(headers);
        let data = collected.to_bytes();
        let code: u32 = status_fields["grpc-status"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if code != 0 {
            assert!(data.is_empty(), "an error carries no message");
            let message = status_fields
                .get("grpc-message")
                .map_or("", |v| v.to_str().unwrap());
            return Grpc::Error(code, message.to_owned());
        }
        // One uncompressed message of 2 bytes: field 1 (varint) = status.
        assert_eq!(
            &data[..],
            &[0, 0, 0, 0, 2, 0x08, data[6]][..],
            "{data:02x?}"
        );
        Grpc::Status(data[6])
    })
}

/// A keep-alive HTTP/1.1 client connection.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Connection {
            reader: BufReader::new(stream),
        }
    }

    /// Sends `GET path` and reads the response (bodies always have a content-length here).
    fn get(&mut self, path: &str) -> Response {
        let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: String::new(),
        };
        let length: usize = response
            .header("content-length")
            .map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        response.body = String::from_utf8(body).unwrap();
        response
    }
}
