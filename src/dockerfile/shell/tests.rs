use super::*;

fn env() -> Vec<(String, String)> {
    [
        ("A", "hello"),
        ("B", "two words"),
        ("C", "path/to/file.tar.gz"),
        ("EMPTY", ""),
        ("SP", "  x  y "),
        ("HOME", "/root"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn process_word_table() {
    // (input, expected; None = error)
    let cases: &[(&str, Option<&str>)] = &[
        ("plain", Some("plain")),
        ("$A", Some("hello")),
        ("${A}", Some("hello")),
        ("x${A}y", Some("xhelloy")),
        ("$UNSET", Some("")),
        ("${UNSET}", Some("")),
        ("$", Some("$")),
        ("$.", Some("$.")),
        ("a$1b", Some("ab")),
        ("${A:-d}", Some("hello")),
        ("${UNSET:-d}", Some("d")),
        ("${EMPTY:-d}", Some("d")),
        ("${EMPTY-d}", Some("")),
        ("${UNSET-d}", Some("d")),
        ("${A:+alt}", Some("alt")),
        ("${UNSET:+alt}", Some("")),
        ("${EMPTY:+alt}", Some("")),
        ("${EMPTY+alt}", Some("alt")),
        ("${A:?}", Some("hello")),
        ("${UNSET:?}", None),
        ("${EMPTY:?}", None),
        ("${EMPTY?}", Some("")),
        ("${UNSET?must be set}", None),
        ("${C#*/}", Some("to/file.tar.gz")),
        ("${C##*/}", Some("file.tar.gz")),
        ("${C%.*}", Some("path/to/file.tar")),
        ("${C%%.*}", Some("path/to/file")),
        ("${C/a/A}", Some("pAth/to/file.tar.gz")),
        ("${C//a/A}", Some("pAth/to/file.tAr.gz")),
        ("${C//?a/_}", Some("_th/to/file._r.gz")),
        ("${UNSET:-${A:-x}}", Some("hello")),
        ("${UNSET:-$A}", Some("hello")),
        ("${UNSET:-\\$A}", Some("$A")),
        ("${A:#x}", None),
        ("${A:x}", None),
        ("${}", None),
        ("${:}", None),
        ("${A", None),
        ("${A:-x", None),
        ("\"quoted $A and ${B}\"", Some("quoted hello and two words")),
        ("'single $A'", Some("single $A")),
        ("\\$A", Some("$A")),
        ("a\\ b", Some("a b")),
        ("\"a\\\"b\"", Some("a\"b")),
        ("\"a\\tb\"", Some("a\\tb")),
        ("a\\tb", Some("atb")),
        ("'a\\tb'", Some("a\\tb")),
        ("\"unterminated", None),
        ("'unterminated", None),
        ("trailing\\", Some("trailing")),
        ("it''s", Some("its")),
        ("it'''s", None),
        ("héllo ✓", Some("héllo ✓")),
        ("${A}_${B}", Some("hello_two words")),
        ("<<EOF", Some("<<EOF")),
    ];
    let lex = Lex::new('\\');
    let env = env();
    for (input, want) in cases {
        let got = lex.process_word(input, &env);
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
        }
    }
}

#[test]
fn process_words_table() {
    let cases: &[(&str, &[&str])] = &[
        ("80 443/tcp", &["80", "443/tcp"]),
        ("a$SP", &["a", "x", "y"]),
        ("a\"$SP\"", &["a  x  y "]),
        ("$B", &["two", "words"]),
        ("\"$B\" c", &["two words", "c"]),
        ("a\\ b c", &["a b", "c"]),
        ("'' x", &["x"]),
        ("   ", &[]),
    ];
    let lex = Lex::new('\\');
    let env = env();
    for (input, want) in cases {
        let got = lex.process_words(input, &env).unwrap_or_default();
        assert_eq!(got, *want, "input {input:?}");
    }
}

#[test]
fn backtick_escape_leaves_backslash_alone() {
    let lex = Lex::new('`');
    let env = env();
    let cases: &[(&str, &str)] = &[
        ("C:\\path\\to", "C:\\path\\to"),
        ("`$A", "$A"),
        ("\"a`\"b\"", "a\"b"),
        ("/dir\\with\\backslash", "/dir\\with\\backslash"),
    ];
    for (input, want) in cases {
        assert_eq!(
            lex.process_word(input, &env).as_deref(),
            Ok(*want),
            "input {input:?}"
        );
    }
}

#[test]
fn skip_unset_and_raw_modes() {
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let env = env();
    assert_eq!(
        lex.process_word("$X ${Y} ${Z:-d} $A", &env).as_deref(),
        Ok("$X ${Y} ${Z:-d} hello")
    );
    let mut raw = Lex::new('\\');
    raw.raw_quotes = true;
    raw.raw_escapes = true;
    assert_eq!(
        raw.process_word("'a' \"b\" \\c", &env).as_deref(),
        Ok("'a' \"b\" \\c")
    );
    let mut noquotes = Lex::new('\\');
    noquotes.skip_process_quotes = true;
    assert_eq!(
        noquotes.process_word("echo '$A' \"$A\"", &env).as_deref(),
        Ok("echo 'hello' \"hello\"")
    );
}

#[test]
fn matches_are_reported() {
    let lex = Lex::new('\\');
    let env = env();
    let r = lex
        .process_word_with_matches("$A ${NOPE:-x}", &env)
        .expect("expands");
    assert!(r.matched.contains("A"));
    assert!(r.unmatched.contains("NOPE"));
}

#[test]
fn error_message_names_the_word() {
    let lex = Lex::new('\\');
    let err = lex.process_word("${X:?needed}", &NoEnv).expect_err("unset");
    assert_eq!(
        err.to_string(),
        "failed to process \"${X:?needed}\": X: needed"
    );
}
