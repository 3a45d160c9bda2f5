//! Registry commands: pull, push, login, logout, search, and the credential store they share
//! (`$BERTH_CONFIG/config.json`, default `~/.berth/config.json`, docker's `auths` format).

use std::path::PathBuf;

use base64::Engine;
use berth_client::{body, Client};
use berth_oci::Reference;
use hyper::Method;
use serde_json::{json, Value};

use super::Query;
use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs, SearchArgs};
use crate::exit::Exit;
use crate::format::Lister;
use crate::progress::{self, Mode};

/// Docker Hub's credential key.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

fn config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_CONFIG") {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".berth/config.json")
}

fn load_config() -> Value {
    std::fs::read(config_path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

/// Credentials: written crash-safely (berth-rootfs's one atomic write), 0600, in a directory
/// created 0700 when missing.
fn save_config(v: &Value) -> anyhow::Result<()> {
    let p = config_path();
    berth_rootfs::write_atomic(&p, &serde_json::to_vec_pretty(v)?)?;
    Ok(())
}

/// The credential key of the registry an image lives in.
pub fn server_of(image: &str) -> String {
    match Reference::parse(image) {
        Ok(r) if r.registry != "docker.io" => r.registry,
        _ => DOCKER_HUB.to_string(),
    }
}

/// `X-Registry-Auth` for the encoded auth entry (base64url of the AuthConfig JSON).
pub fn encode_auth(user: &str, pass: &str, server: &str) -> String {
    let j = json!({"username": user, "password": pass, "serveraddress": server});
    base64::engine::general_purpose::URL_SAFE.encode(j.to_string())
}

/// Stored credentials for the registry of `image`, as an `X-Registry-Auth` value.
pub fn auth_header_for(image: &str) -> Option<String> {
    let server = server_of(image);
    let cfg = load_config();
    let entry = cfg["auths"].get(&server)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str()?)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some(encode_auth(u, p, &server))
}

fn parse_ref(image: &str) -> anyhow::Result<Reference> {
    Reference::parse(image).map_err(|e| Exit::msg(1, e.to_string()))
}

/// `POST /images/create` with `q`, sending stored credentials for `image`'s registry.
pub async fn create_image(
    c: &Client,
    q: &Query,
    image: &str,
) -> anyhow::Result<berth_client::ResponseStream> {
    let auth = auth_header_for(image);
    let headers: Vec<(&str, &str)> = auth
        .iter()
        .map(|a| ("X-Registry-Auth", a.as_str()))
        .collect();
    Ok(c.stream(
        Method::POST,
        &q.on("/images/create"),
        body::empty(),
        &headers,
    )
    .await?)
}

pub async fn pull(c: &Client, a: PullArgs) -> anyhow::Result<()> {
    let r = parse_ref(&a.image)?;
    if r.tag.is_none() && r.digest.is_none() && !a.all_tags && !a.quiet {
        println!("Using default tag: latest");
    }
    let r = if a.all_tags { r } else { r.with_default_tag() };
    let q = Query::new()
        .add("fromImage", r.full_name())
        .opt(
            "tag",
            if a.all_tags {
                None
            } else {
                Some(r.manifest_ref())
            },
        )
        .opt("platform", a.platform.as_deref());
    let s = create_image(c, &q, &a.image).await?;
    progress::show(s, if a.quiet { Mode::Quiet } else { Mode::Auto }).await?;
    println!("{r}");
    Ok(())
}

pub async fn push(c: &Client, a: PushArgs) -> anyhow::Result<()> {
    let r = parse_ref(&a.image)?;
    if r.tag.is_none() && r.digest.is_none() && !a.all_tags && !a.quiet {
        println!("Using default tag: latest");
    }
    let r = if a.all_tags { r } else { r.with_default_tag() };
    let q = Query::new().opt("tag", if a.all_tags { None } else { r.tag.clone() });
    let auth = auth_header_for(&a.image)
        .unwrap_or_else(|| base64::engine::general_purpose::URL_SAFE.encode("{}"));
    let path = q.on(&format!(
        "/images/{}/push",
        super::path_name(&r.familiar_name())
    ));
    let s = c
        .stream(
            Method::POST,
            &path,
            body::empty(),
            &[("X-Registry-Auth", auth.as_str())],
        )
        .await?;
    let out = progress::show(s, if a.quiet { Mode::Quiet } else { Mode::Auto }).await?;
    if a.quiet {
        println!("{r}");
    }
    drop(out);
    Ok(())
}

/// docker 20.10's search table.
const SEARCH: Lister = Lister {
    default_table: "{{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}\t{{.IsAutomated}}",
    headers: &[
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
        ("IsAutomated", "AUTOMATED"),
    ],
};

/// The rows `docker search` prints: most stars first; descriptions on one line, cut to 45
/// characters unless `no_trunc`; `[OK]` for official / automated.
fn search_rows(found: &[Value], no_trunc: bool) -> Vec<Value> {
    let mut found: Vec<&Value> = found.iter().collect();
    found.sort_by_key(|r| std::cmp::Reverse(r["star_count"].as_i64().unwrap_or(0)));
    let ok = |b: &Value| {
        if b.as_bool() == Some(true) {
            "[OK]"
        } else {
            ""
        }
    };
    found
        .iter()
        .map(|r| {
            let desc = r["description"]
                .as_str()
                .unwrap_or_default()
                .replace(['\n', '\r'], " ");
            let desc = if no_trunc {
                desc
            } else {
                super::image::ellipsis(&desc, 45)
            };
            json!({
                "Name": r["name"].as_str().unwrap_or_default(),
                "Description": desc,
                "StarCount": r["star_count"].as_i64().unwrap_or(0).to_string(),
                "IsOfficial": ok(&r["is_official"]),
                "IsAutomated": ok(&r["is_automated"]),
            })
        })
        .collect()
}

pub async fn search(c: &Client, a: SearchArgs) -> anyhow::Result<()> {
    let filters = crate::opts::filters_query(&a.filter).map_err(|e| Exit::msg(125, e))?;
    let q = Query::new()
        .add("term", &a.term)
        .add("limit", a.limit.to_string())
        .raw("filters", filters);
    let auth = auth_header_for(&a.term);
    let headers: Vec<(&str, &str)> = auth
        .iter()
        .map(|a| ("X-Registry-Auth", a.as_str()))
        .collect();
    let b = c
        .stream(
            Method::GET,
            &q.on("/images/search"),
            body::empty(),
            &headers,
        )
        .await?
        .collect()
        .await?;
    let found: Vec<Value> = serde_json::from_slice(&b)?;
    SEARCH.print(a.format.as_deref(), &search_rows(&found, a.no_trunc))
}

pub async fn login(c: &Client, a: LoginArgs) -> anyhow::Result<()> {
    let server = a.server.clone().unwrap_or_else(|| DOCKER_HUB.to_string());
    let user = match a.username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim().to_string()
        }
    };
    let pass = if a.password_stdin {
        if a.password.is_some() {
            return Err(Exit::msg(
                1,
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        return Err(Exit::msg(1, "Error: Cannot perform an interactive login from a non TTY device; use -p or --password-stdin"));
    };
    let body = json!({"username": user, "password": pass, "serveraddress": server});
    let r: Value = c.post_json("/auth", Some(&body)).await?;
    let mut cfg = load_config();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    if !cfg["auths"].is_object() {
        cfg["auths"] = json!({});
    }
    cfg["auths"][&server] = json!({"auth": auth});
    save_config(&cfg)?;
    println!("{}", r["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(())
}

pub async fn logout(a: LogoutArgs) -> anyhow::Result<()> {
    let server = a.server.unwrap_or_else(|| DOCKER_HUB.to_string());
    let mut cfg = load_config();
    let removed = cfg["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(&server))
        .is_some();
    if removed {
        save_config(&cfg)?;
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(server_of("busybox"), DOCKER_HUB);
        assert_eq!(server_of("127.0.0.1:5000/x:1"), "127.0.0.1:5000");
        let h = encode_auth("u", "p", "s");
        let d = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        let v: Value = serde_json::from_slice(&d).unwrap();
        assert_eq!(v["username"], "u");
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;

    #[test]
    fn search_table_as_docker() {
        let found = vec![
            json!({"name": "a/low", "description": "short", "star_count": 1,
                   "is_official": false, "is_automated": true}),
            json!({"name": "top", "description": "a description that is much longer than the forty-five characters\nshown",
                   "star_count": 90, "is_official": true, "is_automated": false}),
        ];
        let out = SEARCH.render(None, &search_rows(&found, false)).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
        );
        assert!(lines[1].starts_with("top "), "{out}");
        assert!(
            lines[1].contains("a description that is much longer than the f… "),
            "{out}"
        );
        assert!(
            lines[1].contains("90 ") && lines[1].contains("[OK]"),
            "{out}"
        );
        assert!(lines[2].starts_with("a/low "), "{out}");
        let full = search_rows(&found, true);
        assert_eq!(
            full[0]["Description"],
            "a description that is much longer than the forty-five characters shown"
        );
    }
}
