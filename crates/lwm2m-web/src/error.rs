//! API errors: an HTTP status and a JSON body `{"error": "<code>", "reason": "<what and how to fix>"}`; errors
//! the device answered also carry `"coap_code"` (and its `"diagnostic"` payload when it sent one).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as Reply;
use lwm2m_coap::Code;
use lwm2m_server::ServerError;
use serde_json::{Map, Value as Json};

/// One failed API request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`unknown_endpoint`, `bad_path`, `device_timeout`, ...).
    pub error: &'static str,
    /// What happened, for a person.
    pub reason: String,
    /// Extra members of the JSON body (`coap_code`, `diagnostic`, ...).
    pub extra: Map<String, Json>,
}

impl ApiError {
    /// An error with `status`, machine code `error` and `reason`.
    pub fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            reason: reason.into(),
            extra: Map::new(),
        }
    }

    /// 400 with code `error`.
    pub fn bad_request(error: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, reason)
    }

    /// 404 with code `error`.
    pub fn not_found(error: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error, reason)
    }

    /// 404 `unknown_endpoint`.
    pub fn unknown_endpoint(endpoint: &str) -> ApiError {
        ApiError::not_found(
            "unknown_endpoint",
            format!("no client is registered with endpoint name {endpoint:?} (GET /api/clients lists them)"),
        )
    }

    /// 502 `device_error`: the device answered `code`.
    pub fn device_error(endpoint: &str, operation: &str, code: Code, diagnostic: Option<&str>) -> ApiError {
        let mut reason = format!("{endpoint} answered {operation} with {code} {}", code_name(code));
        if let Some(d) = diagnostic.filter(|d| !d.is_empty()) {
            reason.push_str(": ");
            reason.push_str(d);
        }
        let mut e = ApiError::new(StatusCode::BAD_GATEWAY, "device_error", reason);
        e.extra.insert("coap_code".into(), Json::String(code.to_string()));
        if let Some(d) = diagnostic {
            e.extra.insert("diagnostic".into(), Json::String(d.to_string()));
        }
        e
    }

    /// Adds a member to the JSON body.
    pub fn with(mut self, key: &str, value: Json) -> ApiError {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Json {
        let mut m = Map::new();
        m.insert("error".into(), Json::String(self.error.into()));
        m.insert("reason".into(), Json::String(self.reason.clone()));
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Json::Object(m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Reply(self.body())).into_response()
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> ApiError {
        let reason = e.to_string();
        match e {
            ServerError::UnknownEndpoint(ep) => ApiError::unknown_endpoint(&ep),
            ServerError::Timeout { .. } => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "device_timeout",
                format!("{reason}; the device may be offline (retry, or raise ?timeout=SECONDS)"),
            ),
            ServerError::ClientSleeping { .. } => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "client_sleeping",
                format!("{reason}; raise ?timeout=SECONDS to wait for the device's next wake-up"),
            ),
            ServerError::RegistrationEnded { .. } => ApiError::new(StatusCode::CONFLICT, "registration_ended", reason),
            ServerError::Decode { .. } | ServerError::UnknownContentFormat(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "bad_device_payload", reason)
            }
            ServerError::Reset => ApiError::new(StatusCode::BAD_GATEWAY, "device_reset", reason),
            ServerError::Coap(_) => ApiError::new(StatusCode::BAD_GATEWAY, "coap_error", reason),
            ServerError::Encode(_) => ApiError::bad_request("bad_content", reason),
            ServerError::InvalidRequest(why) => ApiError::bad_request("invalid_request", why),
            ServerError::UnknownObservation(_) => ApiError::not_found("unknown_observation", reason),
            ServerError::Store(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", reason),
            ServerError::Shutdown => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", reason),
        }
    }
}

/// The RFC 7252 / RFC 8132 name of a response code (empty for unknown codes); see [`Code::reason_phrase`].
pub fn code_name(code: Code) -> &'static str {
    code.reason_phrase().unwrap_or("")
}

/// A JSON 404 for paths the API does not have.
pub fn no_route(path: &str) -> ApiError {
    ApiError::not_found(
        "no_route",
        format!("{path} is not part of the API (see GET /api/openapi.yaml)"),
    )
}

/// A JSON 405.
pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {path} (see GET /api/openapi.yaml)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_errors_map_to_statuses() {
        let cases = [
            (ServerError::UnknownEndpoint("x".into()), 404, "unknown_endpoint"),
            (ServerError::Timeout { endpoint: "x".into() }, 504, "device_timeout"),
            (
                ServerError::ClientSleeping { endpoint: "x".into() },
                504,
                "client_sleeping",
            ),
            (
                ServerError::RegistrationEnded { endpoint: "x".into() },
                409,
                "registration_ended",
            ),
            (ServerError::InvalidRequest("bad".into()), 400, "invalid_request"),
            (ServerError::Reset, 502, "device_reset"),
            (ServerError::Shutdown, 503, "shutting_down"),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(e);
            assert_eq!((a.status.as_u16(), a.error), (status, code));
            assert!(!a.reason.is_empty());
        }
    }

    #[test]
    fn device_errors_carry_the_coap_code() {
        let e = ApiError::device_error("dev", "Read", Code::NOT_FOUND, Some("no such instance"));
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            e.body(),
            json!({
                "error": "device_error",
                "reason": "dev answered Read with 4.04 Not Found: no such instance",
                "coap_code": "4.04",
                "diagnostic": "no such instance"
            })
        );
    }
}
