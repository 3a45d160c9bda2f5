//! Container names: Docker-style generated names (`adjective_surname`), name validation, and
//! legacy links (`--link name:alias`, the `/parent/alias` names): parsing, the environment and
//! /etc/hosts entries a linking container gets, and `DELETE /containers/{parent}/{alias}?link=1`.

use std::net::IpAddr;

use crate::error::{DaemonError, Result};

use super::{lock, Record};
use crate::engine::Engine;

const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "ardinghelli",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bell",
    "benz",
    "bhabha",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "cerf",
    "chandrasekhar",
    "clarke",
    "colden",
    "cori",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dirac",
    "driscoll",
    "dubinsky",
    "easley",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goldstine",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "johnson",
    "joliot",
    "kalam",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lovelace",
    "lumiere",
    "margulis",
    "mayer",
    "mccarthy",
    "mcclintock",
    "meitner",
    "mendel",
    "merkle",
    "mestorf",
    "mirzakhani",
    "morse",
    "murdock",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nobel",
    "noether",
    "pare",
    "pascal",
    "pasteur",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "rosalind",
    "saha",
    "sammet",
    "shannon",
    "shockley",
    "sinoussi",
    "stonebraker",
    "swanson",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A name like `focused_turing`; `taken` decides collisions (a digit is appended after
/// a few tries, as Docker does).
pub fn generate_name(taken: impl Fn(&str) -> bool) -> String {
    let r = super::new_id();
    let mut n = u64::from_str_radix(&r[..12], 16).unwrap_or(7);
    for attempt in 0..20 {
        let l = LEFT[(n % LEFT.len() as u64) as usize];
        n /= LEFT.len() as u64;
        let rr = RIGHT[(n % RIGHT.len() as u64) as usize];
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 3;
        let mut name = format!("{l}_{rr}");
        if attempt > 3 {
            name.push_str(&(n % 10).to_string());
        }
        if !taken(&name) {
            return name;
        }
    }
    format!("berth_{}", &r[..12])
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphanumeric())
        && name.len() >= 2
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

/// A legacy link as Docker parses it (`opts.ParseLink`): `name[:alias]`, the alias defaulting
/// to the name; inspect's own form `/name:/parent/alias` is accepted too.
pub(crate) fn parse_link(s: &str) -> Result<(String, String), String> {
    if s.is_empty() {
        return Err("empty string specified for links".into());
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [n] => Ok((n.to_string(), n.to_string())),
        [n, a] if n.starts_with('/') => Ok((
            n[1..].to_string(),
            a.rsplit('/').next().unwrap_or(a).to_string(),
        )),
        [n, a] => Ok((n.to_string(), a.to_string())),
        _ => Err(format!("bad format for links: {s}")),
    }
}

/// How a link is stored in the record's `HostConfig.Links`: by the target's ID, so renames on
/// either side keep it (inspect renders Docker's `/name:/parent/alias`).
pub(crate) fn stored_link(target_id: &str, alias: &str) -> String {
    format!("{target_id}:{alias}")
}

/// `(target_id, alias)` of a stored link.
pub(crate) fn split_stored(s: &str) -> Option<(&str, &str)> {
    s.split_once(':')
}

/// `80/tcp` → (80, "tcp").
fn port_key(k: &str) -> Option<(u16, String)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    Some((p.parse().ok()?, proto.to_ascii_lowercase()))
}

/// The environment a link `link_name` (`/parent/alias`) to a container at `ip` with `env` and
/// `exposed` ports gives the linking container, as moby's `links.Link.ToEnv`: `ALIAS_PORT`
/// (the lowest port, tcp first), `ALIAS_PORT_<p>_<PROTO>{,_ADDR,_PORT,_PROTO}`, `_START`/`_END`
/// for runs of three or more contiguous ports, `ALIAS_NAME`, and `ALIAS_ENV_<k>` for the
/// target's env except HOME and PATH.
pub(crate) fn link_env(
    link_name: &str,
    ip: IpAddr,
    env: &[String],
    exposed: &[String],
) -> Vec<String> {
    let alias = link_name
        .rsplit('/')
        .next()
        .unwrap_or(link_name)
        .to_ascii_uppercase()
        .replace('-', "_");
    let mut ports: Vec<(u16, String)> = exposed.iter().filter_map(|k| port_key(k)).collect();
    ports.sort_by(|a, b| a.0.cmp(&b.0).then((a.1 != "tcp").cmp(&(b.1 != "tcp"))));
    ports.dedup();
    let mut out = Vec::new();
    if let Some((p, proto)) = ports.first() {
        out.push(format!("{alias}_PORT={proto}://{ip}:{p}"));
    }
    let mut i = 0;
    while i < ports.len() {
        // The last index of the run of contiguous port numbers starting at i.
        let mut j = i;
        while j + 1 < ports.len() && ports[j + 1].0 == ports[j].0 + 1 {
            j += 1;
        }
        if j > i + 1 {
            let (p, proto) = &ports[i];
            let (q, qproto) = &ports[j];
            let up = proto.to_ascii_uppercase();
            let pre = format!("{alias}_PORT_{p}_{up}");
            out.push(format!("{pre}_START={proto}://{ip}:{p}"));
            out.push(format!("{pre}_ADDR={ip}"));
            out.push(format!("{pre}_PROTO={proto}"));
            out.push(format!("{pre}_PORT_START={p}"));
            let qpre = format!("{alias}_PORT_{p}_{}", qproto.to_ascii_uppercase());
            out.push(format!("{qpre}_END={qproto}://{ip}:{q}"));
            out.push(format!("{qpre}_PORT_END={q}"));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    for (p, proto) in &ports {
        let pre = format!("{alias}_PORT_{p}_{}", proto.to_ascii_uppercase());
        out.push(format!("{pre}={proto}://{ip}:{p}"));
        out.push(format!("{pre}_ADDR={ip}"));
        out.push(format!("{pre}_PORT={p}"));
        out.push(format!("{pre}_PROTO={proto}"));
    }
    out.push(format!("{alias}_NAME={link_name}"));
    for e in env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            out.push(format!("{alias}_ENV_{k}={v}"));
        }
    }
    out
}

/// The /etc/hosts names of a link: the alias, the target's hostname and (when it differs from
/// the alias) its name, as moby writes them.
pub(crate) fn link_hosts_names(alias: &str, hostname: &str, name: &str) -> String {
    let mut names = vec![alias];
    if !hostname.is_empty() && hostname != alias {
        names.push(hostname);
    }
    if name != alias && name != hostname {
        names.push(name);
    }
    names.join(" ")
}

/// `hosts` with the line naming exactly `names` pointed at `ip` (added when missing).
pub(crate) fn repoint_hosts(hosts: &str, names: &str, ip: IpAddr) -> String {
    let line = format!("{ip}\t{names}");
    let mut found = false;
    let mut out: Vec<String> = hosts
        .lines()
        .map(|l| match l.split_once('\t') {
            Some((_, n)) if n == names => {
                found = true;
                line.clone()
            }
            _ => l.to_string(),
        })
        .collect();
    if !found {
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// `base` with `over` applied by key (later wins, order of first appearance kept).
pub(crate) fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map(|(k, _)| k).unwrap_or(e).to_string();
    let mut out: Vec<String> = Vec::with_capacity(base.len() + over.len());
    for e in base.iter().chain(over) {
        let k = key(e);
        match out.iter_mut().find(|x| key(x) == k) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// What the legacy links of a starting container add: env first (its own env overrides) and
/// /etc/hosts entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkPlan {
    pub env: Vec<String>,
    pub hosts: Vec<(String, IpAddr)>,
}

/// The default bridge network's name.
const DEFAULT_BRIDGE: &str = "bridge";

impl Engine {
    /// Resolve the `HostConfig.Links` of a container being created (network `mode`) to their
    /// stored form; Docker's errors for unknown targets and host networking. Links only act on
    /// the default bridge; on other networks they are kept as given.
    pub(crate) fn resolve_links(&self, links: &[String], mode: &str) -> Result<Vec<String>> {
        if links.is_empty() {
            return Ok(vec![]);
        }
        if mode == "host" {
            return Err(DaemonError::invalid(
                "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
            ));
        }
        if mode != DEFAULT_BRIDGE {
            return Ok(links.to_vec());
        }
        let cs = &self.inner.containers;
        let mut out: Vec<String> = Vec::new();
        for l in links {
            let (name, alias) = parse_link(l).map_err(DaemonError::Invalid)?;
            // A missing target is a bad parameter, not a 404 (which the CLI reads as "no
            // such image" and answers with a pull), as moby decided in moby/moby#39823.
            let lookup = |n: &str| {
                cs.get(n).map_err(|e| {
                    DaemonError::Invalid(format!("could not get container for {n}: {e}"))
                })
            };
            let mut target = lookup(&name)?.snapshot();
            // A target sharing another container's network links to that one.
            for _ in 0..8 {
                let Some(other) = target
                    .host_config
                    .network_mode
                    .as_deref()
                    .and_then(|m| m.strip_prefix("container:"))
                    .map(str::to_string)
                else {
                    break;
                };
                target = lookup(&other)?.snapshot();
            }
            if target.host_config.network_mode.as_deref() == Some("host") {
                return Err(DaemonError::invalid(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
                ));
            }
            out.retain(|s| split_stored(s).map(|(_, a)| a) != Some(alias.as_str()));
            out.push(stored_link(&target.id, &alias));
        }
        Ok(out)
    }

    /// The env and /etc/hosts entries the links of `r` (starting on network `mode`) give it.
    /// Targets removed since are skipped; a stopped one is an error, as in Docker.
    pub(crate) fn link_plan(&self, r: &Record, mode: &str) -> Result<LinkPlan> {
        let mut plan = LinkPlan::default();
        if mode != DEFAULT_BRIDGE {
            return Ok(plan);
        }
        let mut links: Vec<(String, String)> = r
            .host_config
            .links
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| split_stored(s).map(|(t, a)| (t.to_string(), a.to_string())))
            .collect();
        links.sort_by(|a, b| a.1.cmp(&b.1));
        for (target_id, alias) in links {
            let Ok(t) = self.inner.containers.get(&target_id) else {
                continue;
            };
            let t = t.snapshot();
            let link_name = format!("/{}/{alias}", r.name);
            if !t.running() {
                return Err(DaemonError::Conflict(format!(
                    "Cannot link to a non running container: /{} AS {link_name}",
                    t.name
                )));
            }
            let ep = t
                .endpoints
                .iter()
                .find(|e| e.network == DEFAULT_BRIDGE)
                .ok_or_else(|| {
                    DaemonError::Conflict(format!(
                        "Cannot link to /{}, as it does not belong to the default network",
                        t.name
                    ))
                })?;
            plan.env.extend(link_env(
                &link_name,
                ep.ip,
                &t.config.env.clone().unwrap_or_default(),
                &t.config.exposed_ports.clone().unwrap_or_default(),
            ));
            let hostname = t.config.hostname.clone().unwrap_or_default();
            plan.hosts
                .push((link_hosts_names(&alias, &hostname, &t.name), ep.ip));
        }
        Ok(plan)
    }

    /// After link target `r` started (with perhaps a new address), point the /etc/hosts entries
    /// of running containers linking to it at its address, as moby's parent updates do. The
    /// file is rewritten in place: it is bind-mounted, so its inode must stay.
    pub(crate) fn update_link_parents(&self, r: &Record) {
        let Some(ep) = r.endpoints.iter().find(|e| e.network == DEFAULT_BRIDGE) else {
            return;
        };
        let cs = &self.inner.containers;
        for p in cs.all().iter().map(|c| c.snapshot()) {
            if !p.running() || p.host_config.network_mode.as_deref() != Some(DEFAULT_BRIDGE) {
                continue;
            }
            let aliases: Vec<&str> = p
                .host_config
                .links
                .iter()
                .flatten()
                .filter_map(|l| split_stored(l))
                .filter(|(t, _)| *t == r.id)
                .map(|(_, a)| a)
                .collect();
            if aliases.is_empty() {
                continue;
            }
            let path = cs.ctr_dir(&p.id).join("hosts");
            let Ok(old) = crate::off_worker::off_worker(|| std::fs::read_to_string(&path)) else {
                continue;
            };
            let hostname = r.config.hostname.clone().unwrap_or_default();
            let mut text = old.clone();
            for a in aliases {
                text = repoint_hosts(&text, &link_hosts_names(a, &hostname, &r.name), ep.ip);
            }
            if text != old {
                if let Err(e) = crate::off_worker::off_worker(|| std::fs::write(&path, text)) {
                    tracing::warn!(container_id = %p.id, error = %e, "update link entry in hosts");
                }
            }
        }
    }

    /// `DELETE /containers/{parent}/{alias}?link=1`: drop the link `alias` of `parent`.
    pub(crate) fn ctr_remove_link(&self, link_name: &str) -> Result<()> {
        let name = link_name.trim_start_matches('/');
        let Some((parent, alias)) = name.rsplit_once('/') else {
            return Err(DaemonError::invalid(
                "Conflict, cannot remove the default link name of the container",
            ));
        };
        let no_such = || DaemonError::NoSuchContainer(name.to_string());
        let cs = &self.inner.containers;
        let ctr = cs.get(parent).map_err(|_| no_such())?;
        let removed = {
            let mut g = lock(&ctr.rec);
            let links = g.host_config.links.get_or_insert_with(Vec::new);
            let before = links.len();
            links.retain(|s| split_stored(s).map(|(_, a)| a) != Some(alias));
            let removed = links.len() != before;
            if links.is_empty() {
                g.host_config.links = None;
            }
            removed
        };
        if !removed {
            return Err(no_such());
        }
        cs.save(&ctr);
        Ok(())
    }
}

/// `HostConfig.Links` as Docker's inspect shows them: `/target:/parent/alias`, targets that
/// are gone left out (None when there are none).
pub(crate) fn render_links(
    r: &Record,
    name_of: impl Fn(&str) -> Option<String>,
) -> Option<Vec<String>> {
    let out: Vec<String> = r
        .host_config
        .links
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| {
            let (t, a) = split_stored(s)?;
            Some(format!("/{}:/{}/{a}", name_of(t)?, r.name))
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_docker_shaped_and_avoid_taken() {
        let n = generate_name(|_| false);
        assert!(n.contains('_') && valid_name(&n), "{n}");
        let first = n.clone();
        let other = generate_name(|x| x == first);
        assert!(valid_name(&other));
        assert!(!valid_name("-x") && !valid_name("a") && !valid_name("a/b"));
        assert!(valid_name("web.1_a-b"));
    }

    #[test]
    fn links_parse_like_docker() {
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse_link("db:sql").unwrap(), ("db".into(), "sql".into()));
        assert_eq!(
            parse_link("/db:/web/sql").unwrap(),
            ("db".into(), "sql".into())
        );
        assert!(parse_link("a:b:c").is_err());
        assert!(parse_link("").is_err());
    }

    #[test]
    fn link_env_matches_moby() {
        let ip: IpAddr = "172.17.0.2".parse().unwrap();
        let env = link_env(
            "/web/my-db",
            ip,
            &["PATH=/bin".into(), "HOME=/root".into(), "FOO=1".into()],
            &["6379/tcp".into(), "53/udp".into(), "53/tcp".into()],
        );
        assert_eq!(env[0], "MY_DB_PORT=tcp://172.17.0.2:53");
        for want in [
            "MY_DB_PORT_53_TCP=tcp://172.17.0.2:53",
            "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
            "MY_DB_PORT_6379_TCP_ADDR=172.17.0.2",
            "MY_DB_PORT_6379_TCP_PORT=6379",
            "MY_DB_PORT_6379_TCP_PROTO=tcp",
            "MY_DB_NAME=/web/my-db",
            "MY_DB_ENV_FOO=1",
        ] {
            assert!(env.contains(&want.to_string()), "{want} in {env:?}");
        }
        assert!(!env
            .iter()
            .any(|e| e.contains("_ENV_PATH") || e.contains("_ENV_HOME")));
        // Three contiguous ports make a range.
        let env = link_env(
            "/a/b",
            ip,
            &[],
            &["80/tcp".into(), "81/tcp".into(), "82/tcp".into()],
        );
        assert!(env.contains(&"B_PORT_80_TCP_START=tcp://172.17.0.2:80".to_string()));
        assert!(env.contains(&"B_PORT_80_TCP_END=tcp://172.17.0.2:82".to_string()));
        assert!(env.contains(&"B_PORT_80_TCP_PORT_END=82".to_string()));
    }

    #[test]
    fn link_hosts_and_env_merge() {
        assert_eq!(link_hosts_names("db", "abc123", "pg"), "db abc123 pg");
        assert_eq!(link_hosts_names("pg", "abc123", "pg"), "pg abc123");
        let h = "127.0.0.1\tlocalhost\n10.0.0.2\tdb abc pg\n10.0.0.3\tme\n";
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(
            repoint_hosts(h, "db abc pg", ip),
            "127.0.0.1\tlocalhost\n10.0.0.9\tdb abc pg\n10.0.0.3\tme\n"
        );
        assert!(repoint_hosts(h, "x", ip).ends_with("10.0.0.9\tx\n"));
        let m = merge_env(&["A=1".into(), "B=2".into()], &["B=3".into(), "C=4".into()]);
        assert_eq!(m, ["A=1", "B=3", "C=4"]);
        let mut r = Record {
            name: "web".into(),
            ..Default::default()
        };
        r.host_config.links = Some(vec![stored_link("id1", "db"), stored_link("gone", "x")]);
        let got = render_links(&r, |id| (id == "id1").then(|| "pg".to_string()));
        assert_eq!(got, Some(vec!["/pg:/web/db".to_string()]));
    }
}
