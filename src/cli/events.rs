//! `podvisor events`: kubectl's `events` (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, oldest
//! first), with `--for`, `--types`, `-w`, `-A` and `-o json|yaml`.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::client::{self, JSON, encode};
use super::print::{self, TabWriter};
use super::{ClientArgs, Session};

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only events about this object: TYPE/NAME (`pod/web`).
    #[arg(long = "for", value_name = "TYPE/NAME")]
    pub for_object: Option<String>,
    /// Only events of these types (Normal, Warning; comma-separated).
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    pub types: Vec<String>,
    /// After listing, watch for new events.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Events of every namespace (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format: json or yaml (default: a table).
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = ["json", "yaml"])]
    pub output: Option<String>,
    /// Do not print headers.
    #[arg(long)]
    pub no_headers: bool,
}

pub async fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    for t in &args.types {
        if !t.eq_ignore_ascii_case("Normal") && !t.eq_ignore_ascii_case("Warning") {
            bail!("valid --types are Normal or Warning");
        }
    }
    let session = Session::connect(&args.client)?;
    let namespace = (!args.all_namespaces).then_some(session.namespace.as_str());
    let mut query = String::new();
    if let Some(target) = &args.for_object {
        let Some((word, name)) = target.split_once('/') else {
            bail!("--for must be TYPE/NAME, such as pod/web");
        };
        let discovery = session.client.discover().await?;
        let kind = discovery.resolve_one(word)?.kind;
        query = format!(
            "&fieldSelector={}",
            encode(&format!(
                "involvedObject.kind={kind},involvedObject.name={name}"
            ))
        );
    }
    let collection = format!(
        "{}{}/events",
        "/api/v1",
        namespace
            .map(|ns| format!("/namespaces/{}", encode(ns)))
            .unwrap_or_default()
    );
    let wanted = |e: &Value| {
        args.types.is_empty()
            || args.types.iter().any(|t| {
                e["type"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(t))
            })
    };
    if args.watch {
        // Like kubectl: the watch's initial ADDED events are the current ones.
        let mut writer = TabWriter::for_tables();
        let mut headings = args.no_headers;
        let watch_path = format!("{collection}?watch=true{query}");
        let stream = session.client.watch(&watch_path, JSON, |event| {
            if event["type"] == "ERROR" {
                bail!(
                    "{}",
                    event["object"]["message"]
                        .as_str()
                        .unwrap_or("the watch failed")
                );
            }
            if event["type"] == "DELETED" || event["type"] == "BOOKMARK" {
                return Ok(true);
            }
            let e = &event["object"];
            if !wanted(e) {
                return Ok(true);
            }
            match args.output.as_deref() {
                Some("json") => print::out(&print::to_json(e)),
                Some(_) => print::out(&format!("---\n{}", print::to_yaml(e))),
                None => {
                    if !std::mem::replace(&mut headings, true) {
                        writer.write(&headings_line(args.all_namespaces));
                    }
                    writer.write(&event_line(e, args.all_namespaces, Timestamp::now()));
                    writer.print();
                }
            }
            Ok(true)
        });
        tokio::select! {
            result = stream => result?,
            () = super::interrupted() => {}
        }
        return Ok(ExitCode::SUCCESS);
    }
    let list = client::check(
        session
            .client
            .get(&format!("{collection}?limit=500{query}"), JSON)
            .await?,
    )?
    .json()?;
    let mut events: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| wanted(e))
        .map(|e| print::with_type(e.clone(), "v1", "Event"))
        .collect();
    sort_events(&mut events);
    if events.is_empty() && args.output.is_none() {
        if args.all_namespaces {
            eprintln!("No events found.");
        } else {
            eprintln!("No events found in {} namespace.", session.namespace);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.output.as_deref() {
        Some(format) => {
            let list =
                json!({"apiVersion": "v1", "items": events, "kind": "EventList", "metadata": {}});
            print::out(&if format == "json" {
                print::to_json(&list)
            } else {
                print::to_yaml(&list)
            });
        }
        None => {
            let now = Timestamp::now();
            let mut writer = TabWriter::for_tables();
            if !args.no_headers {
                writer.write(&headings_line(args.all_namespaces));
            }
            for e in &events {
                writer.write(&event_line(e, args.all_namespaces, now));
            }
            writer.print();
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn headings_line(all_namespaces: bool) -> String {
    let mut line = String::new();
    if all_namespaces {
        line.push_str("NAMESPACE\t");
    }
    line.push_str("LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE\n");
    line
}

fn event_line(e: &Value, all_namespaces: bool, now: Timestamp) -> String {
    let mut line = String::new();
    if all_namespaces {
        line.push_str(e["metadata"]["namespace"].as_str().unwrap_or_default());
        line.push('\t');
    }
    line.push_str(&format!(
        "{}\t{}\t{}\t{}/{}\t{}\n",
        interval(e, now),
        e["type"].as_str().unwrap_or_default(),
        e["reason"].as_str().unwrap_or_default(),
        e["involvedObject"]["kind"].as_str().unwrap_or_default(),
        e["involvedObject"]["name"].as_str().unwrap_or_default(),
        e["message"].as_str().unwrap_or_default().trim()
    ));
    line
}

/// kubectl's event age: `5s`, or `3s (x4 over 2m)` for a repeated event.
pub(crate) fn interval(e: &Value, now: Timestamp) -> String {
    let first =
        print::parse_time(&e["eventTime"]).or_else(|| print::parse_time(&e["firstTimestamp"]));
    let first_since = print::age(first, now);
    if e["series"].is_object() {
        format!(
            "{} (x{} over {first_since})",
            print::age(print::parse_time(&e["series"]["lastObservedTime"]), now),
            e["series"]["count"].as_i64().unwrap_or(0)
        )
    } else if e["count"].as_i64().unwrap_or(0) > 1 {
        format!(
            "{} (x{} over {first_since})",
            print::age(print::parse_time(&e["lastTimestamp"]), now),
            e["count"].as_i64().unwrap_or(0)
        )
    } else {
        first_since
    }
}

/// kubectl's `SortableEvents`: by the time an event last happened (series, last timestamp,
/// event time), oldest first, stable.
pub(crate) fn sort_events(events: &mut [Value]) {
    let time = |e: &Value| {
        print::parse_time(&e["series"]["lastObservedTime"])
            .or_else(|| print::parse_time(&e["lastTimestamp"]))
            .or_else(|| print::parse_time(&e["eventTime"]))
            .or_else(|| print::parse_time(&e["firstTimestamp"]))
    };
    events.sort_by_key(|e| time(e));
}
