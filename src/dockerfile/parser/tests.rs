use super::*;

fn ok(src: &str) -> Ast {
    match parse(src) {
        Ok(a) => a,
        Err(e) => panic!("parse failed for {src:?}: {e}"),
    }
}

type Summary = (String, Vec<String>, Vec<String>, bool, usize, usize);

fn summary(ast: &Ast) -> Vec<Summary> {
    ast.nodes
        .iter()
        .map(|n| {
            (
                n.cmd.clone(),
                n.flags.clone(),
                n.args.clone(),
                n.json,
                n.start_line,
                n.end_line,
            )
        })
        .collect()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn lines_and_continuations() {
    let src = "FROM busybox\n\nRUN echo a \\\n    b \\\n\n  # comment inside\n    c\nCMD [\"x\"]\n";
    let ast = ok(src);
    assert_eq!(
        summary(&ast),
        vec![
            ("FROM".into(), vec![], v(&["busybox"]), false, 1, 1),
            (
                "RUN".into(),
                vec![],
                v(&["echo a     b     c"]),
                false,
                3,
                7
            ),
            ("CMD".into(), vec![], v(&["x"]), true, 8, 8),
        ]
    );
    assert_eq!(ast.warnings.len(), 1, "empty continuation line warns");
}

#[test]
fn continuation_at_eof_and_escaped_escape() {
    let ast = ok("FROM a\nRUN echo \\\\\nRUN x \\");
    assert_eq!(ast.nodes[1].args, v(&["echo \\\\"]));
    assert_eq!(ast.nodes[2].args, v(&["x"]));
    assert_eq!((ast.nodes[2].start_line, ast.nodes[2].end_line), (3, 3));
}

#[test]
fn directives_table() {
    // (source, escape, syntax, check)
    let cases: &[(&str, char, Option<&str>, Option<&str>)] = &[
        ("# escape=`\nFROM a\n", '`', None, None),
        ("# ESCAPE = ` \nFROM a\n", '`', None, None),
        (
            "#syntax=docker/dockerfile:1\n# escape=`\nFROM a\n",
            '`',
            Some("docker/dockerfile:1"),
            None,
        ),
        ("# check=skip=all\nFROM a\n", '\\', None, Some("skip=all")),
        ("# comment\n# escape=`\nFROM a\n", '\\', None, None),
        ("\n# escape=`\nFROM a\n", '\\', None, None),
        ("# unknown=x\n# escape=`\nFROM a\n", '\\', None, None),
        ("FROM a\n# escape=`\n", '\\', None, None),
        ("\u{feff}# escape=`\nFROM a\n", '`', None, None),
    ];
    for (src, esc, syntax, check) in cases {
        let ast = ok(src);
        assert_eq!(ast.directives.escape, *esc, "{src:?}");
        assert_eq!(ast.directives.syntax.as_deref(), *syntax, "{src:?}");
        assert_eq!(ast.directives.check.as_deref(), *check, "{src:?}");
    }
}

#[test]
fn directive_errors() {
    let e = parse("# escape=x\nFROM a\n").expect_err("bad escape");
    assert!(matches!(e.kind, ErrorKind::Directive(_)));
    let e = parse("# escape=`\n# escape=\\\nFROM a\n").expect_err("repeated");
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("only one escape parser directive"));
}

#[test]
fn backtick_escape() {
    let ast =
        ok("# escape=`\nFROM a\nLABEL a=\"x\" `\n      b=\"y\"\nENV P=C:\\path\\to `\n    Q=2\n");
    assert_eq!(
        ast.nodes[1].args,
        v(&["a", "\"x\"", "=", "b", "\"y\"", "="])
    );
    assert_eq!(
        ast.nodes[2].args,
        v(&["P", "C:\\path\\to", "=", "Q", "2", "="])
    );
    assert_eq!((ast.nodes[2].start_line, ast.nodes[2].end_line), (5, 6));
}

#[test]
fn flags_and_forms() {
    let ast = ok("FROM --platform=linux/arm64 a AS b\nCOPY --from=b --chown=1:2 --link [\"x y\", \"/d/\"]\nRUN --mount=type=cache,target=/c --network=none [\"a\"]\nENTRYPOINT [ \"/bin/sh\" , \"-c\" ]\nCMD [\"echo\", 'x']\n");
    let s = summary(&ast);
    assert_eq!(s[0].1, v(&["--platform=linux/arm64"]));
    assert_eq!(s[0].2, v(&["a", "AS", "b"]));
    assert_eq!(s[1].1, v(&["--from=b", "--chown=1:2", "--link"]));
    assert_eq!((s[1].2.clone(), s[1].3), (v(&["x y", "/d/"]), true));
    assert_eq!(
        s[2].1,
        v(&["--mount=type=cache,target=/c", "--network=none"])
    );
    assert!(s[3].3);
    assert_eq!((s[4].2.clone(), s[4].3), (v(&["[\"echo\", 'x']"]), false));
}

#[test]
fn heredocs() {
    let src = "FROM a\nRUN <<EOF\nset -e\necho hi\nEOF\nCOPY <<-\"ONE\" <<TWO /dst/\n\tindented\n\tONE\nsecond $X\nTWO\n";
    let ast = ok(src);
    let run = &ast.nodes[1];
    assert_eq!((run.start_line, run.end_line), (2, 5));
    assert_eq!(run.heredocs.len(), 1);
    assert_eq!(run.heredocs[0].name, "EOF");
    assert_eq!(run.heredocs[0].content, "set -e\necho hi\n");
    assert!(run.heredocs[0].expand);
    let copy = &ast.nodes[2];
    assert_eq!(copy.heredocs.len(), 2);
    assert_eq!(copy.heredocs[0].name, "ONE");
    assert!(copy.heredocs[0].chomp);
    assert!(!copy.heredocs[0].expand);
    assert_eq!(copy.heredocs[0].chomped(), "indented\n");
    assert_eq!(copy.heredocs[1].content, "second $X\n");
    assert!(copy.heredocs[1].expand);
    assert_eq!((copy.start_line, copy.end_line), (6, 10));
    // `<<notaheredoc` on the last line has no body: unterminated.
    let bad = format!("{src}RUN echo <<notaheredoc\n");
    let e = parse(&bad).expect_err("unterminated");
    assert!(matches!(e.kind, ErrorKind::UnterminatedHeredoc { .. }));
    assert_eq!(e.line, 11);
}

#[test]
fn heredoc_only_in_run_copy_add_shell_form() {
    let ast = ok("FROM a\nLABEL x=<<EOF\nENV y=1\nRUN [\"cat\", \"<<EOF\"]\n");
    assert_eq!(ast.nodes.len(), 4);
    assert!(ast.nodes.iter().all(|n| n.heredocs.is_empty()));
}

#[test]
fn heredoc_with_fd_and_quotes() {
    let ast = ok("FROM a\nRUN 3<<'X' cat <&3\n$HOME\nX\n");
    let h = &ast.nodes[1].heredocs[0];
    assert_eq!((h.fd, h.name.as_str(), h.expand), (3, "X", false));
    assert_eq!(h.content, "$HOME\n");
}

#[test]
fn onbuild_nodes() {
    let ast = ok("FROM a\nONBUILD RUN echo hi\nONBUILD COPY --from=x a b\n");
    let n = &ast.nodes[1];
    assert_eq!(n.args, v(&["RUN", "echo hi"]));
    let sub = n.sub.as_ref().expect("sub");
    assert_eq!(sub.cmd, "RUN");
    let c = ast.nodes[2].sub.as_ref().expect("sub");
    assert_eq!(c.flags, v(&["--from=x"]));
}

#[test]
fn empty_files_fail() {
    for src in ["", "# only a comment\n", "\n\n   \n"] {
        let e = parse(src).expect_err("empty");
        assert_eq!(e.kind, ErrorKind::NoInstructions, "{src:?}");
    }
}

#[test]
fn comments_recorded_and_crlf() {
    let ast = ok("# about a\nFROM a\r\nRUN x\r\n");
    assert_eq!(ast.nodes[0].comments, v(&["about a"]));
    assert_eq!(ast.nodes[1].args, v(&["x"]));
}

#[test]
fn bad_json_array_is_an_error() {
    let e = parse("FROM a\nCMD [\"a\", 1]\n").expect_err("non-string");
    assert!(matches!(e.kind, ErrorKind::BadJson(_)));
    assert_eq!(e.line, 2);
}

#[test]
fn overlong_lines_are_rejected() {
    let src = format!("FROM image\nLABEL test={}\n", "a".repeat(64 * 1024));
    let e = parse(&src).expect_err("too long");
    assert!(
        e.to_string()
            .contains("dockerfile line greater than max allowed size of 65535"),
        "{e}"
    );
    let fits = format!("FROM image\nLABEL t={}\n", "a".repeat(1000));
    assert!(parse(&fits).is_ok());
}

#[test]
fn buildkit_line_numbers() {
    // Blank lines, comments and a heredoc between instructions.
    let src = "\n\n# c\nFROM a\n\nRUN a \\\n  b\n\n\n# x\nCOPY <<EOF /x\n1\n2\nEOF\n";
    let ast = ok(src);
    let lines: Vec<(usize, usize)> = ast
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines, vec![(4, 4), (6, 7), (11, 14)]);
}
