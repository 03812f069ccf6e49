//! `serve`: the long-running app. Starts the HTTP server and the background activities, then
//! decides when to exit: on a signal, at the end of a drain, after `--exit-after`, or on
//! `/exit`. Every exit is graceful and recorded as `exiting code=N`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::header::HeaderValue;
use tokio::net::TcpListener;
use tokio::signal::unix::signal;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::cli::{ServeArgs, SignalMode, StopSignal};
use crate::record::{Echo, Recorder};
use crate::{background, http, orphan};

/// Something that moves the app towards its exit; sent by signal handlers and `/exit`.
#[derive(Debug)]
pub enum Event {
    /// Exit gracefully now with `code`.
    Exit {
        code: u8,
        /// The `reason=` of the `exiting` record.
        reason: &'static str,
    },
    /// Keep serving for `period`, then exit gracefully with `code`.
    Drain { period: Duration, code: u8 },
}

/// Runs `serve` to the end and returns the exit code.
pub fn run(args: ServeArgs) -> u8 {
    let recorder = match Recorder::open(&args.common) {
        Ok(recorder) => Arc::new(recorder),
        Err(error) => return crate::usage_error(&error),
    };
    // One thread: a benchmark runs a thousand copies of this app.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return crate::runtime_error(&error),
    };
    runtime.block_on(serve(args, recorder))
}

/// The body of `serve`, inside the runtime.
async fn serve(args: ServeArgs, recorder: Arc<Recorder>) -> u8 {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let stop_signalled = Arc::new(AtomicBool::new(false));

    // Handlers go in before `started` is recorded, so a signal sent by a test that saw
    // `started` is always handled.
    for (sig, mode) in args.signal_modes() {
        if mode == SignalMode::Default {
            continue;
        }
        let mut stream = match signal(sig.kind()) {
            Ok(stream) => stream,
            Err(error) => return fail(&recorder, &format!("cannot handle {sig}: {error}")),
        };
        let recorder = recorder.clone();
        let events = events_tx.clone();
        let stop_signalled = stop_signalled.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                on_signal(&recorder, sig, mode, &events, &stop_signalled);
            }
        });
    }

    let pid = rustix::process::getpid().as_raw_pid();
    let (pgid, sid) = process_group_and_session();
    let ppid = rustix::process::Pid::as_raw(rustix::process::getppid());
    recorder.record(
        "started",
        &[
            ("pid", &pid),
            ("pgid", &pgid),
            ("sid", &sid),
            ("ppid", &ppid),
        ],
    );

    if args.grandchild
        && let Err(error) = orphan::leave_grandchild(&recorder, &args.common)
    {
        return fail(&recorder, &format!("cannot start the grandchild: {error}"));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server = None;
    if args.port != 0 {
        let ip = match args.addr.map_or_else(default_addr, Ok) {
            Ok(ip) => ip,
            Err(message) => return fail(&recorder, &message),
        };
        let listener = match TcpListener::bind(SocketAddr::new(ip, args.port)).await {
            Ok(listener) => listener,
            Err(error) => {
                return fail(
                    &recorder,
                    &format!("cannot listen on {ip}:{}: {error}", args.port),
                );
            }
        };
        let addr = listener
            .local_addr()
            .map_or_else(|_| format!("{ip}:{}", args.port), |a| a.to_string());
        let app = Arc::new(http::App {
            // The name was validated as printable ASCII, which is always a valid header value.
            name_header: HeaderValue::from_str(recorder.name())
                .unwrap_or_else(|_| HeaderValue::from_static("testapp")),
            recorder: recorder.clone(),
            started: std::time::Instant::now(),
            ready_after: args.ready_after,
            healthy_for: args.healthy_for,
            unready_on_term: args.unready_on_term,
            record_requests: args.record_requests,
            health_failed: AtomicBool::new(false),
            ready_failed: AtomicBool::new(false),
            stop_signalled,
            events: events_tx.clone(),
        });
        server = Some(tokio::spawn(http::run(listener, app, stop_rx)));
        recorder.record("listening", &[("addr", &addr)]);
    }

    if args.alloc_mb > 0 {
        tokio::spawn(background::allocate(
            recorder.clone(),
            args.alloc_mb,
            args.alloc_mb_per_sec,
        ));
    }
    if args.log_lines > 0 {
        tokio::spawn(background::write_logs(
            recorder.clone(),
            args.log_lines,
            Duration::from_millis(args.log_interval_ms),
            args.log_line_bytes,
        ));
    }

    // Decide when to exit.
    let exit_after = args.exit_after.map(|after| Instant::now() + after);
    let mut drain: Option<(Instant, u8)> = None;
    let (code, reason) = loop {
        tokio::select! {
            Some(event) = events.recv() => match event {
                Event::Exit { code, reason } => break (code, reason),
                Event::Drain { period, code } => {
                    // A second drain signal does not move the deadline.
                    if drain.is_none() {
                        recorder.record("draining", &[("secs", &period.as_secs_f64())]);
                        drain = Some((Instant::now() + period, code));
                    }
                }
            },
            () = sleep_until(drain.map(|(deadline, _)| deadline)) => {
                break (drain.map_or(0, |(_, code)| code), "drain");
            }
            () = sleep_until(exit_after) => break (args.exit_code, "exit-after"),
        }
    };

    // Why the result is ignored: the receiver lives in the server task, which may be gone.
    let _ = stop_tx.send(true);
    if let Some(server) = server {
        // Why the result is ignored: the server task does not panic, and if it did there is
        // nothing left to finish.
        let _ = server.await;
    }
    // `events_tx` is dropped only here so `events.recv()` above never sees a closed channel.
    drop(events_tx);
    recorder.record("exiting", &[("code", &code), ("reason", &reason)]);
    code
}

/// Reacts to one signal according to its mode.
fn on_signal(
    recorder: &Recorder,
    sig: StopSignal,
    mode: SignalMode,
    events: &mpsc::UnboundedSender<Event>,
    stop_signalled: &AtomicBool,
) {
    let pid = std::process::id();
    recorder.emit(
        "signal",
        &[("sig", &sig), ("mode", &mode.word()), ("pid", &pid)],
        // Stdout only: the app's log shows each signal once (`--log-lines` covers stderr).
        Echo::Stdout,
    );
    let event = match mode {
        SignalMode::Exit { code } => Event::Exit {
            code,
            reason: "signal",
        },
        SignalMode::Drain { period, code } => Event::Drain { period, code },
        SignalMode::Ignore | SignalMode::Default => return,
    };
    stop_signalled.store(true, Ordering::Relaxed);
    // Why the result is ignored: once `serve` stopped listening it is already exiting, and a
    // late signal changes nothing.
    let _ = events.send(event);
}

/// Records an error and the exit it causes; returns exit code 1.
fn fail(recorder: &Recorder, message: &str) -> u8 {
    eprintln!("podvisor-testapp: {message}");
    recorder.record("error", &[("msg", &message)]);
    recorder.record("exiting", &[("code", &1), ("reason", &"error")]);
    1
}

/// `$POD_IP`, else 0.0.0.0. A `$POD_IP` that is not an address is an error rather than a
/// silent fallback, so a bad downward-API value shows up in tests.
fn default_addr() -> Result<IpAddr, String> {
    match std::env::var("POD_IP") {
        Ok(ip) if !ip.is_empty() => ip
            .parse()
            .map_err(|_| format!("$POD_IP `{ip}` is not an IP address")),
        _ => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The process group and session of this process as `/proc/self/stat` reports them.
///
/// Read from procfs rather than `getpgrp`/`getsid`: when the group or session leader lives
/// outside our PID namespace (a container that runs the tests), the kernel reports 0, which
/// rustix's `Pid` cannot hold (it asserts in debug builds). 0 is recorded as is.
fn process_group_and_session() -> (i32, i32) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state ppid pgrp session ...
    let mut fields = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .skip(2)
        .map(|field| field.parse().unwrap_or(0));
    let pgid = fields.next().unwrap_or(0);
    let sid = fields.next().unwrap_or(0);
    (pgid, sid)
}
