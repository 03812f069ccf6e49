//! `podvisor apply -f`: every manifest is loaded and validated locally (`model::manifest`,
//! the same loader and decoder as `up` and `check`); if anything is invalid nothing is sent.
//! Then each object is server-side applied (field manager `podvisor`) in file order and
//! reported as `created`, `configured` or `unchanged`.
//!
//! The image map is the node's concern (`up --image-map`): apply only sends objects.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use super::client::{self, ApiResource, JSON, encode};
use super::{ClientArgs, Session, report};
use crate::model::manifest::{self, FieldValidation, LoadError, MANIFEST_EXTENSIONS};

/// What kubectl prints after a server-side apply conflict.
const CONFLICT_HELP: &str =
    "Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts";

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A manifest file, a folder (its .yaml, .yml and .json files; subfolders with -R) or `-`
    /// for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filenames: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Read folders recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Take over fields another field manager owns instead of failing with a conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// `server`: let the node check and default everything without storing it.
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = ["none", "server", "client"])]
    pub dry_run: String,
    /// How unknown or duplicate fields are treated: strict (errors), warn or ignore.
    #[arg(long, value_name = "MODE", default_value = "strict", value_parser = super::parse_validation)]
    pub validate: FieldValidation,
    /// The field manager recorded for the applied fields.
    #[arg(long, value_name = "NAME", default_value = "podvisor")]
    pub field_manager: String,
}

/// One object ready to send.
struct Prepared {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
    source: String,
    body: Value,
}

pub async fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run == "client" {
        bail!(
            "--dry-run=client doesn't work with server-side apply (did you mean --dry-run=server instead?)"
        );
    }
    let dry_run = args.dry_run == "server";
    // 1. Load and validate everything locally; any problem: print them all, send nothing.
    let paths = expand_paths(&args.filenames, args.recursive)?;
    let mut documents = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for loaded in manifest::load_each(&paths, std::io::stdin().lock()) {
        match loaded {
            Ok(docs) => documents.extend(docs),
            Err(e) => problems.push(super::output::chain(&e)),
        }
    }
    let reports = manifest::decode_all(&documents, args.validate);
    for report in &reports {
        problems.extend(report.errors.iter().cloned());
        for w in &report.warnings {
            eprintln!("Warning: {w}");
        }
    }
    if documents.is_empty() && problems.is_empty() {
        bail!("no objects passed to apply");
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!("podvisor: nothing was applied");
        return Ok(ExitCode::from(1));
    }
    // 2. Map every object to a served resource and namespace, still before sending anything.
    let session = Session::connect(&args.client)?;
    let discovery = session.client.discover().await?;
    let mut prepared = Vec::new();
    for d in &documents {
        let api_version = d.value["apiVersion"].as_str().unwrap_or_default();
        let kind = d.value["kind"].as_str().unwrap_or_default();
        let name = d.value["metadata"]["name"].as_str().unwrap_or_default();
        let Some(resource) = discovery.by_kind(api_version, kind) else {
            problems.push(format!(
                "resource mapping not found for name: {name:?} from {:?}: no matches for kind {kind:?} in version {api_version:?}",
                d.source
            ));
            continue;
        };
        let mut body = d.value.clone();
        let namespace = if resource.namespaced {
            match d.value["metadata"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
            {
                Some(ns) if session.explicit_namespace && ns != session.namespace => {
                    problems.push(format!(
                        "the namespace from the provided object {ns:?} does not match the namespace {:?}. You must pass '--namespace={ns}' to perform this operation.",
                        session.namespace
                    ));
                    continue;
                }
                Some(ns) => Some(ns.to_owned()),
                None => {
                    body["metadata"]["namespace"] = json!(session.namespace);
                    Some(session.namespace.clone())
                }
            }
        } else {
            None
        };
        prepared.push(Prepared {
            resource: resource.clone(),
            namespace,
            name: name.to_owned(),
            source: d.source.clone(),
            body,
        });
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!("podvisor: nothing was applied");
        return Ok(ExitCode::from(1));
    }
    // 3. Apply in order; a failed object is reported and the others still go.
    let validation = match args.validate {
        FieldValidation::Strict => "Strict",
        FieldValidation::Warn => "Warn",
        FieldValidation::Ignore => "Ignore",
    };
    let mut failed = false;
    for p in prepared {
        let path = p.resource.path(p.namespace.as_deref(), Some(&p.name));
        let before = session.client.get(&path, JSON).await?;
        let before = if before.ok() {
            Some(before.json()?)
        } else if before.status == 404 {
            None
        } else {
            report(&before.server_error(Some(("retrieving current configuration of", &p.source))));
            failed = true;
            continue;
        };
        let mut query = format!(
            "?fieldManager={}&fieldValidation={validation}&force={}",
            encode(&args.field_manager),
            args.force_conflicts
        );
        if dry_run {
            query.push_str("&dryRun=All");
        }
        // The server re-applies after a race with another writer (as upstream), so one
        // request, as kubectl sends.
        let reply = session
            .client
            .call(
                "PATCH",
                &format!("{path}{query}"),
                Some("application/apply-patch+yaml"),
                JSON,
                p.body.to_string().into_bytes(),
            )
            .await?;
        if !reply.ok() {
            let error = reply.server_error(Some(("serverside-apply", &p.source)));
            report(&error);
            if field_manager_conflict(&reply) {
                eprintln!("{CONFLICT_HELP}");
            }
            failed = true;
            continue;
        }
        let after = reply.json()?;
        let operation = match &before {
            None => "created",
            Some(_) if reply.status == 201 => "created",
            Some(b) if unchanged(b, &after, dry_run) => "unchanged",
            Some(_) => "configured",
        };
        let suffix = if dry_run { " (server dry run)" } else { "" };
        super::print::out(&format!(
            "{}/{} {operation}{suffix}\n",
            p.resource.kind_prefix(),
            p.name
        ));
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether a reply is a server-side apply conflict between field managers.
fn field_manager_conflict(reply: &client::Reply) -> bool {
    reply.status == 409
        && reply.json().is_ok_and(|v| {
            v["details"]["causes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["reason"] == "FieldManagerConflict")
        })
}

/// Whether an apply changed nothing: the same resourceVersion, or, for a dry run (which
/// never bumps it), the same object apart from its bookkeeping.
fn unchanged(before: &Value, after: &Value, dry_run: bool) -> bool {
    if !dry_run {
        return before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"];
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v["metadata"].as_object_mut() {
            for key in ["resourceVersion", "managedFields", "generation"] {
                meta.remove(key);
            }
        }
        v
    };
    strip(before) == strip(after)
}

/// kubectl's `-f` with and without `-R`: a folder gives its manifest files, and only with
/// `recursive` those of its subfolders (the loader reads folders recursively, so without it
/// the top-level files are passed one by one).
pub(crate) fn expand_paths(paths: &[String], recursive: bool) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for p in paths {
        let path = Path::new(p);
        if p == "-" || recursive || !path.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut files: Vec<String> = std::fs::read_dir(path)
            .map_err(|source| LoadError::ReadDir {
                path: p.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                f.is_file()
                    && f.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e))
            })
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        if files.is_empty() {
            bail!(
                "no manifest files (*.yaml, *.yml, *.json) in folder `{p}` (-R reads its subfolders too)"
            );
        }
        files.sort();
        out.extend(files);
    }
    Ok(out)
}
