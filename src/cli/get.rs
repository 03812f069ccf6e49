//! `podvisor get`: kubectl's `get` over the node's API. Types come from API discovery; human
//! output is the server's Table (`model::table` on the node) printed as kubectl prints it;
//! `-w` follows a watch.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::Value;

use super::client::{self, ApiResource, Client, Discovery, JSON, TABLE_ACCEPT, encode};
use super::print::{self, Output, TableOptions, TablePrinter};
use super::{ClientArgs, Session, report};

#[derive(Debug, Args)]
pub struct GetArgs {
    /// TYPE[,TYPE...] [NAME...], or TYPE/NAME...
    #[arg(value_name = "TYPE[,TYPE...] [NAME...]", required = true)]
    pub resources: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Output format: wide, json, yaml or name.
    #[arg(short = 'o', long, value_name = "FORMAT", default_value = "", value_parser = Output::parse, hide_default_value = true)]
    pub output: Output,
    /// After listing the requested objects, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes without listing first.
    #[arg(long)]
    pub watch_only: bool,
    /// A label selector (`app=web`, `tier in (a,b)`, `!canary`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// A field selector (`metadata.name=web`, `status.phase!=Running`).
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// List across all namespaces (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show every label as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// Do not print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Do not fail when a named object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
}

/// What one argument asks for: a whole collection, or one object.
pub(crate) struct Request {
    pub resource: ApiResource,
    pub name: Option<String>,
}

/// Turns `TYPE[,TYPE] [NAME...]` or `TYPE/NAME...` into requests (kubectl's
/// `ResourceTypeOrNameArgs`).
pub(crate) fn requests(discovery: &Discovery, args: &[String]) -> anyhow::Result<Vec<Request>> {
    let mut out = Vec::new();
    if args.iter().any(|a| a.contains('/')) {
        for arg in args {
            let Some((word, name)) = arg.split_once('/') else {
                bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'podvisor get resource/<resource_name>' instead of 'podvisor get resource resource/<resource_name>'"
                );
            };
            if name.is_empty() || name.contains('/') {
                bail!("arguments in resource/name form must have a single resource and name");
            }
            out.push(Request {
                resource: discovery.resolve_one(word)?,
                name: Some(name.to_owned()),
            });
        }
        return Ok(out);
    }
    let (types, names) = args.split_first().expect("clap requires one argument");
    let mut resources = Vec::new();
    for word in types.split(',').filter(|w| !w.is_empty()) {
        for r in discovery.resolve(word)? {
            if !resources.contains(&r) {
                resources.push(r);
            }
        }
    }
    for resource in resources {
        if names.is_empty() {
            out.push(Request {
                resource,
                name: None,
            });
        } else {
            for name in names {
                out.push(Request {
                    resource: resource.clone(),
                    name: Some(name.clone()),
                });
            }
        }
    }
    Ok(out)
}

/// The query string of a list or watch.
pub(crate) fn selectors(label: Option<&str>, field: Option<&str>) -> String {
    let mut q = String::new();
    if let Some(l) = label.filter(|l| !l.is_empty()) {
        q.push_str("&labelSelector=");
        q.push_str(&encode(l));
    }
    if let Some(f) = field.filter(|f| !f.is_empty()) {
        q.push_str("&fieldSelector=");
        q.push_str(&encode(f));
    }
    q
}

pub async fn run(args: GetArgs) -> anyhow::Result<ExitCode> {
    let session = Session::connect(&args.client)?;
    let discovery = session.client.discover().await?;
    let requests = requests(&discovery, &args.resources)?;
    if args.watch || args.watch_only {
        return watch(&session, &args, requests).await;
    }
    let namespace = (!args.all_namespaces).then_some(session.namespace.as_str());
    let query = selectors(args.selector.as_deref(), args.field_selector.as_deref());
    if requests.iter().any(|r| r.name.is_some()) && (args.selector.is_some()) {
        bail!("name cannot be provided when a selector is specified");
    }
    let mut errors: Vec<anyhow::Error> = Vec::new();
    // What each request returned: a Table (human output) or objects.
    let mut results: Vec<(ApiResource, Value)> = Vec::new();
    let accept = if args.output.is_human() {
        TABLE_ACCEPT
    } else {
        JSON
    };
    for r in &requests {
        let path = match &r.name {
            Some(n) => r
                .resource
                .path(namespace.or(Some(&session.namespace)), Some(n)),
            None => format!("{}?limit=500{query}", r.resource.path(namespace, None)),
        };
        match session.client.get(&path, accept).await {
            Ok(reply) if reply.ok() => results.push((r.resource.clone(), reply.json()?)),
            Ok(reply) => {
                let error = reply.error();
                if !(args.ignore_not_found && client::is_not_found(&error)) {
                    errors.push(error);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let wrote = if args.output.is_human() {
        print_tables(&results, &args)
    } else {
        print_objects(&results, &args, &requests)
    };
    let all_namespaced = !args.all_namespaces && requests.iter().all(|r| r.resource.namespaced);
    if !wrote && errors.is_empty() && !args.ignore_not_found && args.output.is_human() {
        if all_namespaced {
            eprintln!("No resources found in {} namespace.", session.namespace);
        } else {
            eprintln!("No resources found");
        }
    }
    for e in &errors {
        report(e);
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints Tables, one block per resource type; returns whether anything was printed.
fn print_tables(results: &[(ApiResource, Value)], args: &GetArgs) -> bool {
    // Names get a `kind/` prefix when objects of several types are printed.
    let mut kinds_with_rows: Vec<&ApiResource> = Vec::new();
    for (r, table) in results {
        if table["rows"]
            .as_array()
            .is_some_and(|rows| !rows.is_empty())
            && !kinds_with_rows.contains(&r)
        {
            kinds_with_rows.push(r);
        }
    }
    let with_kind = kinds_with_rows.len() > 1;
    // One block per run of the same type: its own header and column widths; blocks that
    // printed something are separated by a blank line (unless headers are off).
    let mut blocks: Vec<String> = Vec::new();
    let mut printer = TablePrinter::default();
    let mut last: Option<&ApiResource> = None;
    for (r, table) in results {
        if last.is_some_and(|l| l != r) {
            blocks.push(printer.writer.take());
            printer = TablePrinter::default();
        }
        last = Some(r);
        printer.add(table, &table_options(args, r, with_kind));
    }
    blocks.push(printer.writer.take());
    blocks.retain(|b| !b.is_empty());
    let separator = if args.no_headers { "" } else { "\n" };
    emit(&blocks.join(separator));
    !blocks.is_empty()
}

fn table_options(args: &GetArgs, r: &ApiResource, with_kind: bool) -> TableOptions {
    TableOptions {
        wide: args.output == Output::Wide,
        no_headers: args.no_headers,
        with_namespace: args.all_namespaces && r.namespaced,
        show_labels: args.show_labels,
        kind_prefix: with_kind.then(|| r.kind_prefix()),
    }
}

fn emit(text: &str) {
    print::out(text);
}

/// `-o json|yaml|name`: one object when one was named, else a `v1 List`.
fn print_objects(results: &[(ApiResource, Value)], args: &GetArgs, requests: &[Request]) -> bool {
    let mut objects: Vec<(ApiResource, Value)> = Vec::new();
    for (r, v) in results {
        if v["items"].is_array() && v["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
            for item in v["items"].as_array().into_iter().flatten() {
                objects.push((
                    r.clone(),
                    print::with_type(item.clone(), &r.api_version(), &r.kind),
                ));
            }
        } else {
            objects.push((r.clone(), v.clone()));
        }
    }
    let single = requests.len() == 1 && requests[0].name.is_some();
    match args.output {
        Output::Name => {
            let mut text = String::new();
            for (r, o) in &objects {
                text.push_str(&format!(
                    "{}/{}\n",
                    r.kind_prefix(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
            emit(&text);
            !objects.is_empty()
        }
        Output::Json | Output::Yaml => {
            let value = if single && objects.len() == 1 {
                objects.remove(0).1
            } else if single && objects.is_empty() {
                return false;
            } else {
                print::list_of(objects.into_iter().map(|(_, o)| o).collect())
            };
            emit(&if args.output == Output::Json {
                print::to_json(&value)
            } else {
                print::to_yaml(&value)
            });
            true
        }
        Output::Human | Output::Wide => unreachable!("tables are printed by print_tables"),
    }
}

/// `-w` / `--watch-only`: print the current state (unless watch-only), then every change,
/// until the stream ends or the user interrupts.
async fn watch(
    session: &Session,
    args: &GetArgs,
    requests: Vec<Request>,
) -> anyhow::Result<ExitCode> {
    let first = requests.first().expect("at least one request");
    if requests.iter().any(|r| r.resource != first.resource) || requests.len() > 1 {
        bail!(
            "watch is only supported on individual resources and resource collections - more than 1 resource was found"
        );
    }
    let r = &first.resource;
    let namespace =
        (!args.all_namespaces || first.name.is_some()).then_some(session.namespace.as_str());
    let human = args.output.is_human();
    let accept = if human { TABLE_ACCEPT } else { JSON };
    let query = selectors(args.selector.as_deref(), args.field_selector.as_deref());
    let initial_path = match &first.name {
        Some(n) => r.path(namespace, Some(n)),
        None => format!("{}?limit=500{query}", r.path(namespace, None)),
    };
    let initial = client::check(session.client.get(&initial_path, accept).await?)?.json()?;
    let options = TableOptions {
        wide: args.output == Output::Wide,
        no_headers: args.no_headers,
        with_namespace: args.all_namespaces && r.namespaced,
        show_labels: args.show_labels,
        kind_prefix: None,
    };
    let mut printer = TablePrinter::default();
    let mut yaml_docs = 0usize;
    let mut print_object = |printer: &mut TablePrinter, object: &Value| match args.output {
        Output::Human | Output::Wide => {
            printer.add(object, &options);
            printer.writer.print();
        }
        Output::Name => emit(&format!(
            "{}/{}\n",
            r.kind_prefix(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        )),
        Output::Json => emit(&print::to_json(object)),
        Output::Yaml => {
            if yaml_docs > 0 {
                emit("---\n");
            }
            yaml_docs += 1;
            emit(&print::to_yaml(object));
        }
    };
    let is_list = first.name.is_none();
    let rv = if is_list {
        initial["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_owned()
    } else {
        "0".to_owned()
    };
    if !args.watch_only {
        if human || !is_list {
            print_object(&mut printer, &initial);
        } else {
            for item in initial["items"].as_array().into_iter().flatten() {
                print_object(
                    &mut printer,
                    &print::with_type(item.clone(), &r.api_version(), &r.kind),
                );
            }
        }
    }
    // A watch of one object starts with a synthetic ADDED event for what was just printed.
    let mut skip_first = !is_list;
    let watch_path = match &first.name {
        Some(n) => format!(
            "{}?watch=true&resourceVersion=0&fieldSelector={}",
            r.path(namespace, None),
            encode(&format!("metadata.name={n}"))
        ),
        None => format!(
            "{}?watch=true&resourceVersion={}{query}",
            r.path(namespace, None),
            encode(&rv)
        ),
    };
    let client: &Client = &session.client;
    let mut failure: Option<String> = None;
    let stream = client.watch(&watch_path, accept, |event| {
        if event["type"] == "ERROR" {
            failure = Some(
                event["object"]["message"]
                    .as_str()
                    .unwrap_or("the watch failed")
                    .to_owned(),
            );
            return Ok(false);
        }
        if event["type"] == "BOOKMARK" {
            return Ok(true);
        }
        if std::mem::take(&mut skip_first) {
            return Ok(true);
        }
        print_object(&mut printer, &event["object"]);
        Ok(true)
    });
    tokio::select! {
        result = stream => result?,
        () = super::interrupted() => {}
    }
    if let Some(message) = failure {
        bail!("{message}");
    }
    Ok(ExitCode::SUCCESS)
}
