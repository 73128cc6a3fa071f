use super::*;
use crate::dockerfile::error::DockerfileError;
use crate::dockerfile::shell::Lex;

fn df(src: &str) -> Dockerfile {
    match parse_dockerfile(src, "Dockerfile") {
        Ok(d) => d,
        Err(e) => panic!("parse failed: {e}\n{src}"),
    }
}

fn err(src: &str) -> DockerfileError {
    match parse_dockerfile(src, "Dockerfile") {
        Ok(d) => panic!("expected an error, got {d:?}"),
        Err(e) => e,
    }
}

fn first(src: &str) -> Instruction {
    let d = df(&format!("FROM a\n{src}\n"));
    d.stages[0].commands[0].instruction.clone()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn stages_and_meta_args() {
    let d = df("ARG BASE=x\nARG G\nFROM --platform=linux/arm64 $BASE AS Build\nRUN a\nFROM build\nARG A=1\nCOPY --from=build /x /y\n");
    assert_eq!(d.meta_args.len(), 2);
    assert_eq!(d.stages.len(), 2);
    let b = &d.stages[0];
    assert_eq!(
        (b.name.as_deref(), b.base.as_str(), b.platform.as_deref()),
        (Some("build"), "$BASE", Some("linux/arm64"))
    );
    assert_eq!(b.start_line, 3);
    assert_eq!(d.stages[1].commands.len(), 2);
    assert_eq!(d.stage_index("BUILD"), Some(0));
}

#[test]
fn copy_and_add_fields() {
    match first("COPY --from=src --chown=app:app --chmod=755 --link --parents --exclude=*.log --exclude=tmp a b /dst/") {
        Instruction::Copy(c) => {
            assert_eq!(c.sources, s(&["a", "b"]));
            assert_eq!(c.dest, "/dst/");
            assert_eq!(c.from.as_deref(), Some("src"));
            assert_eq!(c.chown.as_deref(), Some("app:app"));
            assert_eq!(c.chmod.as_deref(), Some("755"));
            assert!(c.link && c.parents);
            assert_eq!(c.exclude, s(&["*.log", "tmp"]));
        }
        other => panic!("{other:?}"),
    }
    match first("ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y.tar /z") {
        Instruction::Add(a) => {
            assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
            assert_eq!(a.keep_git_dir, Some(true));
            assert_eq!(a.unpack, Some(false));
        }
        other => panic!("{other:?}"),
    }
    match first("COPY [\"my file.txt\", \"/dst dir/\"]") {
        Instruction::Copy(c) => assert_eq!(
            (c.sources, c.dest),
            (s(&["my file.txt"]), "/dst dir/".to_string())
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heredoc_sources() {
    let d = df("FROM a\nCOPY <<EOF <<-'RAW' /dst/\nhello $X\nEOF\n\t$Y\n\tRAW\n");
    match &d.stages[0].commands[0].instruction {
        Instruction::Copy(c) => {
            assert!(c.sources.is_empty());
            assert_eq!(c.contents.len(), 2);
            assert_eq!(
                (
                    c.contents[0].path.as_str(),
                    c.contents[0].data.as_str(),
                    c.contents[0].expand
                ),
                ("EOF", "hello $X\n", true)
            );
            assert_eq!(
                (
                    c.contents[1].path.as_str(),
                    c.contents[1].data.as_str(),
                    c.contents[1].expand
                ),
                ("RAW", "$Y\n", false)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (
            d.stages[0].commands[0].start_line,
            d.stages[0].commands[0].end_line
        ),
        (2, 6)
    );
    let e = err("FROM a\nCOPY x <<EOF\nbody\nEOF\n");
    assert!(
        e.to_string()
            .contains("COPY cannot accept a heredoc as a destination"),
        "{e}"
    );
}

#[test]
fn run_fields() {
    match first("RUN --mount=type=cache,target=/c --mount=type=secret,id=s --network=none --security=insecure echo hi") {
        Instruction::Run(r) => {
            assert_eq!(r.mounts.len(), 2);
            assert_eq!((r.network, r.security), (Network::None, Security::Insecure));
            assert_eq!(r.cmd.shell_text(), Some("echo hi"));
            let m = r.parse_mounts(&mut |v| Ok(v.to_string())).expect("mounts");
            assert_eq!(m[0].kind, MountType::Cache);
            assert_eq!(m[1].kind, MountType::Secret);
        }
        other => panic!("{other:?}"),
    }
    match first("RUN [\"/bin/echo\", \"a b\"]") {
        Instruction::Run(r) => assert_eq!(
            (r.cmd.args, r.cmd.prepend_shell),
            (s(&["/bin/echo", "a b"]), false)
        ),
        other => panic!("{other:?}"),
    }
    let d = df("FROM a\nRUN <<EOF\necho hi\nEOF\n");
    match &d.stages[0].commands[0].instruction {
        Instruction::Run(r) => {
            assert_eq!(r.cmd.args, s(&["<<EOF"]));
            assert_eq!(r.heredocs[0].content, "echo hi\n");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn metadata_instructions() {
    assert_eq!(
        first("ENV A=1 B=\"x y\""),
        Instruction::Env(vec![
            KeyValue {
                key: "A".into(),
                value: "1".into(),
                legacy: false
            },
            KeyValue {
                key: "B".into(),
                value: "\"x y\"".into(),
                legacy: false
            },
        ])
    );
    assert_eq!(
        first("ENV W ${A} legacy   form"),
        Instruction::Env(vec![KeyValue {
            key: "W".into(),
            value: "${A} legacy   form".into(),
            legacy: true
        }])
    );
    assert_eq!(
        first("ARG A B=2 C="),
        Instruction::Arg(vec![
            ArgDef {
                key: "A".into(),
                value: None
            },
            ArgDef {
                key: "B".into(),
                value: Some("2".into())
            },
            ArgDef {
                key: "C".into(),
                value: Some(String::new())
            },
        ])
    );
    assert_eq!(
        first("EXPOSE 8080 80/tcp 53/udp"),
        Instruction::Expose(s(&["53/udp", "80/tcp", "8080"]))
    );
    assert_eq!(first("USER app:app"), Instruction::User("app:app".into()));
    assert_eq!(first("WORKDIR /a b"), Instruction::Workdir("/a b".into()));
    assert_eq!(
        first("VOLUME [\"/a\", \"/b\"]"),
        Instruction::Volume(s(&["/a", "/b"]))
    );
    assert_eq!(first("VOLUME /a /b"), Instruction::Volume(s(&["/a", "/b"])));
    assert_eq!(
        first("STOPSIGNAL SIGKILL"),
        Instruction::StopSignal("SIGKILL".into())
    );
    assert_eq!(
        first("SHELL [\"/bin/bash\", \"-c\"]"),
        Instruction::Shell(s(&["/bin/bash", "-c"]))
    );
    assert_eq!(
        first("MAINTAINER me <me@x>"),
        Instruction::Maintainer("me <me@x>".into())
    );
    assert_eq!(
        first("CMD echo $HOME"),
        Instruction::Cmd(CommandLine {
            args: s(&["echo $HOME"]),
            prepend_shell: true
        })
    );
    assert_eq!(
        first("ENTRYPOINT []"),
        Instruction::Entrypoint(CommandLine {
            args: vec![],
            prepend_shell: false
        })
    );
    assert_eq!(
        first("LABEL \"a b\"=c d='e'"),
        Instruction::Label(vec![
            KeyValue {
                key: "\"a b\"".into(),
                value: "c".into(),
                legacy: false
            },
            KeyValue {
                key: "d".into(),
                value: "'e'".into(),
                legacy: false
            },
        ])
    );
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        first("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    match first("HEALTHCHECK --interval=1m30s --timeout=5s --start-period=1s --start-interval=2s --retries=3 CMD [\"/bin/check\", \"--fast\"]") {
        Instruction::Healthcheck(Healthcheck::Check(h)) => {
            assert_eq!(h.test, s(&["CMD", "/bin/check", "--fast"]));
            assert_eq!((h.interval, h.timeout, h.start_period, h.start_interval, h.retries), (90_000_000_000, 5_000_000_000, 1_000_000_000, 2_000_000_000, 3));
        }
        other => panic!("{other:?}"),
    }
    match first("HEALTHCHECK CMD curl -f http://x/ || exit 1") {
        Instruction::Healthcheck(Healthcheck::Check(h)) => {
            assert_eq!(h.test, s(&["CMD-SHELL", "curl -f http://x/ || exit 1"]))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn onbuild_expression() {
    assert_eq!(
        first("ONBUILD RUN echo triggered > /triggered"),
        Instruction::Onbuild(Onbuild {
            expression: "RUN echo triggered > /triggered".into()
        })
    );
    let d = df("FROM a\nonbuild  RUN <<EOF\necho x\nEOF\n");
    assert_eq!(
        d.stages[0].commands[0].instruction,
        Instruction::Onbuild(Onbuild {
            expression: "RUN <<EOF\necho x\nEOF".into()
        })
    );
    let t = parse_onbuild_trigger("COPY . /app/").expect("trigger");
    assert!(matches!(t.instruction, Instruction::Copy(_)));
    assert!(parse_onbuild_trigger("FROM x").is_err());
}

#[test]
fn parse_errors_table() {
    // (Dockerfile, line, message fragment)
    let cases: &[(&str, usize, &str)] = &[
        (
            "FROM a\nCOPPY a /\n",
            2,
            "unknown instruction: COPPY (did you mean COPY?)",
        ),
        ("COPY a /\n", 1, "no build stage in current context"),
        (
            "FROM a\nCOPY --form=x a /\n",
            2,
            "unknown flag: --form (did you mean --from?)",
        ),
        (
            "FROM a\nCOPY --link --link a /\n",
            2,
            "duplicate flag specified: --link",
        ),
        (
            "FROM a\nCOPY a\n",
            2,
            "COPY requires at least two arguments",
        ),
        ("FROM a\nADD a\n", 2, "ADD requires at least two arguments"),
        ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
        ("FROM a\nENV A\n", 2, "ENV must have two arguments"),
        ("FROM a\nLABEL a=1 b\n", 2, "can't find = in \"b\""),
        (
            "FROM a\nWORKDIR\n",
            2,
            "WORKDIR requires exactly one argument",
        ),
        ("FROM a\nUSER\n", 2, "USER requires exactly one argument"),
        (
            "FROM a\nEXPOSE\n",
            2,
            "EXPOSE requires at least one argument",
        ),
        ("FROM a\nARG\n", 2, "ARG requires at least one argument"),
        ("FROM a\nARG =x\n", 2, "ARG names can not be blank"),
        (
            "FROM a\nSHELL /bin/sh -c\n",
            2,
            "SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nCMD [\"a\", 1]\n",
            2,
            "arrays must be comprised of strings only",
        ),
        (
            "FROM a b\n",
            1,
            "FROM requires either one or three arguments",
        ),
        ("FROM a AS 1x\n", 1, "invalid name for build stage"),
        (
            "FROM a\nHEALTHCHECK CMD\n",
            2,
            "Missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM a\nHEALTHCHECK NONE x\n",
            2,
            "HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=1 CMD x\n",
            2,
            "time: invalid duration \"1\"",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=-1 CMD x\n",
            2,
            "--retries cannot be negative (-1)",
        ),
        (
            "FROM a\nHEALTHCHECK FOO x\n",
            2,
            "Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
        ),
        (
            "FROM a\nRUN --network=bridge x\n",
            2,
            "invalid network mode \"bridge\"",
        ),
        (
            "FROM a\nRUN --mount=type=bind,from=$X,target=/x true\n",
            2,
            "'from' doesn't support variable expansion",
        ),
        ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD"),
        (
            "FROM a\nONBUILD FROM x\n",
            2,
            "FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM a\nCOPY --from=${BASE} /a /b\n",
            2,
            "variable expansion is not supported for --from",
        ),
        (
            "FROM a\nVOLUME [\"\"]\n",
            2,
            "VOLUME specified can not be an empty string",
        ),
        ("FROM a\nRUN <<EOF\nno end\n", 2, "unterminated heredoc"),
    ];
    for (src, line, msg) in cases {
        let e = err(src);
        assert_eq!(e.line, *line, "{src:?}: {e}");
        assert!(e.to_string().contains(msg), "{src:?}: got {e}");
    }
}

#[test]
fn error_columns_point_at_the_culprit() {
    let e = err("FROM a\nCOPY --form=x a /\n");
    assert_eq!((e.col, e.len), (Some(6), 8));
    let e = err("FROM a\n  COPPY a /\n");
    assert_eq!((e.col, e.len), (Some(3), 5));
    assert_eq!(e.source_line.as_deref(), Some("  COPPY a /"));
}

#[test]
fn expansion_rules() {
    let lex = Lex::new('\\');
    let env: Vec<(String, String)> = vec![
        ("D".into(), "/opt/app".into()),
        ("P".into(), "80 443".into()),
        ("U".into(), "app".into()),
    ];
    let cases: &[(&str, Instruction)] = &[
        (
            "COPY a.txt $D/",
            Instruction::Copy(Copy {
                sources: s(&["a.txt"]),
                contents: vec![],
                dest: "/opt/app/".into(),
                from: None,
                chown: None,
                chmod: None,
                link: false,
                parents: false,
                exclude: vec![],
            }),
        ),
        ("EXPOSE $P 22", Instruction::Expose(s(&["80", "443", "22"]))),
        (
            "USER ${U}:${G:-users}",
            Instruction::User("app:users".into()),
        ),
        (
            "WORKDIR ${D}/sub",
            Instruction::Workdir("/opt/app/sub".into()),
        ),
        (
            "CMD echo $D",
            Instruction::Cmd(CommandLine {
                args: s(&["echo $D"]),
                prepend_shell: true,
            }),
        ),
        (
            "ENV X=\"$D\" Y='$D'",
            Instruction::Env(vec![
                KeyValue {
                    key: "X".into(),
                    value: "/opt/app".into(),
                    legacy: false,
                },
                KeyValue {
                    key: "Y".into(),
                    value: "$D".into(),
                    legacy: false,
                },
            ]),
        ),
    ];
    for (src, want) in cases {
        let mut i = first(src);
        i.expand(&lex, &env).expect("expands");
        assert_eq!(&i, want, "{src}");
    }
    let d = df("FROM a\nCOPY <<EOF <<'Q' /d/\n\"$D\"\nEOF\n$D\nQ\n");
    let mut i = d.stages[0].commands[0].instruction.clone();
    i.expand(&lex, &env).expect("expands");
    match i {
        Instruction::Copy(c) => assert_eq!(
            (c.contents[0].data.as_str(), c.contents[1].data.as_str()),
            ("\"/opt/app\"\n", "$D\n")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_heredoc_scripts() {
    let script = |src: &str| {
        let d = df(&format!("FROM a\n{src}"));
        match &d.stages[0].commands[0].instruction {
            Instruction::Run(r) => r.script(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        script("RUN echo hi\n"),
        Ok(RunScript::Args(s(&["echo hi"])))
    );
    assert_eq!(
        script("RUN <<EOF\nset -e\necho x\nEOF\n"),
        Ok(RunScript::Args(s(&["set -e\necho x\n"])))
    );
    assert_eq!(
        script("RUN <<-EOF\n\techo x\n\tEOF\n"),
        Ok(RunScript::Args(s(&["echo x\n"])))
    );
    assert_eq!(
        script("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"),
        Ok(RunScript::ShebangFile {
            name: "EOF".into(),
            data: "#!/usr/bin/env python3\nprint(1)\n".into()
        })
    );
    assert_eq!(
        script("RUN python3 <<EOF > /out\nprint(1)\nEOF\n"),
        Ok(RunScript::Args(s(&["python3 <<EOF > /out\nprint(1)\nEOF"])))
    );
}

#[test]
fn build_time_errors_are_located() {
    let d = df("FROM a\nWORKDIR ${X:?must be set}\n");
    let cmd = &d.stages[0].commands[0];
    let mut i = cmd.instruction.clone();
    let e = match i.expand(&d.lex(), &crate::dockerfile::shell::NoEnv) {
        Err(e) => d.command_error(e.into(), cmd),
        Ok(()) => panic!("expected an error"),
    };
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: failed to process \"${X:?must be set}\": X: must be set"
    );
    assert_eq!(e.source_line.as_deref(), Some("WORKDIR ${X:?must be set}"));
}
