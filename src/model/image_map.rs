//! The image map (`--image-map FILE`): how to run an image on this host, since podvisor never
//! pulls images. Each entry plays the part of an image's config: `command` is its ENTRYPOINT,
//! `args` its CMD, `env` its ENV, `workingDir` its WORKDIR, `stopSignal` its STOPSIGNAL.
//!
//! ```yaml
//! images:
//!   nginx:1.25:
//!     command: ["/usr/sbin/nginx"]
//!     args: ["-g", "daemon off;"]
//!   redis:                  # no tag: any tag or digest of this repository
//!     command: ["redis-server"]
//! ```
//!
//! [`ImageMap::resolve`] applies Kubernetes' entrypoint rules to a container; [`check_pod`]
//! reports every container that would have nothing to run.
//!
//! Pure apart from reading the map file: no tokio, no processes. It never looks at the host
//! (whether a command exists is the runtime's business).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::field::{FieldError, FieldPath};
use crate::model::manifest::{self, LoadError};

#[cfg(test)]
mod tests;

/// The image map: image references to image configs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageMap {
    /// The file it was read from, for messages.
    source: String,
    /// The entries by reference, as written in the file.
    entries: BTreeMap<String, ImageConfig>,
}

/// One entry of the image map: what an image's config would say.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageConfig {
    /// Like the image ENTRYPOINT. Must not be empty when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Like the image CMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Like the image ENV; the container's `env` overrides it by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<ImageEnvVar>,
    /// Like the image WORKDIR; an absolute path. The container's `workingDir` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Like the image STOPSIGNAL; the container's `lifecycle.stopSignal` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// One variable of an entry's `env`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value; empty when missing.
    #[serde(default)]
    pub value: String,
}

/// Why an image map could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ImageMapError {
    /// The file could not be read.
    #[error("failed to read image map `{path}`")]
    Read {
        /// The file, as given.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid YAML or JSON.
    #[error(transparent)]
    Parse(
        /// The parse error, naming the file and position.
        LoadError,
    ),
    /// The file is valid YAML or JSON but not a valid image map; every problem is listed.
    #[error("invalid image map `{path}`: {}", problems.join("; "))]
    Invalid {
        /// The file, as given.
        path: String,
        /// Each problem, with its field path (`images[nginx:1.25].stopSignal: …`).
        problems: Vec<String>,
    },
}

impl ImageMap {
    /// Reads and validates the image map at `path` (YAML or JSON). A `command` whose program
    /// starts with `./` or `../` is relative to the map file's folder, so a project can ship a
    /// map next to its binaries.
    pub fn load(path: &str) -> Result<ImageMap, ImageMapError> {
        let bytes = fs::read(path).map_err(|source| ImageMapError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut map = Self::parse(path, &bytes)?;
        let dir = std::path::Path::new(path)
            .parent()
            .map(|d| {
                if d.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    d
                }
            })
            .unwrap_or(std::path::Path::new("."));
        let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        for config in map.entries.values_mut() {
            if let Some(program) = config.command.as_mut().and_then(|c| c.first_mut())
                && (program.starts_with("./") || program.starts_with("../"))
            {
                *program = dir.join(&*program).to_string_lossy().into_owned();
            }
        }
        Ok(map)
    }

    /// Parses and validates an image map; `source` names it in messages.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<ImageMap, ImageMapError> {
        let documents = manifest::parse(source, bytes).map_err(ImageMapError::Parse)?;
        let invalid = |problems: Vec<String>| ImageMapError::Invalid {
            path: source.to_owned(),
            problems,
        };
        let document = match <[_; 1]>::try_from(documents) {
            Ok([document]) => document,
            Err(documents) => {
                return Err(invalid(vec![format!(
                    "must hold exactly one document, found {}",
                    documents.len()
                )]));
            }
        };
        let mut problems: Vec<String> = document
            .duplicate_fields
            .iter()
            .map(|path| format!("duplicate field \"{path}\""))
            .collect();
        let images_path = FieldPath::new("images");
        let mut entries = BTreeMap::new();
        match &document.value {
            Value::Object(fields) => {
                for key in fields.keys().filter(|k| *k != "images") {
                    problems.push(format!("unknown field \"{key}\""));
                }
                match fields.get("images") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(images)) => {
                        for (reference, entry) in images {
                            let path = images_path.key(reference);
                            if let Some(config) = decode_entry(&path, entry, &mut problems) {
                                entries.insert(reference.clone(), config);
                            }
                        }
                    }
                    Some(_) => problems.push(format!(
                        "{images_path}: must be a map from image references to entries"
                    )),
                }
            }
            _ => problems.push("must be an object with the field `images`".to_owned()),
        }
        problems.extend(validate(&entries).iter().map(ToString::to_string));
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Ok(ImageMap {
            source: source.to_owned(),
            entries,
        })
    }

    /// An image map from entries, validated as [`Self::parse`] does; for tests and callers that
    /// build maps in code.
    pub fn from_entries(
        source: &str,
        entries: impl IntoIterator<Item = (String, ImageConfig)>,
    ) -> Result<ImageMap, ImageMapError> {
        let entries: BTreeMap<String, ImageConfig> = entries.into_iter().collect();
        let problems: Vec<String> = validate(&entries).iter().map(ToString::to_string).collect();
        if !problems.is_empty() {
            return Err(ImageMapError::Invalid {
                path: source.to_owned(),
                problems,
            });
        }
        Ok(ImageMap {
            source: source.to_owned(),
            entries,
        })
    }

    /// The file the map was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The entries, by reference as written.
    pub fn entries(&self) -> &BTreeMap<String, ImageConfig> {
        &self.entries
    }

    /// The entry for `image` and its key: the exact reference; else the reference normalised
    /// ([`normalize_reference`]: `docker.io/library/nginx:1.25` is `nginx:1.25`); else an
    /// entry without tag or digest for the normalised repository (`redis` for `redis:7`).
    pub fn lookup(&self, image: &str) -> Option<(&str, &ImageConfig)> {
        if let Some((key, config)) = self.entries.get_key_value(image) {
            return Some((key, config));
        }
        let normalized = normalize_reference(image);
        if let Some((key, config)) = self
            .entries
            .iter()
            .find(|(key, _)| normalize_reference(key) == normalized)
        {
            return Some((key, config));
        }
        let repository = repository(normalized);
        self.entries
            .iter()
            .find(|(key, _)| {
                let key = normalize_reference(key);
                repository_of_untagged(key) == Some(repository)
            })
            .map(|(key, config)| (key.as_str(), config))
    }

    /// What `container` runs, by Kubernetes' entrypoint rules (`command` replaces the
    /// ENTRYPOINT and drops the image's CMD; `args` alone replaces the CMD), with the image's
    /// env, working directory and stop signal.
    pub fn resolve(&self, container: &Container) -> Result<ResolvedCommand, ImageMapMiss> {
        resolve(Some(self), container)
    }
}

/// What a container runs, resolved from its spec and its image's entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedCommand {
    /// The executable and its first arguments (ENTRYPOINT or the container's `command`).
    pub command: Vec<String>,
    /// The remaining arguments (CMD or the container's `args`).
    pub args: Vec<String>,
    /// The image's environment, in order; the container's `env` is applied over it (by the
    /// runtime, which can also resolve `valueFrom`).
    pub env: Vec<(String, String)>,
    /// The container's `workingDir`, else the image's.
    pub working_dir: Option<String>,
    /// The container's `lifecycle.stopSignal`, else the image's.
    pub stop_signal: Option<String>,
    /// The image map key that matched, if an entry was used.
    pub image_map_entry: Option<String>,
}

impl ResolvedCommand {
    /// The full argument vector: `command` followed by `args`.
    pub fn argv(&self) -> Vec<String> {
        self.command.iter().chain(&self.args).cloned().collect()
    }
}

/// Why a container has nothing to run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageMapMiss {
    /// No image map was given and the container has no `command`.
    #[error(
        "image {image:?} would run its own entrypoint, but podvisor does not pull images and the container {}; give an image map with --image-map that maps {image:?} to a command, or set command",
        what_container_sets(*args_only)
    )]
    NoImageMap {
        /// The container's image.
        image: String,
        /// Whether the container sets `args` (without `command`).
        args_only: bool,
    },
    /// The image map has no entry for the image and the container has no `command`.
    #[error(
        "image {image:?} has no entry in the image map and the container {}; add {image:?}{} to the file given with --image-map, or set command",
        what_container_sets(*args_only),
        if *args_only { " with a command" } else { "" }
    )]
    NoEntry {
        /// The container's image.
        image: String,
        /// Whether the container sets `args` (without `command`).
        args_only: bool,
    },
    /// The image's entry gives nothing to run for this container.
    #[error(
        "image map entry {entry:?} (for image {image:?}) has no command and the container {}; add a command to that entry, or set command",
        what_container_sets(*args_only)
    )]
    EntryWithoutCommand {
        /// The container's image.
        image: String,
        /// The image map key that matched.
        entry: String,
        /// Whether the container sets `args` (without `command`).
        args_only: bool,
    },
}

fn what_container_sets(args_only: bool) -> &'static str {
    if args_only {
        "sets args but no command"
    } else {
        "has no command"
    }
}

/// [`ImageMap::resolve`] when there may be no image map: a container with a `command` needs
/// none.
pub fn resolve(
    map: Option<&ImageMap>,
    container: &Container,
) -> Result<ResolvedCommand, ImageMapMiss> {
    let image = container.image.clone().unwrap_or_default();
    let container_command = container.command.clone().filter(|c| !c.is_empty());
    let container_args = container.args.clone().filter(|a| !a.is_empty());
    let args_only = container_command.is_none() && container_args.is_some();
    let entry = map.and_then(|m| m.lookup(&image));
    let (command, args) = match (container_command, container_args) {
        (Some(command), args) => (command, args.unwrap_or_default()),
        (None, args) => {
            let Some((key, config)) = entry else {
                return Err(match map {
                    None => ImageMapMiss::NoImageMap { image, args_only },
                    Some(_) => ImageMapMiss::NoEntry { image, args_only },
                });
            };
            let image_command = config.command.clone().unwrap_or_default();
            let (command, args) = match args {
                Some(args) => (image_command, args),
                None => (image_command, config.args.clone().unwrap_or_default()),
            };
            // An image without ENTRYPOINT runs its CMD; with `args` set there is no CMD left.
            if command.is_empty() && (args_only || args.is_empty()) {
                return Err(ImageMapMiss::EntryWithoutCommand {
                    image,
                    entry: key.to_owned(),
                    args_only,
                });
            }
            (command, args)
        }
    };
    let config = entry.map(|(_, config)| config);
    Ok(ResolvedCommand {
        command,
        args,
        env: config
            .map(|c| {
                c.env
                    .iter()
                    .map(|e| (e.name.clone(), e.value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        working_dir: container
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| config.and_then(|c| c.working_dir.clone())),
        stop_signal: container
            .lifecycle
            .as_ref()
            .and_then(|l| l.stop_signal.clone())
            .or_else(|| config.and_then(|c| c.stop_signal.clone())),
        image_map_entry: entry.map(|(key, _)| key.to_owned()),
    })
}

/// A container that would have nothing to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageProblem {
    /// The container's `image` field (`spec.containers[0].image`).
    pub field: FieldPath,
    /// What is missing, with the fix.
    pub miss: ImageMapMiss,
}

impl fmt::Display for ImageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.miss)
    }
}

/// Every container of `pod` that has neither a `command` nor an image map entry to run.
/// (Init containers join when podvisor implements them.)
pub fn check_pod(pod: &Pod, map: Option<&ImageMap>) -> Vec<ImageProblem> {
    let containers_path = FieldPath::new("spec").child("containers");
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .enumerate()
        .filter_map(|(i, container)| {
            resolve(map, container).err().map(|miss| ImageProblem {
                field: containers_path.index(i).child("image"),
                miss,
            })
        })
        .collect()
}

/// `image` without a Docker Hub registry and `library/` prefix: `docker.io/library/nginx:1.25`
/// and `index.docker.io/library/nginx:1.25` are `nginx:1.25`.
pub fn normalize_reference(image: &str) -> &str {
    let image = image
        .strip_prefix("docker.io/")
        .or_else(|| image.strip_prefix("index.docker.io/"))
        .unwrap_or(image);
    image.strip_prefix("library/").unwrap_or(image)
}

/// The repository of a reference: without `@digest` and `:tag` (a `:` before the last `/` is a
/// registry port, not a tag).
pub fn repository(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => &reference[..i],
        _ => reference,
    }
}

/// `Some(key)` if `key` names a repository without tag or digest.
fn repository_of_untagged(key: &str) -> Option<&str> {
    (repository(key) == key).then_some(key)
}

/// Decodes one entry strictly; problems are prefixed with the entry's path.
fn decode_entry(
    path: &FieldPath,
    value: &Value,
    problems: &mut Vec<String>,
) -> Option<ImageConfig> {
    if value.is_null() {
        return Some(ImageConfig::default());
    }
    let decoded = manifest::decode_strict::<ImageConfig>(value);
    for error in &decoded.type_errors {
        let field = error.field.as_str();
        let joined = match field.chars().next() {
            None => path.to_string(),
            Some('[') => format!("{path}{field}"),
            Some(_) => format!("{path}.{field}"),
        };
        problems.push(format!("{joined}: {}", error.message));
    }
    decoded.object
}

/// Checks the entries: references, non-empty commands, env names, working directories, stop
/// signals, and references that normalise to the same image.
fn validate(entries: &BTreeMap<String, ImageConfig>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let images = FieldPath::new("images");
    let mut normalized: BTreeMap<&str, &str> = BTreeMap::new();
    for (reference, config) in entries {
        let path = images.key(reference);
        if reference.is_empty() || reference.chars().any(char::is_whitespace) {
            errors.push(FieldError::invalid(
                &path,
                reference.as_str(),
                "must be an image reference such as nginx:1.25 or redis",
            ));
        } else if let Some(first) = normalized.insert(normalize_reference(reference), reference) {
            errors.push(FieldError {
                detail: format!("names the same image as {first:?}"),
                ..FieldError::duplicate(&path, reference.as_str())
            });
        }
        if config.command.as_ref().is_some_and(Vec::is_empty) {
            errors.push(FieldError::required(
                &path.child("command"),
                "must not be empty when given",
            ));
        }
        for (i, var) in config.env.iter().enumerate() {
            let name_path = path.child("env").index(i).child("name");
            if var.name.is_empty() {
                errors.push(FieldError::required(&name_path, ""));
            } else if !is_env_var_name(&var.name) {
                errors.push(FieldError::invalid(
                    &name_path,
                    var.name.as_str(),
                    "a valid environment variable name must consist only of printable ASCII characters other than '='",
                ));
            }
        }
        if let Some(dir) = &config.working_dir
            && !dir.starts_with('/')
        {
            errors.push(FieldError::invalid(
                &path.child("workingDir"),
                dir.as_str(),
                "must be an absolute path",
            ));
        }
        if let Some(signal) = &config.stop_signal
            && !crate::model::pod::STOP_SIGNALS_LINUX.contains(&signal.as_str())
        {
            errors.push(FieldError::not_supported(
                &path.child("stopSignal"),
                signal.as_str(),
                crate::model::pod::STOP_SIGNALS_LINUX,
            ));
        }
    }
    errors
}

/// Upstream's relaxed rule for environment variable names (the default since Kubernetes 1.32):
/// printable ASCII other than `=`.
fn is_env_var_name(name: &str) -> bool {
    name.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}
