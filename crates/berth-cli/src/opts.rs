//! Pure parsers for docker's structured flag values: -p, -v, --mount, --tmpfs, --ulimit,
//! --device, --restart, env/label files, key=value lists and --filter.

use std::collections::{BTreeMap, HashMap};

use berth_client::models::{
    DeviceMapping, Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions,
    MountType, MountVolumeOptions, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};

/// A published port: `"80/tcp"` → (host ip, host port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub port: String,
    pub host_ip: String,
    pub host_port: String,
}

fn parse_range(s: &str, what: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid {what}: {s}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if b < a || (a == 0 && what == "containerPort") {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parse one `-p` value: `[ip:][hostPort:]containerPort[/proto]`, ranges allowed.
pub fn parse_publish(spec: &str) -> Result<Vec<Publish>, String> {
    let (raw, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let (ip, rest) = if let Some(r) = raw.strip_prefix('[') {
        let (ip6, after) = r
            .split_once("]:")
            .ok_or_else(|| format!("invalid IP address: {raw}"))?;
        (ip6.to_string(), after.to_string())
    } else {
        let parts: Vec<&str> = raw.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), raw.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => return Err(format!("invalid port format: {spec}")),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest.as_str()),
    };
    let (cs, ce) = parse_range(container, "containerPort")?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host, "hostPort")?)
    };
    let n = ce - cs;
    let mut out = Vec::new();
    for (i, p) in (cs..=ce).enumerate() {
        let host_port = match host_range {
            None => String::new(),
            Some((hs, he)) if n == 0 => {
                if hs == he {
                    hs.to_string()
                } else {
                    format!("{hs}-{he}")
                }
            }
            Some((hs, he)) => {
                if he - hs != n {
                    return Err(format!(
                        "invalid ranges specified for container and host Ports: {container} and {host}"
                    ));
                }
                (hs + i as u16).to_string()
            }
        };
        out.push(Publish {
            port: format!("{p}/{proto}"),
            host_ip: ip.clone(),
            host_port,
        });
    }
    Ok(out)
}

/// Group publishes into the API's PortBindings map.
pub fn port_map(pubs: &[Publish]) -> HashMap<String, Option<Vec<PortBinding>>> {
    let mut m: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in pubs {
        m.entry(p.port.clone())
            .or_insert_with(|| Some(vec![]))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.clone()),
            });
    }
    m
}

/// `--expose 80`, `--expose 7000-7002/udp` → `"80/tcp"`...
pub fn parse_expose(spec: &str) -> Result<Vec<String>, String> {
    let (raw, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let (a, b) = parse_range(raw, "containerPort")?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// What one `-v` value turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSpec {
    /// `-v /data`: anonymous volume (Config.Volumes).
    Anonymous(String),
    /// `-v src:dst[:mode]`: passed in HostConfig.Binds.
    Bind(String),
}

/// Parse one `-v` value; relative host paths (`./x`) are made absolute against `cwd`.
pub fn parse_volume(spec: &str, cwd: &std::path::Path) -> Result<VolumeSpec, String> {
    let bad = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [dst] if dst.starts_with('/') => Ok(VolumeSpec::Anonymous(dst.to_string())),
        [src, dst] | [src, dst, _] if !src.is_empty() && dst.starts_with('/') => {
            if let [_, _, mode] = parts.as_slice() {
                for m in mode.split(',') {
                    if !matches!(
                        m,
                        "ro" | "rw"
                            | "z"
                            | "Z"
                            | "nocopy"
                            | "private"
                            | "rprivate"
                            | "shared"
                            | "rshared"
                            | "slave"
                            | "rslave"
                            | "consistent"
                            | "cached"
                            | "delegated"
                    ) {
                        return Err(format!("invalid mode: {m}"));
                    }
                }
            }
            let src = if src.starts_with('.') {
                cwd.join(src).display().to_string()
            } else if src.contains('/') && !src.starts_with('/') {
                return Err(bad());
            } else {
                src.to_string()
            };
            let rest: Vec<&str> = parts[1..].to_vec();
            Ok(VolumeSpec::Bind(format!("{src}:{}", rest.join(":"))))
        }
        _ => Err(bad()),
    }
}

/// Parse a `--mount` CSV value (`type=bind,source=/a,target=/b,readonly`).
pub fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut m = Mount::default();
    let mut typ = "volume".to_string();
    let mut bind = MountBindOptions::default();
    let mut vol = MountVolumeOptions::default();
    let mut tmp = MountTmpfsOptions::default();
    let mut vol_labels = HashMap::new();
    let (mut has_bind, mut has_vol, mut has_tmp) = (false, false, false);
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let truthy = |v: &Option<String>| -> Result<bool, String> {
            match v.as_deref() {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(o) => Err(format!("invalid value for {k}: {o}")),
            }
        };
        let val = || {
            v.clone()
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match k.as_str() {
            "type" => typ = val()?,
            "source" | "src" => m.source = Some(val()?),
            "target" | "dst" | "destination" => m.target = Some(val()?),
            "readonly" | "ro" => m.read_only = Some(truthy(&v)?),
            "consistency" => m.consistency = Some(val()?),
            "bind-propagation" => {
                has_bind = true;
                bind.propagation = Some(match val()?.as_str() {
                    "private" => MountBindOptionsPropagationEnum::PRIVATE,
                    "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                    "shared" => MountBindOptionsPropagationEnum::SHARED,
                    "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                    "slave" => MountBindOptionsPropagationEnum::SLAVE,
                    "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                    o => return Err(format!("invalid bind propagation: {o}")),
                })
            }
            "bind-nonrecursive" => {
                has_bind = true;
                bind.non_recursive = Some(truthy(&v)?)
            }
            "volume-nocopy" => {
                has_vol = true;
                vol.no_copy = Some(truthy(&v)?)
            }
            "volume-subpath" => {
                has_vol = true;
                vol.subpath = Some(val()?)
            }
            "volume-label" => {
                has_vol = true;
                let s = val()?;
                let (a, b) = s.split_once('=').unwrap_or((&s, ""));
                vol_labels.insert(a.to_string(), b.to_string());
            }
            "tmpfs-size" => {
                has_tmp = true;
                tmp.size_bytes = Some(crate::units::ram_in_bytes(&val()?)?)
            }
            "tmpfs-mode" => {
                has_tmp = true;
                tmp.mode = Some(
                    i64::from_str_radix(&val()?, 8)
                        .map_err(|_| format!("invalid tmpfs-mode: {field}"))?,
                )
            }
            _ => return Err(format!("unexpected key '{k}' in '{field}'")),
        }
    }
    m.typ = Some(match typ.as_str() {
        "bind" => MountType::BIND,
        "volume" => MountType::VOLUME,
        "tmpfs" => MountType::TMPFS,
        o => return Err(format!("invalid mount type: {o}")),
    });
    if m.target.is_none() {
        return Err("target is required".into());
    }
    if typ == "bind" && m.source.is_none() {
        return Err("source is required when specifying bind mount".into());
    }
    if has_bind {
        if typ != "bind" {
            return Err(format!(
                "cannot mix 'bind-*' options with mount type '{typ}'"
            ));
        }
        m.bind_options = Some(bind);
    }
    if has_vol || !vol_labels.is_empty() {
        if typ != "volume" {
            return Err(format!(
                "cannot mix 'volume-*' options with mount type '{typ}'"
            ));
        }
        if !vol_labels.is_empty() {
            vol.labels = Some(vol_labels);
        }
        m.volume_options = Some(vol);
    }
    if has_tmp {
        if typ != "tmpfs" {
            return Err(format!(
                "cannot mix 'tmpfs-*' options with mount type '{typ}'"
            ));
        }
        m.tmpfs_options = Some(tmp);
    }
    Ok(m)
}

/// `--tmpfs /run:rw,size=64m` → ("/run", "rw,size=64m").
pub fn parse_tmpfs(spec: &str) -> Result<(String, String), String> {
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dst.starts_with('/') {
        return Err(format!(
            "invalid mount path: {dst}: mount path must be absolute"
        ));
    }
    Ok((dst.to_string(), opts.to_string()))
}

/// `--ulimit nofile=1024:2048`.
pub fn parse_ulimit(spec: &str) -> Result<ResourcesUlimits, String> {
    let (name, vals) = spec
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {spec}"))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let p = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("invalid ulimit argument: {spec}"))
    };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard && hard >= 0 {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn parse_device(spec: &str) -> Result<DeviceMapping, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let is_perm = |s: &str| !s.is_empty() && s.chars().all(|c| "rwm".contains(c));
    let (src, dst, perm) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, p] if is_perm(p) => (*s, *s, *p),
        [s, d] => (*s, *d, "rwm"),
        [s, d, p] if is_perm(p) => (*s, *d, *p),
        _ => return Err(format!("invalid device specification: {spec}")),
    };
    if !src.starts_with('/') || !dst.starts_with('/') {
        return Err(format!("invalid device specification: {spec}"));
    }
    Ok(DeviceMapping {
        path_on_host: Some(src.into()),
        path_in_container: Some(dst.into()),
        cgroup_permissions: Some(perm.into()),
    })
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn parse_restart(spec: &str) -> Result<RestartPolicy, String> {
    let (name, count) = spec.split_once(':').unwrap_or((spec, ""));
    let n = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        o => return Err(format!("invalid restart policy '{o}'")),
    };
    let max = if count.is_empty() {
        None
    } else {
        if n != RestartPolicyNameEnum::ON_FAILURE {
            return Err(format!(
                "maximum retry count cannot be used with restart policy '{name}'"
            ));
        }
        Some(count.parse::<i64>().map_err(|_| {
            format!("invalid restart policy: maximum retry count must be an integer: {count}")
        })?)
    };
    Ok(RestartPolicy {
        name: Some(n),
        maximum_retry_count: max,
    })
}

/// `-e K=V` / `-e K` (taken from `lookup` when set, else dropped), like docker.
pub fn env_entry(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if s.contains('=') {
        Some(s.to_string())
    } else {
        lookup(s).map(|v| format!("{s}={v}"))
    }
}

/// Parse an env/label file: `K=V` lines, `#` comments, bare `K` resolved through `lookup`.
pub fn parse_env_file(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let key = l.split('=').next().unwrap_or("");
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "variable '{key}' contains whitespaces (line {})",
                i + 1
            ));
        }
        if let Some(e) = env_entry(l, lookup) {
            out.push(e);
        }
    }
    Ok(out)
}

/// `k=v` list → map (`k` alone maps to "").
pub fn kv_map(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.to_string(), String::new()),
        })
        .collect()
}

/// `--filter k=v` list → the API's `filters` JSON (`{"k":{"v":true}}`), URL-encoded.
pub fn filters_query(items: &[String]) -> Result<Option<String>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut m: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in items {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
        m.entry(k.trim().to_ascii_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(Some(urlencode(
        &serde_json::to_string(&m).unwrap_or_default(),
    )))
}

/// Percent-encode a query value.
pub fn urlencode(s: &str) -> String {
    berth_client::escape(s)
}

/// Split `name[:tag|@digest]` into (repo, tag) for `/images/create?fromImage=&tag=`.
pub fn split_tag(r: &str) -> (String, String) {
    if let Some((repo, dg)) = r.split_once('@') {
        return (repo.to_string(), dg.to_string());
    }
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (r.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String, String)> {
        parse_publish(s)
            .unwrap()
            .into_iter()
            .map(|p| (p.port, p.host_ip, p.host_port))
            .collect()
    }

    #[test]
    fn publish_forms() {
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(p("80"), vec![t("80/tcp", "", "")]);
        assert_eq!(p("8080:80"), vec![t("80/tcp", "", "8080")]);
        assert_eq!(p("8080:80/udp"), vec![t("80/udp", "", "8080")]);
        assert_eq!(
            p("127.0.0.1:8080:80"),
            vec![t("80/tcp", "127.0.0.1", "8080")]
        );
        assert_eq!(p("127.0.0.1::80"), vec![t("80/tcp", "127.0.0.1", "")]);
        assert_eq!(p("[::1]:8080:80"), vec![t("80/tcp", "::1", "8080")]);
        assert_eq!(
            p("8000-8001:80-81"),
            vec![t("80/tcp", "", "8000"), t("81/tcp", "", "8001")]
        );
        assert_eq!(p("8000-8010:80"), vec![t("80/tcp", "", "8000-8010")]);
        assert!(parse_publish("8000-8002:80-81").is_err());
        assert!(parse_publish("80/icmp").is_err());
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("1.2.3:80:80").is_err());
        assert_eq!(
            parse_expose("7000-7001/udp").unwrap(),
            vec!["7000/udp", "7001/udp"]
        );
        let m = port_map(&parse_publish("80").unwrap());
        assert_eq!(m["80/tcp"].as_ref().unwrap().len(), 1);
    }

    #[test]
    fn volume_forms() {
        let cwd = std::path::Path::new("/home/u");
        assert_eq!(
            parse_volume("/data", cwd),
            Ok(VolumeSpec::Anonymous("/data".into()))
        );
        assert_eq!(
            parse_volume("/a:/b:ro", cwd),
            Ok(VolumeSpec::Bind("/a:/b:ro".into()))
        );
        assert_eq!(
            parse_volume("vol:/b", cwd),
            Ok(VolumeSpec::Bind("vol:/b".into()))
        );
        assert_eq!(
            parse_volume("./x:/b", cwd),
            Ok(VolumeSpec::Bind("/home/u/./x:/b".into()))
        );
        assert!(parse_volume("rel", cwd).is_err());
        assert!(parse_volume("/a:/b:bogus", cwd).is_err());
        assert!(parse_volume("/a:b", cwd).is_err());
    }

    #[test]
    fn mount_csv() {
        let m =
            parse_mount("type=bind,source=/a,target=/b,readonly,bind-propagation=rshared").unwrap();
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.read_only, Some(true));
        assert_eq!(
            m.bind_options.unwrap().propagation,
            Some(MountBindOptionsPropagationEnum::RSHARED)
        );
        let t = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        let o = t.tmpfs_options.unwrap();
        assert_eq!((o.size_bytes, o.mode), (Some(1 << 20), Some(0o1770)));
        let v = parse_mount("src=v1,dst=/v,volume-nocopy").unwrap();
        assert_eq!(v.typ, Some(MountType::VOLUME));
        assert!(parse_mount("type=bind,target=/b").is_err());
        assert!(parse_mount("type=tmpfs,dst=/t,bind-propagation=shared").is_err());
        assert!(parse_mount("src=/a").is_err());
        assert!(parse_mount("type=x,dst=/a").is_err());
    }

    #[test]
    fn small_parsers() {
        assert_eq!(parse_ulimit("nofile=1024:2048").unwrap().hard, Some(2048));
        assert!(parse_ulimit("nofile=4:2").is_err());
        assert_eq!(
            parse_device("/dev/sda:/dev/xvda:r")
                .unwrap()
                .cgroup_permissions
                .as_deref(),
            Some("r")
        );
        assert_eq!(
            parse_device("/dev/fuse")
                .unwrap()
                .path_in_container
                .as_deref(),
            Some("/dev/fuse")
        );
        assert_eq!(
            parse_restart("on-failure:3").unwrap().maximum_retry_count,
            Some(3)
        );
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(
            parse_tmpfs("/run:size=1m").unwrap(),
            ("/run".into(), "size=1m".into())
        );
        let look = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(env_entry("HOME", &look), Some("HOME=/root".into()));
        assert_eq!(env_entry("NOPE", &look), None);
        assert_eq!(
            parse_env_file("# c\nA=1\n\nHOME\nB=x=y\n", &look).unwrap(),
            vec!["A=1", "HOME=/root", "B=x=y"]
        );
        assert_eq!(
            filters_query(&["dangling=true".into()]).unwrap().unwrap(),
            "%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D"
        );
        assert_eq!(split_tag("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_tag("localhost:5000/a:1"),
            ("localhost:5000/a".into(), "1".into())
        );
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a".into(), "latest".into())
        );
    }
}
