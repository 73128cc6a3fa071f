//! JSON Schemas for `docker-bake.json` and `kiln.toml` (editor completion and validation),
//! generated from the model's field list. `schemas/` holds the generated files; a test
//! keeps them in sync (`KILN_UPDATE_SCHEMAS=1 cargo test schema` rewrites them).

use super::model::GROUP_FIELDS;
#[cfg(test)]
use super::model::TARGET_FIELDS;
use serde_json::{json, Map, Value};

/// The shape of an attribute's value.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Str,
    Bool,
    StrList,
    StrMap,
    /// A list of `type=...,k=v` strings or objects of string values.
    Entries,
    Resources,
    Matrix,
}

/// Target attributes with their shape and a one-line description.
const TARGET_DOCS: &[(&str, Shape, &str)] = &[
    (
        "description",
        Shape::Str,
        "Human-readable description of the target",
    ),
    (
        "inherits",
        Shape::StrList,
        "Targets whose attributes this target inherits",
    ),
    (
        "annotations",
        Shape::StrList,
        "Annotations for the image (key=value, optionally typed)",
    ),
    (
        "attest",
        Shape::Entries,
        "Attestations: type=provenance|sbom,...",
    ),
    (
        "context",
        Shape::Str,
        "Build context: a directory, URL or named context",
    ),
    (
        "contexts",
        Shape::StrMap,
        "Named contexts (name = path, docker-image://, target:...)",
    ),
    (
        "dockerfile",
        Shape::Str,
        "Dockerfile path, relative to the context",
    ),
    ("dockerfile-inline", Shape::Str, "Dockerfile content"),
    ("args", Shape::StrMap, "Build arguments"),
    ("labels", Shape::StrMap, "Image labels"),
    ("tags", Shape::StrList, "Image names and tags"),
    (
        "cache-from",
        Shape::Entries,
        "Cache sources: type=registry,ref=... (or a ref)",
    ),
    (
        "cache-to",
        Shape::Entries,
        "Cache destinations: type=registry,ref=...,mode=max",
    ),
    ("target", Shape::Str, "Dockerfile stage to build"),
    (
        "secret",
        Shape::Entries,
        "Secrets: id=...,src=... or id=...,env=...",
    ),
    (
        "ssh",
        Shape::Entries,
        "SSH agent sockets or keys: default or id=path",
    ),
    (
        "platforms",
        Shape::StrList,
        "Target platforms, e.g. linux/amd64",
    ),
    (
        "output",
        Shape::Entries,
        "Outputs: type=image|registry|oci|docker|local|tar,...",
    ),
    ("pull", Shape::Bool, "Always pull referenced images"),
    ("no-cache", Shape::Bool, "Do not use the build cache"),
    (
        "network",
        Shape::Str,
        "Network mode for RUN: default, none, host",
    ),
    ("no-cache-filter", Shape::StrList, "Stages not to cache"),
    ("shm-size", Shape::Str, "Size of /dev/shm for RUN"),
    (
        "ulimits",
        Shape::StrList,
        "ulimits for RUN: name=soft[:hard]",
    ),
    ("resources", Shape::Resources, "Resource limits for RUN"),
    (
        "call",
        Shape::Str,
        "Evaluation method: build, check, outline, targets",
    ),
    (
        "entitlements",
        Shape::StrList,
        "Entitlements the build needs: network.host, security.insecure",
    ),
    (
        "extra-hosts",
        Shape::StrMap,
        "Extra /etc/hosts entries for RUN (host = ip)",
    ),
    ("policy", Shape::Entries, "Source policy options"),
    (
        "matrix",
        Shape::Matrix,
        "Matrix: one target per combination of the listed values",
    ),
    ("name", Shape::Str, "Name template of matrix targets"),
];

fn shape_schema(shape: Shape, json_templates: bool) -> Value {
    let s = json!({"type": "string"});
    // In JSON/TOML every string is a template, so a list or map may also be given as a
    // single "${...}" string expression.
    let or_expr = |v: Value| -> Value {
        if json_templates {
            json!({"anyOf": [v, {"type": "string", "pattern": "^\\$\\{"}]})
        } else {
            v
        }
    };
    match shape {
        Shape::Str => s,
        Shape::Bool => {
            json!({"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]})
        }
        Shape::StrList => or_expr(json!({"type": "array", "items": {"type": "string"}})),
        Shape::StrMap => or_expr(json!({
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]}
        })),
        Shape::Entries => or_expr(json!({
            "type": "array",
            "items": {"anyOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": {"type": ["string", "boolean", "number"]}}
            ]}
        })),
        Shape::Resources => json!({
            "type": "object",
            "properties": {
                "memory": {"type": ["string", "number"]},
                "memory-swap": {"type": ["string", "number"]},
                "cpu-shares": {"type": ["string", "integer"]},
                "cpu-period": {"type": ["string", "integer"]},
                "cpu-quota": {"type": ["string", "integer"]},
                "cpuset-cpus": {"type": "string"},
                "cpuset-mems": {"type": "string"}
            },
            "additionalProperties": false
        }),
        Shape::Matrix => or_expr(json!({
            "type": "object",
            "additionalProperties": {"type": "array"}
        })),
    }
}

fn named_blocks(body: Value) -> Value {
    json!({
        "type": "object",
        "additionalProperties": {"anyOf": [body.clone(), {"type": "array", "items": body}]}
    })
}

/// The schema for a bake file in JSON (`docker-bake.json`) or TOML (`kiln.toml`) form.
pub fn schema(title: &str, id: &str) -> Value {
    let mut target_props = Map::new();
    for (name, shape, doc) in TARGET_DOCS {
        let mut s = shape_schema(*shape, true);
        if let Some(o) = s.as_object_mut() {
            o.insert("description".into(), json!(doc));
        }
        target_props.insert((*name).into(), s);
    }
    target_props.insert("//".into(), json!({"description": "A comment"}));
    let target = json!({
        "type": "object",
        "properties": target_props,
        "additionalProperties": false
    });
    let mut group_props = Map::new();
    for f in GROUP_FIELDS {
        group_props.insert(
            (*f).into(),
            if *f == "targets" {
                shape_schema(Shape::StrList, true)
            } else {
                shape_schema(Shape::Str, true)
            },
        );
    }
    group_props.insert("//".into(), json!({"description": "A comment"}));
    let group = json!({
        "type": "object",
        "properties": group_props,
        "required": ["targets"],
        "additionalProperties": false
    });
    let variable = json!({
        "type": "object",
        "properties": {
            "default": {"description": "Default value (overridden by the environment or --var)"},
            "type": {"type": "string", "description": "Type constraint, e.g. string, list(string), object({a=number})"},
            "description": {"type": "string"},
            "validation": {
                "anyOf": [
                    {"$ref": "#/$defs/validation"},
                    {"type": "array", "items": {"$ref": "#/$defs/validation"}}
                ]
            }
        }
    });
    let function = json!({
        "type": "object",
        "properties": {
            "params": {"type": "array", "items": {"type": "string"}},
            "variadic_params": {"type": "string"},
            "result": {},
            "//": {"description": "A comment"}
        },
        "required": ["params", "result"],
        "additionalProperties": false
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": id,
        "title": title,
        "description": "Strings are HCL templates: \"${upper(VERSION)}\" is evaluated. Keys other than target, group, variable and function are global variables.",
        "type": "object",
        "properties": {
            "target": named_blocks(target),
            "group": named_blocks(group),
            "variable": named_blocks(variable),
            "function": named_blocks(function)
        },
        "$defs": {
            "validation": {
                "type": "object",
                "properties": {
                    "condition": {},
                    "error_message": {"type": "string"}
                },
                "required": ["condition", "error_message"]
            }
        }
    })
}

/// (file name under `schemas/`, pretty JSON) for every schema kiln ships.
pub fn files() -> Vec<(&'static str, String)> {
    let render = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    vec![
        (
            "docker-bake.schema.json",
            render(schema(
                "docker-bake.json (kiln / docker buildx bake)",
                "https://kiln.dev/schemas/docker-bake.schema.json",
            )),
        ),
        (
            "kiln.schema.json",
            render(schema(
                "kiln.toml / docker-bake.toml",
                "https://kiln.dev/schemas/kiln.schema.json",
            )),
        ),
    ]
}

/// Every model attribute is documented here (and nothing else).
pub fn documented_target_fields() -> Vec<&'static str> {
    TARGET_DOCS
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| *n != "matrix" && *n != "name")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_covers_every_target_field() {
        let mut documented = documented_target_fields();
        documented.sort_unstable();
        let mut model: Vec<&str> = TARGET_FIELDS.to_vec();
        model.sort_unstable();
        assert_eq!(documented, model);
    }

    #[test]
    fn schema_files_are_up_to_date() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        for (name, content) in files() {
            let path = dir.join(name);
            if std::env::var_os("KILN_UPDATE_SCHEMAS").is_some() {
                std::fs::write(&path, &content).expect("write schema");
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == content,
                "{} is out of date: run KILN_UPDATE_SCHEMAS=1 cargo test schema",
                path.display()
            );
        }
    }
}
