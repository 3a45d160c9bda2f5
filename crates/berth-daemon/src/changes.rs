//! `docker import --change`: the subset of Dockerfile instructions Docker allows there
//! (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR),
//! applied to an image runtime config. Pure.

use berth_oci::ImageRuntimeConfig;

use crate::error::{DaemonError, Result};

/// Apply every change, in order, to `cfg`.
pub fn apply_changes(cfg: &mut ImageRuntimeConfig, changes: &[String]) -> Result<()> {
    for c in changes {
        for line in c.lines().filter(|l| !l.trim().is_empty()) {
            apply_one(cfg, line.trim())?;
        }
    }
    Ok(())
}

fn invalid(msg: String) -> DaemonError {
    DaemonError::Invalid(msg)
}

/// `["a","b"]` → exec form; anything else → `/bin/sh -c <text>`.
fn command(args: &str) -> Vec<String> {
    if args.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), args.to_string()]
}

/// Split on whitespace, honouring double and single quotes and backslash escapes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `k=v k2="v 2"` pairs, or the legacy `k v w` form (one pair, value is the rest).
fn pairs(instr: &str, args: &str) -> Result<Vec<(String, String)>> {
    let w = words(args);
    if w.is_empty() {
        return Err(invalid(format!("{instr} requires at least one argument")));
    }
    if !w[0].contains('=') {
        let (k, v) = args
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid(format!("{instr} must have two arguments")))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    w.into_iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| invalid(format!("{instr} names can not be blank: {p:?}")))
        })
        .collect()
}

fn apply_one(cfg: &mut ImageRuntimeConfig, line: &str) -> Result<()> {
    let (instr, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let args = args.trim();
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(command(args)),
        "ENTRYPOINT" => cfg.entrypoint = Some(command(args)),
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs("ENV", args)? {
                env.retain(|e| e.split_once('=').map(|(a, _)| a) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(Default::default);
            for (k, v) in pairs("LABEL", args)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(Default::default);
            for p in words(args) {
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(Default::default);
            let list = if args.starts_with('[') {
                serde_json::from_str::<Vec<String>>(args)
                    .map_err(|e| invalid(format!("VOLUME: {e}")))?
            } else {
                words(args)
            };
            for v in list {
                vols.insert(v, serde_json::json!({}));
            }
        }
        "USER" => cfg.user = Some(args.to_string()),
        "WORKDIR" => cfg.working_dir = Some(args.to_string()),
        "STOPSIGNAL" => cfg.stop_signal = Some(args.to_string()),
        "ONBUILD" => cfg
            .on_build
            .get_or_insert_with(Vec::new)
            .push(args.to_string()),
        other => {
            return Err(invalid(format!(
                "{other} is not a valid change command (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, \
                 ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR)"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_docker_import_changes() {
        let mut c = ImageRuntimeConfig::default();
        let ch: Vec<String> = [
            r#"CMD ["sh","-c","echo hi"]"#,
            "ENTRYPOINT /bin/init",
            r#"ENV A=1 B="two words""#,
            "ENV C three four",
            "ENV A=override",
            "LABEL org.x=y",
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "USER 1000:1000",
            "WORKDIR /srv",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        apply_changes(&mut c, &ch).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/bin/init"]);
        assert_eq!(
            c.env.unwrap(),
            vec!["B=two words", "C=three four", "A=override"]
        );
        assert_eq!(c.labels.unwrap()["org.x"], "y");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    }

    #[test]
    fn rejects_unknown_instructions() {
        let mut c = ImageRuntimeConfig::default();
        let e = apply_changes(&mut c, &["RUN rm -rf /".to_string()]).unwrap_err();
        assert!(e.to_string().contains("RUN is not a valid change command"));
        assert_eq!(e.kind(), crate::error::ErrorKind::Invalid);
    }
}
