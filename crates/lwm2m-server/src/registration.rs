//! The Client Registration interface, server side: typed Register and Update requests (digest §4.1, §4.2).
//!
//! [`RegisterRequest::parse`] and [`UpdateRequest::parse`] take the Uri-Query options and the payload of
//! the CoAP request and return a typed request or a [`RegistrationError`], whose [`RegistrationError::code`]
//! is the CoAP response the client must get (4.00 for a bad or missing parameter, 4.12 for an LwM2M
//! version this server does not speak, 4.15 for a payload that is not link format).

use std::collections::BTreeMap;

use lwm2m_coap::Code;
use lwm2m_core::format::link::{self, RegistrationLinks};
use lwm2m_core::format::ContentFormat;
use lwm2m_core::model::Version;
use thiserror::Error;

/// The LwM2M enabler version this server implements.
pub const SERVER_VERSION: Version = Version::V1_1;
/// The lifetime a client gets when it sends no `lt` (digest §4.1).
pub const DEFAULT_LIFETIME_S: u32 = 86_400;

/// Why a Register or Update was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistrationError {
    #[error("parameter {0:?} appears more than once")]
    DuplicateParameter(String),
    #[error("parameter {name}={value:?} is invalid: {reason}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("parameter {0} is mandatory")]
    MissingParameter(&'static str),
    #[error("the Q (queue mode) parameter takes no value")]
    QueueWithValue,
    #[error("LwM2M version {client} is not supported by this {server} server")]
    UnsupportedVersion { client: Version, server: Version },
    #[error("payload must be link format (content format 40), not {0}")]
    UnsupportedContentFormat(u16),
    #[error("invalid object links: {0}")]
    InvalidPayload(String),
}

impl RegistrationError {
    /// The CoAP response code for this error.
    pub fn code(&self) -> Code {
        match self {
            RegistrationError::UnsupportedVersion { .. } => Code::PRECONDITION_FAILED,
            RegistrationError::UnsupportedContentFormat(_) => Code::UNSUPPORTED_CONTENT_FORMAT,
            _ => Code::BAD_REQUEST,
        }
    }
}

/// The transports a client supports (`b`): U, T, S, N. A 1.0 `Q` inside `b` means queue mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Binding {
    pub udp: bool,
    pub tcp: bool,
    pub sms: bool,
    pub non_ip: bool,
}

impl Binding {
    pub const UDP: Binding = Binding {
        udp: true,
        tcp: false,
        sms: false,
        non_ip: false,
    };

    /// Parses a binding; returns it and whether the 1.0 queue letter `Q` was present.
    /// `legacy` allows `Q` (1.0 bindings such as `UQ`, `UQS`).
    pub fn parse(s: &str, legacy: bool) -> Result<(Binding, bool), RegistrationError> {
        let bad = |reason| RegistrationError::InvalidParameter {
            name: "b",
            value: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty binding"));
        }
        let mut b = Binding::default();
        let mut queue = false;
        for c in s.chars() {
            let slot = match c {
                'U' => &mut b.udp,
                'T' => &mut b.tcp,
                'S' => &mut b.sms,
                'N' => &mut b.non_ip,
                'Q' if legacy => &mut queue,
                'Q' => return Err(bad("Q is not a binding in LwM2M 1.1; send the Q parameter instead")),
                _ => return Err(bad("unknown binding letter (use U, T, S, N)")),
            };
            if *slot {
                return Err(bad("repeated binding letter"));
            }
            *slot = true;
        }
        if !(b.udp || b.tcp || b.sms || b.non_ip) {
            return Err(bad("no transport letter"));
        }
        Ok((b, queue))
    }
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (on, c) in [(self.udp, "U"), (self.tcp, "T"), (self.sms, "S"), (self.non_ip, "N")] {
            if on {
                f.write_str(c)?;
            }
        }
        Ok(())
    }
}

/// A validated Register request.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterRequest {
    /// `ep`; `None` when the client omitted it (allowed in 1.1 when the security identity names it).
    pub endpoint: Option<String>,
    pub lifetime_s: u32,
    pub version: Version,
    pub binding: Binding,
    pub queue_mode: bool,
    pub sms: Option<String>,
    /// Parameters this server does not know, kept as they were sent.
    pub additional: BTreeMap<String, Option<String>>,
    /// The object links of the payload (objects 0 and 21 are dropped by the parser).
    pub links: RegistrationLinks,
}

/// A validated Update request: only what changed is present.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateRequest {
    pub lifetime_s: Option<u32>,
    pub binding: Option<Binding>,
    pub sms: Option<String>,
    /// The complete object list, when the client sent one.
    pub links: Option<RegistrationLinks>,
    pub additional: BTreeMap<String, Option<String>>,
}

/// Splits `name=value` query options; rejects repeated names.
fn split_queries<'a, I: IntoIterator<Item = &'a str>>(
    queries: I,
) -> Result<BTreeMap<&'a str, Option<&'a str>>, RegistrationError> {
    let mut out = BTreeMap::new();
    for q in queries {
        let (name, value) = match q.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (q, None),
        };
        if out.insert(name, value).is_some() {
            return Err(RegistrationError::DuplicateParameter(name.to_string()));
        }
    }
    Ok(out)
}

fn parse_lifetime(v: Option<&str>) -> Result<u32, RegistrationError> {
    let v = v.unwrap_or("");
    let bad = |reason| RegistrationError::InvalidParameter {
        name: "lt",
        value: v.to_string(),
        reason,
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("lifetime must be a positive number of seconds"));
    }
    match v.parse::<u32>() {
        Ok(0) => Err(bad("lifetime must be at least 1 s")),
        Ok(n) => Ok(n),
        Err(_) => Err(bad("lifetime is larger than 4294967295 s")),
    }
}

fn parse_sms(v: Option<&str>) -> Result<String, RegistrationError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(RegistrationError::InvalidParameter {
            name: "sms",
            value: v.unwrap_or("").to_string(),
            reason: "the MSISDN must not be empty",
        }),
    }
}

fn parse_links(content_format: Option<u16>, payload: &[u8]) -> Result<Option<RegistrationLinks>, RegistrationError> {
    match content_format {
        Some(cf) if cf != ContentFormat::Link.code() => Err(RegistrationError::UnsupportedContentFormat(cf)),
        _ if payload.is_empty() => Ok(None),
        _ => link::parse_registration(payload)
            .map(Some)
            .map_err(|e| RegistrationError::InvalidPayload(e.to_string())),
    }
}

/// Checks the client's enabler version against this server's (digest §4.1 version rule).
pub fn check_version(client: Version) -> Result<(), RegistrationError> {
    if client.major != SERVER_VERSION.major || client > SERVER_VERSION {
        return Err(RegistrationError::UnsupportedVersion {
            client,
            server: SERVER_VERSION,
        });
    }
    Ok(())
}

impl RegisterRequest {
    /// Parses a Register request from its Uri-Query options, Content-Format and payload.
    pub fn parse<'a, I: IntoIterator<Item = &'a str>>(
        queries: I,
        content_format: Option<u16>,
        payload: &[u8],
    ) -> Result<RegisterRequest, RegistrationError> {
        let mut q = split_queries(queries)?;
        let version = match q.remove("lwm2m") {
            None => Version::V1_0,
            Some(v) => v
                .unwrap_or("")
                .parse::<Version>()
                .map_err(|_| RegistrationError::InvalidParameter {
                    name: "lwm2m",
                    value: v.unwrap_or("").to_string(),
                    reason: "expected MAJOR.MINOR, e.g. 1.1",
                })?,
        };
        check_version(version)?;
        let legacy = version == Version::V1_0;
        let endpoint = match q.remove("ep") {
            None => None,
            Some(Some(ep)) if !ep.is_empty() => Some(ep.to_string()),
            Some(v) => {
                return Err(RegistrationError::InvalidParameter {
                    name: "ep",
                    value: v.unwrap_or("").to_string(),
                    reason: "the endpoint name must not be empty",
                })
            }
        };
        if endpoint.is_none() && legacy {
            return Err(RegistrationError::MissingParameter("ep"));
        }
        let lifetime_s = match q.remove("lt") {
            None => DEFAULT_LIFETIME_S,
            Some(v) => parse_lifetime(v)?,
        };
        let (binding, mut queue_mode) = match q.remove("b") {
            None => (Binding::UDP, false),
            Some(v) => Binding::parse(v.unwrap_or(""), legacy)?,
        };
        match q.remove("Q") {
            None => {}
            Some(None) => queue_mode = true,
            Some(Some(_)) => return Err(RegistrationError::QueueWithValue),
        }
        let sms = q.remove("sms").map(parse_sms).transpose()?;
        let links = parse_links(content_format, payload)?.unwrap_or_default();
        let additional = q
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        Ok(RegisterRequest {
            endpoint,
            lifetime_s,
            version,
            binding,
            queue_mode,
            sms,
            additional,
            links,
        })
    }
}

impl UpdateRequest {
    /// Parses an Update request. `ep`, `lwm2m` and `Q` are not Update parameters; like any unknown
    /// parameter they are kept in `additional` and otherwise ignored.
    pub fn parse<'a, I: IntoIterator<Item = &'a str>>(
        queries: I,
        content_format: Option<u16>,
        payload: &[u8],
        version: Version,
    ) -> Result<UpdateRequest, RegistrationError> {
        let mut q = split_queries(queries)?;
        let lifetime_s = q.remove("lt").map(parse_lifetime).transpose()?;
        let binding = match q.remove("b") {
            None => None,
            Some(v) => Some(Binding::parse(v.unwrap_or(""), version == Version::V1_0)?.0),
        };
        let sms = q.remove("sms").map(parse_sms).transpose()?;
        let links = parse_links(content_format, payload)?;
        let additional = q
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        Ok(UpdateRequest {
            lifetime_s,
            binding,
            sms,
            links,
            additional,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(q: &[&str], payload: &str) -> Result<RegisterRequest, RegistrationError> {
        RegisterRequest::parse(q.iter().copied(), Some(40), payload.as_bytes())
    }

    #[test]
    fn digest_register_example() {
        let r = reg(
            &["ep=urn:imei:490154203237518", "lt=300", "lwm2m=1.1", "b=U", "Q"],
            r#"</>;rt="oma.lwm2m";ct="110 112",</1/0>,</3/0>,</4/0>,</5>,</3303>;ver=1.1,</3303/0>,</3303/1>"#,
        )
        .unwrap();
        assert_eq!(r.endpoint.as_deref(), Some("urn:imei:490154203237518"));
        assert_eq!(r.lifetime_s, 300);
        assert_eq!(r.version, Version::V1_1);
        assert_eq!(r.binding, Binding::UDP);
        assert!(r.queue_mode);
        assert_eq!(r.links.content_formats, vec![110, 112]);
        let ids: Vec<u16> = r.links.objects.iter().map(|o| o.object_id).collect();
        assert_eq!(ids, vec![1, 3, 4, 5, 3303]);
    }

    #[test]
    fn defaults() {
        let r = reg(&["ep=dev1"], "").unwrap();
        assert_eq!(r.lifetime_s, DEFAULT_LIFETIME_S);
        assert_eq!(r.version, Version::V1_0);
        assert_eq!(r.binding, Binding::UDP);
        assert!(!r.queue_mode);
        assert!(r.links.objects.is_empty());
    }

    #[test]
    fn error_codes() {
        let cases: &[(&[&str], Code)] = &[
            (&["lt=300"], Code::BAD_REQUEST),                    // 1.0 without ep
            (&["ep="], Code::BAD_REQUEST),                       // empty ep
            (&["ep=a", "ep=b"], Code::BAD_REQUEST),              // repeated
            (&["ep=a", "lt=0"], Code::BAD_REQUEST),              // zero lifetime
            (&["ep=a", "lt=-5"], Code::BAD_REQUEST),             // negative lifetime
            (&["ep=a", "lt=99999999999"], Code::BAD_REQUEST),    // overflow
            (&["ep=a", "lwm2m=1.1", "b=UQ"], Code::BAD_REQUEST), // Q inside b in 1.1
            (&["ep=a", "b=UX"], Code::BAD_REQUEST),              // unknown letter
            (&["ep=a", "b=UU"], Code::BAD_REQUEST),              // repeated letter
            (&["ep=a", "lwm2m=1.1", "Q=1"], Code::BAD_REQUEST),  // Q with a value
            (&["ep=a", "sms="], Code::BAD_REQUEST),              // empty MSISDN
            (&["ep=a", "lwm2m=abc"], Code::BAD_REQUEST),         // malformed version
            (&["ep=a", "lwm2m=1.2"], Code::PRECONDITION_FAILED), // newer than us
            (&["ep=a", "lwm2m=2.0"], Code::PRECONDITION_FAILED), // other major
            (&["ep=a", "lwm2m=0.9"], Code::PRECONDITION_FAILED), // other major
        ];
        for (q, code) in cases {
            let e = reg(q, "").unwrap_err();
            assert_eq!(e.code(), *code, "{q:?}: {e}");
        }
        let e = RegisterRequest::parse(["ep=a"], Some(0), b"</1/0>").unwrap_err();
        assert_eq!(e.code(), Code::UNSUPPORTED_CONTENT_FORMAT);
        let e = reg(&["ep=a"], "</1/0").unwrap_err();
        assert!(matches!(e, RegistrationError::InvalidPayload(_)), "{e}");
    }

    #[test]
    fn legacy_binding_and_unknown_parameters() {
        let r = reg(&["ep=a", "b=UQS", "foo=bar", "flag"], "").unwrap();
        assert!(r.queue_mode);
        assert_eq!(r.binding.to_string(), "US");
        assert_eq!(r.additional.get("foo"), Some(&Some("bar".to_string())));
        assert_eq!(r.additional.get("flag"), Some(&None));
        // 1.1 may omit ep (the security layer names the endpoint).
        assert_eq!(reg(&["lwm2m=1.1"], "").unwrap().endpoint, None);
    }

    #[test]
    fn update() {
        let u = UpdateRequest::parse(["lt=600", "b=UT"], Some(40), b"</1/0>,</3/0>", Version::V1_1).unwrap();
        assert_eq!(u.lifetime_s, Some(600));
        assert_eq!(u.binding.map(|b| b.to_string()).as_deref(), Some("UT"));
        assert_eq!(u.links.unwrap().objects.len(), 2);
        let empty = UpdateRequest::parse([], None, b"", Version::V1_1).unwrap();
        assert_eq!(empty, UpdateRequest::default());
        assert!(UpdateRequest::parse(["lt=x"], None, b"", Version::V1_1).is_err());
        assert!(UpdateRequest::parse(["b=UQ"], None, b"", Version::V1_1).is_err());
        assert!(UpdateRequest::parse(["b=UQ"], None, b"", Version::V1_0).is_ok());
    }
}
