//! Container log files: one file per container instance, one timestamped line per output line,
//! rotated by size, in the CRI logging format the kubelet reads:
//!
//! ```text
//! 2026-11-28T10:00:00.123456789Z stdout F hello
//! ```
//!
//! (timestamp in RFC 3339 with nanoseconds, stream, `F` for a full line or `P` for a partial
//! one, the text). Files live at `<data dir>/pods/<namespace>_<name>_<uid>/<container>/<restart
//! count>.log`, as the kubelet's `/var/log/pods`; a rotated file gets a `.<timestamp>` suffix.
//! Every line is also published on a broadcast channel, which `podvisor up` prints.
//!
//! Must not: block on a slow subscriber (the channel drops for laggards), or buffer lines.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use tokio::net::unix::pipe;
use tokio::sync::broadcast;

/// Longest line written as one record; longer output is split into `P` records (as CRI does).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Which pod and container a line came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogSource {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// A line of container output, as published to `up`.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub source: Arc<LogSource>,
    pub stream: Stream,
    pub time: Timestamp,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Size-based rotation settings (the kubelet's `containerLogMaxSize`, `containerLogMaxFiles`).
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    pub max_bytes: u64,
    /// Files kept per container instance, the current one included.
    pub max_files: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// The directory of a pod's logs below the data dir.
pub fn pod_log_dir(data_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    data_dir
        .join("pods")
        .join(format!("{namespace}_{name}_{uid}"))
}

/// The restart count a container's next instance gets from its log files alone: one more
/// than the highest `<n>.log` (the kubelet's `calcRestartCountByLogDir`, used when a node
/// restarts and has no other memory of earlier instances).
pub fn restart_count_from_logs(container_dir: &Path) -> i32 {
    fs::read_dir(container_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split('.').next()?.parse::<i32>().ok()
        })
        .max()
        .map_or(0, |n| n + 1)
}

/// The writer of one container instance's log file.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl LogWriter {
    /// Opens (appending) `<dir>/<restart_count>.log`.
    pub fn open(dir: &Path, restart_count: i32, rotation: Rotation) -> io::Result<LogWriter> {
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{restart_count}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path,
            file,
            size,
            rotation,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record: `<time> <stream> <F|P> <text>\n`.
    pub fn write_record(
        &mut self,
        time: Timestamp,
        stream: Stream,
        partial: bool,
        text: &[u8],
    ) -> io::Result<()> {
        let mut record = Vec::with_capacity(text.len() + 48);
        record.extend_from_slice(format_time(time).as_bytes());
        record.push(b' ');
        record.extend_from_slice(stream.as_str().as_bytes());
        record.extend_from_slice(if partial { b" P " } else { b" F " });
        record.extend_from_slice(text);
        record.push(b'\n');
        self.file.write_all(&record)?;
        self.size += record.len() as u64;
        if self.size >= self.rotation.max_bytes {
            self.rotate(time)?;
        }
        Ok(())
    }

    fn rotate(&mut self, time: Timestamp) -> io::Result<()> {
        let suffix = time.strftime("%Y%m%d-%H%M%S.%N").to_string();
        let rotated = self.path.with_extension(format!("log.{suffix}"));
        fs::rename(&self.path, &rotated)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        // Keep the newest `max_files - 1` rotated files of this instance.
        let prefix = format!(
            "{}.",
            self.path.file_name().unwrap_or_default().to_string_lossy()
        );
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut rotated: Vec<PathBuf> = fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        rotated.sort();
        let keep = self.rotation.max_files.saturating_sub(1);
        if rotated.len() > keep {
            for old in &rotated[..rotated.len() - keep] {
                // Why ignored: a file removed concurrently is already gone.
                let _ = fs::remove_file(old);
            }
        }
        Ok(())
    }
}

/// RFC 3339 in UTC with nanoseconds, fixed width so files sort and parse easily.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

/// Copies a container's stdout and stderr into its log file and onto `tx` until both close.
pub async fn pump(
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
    mut writer: LogWriter,
    source: Arc<LogSource>,
    tx: broadcast::Sender<LogLine>,
) {
    let mut out = LineSplitter::new(stdout, Stream::Stdout);
    let mut err = LineSplitter::new(stderr, Stream::Stderr);
    let mut out_open = true;
    let mut err_open = true;
    while out_open || err_open {
        let (records, stream_open) = tokio::select! {
            r = out.next_records(), if out_open => (r, &mut out_open),
            r = err.next_records(), if err_open => (r, &mut err_open),
        };
        match records {
            Some(records) => {
                for (stream, partial, text) in records {
                    let time = Timestamp::now();
                    if let Err(error) = writer.write_record(time, stream, partial, &text) {
                        tracing::warn!(path = %writer.path().display(), %error, "cannot write container log");
                    }
                    if tx.receiver_count() > 0 {
                        // Why ignored: no subscriber, or all lagging; `up` tolerates gaps.
                        let _ = tx.send(LogLine {
                            source: source.clone(),
                            stream,
                            time,
                            text: String::from_utf8_lossy(&text).into_owned(),
                        });
                    }
                }
            }
            None => *stream_open = false,
        }
    }
}

/// Splits a pipe's bytes into lines of at most `MAX_LINE_BYTES`.
struct LineSplitter {
    pipe: pipe::Receiver,
    stream: Stream,
    buf: Vec<u8>,
    eof: bool,
}

impl LineSplitter {
    fn new(pipe: pipe::Receiver, stream: Stream) -> Self {
        LineSplitter {
            pipe,
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The next complete records `(stream, partial, text)`; None at end of file.
    async fn next_records(&mut self) -> Option<Vec<(Stream, bool, Vec<u8>)>> {
        loop {
            let mut records = Vec::new();
            while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                while line.len() > MAX_LINE_BYTES {
                    let rest = line.split_off(MAX_LINE_BYTES);
                    records.push((self.stream, true, line));
                    line = rest;
                }
                records.push((self.stream, false, line));
            }
            while self.buf.len() > MAX_LINE_BYTES {
                let rest = self.buf.split_off(MAX_LINE_BYTES);
                let chunk = std::mem::replace(&mut self.buf, rest);
                records.push((self.stream, true, chunk));
            }
            if self.eof {
                if !self.buf.is_empty() {
                    records.push((self.stream, false, std::mem::take(&mut self.buf)));
                }
                return (!records.is_empty()).then_some(records);
            }
            if !records.is_empty() {
                return Some(records);
            }
            // Wait for output without a buffer and read it with one on the stack: an idle pump
            // holds no buffer (1,000 pods held 2 × 8 KiB each in their pumps' futures).
            if self.buf.is_empty() {
                self.buf = Vec::new();
            }
            if self.pipe.readable().await.is_err() {
                self.eof = true;
                continue;
            }
            let mut chunk = [0u8; 8192];
            match self.pipe.try_read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.eof = true,
            }
        }
    }
}
