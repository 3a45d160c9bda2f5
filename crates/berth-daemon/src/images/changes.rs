//! `--change` of `docker commit` and `docker import`: Dockerfile instructions Docker allows
//! there (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
//! WORKDIR), parsed by berth-dockerfile and applied with the builder's metadata rules. Pure.

use berth_dockerfile::{parse_ast, Instruction, InstructionKind};
use berth_oci::{ImageConfig, ImageRuntimeConfig};

use crate::error::{DaemonError, Result};

/// Docker's `validCommitCommands`.
const VALID: &[&str] = &[
    "cmd",
    "entrypoint",
    "healthcheck",
    "env",
    "expose",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Parse `changes` (joined by newlines, as Docker does) into instructions, rejecting any
/// that Docker does not allow with its message (`RUN is not a valid change command`).
pub fn parse_changes(changes: &[String]) -> Result<(Vec<Instruction>, char)> {
    let text = changes.join("\n");
    if text.trim().is_empty() {
        return Ok((Vec::new(), '\\'));
    }
    let ast = parse_ast(&text).map_err(|e| DaemonError::Invalid(e.to_string()))?;
    let mut out = Vec::new();
    for n in &ast.nodes {
        if !VALID.contains(&n.cmd.as_str()) {
            return Err(DaemonError::Invalid(format!(
                "{} is not a valid change command",
                n.cmd_original
            )));
        }
        out.push(Instruction::from_node(n).map_err(|e| DaemonError::Invalid(e.to_string()))?);
    }
    Ok((out, ast.directives.escape))
}

/// Apply every change, in order, to an image config (variables expand against its env; an
/// ENTRYPOINT without a CMD among the changes clears the CMD, as `docker commit` does).
pub fn apply_to_image(cfg: &mut ImageConfig, changes: &[String]) -> Result<()> {
    let (instructions, escape) = parse_changes(changes)?;
    let mut cmd_set = false;
    for ins in instructions {
        let env: Vec<String> = cfg.config.env.clone().unwrap_or_default();
        let kind: InstructionKind = ins
            .kind
            .expand(&env, escape)
            .map_err(|e| DaemonError::Invalid(e.to_string()))?;
        berth_build::config::apply_metadata(cfg, &kind, ins.line, &mut cmd_set)
            .map_err(|e| DaemonError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// [`apply_to_image`] on a bare runtime config (`docker import --change`).
pub fn apply_changes(cfg: &mut ImageRuntimeConfig, changes: &[String]) -> Result<()> {
    let mut img = ImageConfig {
        config: std::mem::take(cfg),
        ..Default::default()
    };
    let res = apply_to_image(&mut img, changes);
    *cfg = img.config;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn applies_docker_changes() {
        let mut c = ImageRuntimeConfig {
            env: Some(strings(&["HOME=/root"])),
            ..Default::default()
        };
        let ch = strings(&[
            r#"ENTRYPOINT /bin/init"#,
            r#"CMD ["sh","-c","echo hi"]"#,
            r#"ENV A=1 B="two words""#,
            "ENV C three four",
            "ENV A=override D=$HOME/x",
            "LABEL org.x=y",
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "USER 1000:1000",
            "WORKDIR /srv\nWORKDIR sub",
            "STOPSIGNAL SIGINT",
            "HEALTHCHECK --interval=5s CMD true",
            "ONBUILD RUN make",
        ]);
        apply_changes(&mut c, &ch).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/bin/init"]);
        assert_eq!(
            c.env.unwrap(),
            vec![
                "HOME=/root",
                "A=override",
                "B=two words",
                "C=three four",
                "D=/root/x"
            ]
        );
        assert_eq!(c.labels.unwrap()["org.x"], "y");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/sub"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(
            c.healthcheck.unwrap().test.unwrap(),
            vec!["CMD-SHELL", "true"]
        );
        assert_eq!(c.on_build.unwrap(), vec!["RUN make"]);
    }

    #[test]
    fn entrypoint_alone_clears_the_cmd_like_docker() {
        let mut c = ImageRuntimeConfig {
            cmd: Some(strings(&["sh"])),
            ..Default::default()
        };
        apply_changes(&mut c, &strings(&[r#"ENTRYPOINT ["top"]"#])).unwrap();
        assert_eq!(c.entrypoint.unwrap(), ["top"]);
        assert_eq!(c.cmd, None);
    }

    #[test]
    fn rejects_instructions_docker_does_not_allow() {
        for (change, word) in [
            ("RUN rm -rf /", "RUN"),
            ("copy a b", "copy"),
            ("FROM x", "FROM"),
        ] {
            let mut c = ImageRuntimeConfig::default();
            let e = apply_changes(&mut c, &[change.to_string()]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{word} is not a valid change command")
            );
            assert_eq!(e.kind(), crate::error::ErrorKind::Invalid);
        }
        let mut c = ImageRuntimeConfig::default();
        let e = apply_changes(&mut c, &strings(&["ENV"])).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Invalid, "{e}");
    }

    #[test]
    fn no_changes_is_a_no_op() {
        let mut c = ImageRuntimeConfig {
            cmd: Some(strings(&["sh"])),
            ..Default::default()
        };
        apply_changes(&mut c, &strings(&["", "  "])).unwrap();
        assert_eq!(c.cmd.unwrap(), ["sh"]);
    }
}
