//! The record file: one line per event, appended atomically, echoed to stdout.
//!
//! Several processes (the app, its hooks, its grandchild) append to one file at once, so each
//! line goes out in a single write(2) on a descriptor opened with O_APPEND; Linux then never
//! interleaves two lines. The line format is in `cli::RECORD_FORMAT`.

use std::fmt::{self, Display, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::CommonArgs;

/// Where to echo a line besides stdout and the record file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Stdout only.
    Stdout,
    /// Stdout and stderr (signal lines, so log capture of both streams can be tested).
    StdoutAndStderr,
}

/// Writes record lines. Shared by every task of a process (`Arc<Recorder>`).
#[derive(Debug)]
pub struct Recorder {
    /// The name in every line; validated to be printable ASCII without spaces.
    name: String,
    /// The record file, opened for appending; `None` without `--record`.
    file: Option<File>,
}

/// Why a recorder could not be made; each is a usage error (exit code 2).
#[derive(Debug)]
pub enum OpenError {
    /// The name is empty or has characters that cannot go in a record line or a header.
    InvalidName(String),
    /// The record file cannot be opened for appending.
    File(std::path::PathBuf, io::Error),
}

impl Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::InvalidName(name) => write!(
                f,
                "invalid name `{name}`: expected printable ASCII without spaces"
            ),
            OpenError::File(path, error) => {
                write!(f, "cannot open record file `{}`: {error}", path.display())
            }
        }
    }
}

impl Recorder {
    /// Resolves the name (`--name`, else `$HOSTNAME`, else `testapp`) and opens the record file.
    pub fn open(common: &CommonArgs) -> Result<Recorder, OpenError> {
        let name = common
            .name
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "testapp".to_owned());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(OpenError::InvalidName(name));
        }
        let file = match &common.record {
            Some(path) => Some(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .map_err(|error| OpenError::File(path.clone(), error))?,
            ),
            None => None,
        };
        Ok(Recorder { name, file })
    }

    /// The resolved name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `--name`/`--record` flags that make a child process record the same way.
    pub fn child_args(&self, common: &CommonArgs) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--name".into(), self.name.clone().into()];
        if let Some(path) = &common.record {
            args.push("--record".into());
            args.push(path.clone().into());
        }
        args
    }

    /// Records `event` with `fields`, echoing the line to stdout.
    pub fn record(&self, event: &str, fields: &[(&str, &dyn Display)]) {
        self.emit(event, fields, Echo::Stdout);
    }

    /// Records `event` with `fields`, echoing the line as `echo` says.
    ///
    /// Errors are reported on stderr and otherwise ignored: a full disk must not change how
    /// the app reacts to signals, which is what tests observe.
    pub fn emit(&self, event: &str, fields: &[(&str, &dyn Display)], echo: Echo) {
        let line = format_line(unix_nanos(), &self.name, event, fields);
        if let Some(file) = &self.file {
            // One write(2): with O_APPEND the kernel places the whole line at the end of the
            // file under the inode lock, so concurrent writers never interleave.
            match (&*file).write(line.as_bytes()) {
                Ok(n) if n == line.len() => {}
                Ok(n) => eprintln!(
                    "podvisor-testapp: short write to the record file ({n} of {} bytes)",
                    line.len()
                ),
                Err(error) => eprintln!("podvisor-testapp: cannot write the record file: {error}"),
            }
        }
        // Why errors are ignored: a closed stdout/stderr (EPIPE) must not stop the app.
        let _ = io::stdout().lock().write_all(line.as_bytes());
        if echo == Echo::StdoutAndStderr {
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Formats one record line, newline included.
pub fn format_line(
    nanos: u128,
    name: &str,
    event: &str,
    fields: &[(&str, &dyn Display)],
) -> String {
    let mut line = format!("{nanos} {name} {}", escape(event));
    for (key, value) in fields {
        // Writing to a String cannot fail.
        let _ = write!(line, " {}={}", escape(key), escape(&value.to_string()));
    }
    line.push('\n');
    line
}

/// Percent-encodes the bytes that would break a record line: anything outside printable
/// ASCII, space, and `%` itself.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_documented_shape() {
        let line = format_line(
            12,
            "web",
            "signal",
            &[("sig", &"SIGTERM"), ("pid", &42), ("msg", &"a b%\n")],
        );
        assert_eq!(line, "12 web signal sig=SIGTERM pid=42 msg=a%20b%25%0A\n");
        assert_eq!(format_line(1, "n", "started", &[]), "1 n started\n");
        assert_eq!(escape("é"), "%C3%A9");
    }
}
