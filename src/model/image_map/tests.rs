use k8s_openapi::api::core::v1::{Lifecycle, PodSpec};

use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/image-maps");

fn example() -> ImageMap {
    ImageMap::load(&format!("{TESTDATA}/example.yaml")).expect("example map loads")
}

fn container(image: &str, command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Container {
        name: "app".to_owned(),
        image: Some(image.to_owned()),
        command: command.map(strings),
        args: args.map(strings),
        ..Container::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn problems(error: ImageMapError) -> Vec<String> {
    match error {
        ImageMapError::Invalid { problems, .. } => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// --- Loading -----------------------------------------------------------------------------

#[test]
fn loads_yaml_and_json() {
    let map = example();
    assert_eq!(map.source(), format!("{TESTDATA}/example.yaml"));
    assert_eq!(
        map.entries().keys().collect::<Vec<_>>(),
        ["docker.io/library/busybox:1.36", "nginx:1.25", "redis"]
    );
    let nginx = &map.entries()["nginx:1.25"];
    assert_eq!(nginx.command, Some(strings(&["/usr/sbin/nginx"])));
    assert_eq!(nginx.args, Some(strings(&["-g", "daemon off;"])));
    assert_eq!(
        nginx.env,
        [ImageEnvVar {
            name: "NGINX_PORT".into(),
            value: "80".into()
        }]
    );
    assert_eq!(nginx.working_dir.as_deref(), Some("/srv"));
    assert_eq!(nginx.stop_signal.as_deref(), Some("SIGQUIT"));

    let json = ImageMap::load(&format!("{TESTDATA}/example.json")).unwrap();
    assert_eq!(json.entries()["nginx:1.25"].command, nginx.command);
    assert_eq!(
        json.entries()["redis"].command,
        Some(strings(&["redis-server"]))
    );
}

#[test]
fn an_empty_map_and_an_entry_without_fields_are_fine() {
    assert!(
        ImageMap::parse("m.yaml", b"images: {}\n")
            .unwrap()
            .entries()
            .is_empty()
    );
    let map = ImageMap::parse("m.yaml", b"images:\n  envonly:\n").unwrap();
    assert_eq!(map.entries()["envonly"], ImageConfig::default());
}

#[test]
fn strict_loading_reports_every_problem_with_file_and_path() {
    let error = ImageMap::load(&format!("{TESTDATA}/invalid.yaml")).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("invalid image map `{TESTDATA}/invalid.yaml`: ")),
        "{message}"
    );
    assert_eq!(
        problems(error),
        [
            "unknown field \"extra\"",
            "images[nginx:1.25].comand: unknown field `comand`, expected one of `command`, `args`, `env`, `workingDir`, `stopSignal`",
            &format!(
                "images[nginx:1.25].stopSignal: Unsupported value: \"SIGFOO\": supported values: {}",
                crate::model::pod::STOP_SIGNALS_LINUX
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "images[redis].command: Required value: must not be empty when given",
            "images[redis].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "images[redis].workingDir: Invalid value: \"srv\": must be an absolute path",
        ]
    );
}

#[test]
fn type_errors_and_nested_unknown_fields_have_paths() {
    let error = ImageMap::parse(
        "m.yaml",
        b"images:\n  a:\n    command: /bin/a\n    env:\n    - {name: X, valu: y}\n",
    )
    .unwrap_err();
    assert_eq!(
        problems(error),
        [
            "images[a].command: invalid type: string \"/bin/a\", expected a sequence",
            "images[a].env[0].valu: unknown field `valu`, expected `name` or `value`",
        ]
    );
}

#[test]
fn duplicate_references_are_errors() {
    let error = ImageMap::parse(
        "m.yaml",
        b"images:\n  nginx:1.25: {command: [a]}\n  nginx:1.25: {command: [b]}\n",
    )
    .unwrap_err();
    assert_eq!(problems(error), ["duplicate field \"images[nginx:1.25]\""]);

    let error = ImageMap::parse(
        "m.yaml",
        b"images:\n  nginx:1.25: {command: [a]}\n  docker.io/library/nginx:1.25: {command: [b]}\n",
    )
    .unwrap_err();
    assert_eq!(
        problems(error),
        [
            "images[nginx:1.25]: Duplicate value: \"nginx:1.25\": names the same image as \"docker.io/library/nginx:1.25\""
        ]
    );
}

#[test]
fn stop_signals_follow_upstream_linux_list() {
    for ok in [
        "SIGTERM",
        "SIGQUIT",
        "SIGRTMIN",
        "SIGRTMIN+15",
        "SIGRTMAX-14",
        "SIGRTMAX",
    ] {
        let text = format!("images:\n  a: {{command: [a], stopSignal: \"{ok}\"}}\n");
        assert!(ImageMap::parse("m.yaml", text.as_bytes()).is_ok(), "{ok}");
    }
    for bad in ["SIGRTMIN+16", "SIGRTMAX-15", "TERM", "sigterm", "15"] {
        let text = format!("images:\n  a: {{command: [a], stopSignal: \"{bad}\"}}\n");
        assert!(ImageMap::parse("m.yaml", text.as_bytes()).is_err(), "{bad}");
    }
    assert_eq!(crate::model::pod::STOP_SIGNALS_LINUX.len(), 65);
}

#[test]
fn the_file_must_hold_one_object_with_images() {
    let error = ImageMap::parse("m.yaml", b"").unwrap_err();
    assert_eq!(problems(error), ["must hold exactly one document, found 0"]);
    let error = ImageMap::parse("m.yaml", b"images: {}\n---\nimages: {}\n").unwrap_err();
    assert_eq!(problems(error), ["must hold exactly one document, found 2"]);
    let error = ImageMap::parse("m.yaml", b"images: [a]\n").unwrap_err();
    assert_eq!(
        problems(error),
        ["images: must be a map from image references to entries"]
    );
    let error = ImageMap::parse("m.yaml", b"a: [").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("failed to parse `m.yaml` at line"),
        "{error}"
    );
    let error = ImageMap::load("no/such/map.yaml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "failed to read image map `no/such/map.yaml`"
    );
}

#[test]
fn from_entries_validates_too() {
    let error = ImageMap::from_entries(
        "code",
        [(
            "x".to_owned(),
            ImageConfig {
                command: Some(vec![]),
                ..ImageConfig::default()
            },
        )],
    )
    .unwrap_err();
    assert_eq!(
        problems(error),
        ["images[x].command: Required value: must not be empty when given"]
    );
}

// --- Lookup ------------------------------------------------------------------------------

#[test]
fn lookup_order_exact_then_normalised_then_repository() {
    let map = example();
    let key = |image: &str| map.lookup(image).map(|(key, _)| key.to_owned());
    assert_eq!(key("nginx:1.25").as_deref(), Some("nginx:1.25"));
    assert_eq!(
        key("docker.io/library/nginx:1.25").as_deref(),
        Some("nginx:1.25")
    );
    assert_eq!(
        key("index.docker.io/library/nginx:1.25").as_deref(),
        Some("nginx:1.25")
    );
    assert_eq!(key("library/nginx:1.25").as_deref(), Some("nginx:1.25"));
    assert_eq!(
        key("nginx:1.26"),
        None,
        "a tagged entry matches its tag only"
    );
    assert_eq!(key("nginx"), None);
    // A key written in full matches the short form.
    assert_eq!(
        key("busybox:1.36").as_deref(),
        Some("docker.io/library/busybox:1.36")
    );
    // An untagged entry matches every tag and digest of its repository.
    assert_eq!(key("redis").as_deref(), Some("redis"));
    assert_eq!(key("redis:7.2").as_deref(), Some("redis"));
    assert_eq!(key("docker.io/redis:7.2").as_deref(), Some("redis"));
    assert_eq!(key("redis@sha256:abcd").as_deref(), Some("redis"));
    assert_eq!(key("redis:7@sha256:abcd").as_deref(), Some("redis"));
    assert_eq!(key("bitnami/redis:7"), None);
    assert_eq!(key("ghcr.io/redis:7"), None);
}

#[test]
fn exact_match_wins_over_repository_match() {
    let map = ImageMap::parse(
        "m.yaml",
        b"images:\n  redis: {command: [generic]}\n  redis:7: {command: [seven]}\n",
    )
    .unwrap();
    let command = |image: &str| map.lookup(image).unwrap().1.command.clone().unwrap();
    assert_eq!(command("redis:7"), ["seven"]);
    assert_eq!(command("redis:6"), ["generic"]);
}

#[test]
fn normalisation_and_repository() {
    assert_eq!(normalize_reference("docker.io/library/nginx:1"), "nginx:1");
    assert_eq!(
        normalize_reference("docker.io/bitnami/redis"),
        "bitnami/redis"
    );
    assert_eq!(
        normalize_reference("quay.io/library/x"),
        "quay.io/library/x"
    );
    assert_eq!(repository("nginx:1.25"), "nginx");
    assert_eq!(repository("nginx@sha256:00"), "nginx");
    assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
    assert_eq!(repository("localhost:5000/app:1"), "localhost:5000/app");
    assert_eq!(repository("nginx"), "nginx");
}

// --- Resolution --------------------------------------------------------------------------

#[test]
fn neither_command_nor_args_runs_the_image_entrypoint_and_cmd() {
    let resolved = example()
        .resolve(&container("nginx:1.25", None, None))
        .unwrap();
    assert_eq!(
        resolved,
        ResolvedCommand {
            command: strings(&["/usr/sbin/nginx"]),
            args: strings(&["-g", "daemon off;"]),
            env: vec![("NGINX_PORT".into(), "80".into())],
            working_dir: Some("/srv".into()),
            stop_signal: Some("SIGQUIT".into()),
            image_map_entry: Some("nginx:1.25".into()),
        }
    );
    assert_eq!(resolved.argv(), ["/usr/sbin/nginx", "-g", "daemon off;"]);
}

#[test]
fn args_only_replace_the_image_cmd() {
    let resolved = example()
        .resolve(&container("nginx:1.25", None, Some(&["-c", "/etc/x.conf"])))
        .unwrap();
    assert_eq!(resolved.argv(), ["/usr/sbin/nginx", "-c", "/etc/x.conf"]);
}

#[test]
fn command_replaces_entrypoint_and_drops_image_args() {
    let map = example();
    let resolved = map
        .resolve(&container("nginx:1.25", Some(&["/bin/true"]), None))
        .unwrap();
    assert_eq!(resolved.argv(), ["/bin/true"]);
    // The image's env, working directory and stop signal still apply.
    assert_eq!(resolved.working_dir.as_deref(), Some("/srv"));
    assert_eq!(resolved.image_map_entry.as_deref(), Some("nginx:1.25"));
    let resolved = map
        .resolve(&container(
            "nginx:1.25",
            Some(&["/bin/echo"]),
            Some(&["hi"]),
        ))
        .unwrap();
    assert_eq!(resolved.argv(), ["/bin/echo", "hi"]);
    // An empty command is no command.
    let resolved = map
        .resolve(&container("nginx:1.25", Some(&[]), None))
        .unwrap();
    assert_eq!(resolved.argv(), ["/usr/sbin/nginx", "-g", "daemon off;"]);
}

#[test]
fn a_container_with_a_command_needs_no_map() {
    let resolved = resolve(
        None,
        &container("anything", Some(&["/bin/sleep"]), Some(&["1"])),
    )
    .unwrap();
    assert_eq!(resolved.argv(), ["/bin/sleep", "1"]);
    assert_eq!(resolved.image_map_entry, None);
    assert!(resolved.env.is_empty());
}

#[test]
fn container_settings_override_the_image() {
    let mut c = container("nginx:1.25", None, None);
    c.working_dir = Some("/work".into());
    c.lifecycle = Some(Lifecycle {
        stop_signal: Some("SIGUSR1".into()),
        ..Lifecycle::default()
    });
    let resolved = example().resolve(&c).unwrap();
    assert_eq!(resolved.working_dir.as_deref(), Some("/work"));
    assert_eq!(resolved.stop_signal.as_deref(), Some("SIGUSR1"));
}

#[test]
fn an_image_with_only_cmd_runs_its_cmd() {
    let map = ImageMap::parse("m.yaml", b"images:\n  tool: {args: [/bin/tool, run]}\n").unwrap();
    let resolved = map.resolve(&container("tool", None, None)).unwrap();
    assert_eq!(resolved.argv(), ["/bin/tool", "run"]);
    let miss = map
        .resolve(&container("tool", None, Some(&["x"])))
        .unwrap_err();
    assert_eq!(
        miss,
        ImageMapMiss::EntryWithoutCommand {
            image: "tool".into(),
            entry: "tool".into(),
            args_only: true
        }
    );
}

#[test]
fn misses() {
    let map = example();
    assert_eq!(
        map.resolve(&container("mysql:8", None, None)).unwrap_err(),
        ImageMapMiss::NoEntry {
            image: "mysql:8".into(),
            args_only: false
        }
    );
    assert_eq!(
        map.resolve(&container("mysql:8", None, Some(&["--x"])))
            .unwrap_err(),
        ImageMapMiss::NoEntry {
            image: "mysql:8".into(),
            args_only: true
        }
    );
    assert_eq!(
        resolve(None, &container("mysql:8", None, None)).unwrap_err(),
        ImageMapMiss::NoImageMap {
            image: "mysql:8".into(),
            args_only: false
        }
    );
    let map = ImageMap::parse("m.yaml", b"images:\n  envonly: {env: [{name: A}]}\n").unwrap();
    assert_eq!(
        map.resolve(&container("envonly", None, None)).unwrap_err(),
        ImageMapMiss::EntryWithoutCommand {
            image: "envonly".into(),
            entry: "envonly".into(),
            args_only: false
        }
    );
}

// --- Pods --------------------------------------------------------------------------------

fn pod(containers: Vec<Container>) -> Pod {
    Pod {
        spec: Some(PodSpec {
            containers,
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn check_pod_names_the_field_the_image_and_the_fix() {
    let map = example();
    let p = pod(vec![
        container("nginx:1.25", None, None),
        container("nginx:1.26", None, None),
        container("busybox", Some(&["sh"]), None),
        container("mysql:8", None, Some(&["--x"])),
    ]);
    let found: Vec<String> = check_pod(&p, Some(&map))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "spec.containers[1].image: image \"nginx:1.26\" has no entry in the image map and the container has no command; add \"nginx:1.26\" to the file given with --image-map, or set command",
            "spec.containers[3].image: image \"mysql:8\" has no entry in the image map and the container sets args but no command; add \"mysql:8\" with a command to the file given with --image-map, or set command",
        ]
    );
}

#[test]
fn check_pod_without_a_map() {
    let p = pod(vec![container("nginx:1.25", None, None)]);
    let found: Vec<String> = check_pod(&p, None)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "spec.containers[0].image: image \"nginx:1.25\" would run its own entrypoint, but podvisor does not pull images and the container has no command; give an image map with --image-map that maps \"nginx:1.25\" to a command, or set command"
        ]
    );
    assert!(check_pod(&Pod::default(), None).is_empty());
}

#[test]
fn entry_without_command_message() {
    let miss = ImageMapMiss::EntryWithoutCommand {
        image: "redis:7".into(),
        entry: "redis".into(),
        args_only: true,
    };
    assert_eq!(
        miss.to_string(),
        "image map entry \"redis\" (for image \"redis:7\") has no command and the container sets args but no command; add a command to that entry, or set command"
    );
}
