//! Printing shared by the client commands: kubectl's column alignment (Go's `text/tabwriter`
//! with the `RememberWidths` flag of the fork kubectl uses), server-side Tables as `kubectl get`
//! prints them (cli-runtime `tableprinter.go`), `-o json|yaml|name`, and times and ages.
//!
//! Must not: fetch anything; commands fetch, this module formats.

use std::io::Write;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use crate::model::table::human_duration;

/// Go's elastic tabstops (`text/tabwriter`): cells end with `\t`, lines with `\n`; a column
/// block is a run of consecutive lines that have a cell in that column, and each block is as
/// wide as its widest cell plus the padding. The last cell of a line is never padded.
pub struct TabWriter {
    /// Smallest width of a column, padding included.
    minwidth: usize,
    /// Spaces added to the widest cell of a column.
    padding: usize,
    /// Keep each column's widest width across flushes (kubectl's `RememberWidths`), so rows
    /// printed later (watch events) stay aligned with the header.
    remember: bool,
    /// Complete lines not written yet, as cells.
    lines: Vec<Vec<Cell>>,
    /// The line being written.
    line: Vec<Cell>,
    /// The cell being written.
    cell: String,
    /// The widths of the columns to the left of the one being formatted.
    widths: Vec<usize>,
    /// Remembered widths per column.
    max_widths: Vec<usize>,
    /// Formatted text not yet taken by `take`.
    out: String,
}

struct Cell {
    text: String,
    width: usize,
}

impl TabWriter {
    /// kubectl's table writer: `printers.GetNewTabWriter` (minwidth 6, padding 3, widths
    /// remembered).
    pub fn for_tables() -> TabWriter {
        TabWriter::new(6, 3, true)
    }

    /// `kubectl describe`'s writer (`tabbedString`: minwidth 0, padding 2).
    pub fn for_describe() -> TabWriter {
        TabWriter::new(0, 2, false)
    }

    fn new(minwidth: usize, padding: usize, remember: bool) -> TabWriter {
        TabWriter {
            minwidth,
            padding,
            remember,
            lines: Vec::new(),
            line: Vec::new(),
            cell: String::new(),
            widths: Vec::new(),
            max_widths: Vec::new(),
            out: String::new(),
        }
    }

    /// Adds text; `\t` ends a cell and `\n` a line.
    pub fn write(&mut self, text: &str) {
        for ch in text.chars() {
            match ch {
                '\t' => self.end_cell(),
                '\n' => {
                    self.end_cell();
                    let line = std::mem::take(&mut self.line);
                    let single = line.len() == 1;
                    self.lines.push(line);
                    if single {
                        // A line without tabs ends every column block (Go flushes here).
                        self.format_all();
                    }
                }
                c => self.cell.push(c),
            }
        }
    }

    fn end_cell(&mut self) {
        let text = std::mem::take(&mut self.cell);
        let width = text.chars().count();
        self.line.push(Cell { text, width });
    }

    /// Formats every complete line (a partial last line stays buffered).
    pub fn flush(&mut self) {
        self.format_all();
    }

    /// Flushes and returns the formatted text.
    pub fn take(&mut self) -> String {
        self.flush();
        std::mem::take(&mut self.out)
    }

    /// Flushes to stdout.
    pub fn print(&mut self) {
        out(&self.take());
    }

    fn format_all(&mut self) {
        let n = self.lines.len();
        self.format(0, n);
        self.lines.clear();
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A cell exists in this column: a column block begins.
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            if self.remember {
                if self.max_widths.len() <= column {
                    self.max_widths.resize(column + 1, 0);
                }
                width = width.max(self.max_widths[column]);
                self.max_widths[column] = width;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for line in &self.lines[line0..line1] {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(&cell.text);
                if j < self.widths.len() && j + 1 < line.len() {
                    for _ in cell.width..self.widths[j] {
                        self.out.push(' ');
                    }
                }
            }
            self.out.push('\n');
        }
    }
}

/// Writes to stdout and flushes; a closed stdout (a pipe to `head`) is not an error of the
/// command, so it is ignored instead of panicking as `print!` would.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // Why ignored: see above.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// How `get` prints Tables.
#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    /// `-o wide`: columns of every priority.
    pub wide: bool,
    pub no_headers: bool,
    /// `-A`: a NAMESPACE column first (for namespaced resources).
    pub with_namespace: bool,
    /// `--show-labels`: a LABELS column last.
    pub show_labels: bool,
    /// `pod`, `deployment.apps`: prefixes names when several types are printed.
    pub kind_prefix: Option<String>,
}

/// kubectl's human-readable printer for server-side Tables: headers once per column set,
/// columns of priority 0 (all with `-o wide`), rows aligned by a shared [`TabWriter`].
pub struct TablePrinter {
    pub writer: TabWriter,
    /// The column definitions of the last Table printed; watch events after the first carry
    /// none and reuse these.
    last_columns: Vec<Value>,
    printed_headers: bool,
}

impl Default for TablePrinter {
    fn default() -> Self {
        TablePrinter {
            writer: TabWriter::for_tables(),
            last_columns: Vec::new(),
            printed_headers: false,
        }
    }
}

impl TablePrinter {
    /// Adds a Table's rows (and the header, unless printed already for the same columns).
    /// Returns the number of rows.
    pub fn add(&mut self, table: &Value, options: &TableOptions) -> usize {
        let columns: Vec<Value> = table["columnDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut no_headers = options.no_headers;
        if self.printed_headers && (columns.is_empty() || columns == self.last_columns) {
            no_headers = true;
        }
        let columns = if columns.is_empty() {
            self.last_columns.clone()
        } else {
            if columns != self.last_columns {
                self.last_columns = columns.clone();
                self.printed_headers = false;
            }
            columns
        };
        let rows: &[Value] = table["rows"].as_array().map_or(&[], Vec::as_slice);
        if rows.is_empty() {
            return 0;
        }
        self.printed_headers = true;
        let shown = |c: &Value| options.wide || c["priority"].as_i64().unwrap_or(0) == 0;
        if !no_headers {
            let mut header: Vec<String> = Vec::new();
            if options.with_namespace {
                header.push("NAMESPACE".to_owned());
            }
            for c in columns.iter().filter(|c| shown(c)) {
                header.push(c["name"].as_str().unwrap_or_default().to_uppercase());
            }
            if options.show_labels {
                header.push("LABELS".to_owned());
            }
            self.writer.write(&(header.join("\t") + "\n"));
        }
        let name_column = columns.iter().position(|c| c["format"] == "name");
        for row in rows {
            let metadata = &row["object"]["metadata"];
            let mut cells: Vec<String> = Vec::new();
            if options.with_namespace {
                cells.push(
                    metadata["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            let values: &[Value] = row["cells"].as_array().map_or(&[], Vec::as_slice);
            for (i, column) in columns.iter().enumerate() {
                if !shown(column) {
                    continue;
                }
                let mut text = values.get(i).map(cell_text).unwrap_or_default();
                if Some(i) == name_column
                    && let Some(prefix) = &options.kind_prefix
                {
                    text = format!("{prefix}/{text}");
                }
                cells.push(text);
            }
            if options.show_labels {
                cells.push(format_labels(&metadata["labels"]));
            }
            self.writer.write(&(cells.join("\t") + "\n"));
        }
        rows.len()
    }
}

/// A Table cell as kubectl prints it: strings up to their first line break (then `...`),
/// other values as Go's `%v`, nothing for null.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => match s.find(['\n', '\r', '\x0c']) {
            Some(i) => format!("{}...", &s[..i]),
            None => s.clone(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `labels.FormatLabels`: `a=b,c=d` sorted by key, `<none>` when empty.
pub fn format_labels(labels: &Value) -> String {
    match labels.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".to_owned(),
    }
}

/// The output formats of `get` and `events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Tables (the default).
    Human,
    Wide,
    Json,
    Yaml,
    Name,
}

impl Output {
    /// Parses `-o`: `wide`, `json`, `yaml`, `name`.
    pub fn parse(s: &str) -> Result<Output, String> {
        match s {
            "" => Ok(Output::Human),
            "wide" => Ok(Output::Wide),
            "json" => Ok(Output::Json),
            "yaml" => Ok(Output::Yaml),
            "name" => Ok(Output::Name),
            other => Err(format!(
                "unable to match a printer suitable for the output format {other:?}, allowed formats are: json,name,wide,yaml"
            )),
        }
    }

    pub fn is_human(self) -> bool {
        matches!(self, Output::Human | Output::Wide)
    }
}

/// JSON as kubectl prints it: keys sorted, four-space indent, a final newline.
pub fn to_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Why no error: a `Value` always serializes.
    let _ = serde::Serialize::serialize(value, &mut serializer);
    let mut text = String::from_utf8(out).unwrap_or_default();
    text.push('\n');
    text
}

/// YAML as kubectl prints it: keys sorted, lists not indented under their key, strings that
/// YAML 1.1 would read as something else quoted, multi-line strings as literal blocks.
pub fn to_yaml(value: &Value) -> String {
    let options = serde_saphyr::ser_options! {
        folded_wrap_chars: usize::MAX,
    };
    let mut text = serde_saphyr::to_string_with_options(value, options).unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// An object with `apiVersion` and `kind` filled in from its resource, as client-go does for
/// list items.
pub fn with_type(mut object: Value, api_version: &str, kind: &str) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(api_version.to_owned()));
        map.entry("kind")
            .or_insert_with(|| Value::String(kind.to_owned()));
    }
    object
}

/// kubectl's `v1 List` of several objects.
pub fn list_of(items: Vec<Value>) -> Value {
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".to_owned(), Value::String(String::new()));
    let mut list = Map::new();
    list.insert("apiVersion".to_owned(), Value::String("v1".to_owned()));
    list.insert("items".to_owned(), Value::Array(items));
    list.insert("kind".to_owned(), Value::String("List".to_owned()));
    list.insert("metadata".to_owned(), Value::Object(metadata));
    Value::Object(list)
}

/// Parses an RFC 3339 time as the API sends it.
pub fn parse_time(v: &Value) -> Option<Timestamp> {
    v.as_str().filter(|s| !s.is_empty())?.parse().ok()
}

/// How long ago `t` was, as kubectl prints ages (`5s`, `2m3s`, `3h`); `<unknown>` without one.
pub fn age(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(SignedDuration::from_secs(
            now.as_second().saturating_sub(t.as_second()),
        )),
        None => "<unknown>".to_owned(),
    }
}

/// Go's `time.RFC1123Z` in UTC: `Sat, 28 Nov 2026 03:33:40 +0000`.
pub fn rfc1123z(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwriter_aligns_blocks_like_go() {
        let mut w = TabWriter::for_describe();
        w.write("Name:\tweb\nNamespace:\tdefault\nContainers:\n  app:\n    Image:\tx\n");
        assert_eq!(
            w.take(),
            "Name:       web\nNamespace:  default\nContainers:\n  app:\n    Image:  x\n"
        );
        let mut w = TabWriter::for_tables();
        w.write("NAME\tREADY\tSTATUS\nweb\t1/1\tRunning\n");
        assert_eq!(w.take(), "NAME   READY   STATUS\nweb    1/1     Running\n");
        // Remembered widths keep later rows aligned with the header.
        w.write("a\tb\tc\n");
        assert_eq!(w.take(), "a      b       c\n");
    }

    #[test]
    fn tables_print_like_kubectl() {
        let table = json!({
            "columnDefinitions": [
                {"name": "Name", "format": "name", "priority": 0},
                {"name": "Status", "format": "", "priority": 0},
                {"name": "IP", "format": "", "priority": 1}],
            "rows": [{"cells": ["web", "Running", "127.0.0.1"],
                      "object": {"metadata": {"namespace": "default", "labels": {"app": "web"}}}}]});
        let mut p = TablePrinter::default();
        let options = TableOptions {
            with_namespace: true,
            show_labels: true,
            kind_prefix: Some("pod".to_owned()),
            ..TableOptions::default()
        };
        assert_eq!(p.add(&table, &options), 1);
        assert_eq!(
            p.writer.take(),
            "NAMESPACE   NAME      STATUS    LABELS\ndefault     pod/web   Running   app=web\n"
        );
    }

    #[test]
    fn yaml_and_json_like_kubectl() {
        let v = json!({"kind": "Pod", "metadata": {"name": "web", "creationTimestamp": "2026-11-28T03:33:40Z"},
            "spec": {"containers": [{"args": ["0", "true"], "name": "app"}]}, "data": {"x": "a\nb\n"}});
        let yaml = to_yaml(&v);
        assert!(
            yaml.contains("  containers:\n  - args:\n    - \"0\"")
                || yaml.contains("  containers:\n  - args:\n    - '0'"),
            "{yaml}"
        );
        assert!(yaml.contains("creationTimestamp: "), "{yaml}");
        assert!(!yaml.contains("creationTimestamp: 2026"), "{yaml}");
        assert!(yaml.contains("x: |"), "{yaml}");
        assert!(to_json(&v).starts_with("{\n    \"data\""));
    }
}
