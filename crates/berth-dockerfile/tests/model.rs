//! Typed instructions, errors with line numbers, ARG scoping and stage dependencies.

use std::collections::HashMap;
use std::time::Duration;

use berth_dockerfile::{
    parse, Command, Dependency, Error, ErrorKind, Healthcheck, InstructionKind, MountType, NoEnv,
};

fn args(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MULTI: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=alpine
ARG VERSION=3.19
ARG UNUSED
FROM ${BASE}:${VERSION} AS Builder
ARG VERSION
RUN --mount=type=cache,target=/root/.cache,sharing=locked \
    --network=none make
FROM scratch AS assets
COPY <<EOF /index.html
<h1>hi</h1>
EOF
FROM builder AS test
RUN --mount=from=assets,target=/a,source=/ ls /a
FROM --platform=$BUILDPLATFORM debian
ARG FROM_STAGE=1
COPY --from=0 --chown=1000:1000 --link /out /bin/
COPY --from=${FROM_STAGE} /index.html /srv/
COPY --from=nginx:1 /etc/nginx /etc/nginx
"#;

#[test]
fn stages_names_lines_and_platforms() {
    let df = parse(MULTI).unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.meta_args.len(), 3);
    let names: Vec<_> = df.stages.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        names,
        [
            Some("builder".into()),
            Some("assets".into()),
            Some("test".into()),
            None
        ]
    );
    assert_eq!(df.stages[0].base, "${BASE}:${VERSION}");
    assert_eq!(df.stages[0].line, 5);
    assert_eq!(df.stages[3].platform.as_deref(), Some("$BUILDPLATFORM"));
    let run = &df.stages[0].instructions[1];
    assert_eq!((run.line, run.end_line), (7, 8));
    let InstructionKind::Run(r) = &run.kind else {
        panic!("want RUN, got {run:?}")
    };
    assert_eq!(r.command, Command::Shell("make".into()));
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(r.mounts[0].sharing.as_deref(), Some("locked"));
    assert!(!r.mounts[0].readonly);
    let copy = &df.stages[1].instructions[0];
    let InstructionKind::Copy(c) = &copy.kind else {
        panic!("want COPY, got {copy:?}")
    };
    assert_eq!(c.sources, ["<<EOF"]);
    assert_eq!(c.heredocs[0].content, "<h1>hi</h1>\n");
    assert_eq!((copy.line, copy.end_line), (10, 12));
    assert_eq!(df.stage("ASSETS").unwrap().index, 1);
    assert_eq!(df.stage("3").unwrap().index, 3);
    assert_eq!(df.target(None).unwrap().index, 3);
    assert_eq!(df.target(Some("test")).unwrap().index, 2);
    let e = df.target(Some("nope")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn arg_scoping_and_base_expansion() {
    let df = parse(MULTI).unwrap();
    assert_eq!(
        df.meta_arg_values(&NoEnv).unwrap(),
        [
            ("BASE".to_string(), "alpine".to_string()),
            ("VERSION".into(), "3.19".into())
        ]
    );
    assert_eq!(
        df.base_of(0, &NoEnv).unwrap(),
        Dependency::Image("alpine:3.19".into())
    );
    let overridden = args(&[("VERSION", "3.20")]);
    assert_eq!(
        df.base_of(0, &overridden).unwrap(),
        Dependency::Image("alpine:3.20".into())
    );
    // VERSION redeclared in stage 0 inherits the meta value; BASE is not visible there.
    assert_eq!(
        df.stage_args(0, &NoEnv).unwrap(),
        [("VERSION".to_string(), "3.19".to_string())]
    );
    assert_eq!(
        df.stage_args(0, &overridden).unwrap(),
        [("VERSION".to_string(), "3.20".to_string())]
    );
    assert_eq!(
        df.stage_args(3, &NoEnv).unwrap(),
        [("FROM_STAGE".to_string(), "1".to_string())]
    );
    assert_eq!(df.base_of(2, &NoEnv).unwrap(), Dependency::Stage(0));
    let auto = args(&[("BUILDPLATFORM", "linux/amd64")]);
    assert_eq!(
        df.platform_of(3, &auto).unwrap().as_deref(),
        Some("linux/amd64")
    );
    assert_eq!(df.platform_of(0, &auto).unwrap(), None);
}

#[test]
fn dependencies_for_parallel_builds() {
    let df = parse(MULTI).unwrap();
    assert_eq!(
        df.dependencies(2, &NoEnv).unwrap(),
        [Dependency::Stage(0), Dependency::Stage(1)]
    );
    assert_eq!(
        df.dependencies(3, &NoEnv).unwrap(),
        [
            Dependency::Stage(0),
            Dependency::Stage(1),
            Dependency::Image("debian".into()),
            Dependency::Image("nginx:1".into())
        ]
    );
    assert_eq!(df.stages_needed(3, &NoEnv).unwrap(), [0, 1, 3]);
    assert_eq!(df.stages_needed(2, &NoEnv).unwrap(), [0, 1, 2]);
    assert_eq!(df.stages_needed(1, &NoEnv).unwrap(), [1]);
    let cyclic = parse("FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n").unwrap();
    let err = cyclic.stages_needed(1, &NoEnv).unwrap_err();
    assert!(err.to_string().contains("circular"), "{err}");
}

#[test]
fn errors_name_the_line() {
    let cases = [
        (
            "FROM a\n\nFORM b\n",
            "dockerfile parse error line 3: unknown instruction: FORM (did you mean FROM?)",
        ),
        (
            "FROM a\nRUN <<EOF\nhi\n",
            "dockerfile parse error line 2: unterminated heredoc \"EOF\"",
        ),
        ("", "the Dockerfile (Dockerfile) cannot be empty"),
        (
            "FROM a\nENV X\n",
            "dockerfile parse error line 2: ENV must have two arguments",
        ),
        (
            "RUN x\n",
            "dockerfile parse error line 1: no build stage in current context",
        ),
        (
            "FROM a\nSHELL /bin/bash\n",
            "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nCOPY --frm=b x y\n",
            "dockerfile parse error line 2: unknown flag: frm",
        ),
        (
            "FROM a AS x\nFROM b AS X\n",
            "dockerfile parse error line 2: duplicate stage name \"x\"",
        ),
        (
            "FROM a AS 1x\n",
            "dockerfile parse error line 1: invalid name for build stage",
        ),
        (
            "FROM a\nCOPY x\n",
            "dockerfile parse error line 2: COPY requires at least two arguments",
        ),
        (
            "FROM a\nHEALTHCHECK CONNECT x\n",
            "dockerfile parse error line 2: unknown type \"CONNECT\"",
        ),
        (
            "FROM a\nHEALTHCHECK NONE x\n",
            "dockerfile parse error line 2: HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM a\nONBUILD ONBUILD RUN x\n",
            "dockerfile parse error line 2: chaining ONBUILD",
        ),
        (
            "FROM a\nRUN --mount=type=weird,target=/x y\n",
            "dockerfile parse error line 2: unsupported mount type",
        ),
        (
            "# escape=x\nFROM a\n",
            "dockerfile parse error line 1: invalid escape token",
        ),
        (
            "FROM a\nADD --from=b x y\n",
            "dockerfile parse error line 2: unknown flag: from",
        ),
    ];
    for (text, want) in cases {
        let err: Error = parse(text).expect_err(want);
        assert!(
            err.to_string().starts_with(want),
            "{text:?}: got {err}, want {want}"
        );
        assert_eq!(err.kind(), ErrorKind::Invalid);
    }
}

/// Blank lines or comments alone are not "empty" (moby keeps that word for a file of no bytes).
#[test]
fn blank_or_comment_only_is_a_file_with_no_instructions() {
    for text in ["\n\n  \n", "# a comment\n"] {
        let err = parse(text).expect_err(text);
        assert!(
            err.to_string().contains("file with no instructions"),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn malformed_json_is_shell_form() {
    let df = parse("FROM a\nCMD [\"echo\", \"unterminated]\nENTRYPOINT [\"/bin/sh\", \"-c\"]\n")
        .unwrap();
    let kinds: Vec<_> = df.stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.clone())
        .collect();
    assert_eq!(
        kinds[0],
        InstructionKind::Cmd(Command::Shell("[\"echo\", \"unterminated]".into()))
    );
    assert_eq!(
        kinds[1],
        InstructionKind::Entrypoint(Command::Exec(vec!["/bin/sh".into(), "-c".into()]))
    );
}

#[test]
fn healthcheck_options() {
    let df = parse(
        "FROM a\nHEALTHCHECK --interval=1m30s --timeout=3s --start-period=500ms --retries=4 CMD [\"curl\", \"-f\", \"x\"]\nHEALTHCHECK NONE\n",
    )
    .unwrap();
    let InstructionKind::Healthcheck(Healthcheck::Check(h)) = &df.stages[0].instructions[0].kind
    else {
        panic!("want HEALTHCHECK CMD")
    };
    assert_eq!(h.interval, Some(Duration::from_secs(90)));
    assert_eq!(h.timeout, Some(Duration::from_secs(3)));
    assert_eq!(h.start_period, Some(Duration::from_millis(500)));
    assert_eq!(h.retries, Some(4));
    assert_eq!(
        h.test,
        Command::Exec(vec!["curl".into(), "-f".into(), "x".into()])
    );
    assert_eq!(
        df.stages[0].instructions[1].kind,
        InstructionKind::Healthcheck(Healthcheck::None)
    );
}

#[test]
fn expansion_per_instruction() {
    let text = "FROM a\nENV A=\"x y\" B=$HOME/bin\nLABEL \"k $V\"=v\nEXPOSE $PORTS\nWORKDIR ${DIR:-/srv}\nRUN echo $HOME\nCOPY --chown=$U [\"$SRC\", \"/d\"]\nARG N=${V}-1\nONBUILD RUN $X\n";
    let df = parse(text).unwrap();
    let env = args(&[
        ("HOME", "/root"),
        ("V", "2"),
        ("PORTS", "80 443/udp"),
        ("U", "app"),
        ("SRC", "s"),
    ]);
    let ins = &df.stages[0].instructions;
    let ex: Vec<_> = ins
        .iter()
        .map(|i| i.kind.expand(&env, df.escape()).unwrap())
        .collect();
    let InstructionKind::Env(kv) = &ex[0] else {
        panic!()
    };
    assert_eq!(
        (kv[0].value.as_str(), kv[1].value.as_str()),
        ("x y", "/root/bin")
    );
    let InstructionKind::Label(kv) = &ex[1] else {
        panic!()
    };
    assert_eq!(kv[0].key, "k 2");
    assert_eq!(
        ex[2],
        InstructionKind::Expose(vec!["80".into(), "443/udp".into()])
    );
    assert_eq!(ex[3], InstructionKind::Workdir("/srv".into()));
    assert_eq!(ex[4], ins[4].kind, "RUN commands are not expanded");
    let InstructionKind::Copy(c) = &ex[5] else {
        panic!()
    };
    assert_eq!(
        (c.sources[0].as_str(), c.chown.as_deref()),
        ("s", Some("app"))
    );
    let InstructionKind::Arg(a) = &ex[6] else {
        panic!()
    };
    assert_eq!(a[0].default.as_deref(), Some("2-1"));
    assert_eq!(ex[7], InstructionKind::Onbuild("RUN $X".into()));
}

#[test]
fn backtick_escape_directive_applies_to_parsing_and_expansion() {
    let df =
        parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo hi\nENV P=C:\\x Q=`$HOME\n").unwrap();
    let ins = &df.stages[0].instructions;
    let InstructionKind::Run(r) = &ins[0].kind else {
        panic!()
    };
    assert_eq!(r.command, Command::Shell("dir c:\\   && echo hi".into()));
    let env = args(&[("HOME", "/h")]);
    let InstructionKind::Env(kv) = ins[1].kind.expand(&env, df.escape()).unwrap() else {
        panic!()
    };
    assert_eq!(kv[0].value, "C:\\x");
    assert_eq!(kv[1].value, "$HOME");
}

#[test]
fn heredoc_helpers() {
    let text = "FROM a\nRUN <<EOF\necho $HOME\nEOF\nRUN python3 <<PY > out\nprint(1)\nPY\nCOPY <<-EOT <<'RAW' /d/\n\thome=$HOME \"q\"\n\tEOT\n$HOME\nRAW\n";
    let df = parse(text).unwrap();
    let ins = &df.stages[0].instructions;
    let InstructionKind::Run(script) = &ins[0].kind else {
        panic!()
    };
    assert_eq!(script.heredoc_script().unwrap().body(), "echo $HOME\n");
    let InstructionKind::Run(piped) = &ins[1].kind else {
        panic!()
    };
    assert!(piped.heredoc_script().is_none());
    let InstructionKind::Copy(c) = &ins[2].kind else {
        panic!()
    };
    let env = args(&[("HOME", "/root")]);
    let eot = c.heredoc_for(&c.sources[0]).unwrap();
    assert_eq!(eot.expanded_body(&env, '\\').unwrap(), "home=/root \"q\"\n");
    let raw = c.heredoc_for(&c.sources[1]).unwrap();
    assert_eq!(raw.expanded_body(&env, '\\').unwrap(), "$HOME\n");
    assert_eq!(c.dest, "/d/");
}

#[test]
fn onbuild_trigger_reparses() {
    let ins = berth_dockerfile::parse_instruction("COPY --chown=1 . /app", '\\').unwrap();
    let InstructionKind::Copy(c) = ins.kind else {
        panic!()
    };
    assert_eq!((c.chown.as_deref(), c.dest.as_str()), (Some("1"), "/app"));
    assert_eq!(ins.line, 1);
    assert!(berth_dockerfile::parse_instruction("FORM x", '\\').is_err());
}

#[test]
fn env_overrides_arg_in_stage_defaults() {
    let df = parse("FROM a\nARG X=arg\nENV X=env\nARG Y=${X}-y\nARG Z\n").unwrap();
    let got = df.stage_args(0, &args(&[("Z", "cli")])).unwrap();
    let want: Vec<(String, String)> = [("X", "arg"), ("Y", "env-y"), ("Z", "cli")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// `RUN []` parses as an empty exec form (dockerd runs the image's command for it); a bare
/// `RUN` is still an error.
#[test]
fn run_with_an_empty_json_array_parses() {
    let df = parse("FROM a\nRUN []\n").unwrap();
    match &df.stages[0].instructions[0].kind {
        InstructionKind::Run(r) => assert_eq!(r.command, Command::Exec(vec![])),
        k => panic!("{k:?}"),
    }
    let e = parse("FROM a\nRUN\n").unwrap_err();
    assert!(
        e.to_string().contains("RUN requires at least one argument"),
        "{e}"
    );
}
