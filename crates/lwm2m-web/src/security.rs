//! `/api/security`: the credentials each endpoint must present (the server's security store, which its DTLS
//! sockets consult too). PSK keys are hex; in list output they are masked.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as Reply;
use base64::Engine;
use lwm2m_server::security::{Credential, SecurityInfo, StoreError};
use serde_json::{json, Value as Json};

use crate::error::ApiError;
use crate::WebApi;

const EXAMPLE: &str = r#"{"mode": "psk", "identity": "dev1", "key": "000102030405060708090a0b0c0d0e0f"}"#;

/// One entry as JSON; `reveal` shows the PSK key in full, otherwise only its length.
fn entry_json(info: &SecurityInfo, reveal: bool) -> Json {
    match &info.credential {
        Credential::Psk { identity, key } => {
            let key = if reveal {
                Json::String(hex::encode(key))
            } else {
                Json::String("***".into())
            };
            json!({"endpoint": info.endpoint, "mode": "psk", "identity": identity, "key": key, "key_bytes": key_len(&info.credential)})
        }
        Credential::Rpk { public_key_der } => json!({
            "endpoint": info.endpoint,
            "mode": "rpk",
            "public_key": hex::encode(public_key_der),
            "public_key_base64": base64::engine::general_purpose::STANDARD.encode(public_key_der),
        }),
        Credential::X509 => json!({"endpoint": info.endpoint, "mode": "x509"}),
    }
}

fn key_len(c: &Credential) -> usize {
    match c {
        Credential::Psk { key, .. } => key.len(),
        _ => 0,
    }
}

/// `GET /api/security`: every entry, PSK keys masked.
pub(crate) async fn list(State(api): State<WebApi>) -> Reply<Json> {
    let entries: Vec<Json> = api.security().list().iter().map(|i| entry_json(i, false)).collect();
    Reply(json!({"total": entries.len(), "entries": entries}))
}

/// `GET /api/security/{ep}`: one entry with its key.
pub(crate) async fn get_one(State(api): State<WebApi>, UrlPath(ep): UrlPath<String>) -> Result<Response, ApiError> {
    use lwm2m_server::security::SecurityStore;
    match api.security().by_endpoint(&ep) {
        Some(info) => Ok(Reply(entry_json(&info, true)).into_response()),
        None => Err(no_entry(&ep)),
    }
}

fn no_entry(ep: &str) -> ApiError {
    ApiError::not_found(
        "unknown_security_entry",
        format!("no credentials are stored for endpoint {ep:?} (GET /api/security lists them)"),
    )
}

fn bytes_field(body: &serde_json::Map<String, Json>, hex_name: &str, b64_name: &str) -> Result<Vec<u8>, ApiError> {
    let bad = |m: String| ApiError::bad_request("bad_credentials", m);
    match (body.get(hex_name), body.get(b64_name)) {
        (Some(Json::String(h)), None) => {
            let clean: String = h.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
            hex::decode(&clean).map_err(|e| bad(format!("{hex_name} is not hexadecimal ({e}); e.g. {EXAMPLE}")))
        }
        (None, Some(Json::String(b))) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| bad(format!("{b64_name} is not base64 ({e})"))),
        (Some(_), Some(_)) => Err(bad(format!("give {hex_name} or {b64_name}, not both"))),
        (None, None) => Err(bad(format!(
            "{hex_name} (hex) or {b64_name} is missing; e.g. {EXAMPLE}"
        ))),
        _ => Err(bad(format!("{hex_name} / {b64_name} must be a string"))),
    }
}

/// The credential of a PUT body.
fn credential(body: &Bytes) -> Result<Credential, ApiError> {
    let bad = |m: String| ApiError::bad_request("bad_credentials", m);
    let j: Json =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON ({e}); e.g. {EXAMPLE}")))?;
    let Json::Object(m) = j else {
        return Err(bad(format!("the body must be an object, e.g. {EXAMPLE}")));
    };
    let allowed: &[&str] = match m.get("mode").and_then(Json::as_str) {
        Some("psk") => &["mode", "identity", "key", "key_base64"],
        Some("rpk") => &["mode", "public_key", "public_key_base64"],
        Some("x509") => &["mode"],
        _ => {
            return Err(bad(format!(
                "\"mode\" must be \"psk\", \"rpk\" or \"x509\"; e.g. {EXAMPLE}"
            )))
        }
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown member {k:?}; this mode takes {}",
            allowed.join(", ")
        )));
    }
    match m.get("mode").and_then(Json::as_str) {
        Some("psk") => {
            let identity = m
                .get("identity")
                .and_then(Json::as_str)
                .ok_or_else(|| bad(format!("\"identity\" (a string) is missing; e.g. {EXAMPLE}")))?
                .to_string();
            let key = bytes_field(&m, "key", "key_base64")?;
            Ok(Credential::Psk { identity, key })
        }
        Some("rpk") => Ok(Credential::Rpk {
            public_key_der: bytes_field(&m, "public_key", "public_key_base64")?,
        }),
        _ => Ok(Credential::X509),
    }
}

/// `PUT /api/security/{ep}`: add (201) or replace (200) an endpoint's credentials.
pub(crate) async fn put(
    State(api): State<WebApi>,
    UrlPath(ep): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let info = SecurityInfo {
        endpoint: ep,
        credential: credential(&body)?,
    };
    let shown = entry_json(&info, false);
    match api.security().put(info) {
        Ok(old) => {
            let status = if old.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, Reply(shown)).into_response())
        }
        Err(e @ (StoreError::PskIdentityInUse { .. } | StoreError::RpkInUse(_))) => {
            Err(ApiError::new(StatusCode::CONFLICT, "credentials_in_use", e.to_string()))
        }
        Err(e @ StoreError::Invalid(_)) => Err(ApiError::bad_request("bad_credentials", e.to_string())),
    }
}

/// `DELETE /api/security/{ep}`.
pub(crate) async fn delete(State(api): State<WebApi>, UrlPath(ep): UrlPath<String>) -> Result<Response, ApiError> {
    match api.security().remove(&ep) {
        Some(info) => Ok(Reply(json!({"deleted": info.endpoint})).into_response()),
        None => Err(no_entry(&ep)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credentials() {
        let c = credential(&Bytes::from_static(
            br#"{"mode":"psk","identity":"d","key":"00:01 02"}"#,
        ))
        .unwrap();
        assert_eq!(
            c,
            Credential::Psk {
                identity: "d".into(),
                key: vec![0, 1, 2]
            }
        );
        let c = credential(&Bytes::from_static(br#"{"mode":"rpk","public_key_base64":"AQID"}"#)).unwrap();
        assert_eq!(
            c,
            Credential::Rpk {
                public_key_der: vec![1, 2, 3]
            }
        );
        assert_eq!(
            credential(&Bytes::from_static(br#"{"mode":"x509"}"#)).unwrap(),
            Credential::X509
        );
        for bad in [
            &br#"{"mode":"psk","identity":"d","key":"zz"}"#[..],
            br#"{"mode":"psk","key":"00"}"#,
            br#"{"mode":"psk","identity":"d"}"#,
            br#"{"mode":"psk","identity":"d","key":"00","key_base64":"AA=="}"#,
            br#"{"mode":"x509","key":"00"}"#,
            br#"{"mode":"oauth"}"#,
            br#"[1]"#,
            br#"not json"#,
        ] {
            let e = credential(&Bytes::copy_from_slice(bad)).unwrap_err();
            assert_eq!(
                (e.status, e.error),
                (StatusCode::BAD_REQUEST, "bad_credentials"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn masks_keys_unless_revealed() {
        let info = SecurityInfo {
            endpoint: "e".into(),
            credential: Credential::Psk {
                identity: "i".into(),
                key: vec![0xab; 16],
            },
        };
        let masked = entry_json(&info, false).to_string();
        assert!(!masked.contains("abab"), "{masked}");
        assert_eq!(entry_json(&info, false)["key_bytes"], 16);
        assert_eq!(entry_json(&info, true)["key"], "ab".repeat(16));
    }
}
