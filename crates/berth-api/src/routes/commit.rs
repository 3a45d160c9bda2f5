//! `POST /commit` (docker commit): the query (`container`, `repo`, `tag`, `comment`, `author`,
//! `pause`, repeated `changes`) and the optional container `Config` body go to
//! [`ImageService::commit`](crate::ImageService::commit); answers `201 {"Id":"sha256:…"}`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use bollard_stubs::models::ContainerConfig;

use super::QueryPairs;
use crate::service::{CommitOptions, Services};
use crate::{ApiError, ApiResult, HttpResult};

/// Largest config body accepted.
const MAX_BODY: usize = 1 << 20;

/// Docker's `BoolValue`: anything but empty, `0`, `no`, `false` or `none` is true.
fn go_bool(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

/// The body as a config: None when empty, `null` or `{}` (moby then uses the container's).
fn body_config(body: &[u8]) -> ApiResult<Option<ContainerConfig>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON in the commit config: {e}")))?;
    // Cmd/Entrypoint/Shell as one string, as for create (moby's strslice).
    super::containers::strslice_fields(&mut v);
    match &v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Object(m) if m.is_empty() => Ok(None),
        serde_json::Value::Object(_) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("invalid commit config: {e}"))),
        _ => Err(ApiError::invalid(
            "the commit body must be a JSON object (a container Config)",
        )),
    }
}

pub(super) async fn commit(State(s): State<Services>, req: Request) -> HttpResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError::invalid(format!("cannot read the commit config: {e}")))?;
    let config = body_config(&body)?;
    let repo = q.get("repo").unwrap_or("").to_string();
    let tag = q.get("tag").unwrap_or("").to_string();
    if !repo.is_empty() {
        super::images::validate_tag_target(&repo, &tag)?;
    }
    let opts = CommitOptions {
        container: q.get("container").unwrap_or("").to_string(),
        repo,
        tag,
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        pause: q.get("pause").is_none_or(go_bool),
        changes: q.all("changes"),
        config,
    };
    let id = s.images.commit(opts).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_body_follow_moby() {
        assert!(go_bool("True") && go_bool("1") && go_bool("anything"));
        assert!(!go_bool("false") && !go_bool("0") && !go_bool("") && !go_bool("none"));
        assert_eq!(body_config(b"").unwrap(), None);
        assert_eq!(body_config(b" null ").unwrap(), None);
        assert_eq!(body_config(b"{}").unwrap(), None);
        assert!(body_config(br#"{"Cmd":["sh"]}"#).unwrap().is_some());
        assert_eq!(
            body_config(br#"{"Cmd":"echo hi","Entrypoint":["sh","-c"]}"#).unwrap(),
            Some(ContainerConfig {
                cmd: Some(vec!["echo hi".into()]),
                entrypoint: Some(vec!["sh".into(), "-c".into()]),
                ..Default::default()
            })
        );
        let e = body_config(br#"{"Cmd":3}"#).unwrap_err();
        assert!(e.to_string().starts_with("invalid commit config: "), "{e}");
        assert!(body_config(b"[1]").is_err());
        assert!(body_config(b"{").is_err());
    }
}
