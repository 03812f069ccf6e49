//! Background activities of `serve`: memory allocation (`--alloc-mb`) and log output
//! (`--log-lines`). Each is one task that runs beside the HTTP server.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::record::Recorder;

/// One allocation chunk.
const MIB: usize = 1 << 20;

/// Touching one byte every this many bytes touches every page (pages are at least 4 KiB).
const PAGE: usize = 4096;

/// Allocates `total_mb` MiB in 1 MiB chunks, writing to every page so the memory is resident,
/// then holds it until the process exits. Records `allocated mb=K` every 16 MiB and at the end.
/// Without a rate the task still yields after each chunk so the server keeps answering.
pub async fn allocate(recorder: Arc<Recorder>, total_mb: u64, mb_per_sec: Option<f64>) {
    let start = Instant::now();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for mb in 1..=total_mb {
        let mut chunk = vec![0u8; MIB];
        for byte in chunk.iter_mut().step_by(PAGE) {
            *byte = 1;
        }
        // `black_box` keeps the compiler from dropping writes that are never read.
        chunks.push(std::hint::black_box(chunk));
        if mb % 16 == 0 || mb == total_mb {
            recorder.record("allocated", &[("mb", &mb)]);
        }
        match mb_per_sec {
            Some(rate) => {
                // Chunk `mb` is due at `mb / rate` seconds, so the rate does not drift.
                let due = Duration::try_from_secs_f64(mb as f64 / rate).unwrap_or(Duration::MAX);
                tokio::time::sleep_until(start.checked_add(due).unwrap_or(start)).await;
            }
            None => tokio::task::yield_now().await,
        }
    }
    // Hold the memory: this task ends only with the process.
    std::future::pending::<()>().await;
    drop(chunks);
}

/// Prints `count` lines `line 1`, `line 2`, ...: odd ones to stdout, even ones to stderr,
/// each padded with `x` to `line_bytes` bytes, `interval` apart. Then records `logged lines=N`.
pub async fn write_logs(
    recorder: Arc<Recorder>,
    count: u64,
    interval: Duration,
    line_bytes: usize,
) {
    for n in 1..=count {
        let line = log_line(n, line_bytes);
        // Why errors are ignored: a closed stdout/stderr must not stop the app.
        let _ = if n % 2 == 0 {
            io::stderr().lock().write_all(line.as_bytes())
        } else {
            io::stdout().lock().write_all(line.as_bytes())
        };
        if !interval.is_zero() {
            tokio::time::sleep(interval).await;
        } else if n % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    recorder.record("logged", &[("lines", &count)]);
}

/// `line N`, padded as ` xxx...` to `line_bytes` bytes when that is longer, plus a newline.
fn log_line(n: u64, line_bytes: usize) -> String {
    let mut line = format!("line {n}");
    if line_bytes > line.len() {
        line.push(' ');
        let pad = line_bytes - line.len();
        line.extend(std::iter::repeat_n('x', pad));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_padded() {
        assert_eq!(log_line(7, 0), "line 7\n");
        assert_eq!(log_line(7, 6), "line 7\n");
        assert_eq!(log_line(7, 7), "line 7 \n");
        assert_eq!(log_line(7, 10), "line 7 xxx\n");
    }
}
