//! Property tests: no input, however broken, makes the bake front end panic or hang.
//! Inputs are token soups shaped like bake files, and mutations of real corpus files,
//! in all three formats.

use kiln::bake::config;
use kiln::bake::eval::context::Inputs;
use kiln::bake::resolve;
use kiln::bake::syntax::{Document, Format, Source};
use proptest::prelude::*;
use std::collections::HashMap;

/// Parses and evaluates; errors are fine, panics are not (proptest reports them).
fn run(text: &str, format: Format) {
    let mut doc = Document::default();
    let name = match format {
        Format::Hcl => "docker-bake.hcl",
        Format::Json => "docker-bake.json",
        Format::Toml => "kiln.toml",
    };
    if doc
        .add(Source {
            name: name.into(),
            text: text.into(),
            format,
        })
        .is_err()
    {
        return;
    }
    let mut inputs = Inputs::default();
    inputs
        .builtins
        .insert("BAKE_LOCAL_PLATFORM".into(), "linux/amd64".into());
    if let Ok(cfg) = config::evaluate(&doc, inputs, false, config::Config::default()) {
        let names: Vec<String> = cfg.targets.iter().map(|t| t.name.clone()).collect();
        let _ = resolve::resolve(&cfg, &names, &["*.tags+=x".into()], &HashMap::new());
        let _ = resolve::resolve(&cfg, &["default".into()], &[], &HashMap::new());
    }
}

const TOKENS: &[&str] = &[
    "target",
    "group",
    "variable",
    "function",
    "\"a\"",
    "\"b\"",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "=",
    ",",
    ":",
    "?",
    "=>",
    "...",
    "\n",
    " ",
    "tags",
    "args",
    "inherits",
    "contexts",
    "matrix",
    "name",
    "params",
    "result",
    "default",
    "type",
    "validation",
    "condition",
    "error_message",
    "targets",
    "platforms",
    "output",
    "a",
    "b",
    "x",
    "1",
    "-2.5",
    "true",
    "null",
    "\"${a}\"",
    "\"${upper(x)}\"",
    "\"target:a\"",
    "target.a.tags",
    "for",
    "in",
    "if",
    "+",
    "*",
    "/",
    "%",
    "==",
    "&&",
    "!",
    "upper(",
    "join(\",\",",
    "range(3)",
    "try(",
    "can(",
    "format(\"%s\",",
    "string",
    "list(string)",
    "<<EOT\nx\nEOT\n",
    "#c\n",
    "\"%{ if true }y%{ endif }\"",
    "a.b",
    "x[0]",
    "[*]",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.join(" "))
}

fn corpus_files() -> Vec<(String, Format)> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/bake/cases");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for case in rd.flatten().take(400) {
            for f in ["docker-bake.hcl", "docker-bake.json"] {
                if let Ok(t) = std::fs::read_to_string(case.path().join(f)) {
                    let fmt = if f.ends_with("json") {
                        Format::Json
                    } else {
                        Format::Hcl
                    };
                    out.push((t, fmt));
                }
            }
        }
    }
    out.push((
        include_str!("../examples/quickstart/docker-bake.hcl").to_string(),
        Format::Hcl,
    ));
    out.push((
        include_str!("../examples/quickstart-toml/kiln.toml").to_string(),
        Format::Toml,
    ));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        run(&text, Format::Hcl);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        run(&text, Format::Hcl);
        run(&text, Format::Json);
        run(&text, Format::Toml);
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        pick in any::<prop::sample::Index>(),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(TOKENS)), 1..4),
    ) {
        let files = corpus_files();
        let (text, fmt) = &files[pick.index(files.len())];
        let mut s = text.clone();
        for (at, tok) in cuts {
            let mut i = at.index(s.len() + 1);
            while !s.is_char_boundary(i) { i -= 1; }
            s.insert_str(i, tok);
        }
        run(&s, *fmt);
    }
}
