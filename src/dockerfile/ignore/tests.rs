use super::*;

/// Through the ignore-file reader, as a build does.
fn m(patterns: &[&str]) -> Matcher {
    match Matcher::parse(&patterns.join("\n"), Path::new(".dockerignore")) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn clean_paths() {
    let cases = [
        ("", "."),
        ("./a//b/", "a/b"),
        ("/a/../b", "/b"),
        ("../a", "../a"),
        ("a/./b/..", "a"),
        ("/..", "/"),
        ("!foo/../bar", "bar"),
    ];
    for (input, want) in cases {
        assert_eq!(clean_path(input), want, "{input:?}");
    }
}

#[test]
fn reading_files() {
    let text =
        "\u{feff}# comment\n  \n/abs/path/\n ./rel \n!  /keep\n  # not a comment\n**/*.log\n";
    assert_eq!(
        read_patterns(text),
        vec!["abs/path", "rel", "!keep", "# not a comment", "**/*.log"]
    );
}

#[test]
fn matching_table() {
    // (patterns, path, is_dir, excluded)
    let cases: &[(&[&str], &str, bool, bool)] = &[
        (&["secret.txt"], "secret.txt", false, true),
        (&["secret.txt"], "dir/secret.txt", false, false),
        (&["*.txt"], "a.txt", false, true),
        (&["*.txt"], "dir/a.txt", false, false),
        (&["*/*.txt"], "dir/a.txt", false, true),
        (&["**/*.txt"], "dir/sub/a.txt", false, true),
        (&["**/*.txt"], "a.txt", false, true),
        (&["dir"], "dir/sub/file", false, true),
        (&["dir/"], "dir/file", false, true),
        (&["/dir"], "dir/file", false, true),
        (&["/dir/../x"], "x", false, true),
        (&["./dir"], "dir", true, true),
        (&["d?r"], "dir", true, true),
        (&["d?r"], "d/r", false, false),
        (&["[a-c]x"], "bx", false, true),
        (&["[^a-c]x"], "bx", false, false),
        (&["[^a-c]x"], "dx", false, true),
        (&["a\\*b"], "a*b", false, true),
        (&["a\\*b"], "axb", false, false),
        (&["foo**"], "foobar/x", false, true),
        (&["foo/**"], "foo", true, false),
        (&["foo/**"], "foo/x/y", false, true),
        (&["**"], "anything/at/all", false, true),
        (&["**foo"], "barfoo", false, true),
        (&["**/foo"], "barfoo", false, false),
        (&["**/foo"], "x/foo", false, true),
        (&["a/**/b"], "a/b", false, true),
        (&["a/**/b"], "a/x/y/b", false, true),
        (&["*", "!keep.txt"], "keep.txt", false, false),
        (&["*", "!keep.txt"], "other.txt", false, true),
        (&["*.md", "!README.md"], "README.md", false, false),
        (&["!README.md", "*.md"], "README.md", false, true),
        (&["dir", "!dir/keep"], "dir/keep", false, false),
        (&["dir", "!dir/keep"], "dir/drop", false, true),
        (&["dir", "!dir/keep"], "dir", true, true),
        (
            &["dir/*", "!dir/sub", "dir/sub/x"],
            "dir/sub/x/deep",
            false,
            true,
        ),
        (
            &["dir/*", "!dir/sub", "dir/sub/x"],
            "dir/sub/y",
            false,
            false,
        ),
        (&["x"], ".", true, false),
        (&["**/node_modules"], "a/node_modules/b/c.js", false, true),
    ];
    for (pats, path, is_dir, want) in cases {
        assert_eq!(
            m(pats).is_excluded(path, *is_dir),
            *want,
            "{pats:?} on {path:?}"
        );
    }
}

#[test]
fn walker_decisions() {
    let plain = m(&["build"]);
    assert_eq!(
        plain.walk("build", true, &MatchInfo::default()).0,
        Decision::SkipDir
    );
    assert_eq!(
        plain.walk("src", true, &MatchInfo::default()).0,
        Decision::Include
    );

    let reinclude = m(&["build", "!build/keep"]);
    let (d, info) = reinclude.walk("build", true, &MatchInfo::default());
    assert_eq!(
        d,
        Decision::Exclude,
        "an exception below keeps the directory walked"
    );
    assert_eq!(
        reinclude.walk("build/keep", false, &info).0,
        Decision::Include
    );
    assert_eq!(
        reinclude.walk("build/other", false, &info).0,
        Decision::Exclude
    );
    assert_eq!(
        reinclude.walk("dist", true, &MatchInfo::default()).0,
        Decision::Include
    );

    let unrelated = m(&["build", "!src/keep"]);
    assert_eq!(
        unrelated.walk("build", true, &MatchInfo::default()).0,
        Decision::SkipDir
    );

    let wild = m(&["build", "!**/*.keep"]);
    assert_eq!(
        wild.walk("build", true, &MatchInfo::default()).0,
        Decision::Exclude,
        "wildcard exceptions force a walk"
    );
    assert!(!wild.is_excluded("build/a/x.keep", false));
}

#[test]
fn parent_results_follow_buildkit() {
    // The later "a" is skipped for "a" itself (already excluded); the child inherits
    // only what was evaluated, so "a/b" ends re-included, as in BuildKit's walker.
    let pm = m(&["a", "!a/b", "a"]);
    assert!(!pm.is_excluded("a/b", false));
    assert!(pm.is_excluded("a/c", false));
}

#[test]
fn bad_patterns() {
    for p in ["[", "[]", "a\\", "[a-]", "[^]"] {
        assert!(
            Matcher::new(&[p], Path::new(".dockerignore")).is_err(),
            "{p:?}"
        );
    }
    assert!(matches!(
        Matcher::parse("!\n", Path::new("x")),
        Err(IgnoreError::IllegalExclusion { .. })
    ));
}

#[test]
fn files() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let missing = Matcher::from_file(&dir.path().join(".dockerignore")).map(|m| m.is_empty());
    assert!(matches!(missing, Ok(true)));
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).map_err(|e| e.to_string())
    };
    assert_eq!(write(".dockerignore", "ctx.txt\n"), Ok(()));
    assert_eq!(write("Dockerfile.dockerignore", "specific.txt\n"), Ok(()));
    let specific = Matcher::for_build(dir.path(), &dir.path().join("Dockerfile"))
        .map(|m| m.patterns().to_vec());
    assert_eq!(specific.ok(), Some(vec!["specific.txt".to_string()]));
    let general =
        Matcher::for_build(dir.path(), &dir.path().join("Other")).map(|m| m.patterns().to_vec());
    assert_eq!(general.ok(), Some(vec!["ctx.txt".to_string()]));
}

#[test]
fn corpus_ignore_files() {
    let Some(root) = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/dockerfile/cases")
        .canonicalize()
        .ok()
    else {
        println!("note: conformance corpus not found; skipped");
        return;
    };
    for (case, path) in [
        ("err_copy_ignored", "ignored.txt"),
        ("mount_secret_file", "secret.txt"),
    ] {
        let dir = root.join(case);
        let m = Matcher::for_build(&dir, &dir.join("Dockerfile"));
        assert!(
            matches!(m.map(|m| m.is_excluded(path, false)), Ok(true)),
            "{case}"
        );
    }
}
