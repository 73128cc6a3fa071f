use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

/// A compose file as the loader reads it (`detect`), its error when it is not valid.
fn file(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ComposeFile, ComposeError> {
    match detect(name, text, env) {
        Detected::Compose(f) => Ok(f),
        Detected::Invalid(e) => Err(e),
        Detected::NotCompose => panic!("{name} was not taken for a compose file"),
    }
}

fn parse_one(text: &str) -> Result<(Vec<Group>, Vec<Target>), ComposeError> {
    parse(&[file("compose.yaml", text, &no_env)?], &no_env)
}

#[test]
fn services_with_build_become_targets_of_the_default_group() {
    let (groups, targets) = parse_one(
        r#"
services:
  db:
    build: ./db
    image: docker.io/tonistiigi/db
  external:
    image: verycooldb:1337
  web.app:
    build:
      context: ./dir
      additional_contexts:
        foo: ./bar
        base: service:db
      dockerfile: Dockerfile-alternate
      network: none
      args:
        buildno: 123
        fromenv:
        gone:
      cache_from:
        - type=local,src=path/to/cache
      extra_hosts:
        - "somehost:162.242.195.82"
        - "somehost:162.242.195.83"
        - "myhostv6:::1"
      ssh:
        - key=/path/to/key
        - default
      secrets:
        - token
        - aws
      shm_size: 128m
      ulimits:
        nofile:
          soft: 1024
          hard: 2048
        nproc: 65535
    environment:
      fromenv: yes-env
secrets:
  token:
    environment: ENV_TOKEN
  aws:
    file: /root/.aws/credentials
"#,
    )
    .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].targets, vec!["db", "web_app"]);
    let db = &targets[0];
    assert_eq!(db.context.as_deref(), Some("./db"));
    assert_eq!(db.tags, Some(vec!["docker.io/tonistiigi/db".to_string()]));
    let w = &targets[1];
    assert_eq!(w.name, "web_app");
    assert_eq!(w.dockerfile.as_deref(), Some("Dockerfile-alternate"));
    assert_eq!(w.network.as_deref(), Some("none"));
    let args = w.args.as_ref().unwrap();
    assert_eq!(args.get("buildno"), Some(&Some("123".to_string())));
    assert_eq!(args.get("fromenv"), Some(&Some("yes-env".to_string())));
    assert!(
        !args.contains_key("gone"),
        "an unresolved argument is dropped"
    );
    let ctx = w.contexts.as_ref().unwrap();
    assert_eq!(ctx.get("base").map(String::as_str), Some("target:db"));
    let hosts = w.extra_hosts.as_ref().unwrap();
    assert_eq!(
        hosts.get("somehost"),
        Some(&Some("162.242.195.82,162.242.195.83".to_string()))
    );
    assert_eq!(hosts.get("myhostv6"), Some(&Some("::1".to_string())));
    let ssh: Vec<&str> = w
        .ssh
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(ssh, vec!["default", "key"]);
    let secrets = w.secret.as_ref().unwrap();
    assert_eq!(secrets[0].id, "token");
    assert_eq!(secrets[0].env, "ENV_TOKEN");
    assert_eq!(secrets[1].src, "/root/.aws/credentials");
    assert_eq!(w.shm_size.as_deref(), Some("128MiB"));
    assert_eq!(
        w.ulimits,
        Some(vec![
            "nofile=1024:2048".to_string(),
            "nproc=65535:65535".to_string()
        ])
    );
}

#[test]
fn x_bake_adds_what_compose_cannot_say() {
    let (_, targets) = parse_one(
        r#"
services:
  addon:
    image: ct-addon:bar
    build:
      context: .
      tags: [ct-addon:baz]
      cache_from: [user/app:cache]
      x-bake:
        tags:
          - ct-addon:foo
          - ct-addon:baz
        platforms: linux/amd64 linux/arm64
        cache-from: type=local,src=path/to/cache
        output: type=docker
        no-cache: true
        pull: true
        contexts:
          alpine: docker-image://alpine:3.13
"#,
    )
    .unwrap();
    let t = &targets[0];
    assert_eq!(
        t.tags,
        Some(vec!["ct-addon:baz".to_string(), "ct-addon:foo".to_string()]),
        "build.tags win over image, x-bake appends"
    );
    assert_eq!(
        t.platforms,
        Some(vec!["linux/amd64".to_string(), "linux/arm64".to_string()])
    );
    assert_eq!(t.cache_from.as_ref().map(Vec::len), Some(2));
    assert_eq!(t.output.as_ref().map(|o| o[0].typ.as_str()), Some("docker"));
    assert_eq!((t.no_cache, t.pull), (Some(true), Some(true)));
}

#[test]
fn values_are_interpolated_and_later_files_win() {
    let env = |k: &str| (k == "DF").then(|| "Other.Dockerfile".to_string());
    let a = file(
        "compose.yaml",
        "services:\n  app:\n    build:\n      context: ${CTX:-.}\n      args:\n        A: ${UNSET-x}\n        B: $$literal\n",
        &env,
    )
    .unwrap();
    let b = file(
        "override.yml",
        "services:\n  app:\n    build:\n      dockerfile: ${DF}\n      args:\n        C: c\n",
        &env,
    )
    .unwrap();
    let (_, targets) = parse(&[a, b], &env).unwrap();
    let t = &targets[0];
    assert_eq!(t.context.as_deref(), Some("."));
    assert_eq!(t.dockerfile.as_deref(), Some("Other.Dockerfile"));
    let args = t.args.as_ref().unwrap();
    assert_eq!(args.len(), 3);
    assert_eq!(args["A"].as_deref(), Some("x"));
    assert_eq!(args["B"].as_deref(), Some("$literal"));
}

#[test]
fn bad_files_are_refused_with_the_reason() {
    let cases = [
        ("", "empty compose file"),
        (
            "services:\n  w:\n    build:\n      context: .\n      foo: bar\n",
            "additional properties 'foo' not allowed",
        ),
        (
            "services:\n  w:\n    build:\n      secrets: [token]\n",
            "undefined secret token",
        ),
        ("secrets:\n  foo: {}\n", "secrets.foo"),
        (
            "services:\n  w:\n    build:\n      secrets: [s]\nsecrets:\n  s:\n    external: true\n",
            "unsupported external secret s",
        ),
        (
            "services:\n  w:\n    build: .\n    image: ${NEED:?set NEED}\n",
            "set NEED",
        ),
        ("services: [a, b\n", "compose.yaml"),
    ];
    for (text, want) in cases {
        let err = parse_one(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

#[test]
fn detection_follows_the_file_name_then_the_content() {
    let compose = "services:\n  simple:\n    image: nginx\n";
    let hcl = "target \"default\" {\n  dockerfile = \"test\"\n}\n";
    let json = "{\"target\": [{\"context\": \".\"}]}";
    let is = |name: &str, text: &str| matches!(detect(name, text, &no_env), Detected::Compose(_));
    assert!(is("docker-compose.yml", compose));
    assert!(is("docker-compose.foo", compose));
    assert!(!is("docker-bake.hcl", compose));
    assert!(!is("x.foo", hcl));
    assert!(
        matches!(
            detect("docker-bake.foo", json, &no_env),
            Detected::NotCompose
        ),
        "JSON without services is no compose file"
    );
    assert!(
        matches!(
            detect("compose.yaml", "target: 1\n", &no_env),
            Detected::Invalid(_)
        ),
        "a .yaml file must be a valid compose file"
    );
}

#[test]
fn sizes_print_as_docker_prints_them() {
    assert_eq!(ram_in_bytes("128m"), Some(128 << 20));
    assert_eq!(ram_in_bytes("1.5GB"), Some(3 << 29));
    assert_eq!(ram_in_bytes("64"), Some(64));
    assert_eq!(ram_in_bytes("12x"), None);
    assert_eq!(bytes_size((128 << 20) as f64), "128MiB");
    assert_eq!(bytes_size((3u64 << 29) as f64), "1.5GiB");
    assert_eq!(bytes_size(1000.0), "1000B");
    assert_eq!(bytes_size(1024.0), "1KiB");
}
