//! The one place that turns service errors into HTTP answers: [`status_of`] maps an
//! [`ErrorKind`] to a status code and [`HttpError`] renders an [`ApiError`] as moby does.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use berth_api_types::{ApiError, ErrorKind};

/// The HTTP status for a kind (as moby's `httpstatus`): the one place kinds become codes.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Failed | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A service error on its way out as an HTTP answer: `{"message": "..."}` with the kind's
/// status, like moby. (A local type because `IntoResponse` cannot be implemented here for
/// berth-api-types' [`ApiError`].)
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> HttpError {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let HttpError(e) = self;
        let status = status_of(e.kind);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), message = %e.message, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), message = %e.message, "request rejected");
        }
        (status, Json(serde_json::json!({ "message": e.message }))).into_response()
    }
}

/// What a route handler returns: its answer, or a service error rendered by [`HttpError`].
pub type HttpResult<T> = Result<T, HttpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_moby_codes() {
        assert_eq!(status_of(ErrorKind::NotFound), 404);
        assert_eq!(status_of(ErrorKind::Conflict), 409);
        assert_eq!(status_of(ErrorKind::Invalid), 400);
        assert_eq!(status_of(ErrorKind::Internal), 500);
        assert_eq!(status_of(ErrorKind::Unavailable), 503);
        assert_eq!(status_of(ErrorKind::NotImplemented), 501);
    }

    #[test]
    fn an_error_answers_with_its_status_and_message() {
        let r = HttpError::from(ApiError::conflict("name in use")).into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
    }
}
