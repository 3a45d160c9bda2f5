//! dockerd's error texts and status codes (issue 14), table-driven through the raw API and the
//! docker CLI: each case names the request and the exact `{"message"}` and status dockerd
//! v20.10 answers (texts from moby's daemon/errors.go, daemon/delete.go, volume/service,
//! libnetwork, api/types/filters and the router's not-found handler).

use crate::common;

use common::cli::Daemon;
use serde_json::Value;

/// One request and dockerd's answer to it (`message` None: an empty body, as for 304).
struct Case {
    method: &'static str,
    path: String,
    body: Option<String>,
    status: u16,
    message: Option<String>,
}

fn case(method: &'static str, path: &str, status: u16, message: &str) -> Case {
    Case {
        method,
        path: path.to_string(),
        body: None,
        status,
        message: Some(message.to_string()),
    }
}

/// `filters` JSON as a query value.
fn filters(json: &str) -> String {
    json.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Run every case; report all mismatches at once rather than the first.
fn check(d: &Daemon, cases: &[Case]) {
    let mut bad = vec![];
    for c in cases {
        let (status, body) = d.api(c.method, &c.path, c.body.as_deref());
        let message = match &c.message {
            None => (!body.trim().is_empty()).then(|| body.clone()),
            Some(_) => serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string)),
        };
        if status != c.status || message != c.message {
            bad.push(format!(
                "{} {}\n   want {} {:?}\n   got  {status} {body}",
                c.method, c.path, c.status, c.message
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} case(s) differ from dockerd:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn errors_have_dockerds_texts_and_codes() {
    let Some(d) = Daemon::start("errors_have_dockerds_texts_and_codes") else {
        return;
    };
    let t = &d.tag;
    let (run, created, paused) = (
        format!("et-run-{t}"),
        format!("et-new-{t}"),
        format!("et-pz-{t}"),
    );
    let (vol, net) = (format!("et-vol-{t}"), format!("et-net-{t}"));
    let run_id = d.ok(&["run", "-d", "--name", &run, "busybox", "sleep", "600"]);
    let vol_mount = format!("{vol}:/data");
    let created_id = d.ok(&[
        "create", "--name", &created, "-v", &vol_mount, "busybox", "true",
    ]);
    let paused_id = d.ok(&["run", "-d", "--name", &paused, "busybox", "sleep", "600"]);
    d.ok(&["pause", &paused]);
    d.ok(&["network", "create", &net]);

    let name_in_use = |name: &str, id: &str| {
        format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        )
    };
    let mut cases = vec![
        // Things that do not exist: 404, "No such …" / moby's per-kind words.
        case(
            "GET",
            "/containers/et-nosuch/json",
            404,
            "No such container: et-nosuch",
        ),
        case(
            "POST",
            "/containers/et-nosuch/start",
            404,
            "No such container: et-nosuch",
        ),
        case(
            "GET",
            "/exec/et-nosuch/json",
            404,
            "No such exec instance: et-nosuch",
        ),
        case(
            "GET",
            "/images/et-nosuch/json",
            404,
            "No such image: et-nosuch:latest",
        ),
        case(
            "GET",
            "/volumes/et-nosuch",
            404,
            "get et-nosuch: no such volume",
        ),
        case(
            "DELETE",
            "/volumes/et-nosuch",
            404,
            "get et-nosuch: no such volume",
        ),
        case(
            "GET",
            "/networks/et-nosuch",
            404,
            "network et-nosuch not found",
        ),
        // State conflicts: 409 with the container's full ID.
        case(
            "DELETE",
            &format!("/containers/{run}"),
            409,
            &format!(
                "You cannot remove a running container {run_id}. Stop the container before \
                 attempting removal or force remove"
            ),
        ),
        case(
            "DELETE",
            &format!("/containers/{paused}"),
            409,
            &format!(
                "You cannot remove a paused container {paused_id}. Unpause and then stop the \
                 container before attempting removal or force remove"
            ),
        ),
        case(
            "POST",
            &format!("/containers/{created}/kill"),
            409,
            &format!("Container {created_id} is not running"),
        ),
        case(
            "POST",
            &format!("/containers/{paused}/pause"),
            409,
            &format!("Container {paused_id} is already paused"),
        ),
        // moby answers a plain error (500) for unpausing a container that is not paused.
        case(
            "POST",
            &format!("/containers/{run}/unpause"),
            500,
            &format!("Container {run_id} is not paused"),
        ),
        case(
            "POST",
            &format!("/containers/{run}/rename?name={created}"),
            409,
            &name_in_use(&created, &created_id),
        ),
        // Its own name, with or without the slash: 400 (was the 409 above, naming itself).
        case(
            "POST",
            &format!("/containers/{run}/rename?name={run}"),
            400,
            "Renaming a container with the same name as its current name",
        ),
        case(
            "POST",
            &format!("/containers/{run_id}/rename?name=/{run}"),
            400,
            "Renaming a container with the same name as its current name",
        ),
        case(
            "DELETE",
            &format!("/volumes/{vol}"),
            409,
            &format!("remove {vol}: volume is in use - [{created_id}]"),
        ),
        // Policy: 403 for predefined networks.
        case(
            "DELETE",
            "/networks/bridge",
            403,
            "bridge is a pre-defined network and cannot be removed",
        ),
        // Bad filters: 400 "Invalid filter '…'".
        case(
            "GET",
            &format!(
                "/containers/json?filters={}",
                filters(r#"{"status":["bogus"]}"#)
            ),
            400,
            "Invalid filter 'status=bogus'",
        ),
        case(
            "GET",
            &format!("/containers/json?filters={}", filters(r#"{"bogus":["1"]}"#)),
            400,
            "Invalid filter 'bogus'",
        ),
        case(
            "GET",
            &format!(
                "/images/json?filters={}",
                filters(r#"{"dangling":["maybe"]}"#)
            ),
            400,
            "Invalid filter 'dangling=[maybe]'",
        ),
        // Paths no route matches (gorilla/mux without StrictSlash): 404 "page not found".
        case("GET", "/containers/json/", 404, "page not found"),
        case("GET", "/v1.41/containers/json/", 404, "page not found"),
        case("GET", "/et-nosuch", 404, "page not found"),
    ];
    cases.push(Case {
        body: Some(r#"{"Image":"busybox","Cmd":["true"]}"#.into()),
        ..case(
            "POST",
            &format!("/containers/create?name={run}"),
            409,
            &name_in_use(&run, &run_id),
        )
    });
    cases.push(Case {
        body: Some(r#"{"Image":"et-nosuch"}"#.into()),
        ..case(
            "POST",
            "/containers/create",
            404,
            "No such image: et-nosuch:latest",
        )
    });
    cases.push(Case {
        body: Some(r#"{"Cmd":["true"]}"#.into()),
        ..case(
            "POST",
            &format!("/containers/{paused}/exec"),
            409,
            // moby names the container as the request did (errExecPaused(name)).
            &format!("Container {paused} is paused, unpause the container before exec"),
        )
    });
    cases.push(case(
        "POST",
        // logs only, no stream: an engine that wrongly attaches answers and ends (no hang).
        &format!("/containers/{paused}/attach?logs=1&stdout=1"),
        409,
        &format!("container {paused} is paused, unpause the container before attach"),
    ));
    cases.push(Case {
        body: Some(format!(r#"{{"Name":"{net}"}}"#)),
        ..case(
            "POST",
            "/networks/create",
            409,
            &format!("network with name {net} already exists"),
        )
    });
    // Nothing to do: 304 with an empty body.
    for (path, st) in [
        (format!("/containers/{run}/start"), 304),
        (format!("/containers/{created}/stop"), 304),
    ] {
        cases.push(Case {
            method: "POST",
            path,
            body: None,
            status: st,
            message: None,
        });
    }
    check(&d, &cases);
    // moby's one trailing-slash route: `GET /networks/` lists networks.
    let (code, body) = d.api("GET", "/networks/", None);
    assert_eq!(code, 200, "{body}");
    let nets: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        nets.as_array()
            .is_some_and(|a| a.iter().any(|n| n["Name"] == net.as_str())),
        "{body}"
    );

    // The docker CLI prints the daemon's text after "Error response from daemon: ".
    let err = d.fails(&["rm", &run]);
    assert!(
        err.contains(&format!(
            "Error response from daemon: You cannot remove a running container {run_id}."
        )),
        "{err}"
    );
    let err = d.fails(&["create", "--name", &run, "busybox", "true"]);
    assert!(
        err.contains(&format!(
            "Error response from daemon: {}",
            name_in_use(&run, &run_id)
        )),
        "{err}"
    );

    d.ok(&["rm", "-f", &run, &created, &paused]);
    d.ok(&["volume", "rm", &vol]);
    d.ok(&["network", "rm", &net]);
    d.finish();
}
