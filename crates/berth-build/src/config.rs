//! How each instruction changes the image config (ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME,
//! CMD, ENTRYPOINT, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER), the history text
//! (BuildKit's style: the instruction as written after expansion, `# buildkit` on layer steps).

use berth_dockerfile::{Command, Healthcheck, InstructionKind};
use berth_oci::config::{HealthConfig, History};
use berth_oci::ImageConfig;

use crate::error::{BuildError, ErrorKind, Result};

/// The shell used for shell-form commands when no SHELL was set.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// The stage's shell (SHELL, else `/bin/sh -c`).
pub fn shell_of(cfg: &ImageConfig) -> Vec<String> {
    cfg.config.shell.clone().unwrap_or_else(default_shell)
}

/// A command as argv: exec form as is, shell form through the shell.
pub fn argv(cmd: &Command, shell: &[String]) -> Vec<String> {
    match cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// `KEY=value` environment of a config as pairs.
pub fn env_pairs(cfg: &ImageConfig) -> Vec<(String, String)> {
    cfg.config
        .env
        .iter()
        .flatten()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

/// Set (or replace) one variable in the config's environment.
pub fn set_env(cfg: &mut ImageConfig, key: &str, value: &str) {
    let env = cfg.config.env.get_or_insert_with(Vec::new);
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Lexically clean an absolute path (`/a/./b/../c` → `/a/c`).
pub fn clean_abs(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Resolve a WORKDIR/COPY destination against the current working dir.
pub fn join_workdir(cfg: &ImageConfig, p: &str) -> String {
    if p.starts_with('/') {
        return clean_abs(p);
    }
    let base = cfg
        .config
        .working_dir
        .as_deref()
        .filter(|w| !w.is_empty())
        .unwrap_or("/");
    clean_abs(&format!("{base}/{p}"))
}

fn expose_ports(spec: &str, line: usize) -> Result<Vec<String>> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let bad = || BuildError::Step {
        line,
        kind: ErrorKind::Invalid,
        message: format!("invalid containerPort: {spec}: use EXPOSE 80, 80/udp or 8000-8010"),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn nanos(d: Option<std::time::Duration>) -> Option<i64> {
    d.map(|d| d.as_nanos() as i64)
}

/// Apply a metadata instruction (already expanded) to `cfg`. `cmd_set` tracks whether CMD was
/// set in this stage (ENTRYPOINT resets an inherited CMD, as Docker does). Returns the
/// history `created_by` text. Errors for instructions that are not metadata.
pub fn apply_metadata(
    cfg: &mut ImageConfig,
    kind: &InstructionKind,
    line: usize,
    cmd_set: &mut bool,
) -> Result<String> {
    let c = &mut cfg.config;
    let json = |v: &Vec<String>| serde_json::to_string(v).expect("strings serialise");
    Ok(match kind {
        InstructionKind::Env(kvs) => {
            for kv in kvs {
                set_env(cfg, &kv.key, &kv.value);
            }
            let parts: Vec<String> = kvs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            format!("ENV {}", parts.join(" "))
        }
        InstructionKind::Label(kvs) => {
            let labels = c.labels.get_or_insert_with(Default::default);
            for kv in kvs {
                labels.insert(kv.key.clone(), kv.value.clone());
            }
            let parts: Vec<String> = kvs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            format!("LABEL {}", parts.join(" "))
        }
        InstructionKind::Maintainer(m) => {
            cfg.author = Some(m.clone());
            format!("MAINTAINER {m}")
        }
        InstructionKind::Expose(ports) => {
            let set = c.exposed_ports.get_or_insert_with(Default::default);
            let mut all = Vec::new();
            for p in ports {
                for q in expose_ports(p, line)? {
                    set.insert(q.clone(), serde_json::json!({}));
                    all.push(q);
                }
            }
            format!("EXPOSE {}", all.join(" "))
        }
        InstructionKind::Volume(vols) => {
            // dockerd checks after expansion (`VOLUME ""`, `VOLUME $UNSET`).
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err(BuildError::Step {
                    line,
                    kind: ErrorKind::Invalid,
                    message: "VOLUME specified can not be an empty string".into(),
                });
            }
            let set = c.volumes.get_or_insert_with(Default::default);
            for v in vols {
                set.insert(v.clone(), serde_json::json!({}));
            }
            format!("VOLUME {}", json(vols))
        }
        InstructionKind::User(u) => {
            c.user = Some(u.clone());
            format!("USER {u}")
        }
        InstructionKind::Workdir(w) => {
            let p = join_workdir(cfg, w);
            cfg.config.working_dir = Some(p.clone());
            format!("WORKDIR {p}")
        }
        InstructionKind::Cmd(cmd) => {
            let v = argv(cmd, &shell_of(cfg));
            cfg.config.cmd = Some(v.clone());
            *cmd_set = true;
            format!("CMD {}", json(&v))
        }
        InstructionKind::Entrypoint(cmd) => {
            let v = argv(cmd, &shell_of(cfg));
            cfg.config.entrypoint = Some(v.clone());
            if !*cmd_set {
                cfg.config.cmd = None;
            }
            format!("ENTRYPOINT {}", json(&v))
        }
        InstructionKind::Shell(v) => {
            c.shell = Some(v.clone());
            format!("SHELL {}", json(v))
        }
        InstructionKind::StopSignal(s) => {
            c.stop_signal = Some(s.clone());
            format!("STOPSIGNAL {s}")
        }
        InstructionKind::Healthcheck(h) => {
            let new = match h {
                Healthcheck::None => HealthConfig {
                    test: Some(vec!["NONE".into()]),
                    ..Default::default()
                },
                Healthcheck::Check(o) => {
                    let base = c.healthcheck.clone().unwrap_or_default();
                    let test = match &o.test {
                        Command::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v.iter().cloned());
                            t
                        }
                        Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                    };
                    HealthConfig {
                        test: Some(test),
                        interval: nanos(o.interval).or(base.interval),
                        timeout: nanos(o.timeout).or(base.timeout),
                        start_period: nanos(o.start_period).or(base.start_period),
                        start_interval: nanos(o.start_interval).or(base.start_interval),
                        retries: o.retries.map(i64::from).or(base.retries),
                    }
                }
            };
            let text = format!("HEALTHCHECK {}", json(new.test.as_ref().expect("set")));
            c.healthcheck = Some(new);
            text
        }
        // The classic builder records each ARG as written (defaults, not build args).
        InstructionKind::Arg(decls) => {
            let parts: Vec<String> = decls
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                })
                .collect();
            format!("ARG {}", parts.join(" "))
        }
        InstructionKind::Onbuild(t) => {
            c.on_build.get_or_insert_with(Vec::new).push(t.clone());
            format!("ONBUILD {t}")
        }
        other => {
            return Err(BuildError::Step {
                line,
                kind: ErrorKind::Internal,
                message: format!("{} is not a metadata instruction", other.name()),
            })
        }
    })
}

/// Append a history entry (and bump `created`); the step's container config is recorded as
/// one that ran nothing (a RUN replaces it with [`record_container_config`]).
pub fn push_history(cfg: &mut ImageConfig, created_by: String, empty_layer: bool, now: &str) {
    cfg.created = Some(now.to_string());
    cfg.history.push(History {
        created: Some(now.to_string()),
        created_by: Some(created_by),
        author: None,
        comment: Some("buildkit.dockerfile.v0".into()),
        empty_layer,
    });
    record_container_config(cfg, None);
}

/// Record the config of the container the step ran in as the image config's V1
/// `container_config` (dockerd shows it as the image's `ContainerConfig`, whose `Volumes`
/// docker-compose 1.29 reads on every recreate): the image's config with the step's command,
/// `run`'s argv for a RUN (which overrides the entrypoint), else moby's
/// `<shell> "#(nop) " <instruction>` for a step that ran nothing.
pub fn record_container_config(cfg: &mut ImageConfig, run: Option<&[String]>) {
    let mut c = cfg.config.clone();
    match run {
        Some(argv) => {
            c.cmd = Some(argv.to_vec());
            c.entrypoint = None;
        }
        None => {
            let text = cfg.history.last().and_then(|h| h.created_by.clone());
            let mut cmd = shell_of(cfg);
            cmd.push("#(nop) ".into());
            cmd.extend(text);
            c.cmd = Some(cmd);
        }
    }
    let v = serde_json::to_value(&c).expect("runtime config serialises");
    cfg.extra.insert("container_config".into(), v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::{parse, NoEnv};

    fn apply_all(src: &str) -> (ImageConfig, Vec<String>) {
        let df = parse(src).unwrap();
        let mut cfg = ImageConfig::default();
        cfg.config.cmd = Some(vec!["base".into()]);
        let mut set = false;
        let mut texts = Vec::new();
        for ins in &df.stages[0].instructions {
            let k = ins.kind.expand(&NoEnv, '\\').unwrap();
            texts.push(apply_metadata(&mut cfg, &k, ins.line, &mut set).unwrap());
        }
        (cfg, texts)
    }

    #[test]
    fn metadata_evolves_like_docker() {
        let (cfg, texts) = apply_all(
            "FROM x\nENV A=1 B=2\nENV A=3\nWORKDIR /app\nWORKDIR sub/../src\nUSER nobody\n\
             LABEL k=v\nEXPOSE 80 53/udp 8000-8001\nVOLUME /data\nSTOPSIGNAL SIGINT\n\
             ENTRYPOINT echo hi\nSHELL [\"/bin/bash\",\"-c\"]\nCMD run me\n\
             HEALTHCHECK --interval=5s CMD true\nONBUILD RUN make\n",
        );
        let c = &cfg.config;
        assert_eq!(c.env.as_ref().unwrap(), &["A=3", "B=2"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app/src"));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(
            c.entrypoint.as_ref().unwrap(),
            &["/bin/sh", "-c", "echo hi"]
        );
        assert_eq!(c.cmd.as_ref().unwrap(), &["/bin/bash", "-c", "run me"]);
        let h = c.healthcheck.as_ref().unwrap();
        assert_eq!(h.test.as_ref().unwrap(), &["CMD-SHELL", "true"]);
        assert_eq!(h.interval, Some(5_000_000_000));
        assert_eq!(c.on_build.as_ref().unwrap(), &["RUN make"]);
        assert_eq!(texts[0], "ENV A=1 B=2");
        assert_eq!(texts[9], "ENTRYPOINT [\"/bin/sh\",\"-c\",\"echo hi\"]");
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let (cfg, _) = apply_all("FROM x\nENTRYPOINT [\"a\"]\n");
        assert_eq!(cfg.config.cmd, None);
        let (cfg, _) = apply_all("FROM x\nCMD [\"c\"]\nENTRYPOINT [\"a\"]\n");
        assert_eq!(cfg.config.cmd.unwrap(), ["c"]);
    }

    #[test]
    fn volume_empty_after_expansion_is_refused() {
        let df = parse("FROM x\nVOLUME \"\"\n").unwrap();
        let ins = &df.stages[0].instructions[0];
        let k = ins.kind.expand(&NoEnv, '\\').unwrap();
        let e = apply_metadata(&mut ImageConfig::default(), &k, ins.line, &mut false);
        let e = e.unwrap_err().to_string();
        assert!(
            e.ends_with("VOLUME specified can not be an empty string"),
            "{e}"
        );
    }

    #[test]
    fn bad_expose_names_line() {
        let df = parse("FROM x\nEXPOSE nope\n").unwrap();
        let mut cfg = ImageConfig::default();
        let k = &df.stages[0].instructions[0];
        let e = apply_metadata(&mut cfg, &k.kind, k.line, &mut false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("dockerfile:2: invalid containerPort"),
            "{e}"
        );
    }
}
