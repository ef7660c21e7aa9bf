//! Typed DM&SE and Information Reporting requests (digest §5, §6) and their responses, sans-IO.
//!
//! [`Request`] names an operation with typed content; [`build_message`] turns it into the CoAP request for
//! one registration (method, path under the client's alternate path, Content-Format/Accept, payload) and
//! [`decode_response`] turns the client's answer into a [`Response`] with decoded [`Content`], typed by the
//! object models of that registration.
//!
//! | operation | CoAP | paths |
//! |---|---|---|
//! | Read | GET (+Accept when overridden) | `/o`, `/o/i`, `/o/i/r`, `/o/i/r/ri` |
//! | Discover | GET, Accept 40 | `/o`, `/o/i`, `/o/i/r` |
//! | Write Replace / Partial Update | PUT / POST + Content-Format | `/o/i`, `/o/i/r`, `/o/i/r/ri` |
//! | Write-Attributes | PUT, Uri-Query, no payload | `/o` … `/o/i/r/ri` |
//! | Execute | POST (+text/plain arguments) | `/o/i/r` |
//! | Create | POST + Content-Format | `/o` |
//! | Delete | DELETE | `/o/i` |
//! | Read-Composite / Observe-Composite | FETCH `/` (+Observe 0), SenML names | any mix |
//! | Write-Composite | iPATCH `/`, SenML values | resources, resource instances |
//! | Observe | GET + Observe 0 | `/o` … `/o/i/r/ri` |
//!
//! **Content format** of request payloads ([`payload_format`]): the per-request override, else the best
//! format of the client's `ct` list (SenML CBOR, SenML JSON, TLV, LwM2M JSON, in that order of preference),
//! else TLV for a 1.0 client and SenML CBOR for 1.1 (digest §8.1). Composite operations use SenML CBOR or
//! SenML JSON only. Reads and observations carry Accept only when the request overrides the format; the
//! client's choice is decoded whatever it is.

use std::fmt;
use std::time::Duration;

use lwm2m_coap::{Code, Message};
use lwm2m_core::attributes::{AttributeChanges, Attributes};
use lwm2m_core::format::{self, link, ContentFormat};
use lwm2m_core::model::{Models, Version};
use lwm2m_core::{FormatError, InstanceNode, Node, ObjectNode, Path, Record, ResourceNode};

use crate::error::ServerError;
use crate::observation::ObservationId;
use crate::registry::Registration;

/// Write-Replace (PUT) or Write-Partial-Update (POST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// PUT: replace the target's content.
    Replace,
    /// POST: change only what the payload holds.
    PartialUpdate,
}

/// One DM&SE or Information Reporting operation with typed content.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Read a node.
    Read { path: Path },
    /// Discover the attributes and structure below a path.
    Discover { path: Path },
    /// Write a node (`content` must sit at `path`: an instance, resource or resource instance node).
    Write { path: Path, mode: WriteMode, content: Node },
    /// Change notification attributes.
    WriteAttributes { path: Path, attributes: AttributeChanges },
    /// Execute a resource with an optional argument list (`0,1='x'`, digest §5.2).
    Execute { path: Path, arguments: Option<String> },
    /// Create an instance of `object_id`; without `instance_id` the client picks one (TLV only).
    Create {
        object_id: u16,
        instance_id: Option<u16>,
        resources: Vec<ResourceNode>,
    },
    /// Delete an object instance.
    Delete { path: Path },
    /// Read several paths at once (SenML).
    ReadComposite { paths: Vec<Path> },
    /// Write several resources at once, atomically (SenML).
    WriteComposite { records: Vec<Record> },
    /// Observe a node.
    Observe { path: Path },
    /// Observe several paths with one observation (SenML).
    ObserveComposite { paths: Vec<Path> },
}

impl Request {
    /// The operation's name (`Read`, `Write-Composite`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Read { .. } => "Read",
            Request::Discover { .. } => "Discover",
            Request::Write {
                mode: WriteMode::Replace,
                ..
            } => "Write-Replace",
            Request::Write {
                mode: WriteMode::PartialUpdate,
                ..
            } => "Write-Partial-Update",
            Request::WriteAttributes { .. } => "Write-Attributes",
            Request::Execute { .. } => "Execute",
            Request::Create { .. } => "Create",
            Request::Delete { .. } => "Delete",
            Request::ReadComposite { .. } => "Read-Composite",
            Request::WriteComposite { .. } => "Write-Composite",
            Request::Observe { .. } => "Observe",
            Request::ObserveComposite { .. } => "Observe-Composite",
        }
    }

    /// The paths the request targets (for composite writes: the records' paths).
    pub fn paths(&self) -> Vec<Path> {
        match self {
            Request::Read { path }
            | Request::Discover { path }
            | Request::Write { path, .. }
            | Request::WriteAttributes { path, .. }
            | Request::Execute { path, .. }
            | Request::Delete { path }
            | Request::Observe { path } => vec![*path],
            Request::Create { object_id, .. } => vec![Path::object(*object_id)],
            Request::ReadComposite { paths } | Request::ObserveComposite { paths } => paths.clone(),
            Request::WriteComposite { records } => records.iter().map(|r| r.path).collect(),
        }
    }

    /// True for Observe and Observe-Composite.
    pub fn is_observe(&self) -> bool {
        matches!(self, Request::Observe { .. } | Request::ObserveComposite { .. })
    }

    /// True for the composite operations (their content is SenML records at `/`).
    pub fn is_composite(&self) -> bool {
        matches!(
            self,
            Request::ReadComposite { .. } | Request::WriteComposite { .. } | Request::ObserveComposite { .. }
        )
    }

    /// Checks what the server can check before sending: path levels and content shape.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad = |m: String| Err(ServerError::InvalidRequest(m));
        let check = |path: &Path, min: usize, max: usize| -> Result<(), ServerError> {
            path.validate()
                .map_err(|e| ServerError::InvalidRequest(format!("{path}: {e}")))?;
            if path.len() < min || path.len() > max {
                let levels = ["/", "/o", "/o/i", "/o/i/r", "/o/i/r/ri"];
                let allowed: Vec<&str> = levels
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i >= min && *i <= max)
                    .map(|(_, l)| *l)
                    .collect();
                return Err(ServerError::InvalidRequest(format!(
                    "{} on {path}: the path must be one of {}",
                    self.name(),
                    allowed.join(", ")
                )));
            }
            Ok(())
        };
        match self {
            Request::Read { path } | Request::Observe { path } | Request::WriteAttributes { path, .. } => {
                check(path, 1, 4)
            }
            Request::Discover { path } => check(path, 1, 3),
            Request::Write { path, content, .. } => {
                check(path, 2, 4)?;
                if !content.fits(path) {
                    return bad(format!(
                        "the content (a node of depth {} with id {}) does not sit at {path}",
                        content.depth(),
                        content.id()
                    ));
                }
                Ok(())
            }
            Request::Execute { path, arguments } => {
                check(path, 3, 3)?;
                match arguments {
                    Some(a) => validate_execute_arguments(a).map_err(ServerError::InvalidRequest),
                    None => Ok(()),
                }
            }
            Request::Create {
                object_id, instance_id, ..
            } => {
                let p = match instance_id {
                    Some(i) => Path::instance(*object_id, *i),
                    None => Path::object(*object_id),
                };
                p.validate()
                    .map_err(|e| ServerError::InvalidRequest(format!("Create {p}: {e}")))
            }
            Request::Delete { path } => check(path, 2, 2),
            Request::ReadComposite { paths } | Request::ObserveComposite { paths } => {
                if paths.is_empty() {
                    return bad(format!("{} needs at least one path", self.name()));
                }
                for p in paths {
                    check(p, 0, 4)?;
                }
                Ok(())
            }
            Request::WriteComposite { records } => {
                if records.is_empty() {
                    return bad("Write-Composite needs at least one record".into());
                }
                for r in records {
                    check(&r.path, 3, 4)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paths: Vec<String> = self.paths().iter().map(|p| p.to_string()).collect();
        write!(f, "{} {}", self.name(), paths.join(","))
    }
}

/// Per-request options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// The content format of the request payload and, for reads and observations, the Accept format.
    pub format: Option<ContentFormat>,
    /// How long to wait for the answer, including the time queued while a queue-mode client sleeps
    /// (default: the server's `request_timeout`).
    pub timeout: Option<Duration>,
}

impl RequestOptions {
    /// Options with a content format override.
    pub fn with_format(mut self, format: ContentFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// Options with a timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Decoded response content.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// The node at the request path (Read, Observe).
    Node { path: Path, node: Node },
    /// Records with absolute paths (composite operations, and single-path content that carries timestamps).
    Records(Vec<Record>),
    /// Discover output: the raw link format and its parsed entries.
    Links {
        raw: String,
        links: Vec<(Path, Attributes)>,
    },
}

/// The client's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The CoAP response code (2.xx success; 4.xx/5.xx are the client's refusals).
    pub code: Code,
    /// The content format of the payload, if any.
    pub format: Option<ContentFormat>,
    /// The decoded payload of a success response.
    pub content: Option<Content>,
    /// Create: the new instance's path from the Location-Path.
    pub location: Option<Path>,
    /// The diagnostic payload of an error response (UTF-8, lossy).
    pub diagnostic: Option<String>,
    /// Observe / Observe-Composite: the observation the server now holds (a 2.xx answer with Observe).
    pub observation: Option<ObservationId>,
}

impl Response {
    /// True for 2.xx.
    pub fn is_success(&self) -> bool {
        self.code.is_success()
    }

    /// The decoded node, when the content is one.
    pub fn node(&self) -> Option<&Node> {
        match &self.content {
            Some(Content::Node { node, .. }) => Some(node),
            _ => None,
        }
    }

    /// The decoded records, when the content is records.
    pub fn records(&self) -> Option<&[Record]> {
        match &self.content {
            Some(Content::Records(r)) => Some(r),
            _ => None,
        }
    }
}

/// The multi-value format for request payloads to this client (see the module docs).
pub fn payload_format(reg: &Registration) -> ContentFormat {
    [
        ContentFormat::SenmlCbor,
        ContentFormat::SenmlJson,
        ContentFormat::Tlv,
        ContentFormat::Lwm2mJson,
    ]
    .into_iter()
    .find(|f| reg.announces(*f))
    .unwrap_or(if reg.version >= Version::V1_1 {
        ContentFormat::SenmlCbor
    } else {
        ContentFormat::Tlv
    })
}

/// The SenML format for composite requests to this client.
pub fn composite_format(reg: &Registration) -> ContentFormat {
    if !reg.announces(ContentFormat::SenmlCbor) && reg.announces(ContentFormat::SenmlJson) {
        ContentFormat::SenmlJson
    } else {
        ContentFormat::SenmlCbor
    }
}

/// Checks Execute arguments against the grammar of digest §5.2 (`0`, `2='10.3'`, `7,0=' '`), allowing
/// whitespace after a comma. Returns what is wrong.
pub fn validate_execute_arguments(args: &str) -> Result<(), String> {
    if args.is_empty() {
        return Ok(());
    }
    let b = args.as_bytes();
    let mut i = 0;
    let mut seen = [false; 10];
    loop {
        while i > 0 && b.get(i) == Some(&b' ') {
            i += 1;
        }
        let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) else {
            return Err(format!("Execute arguments: expected a digit at offset {i} of {args:?}"));
        };
        let slot = usize::from(d - b'0');
        match seen.get_mut(slot) {
            Some(s) if *s => return Err(format!("Execute arguments: argument {slot} appears twice")),
            Some(s) => *s = true,
            None => return Err(format!("Execute arguments: {slot} is not an argument id")),
        }
        i += 1;
        if b.get(i) == Some(&b'=') {
            if b.get(i + 1) != Some(&b'\'') {
                return Err(format!("Execute arguments: expected ' at offset {} of {args:?}", i + 1));
            }
            i += 2;
            loop {
                match b.get(i) {
                    None => return Err(format!("Execute arguments: unterminated value in {args:?}")),
                    Some(b'\'') => break,
                    Some(&c)
                        if c == b'!'
                            || (0x23..=0x26).contains(&c)
                            || (0x28..=0x5b).contains(&c)
                            || (0x5d..=0x7e).contains(&c)
                            || c == b' ' =>
                    {
                        i += 1
                    }
                    Some(&c) => {
                        return Err(format!(
                            "Execute arguments: character 0x{c:02x} at offset {i} is not allowed in a value"
                        ))
                    }
                }
            }
            i += 1;
        }
        match b.get(i) {
            None => return Ok(()),
            Some(b',') => i += 1,
            Some(_) => return Err(format!("Execute arguments: expected , at offset {i} of {args:?}")),
        }
    }
}

/// The Uri-Path of `path` on this client (below its alternate path).
pub fn uri_path(reg: &Registration, path: &Path) -> String {
    let root = reg.root_path().trim_end_matches('/');
    if path.is_root() {
        if root.is_empty() {
            "/".to_string()
        } else {
            root.to_string()
        }
    } else {
        format!("{root}{path}")
    }
}

fn format_of(opts: &RequestOptions, default: ContentFormat) -> ContentFormat {
    opts.format.unwrap_or(default)
}

fn composite_override(opts: &RequestOptions, reg: &Registration, op: &str) -> Result<ContentFormat, ServerError> {
    match opts.format {
        None => Ok(composite_format(reg)),
        Some(f @ (ContentFormat::SenmlCbor | ContentFormat::SenmlJson)) => Ok(f),
        Some(f) => Err(ServerError::InvalidRequest(format!(
            "{op} uses SenML JSON or SenML CBOR, not {f}"
        ))),
    }
}

/// Builds the CoAP request for `request` to the client of `reg`. For Observe and Observe-Composite the
/// Observe option is left to the CoAP layer's `observe`.
pub fn build_message(reg: &Registration, request: &Request, opts: &RequestOptions) -> Result<Message, ServerError> {
    request.validate()?;
    let mut msg = match request {
        Request::Read { path } | Request::Observe { path } => {
            let mut m = Message::request(Code::GET, &uri_path(reg, path));
            if let Some(f) = opts.format {
                m.set_accept(f.code());
            }
            m
        }
        Request::Discover { path } => {
            let mut m = Message::request(Code::GET, &uri_path(reg, path));
            m.set_accept(ContentFormat::Link.code());
            m
        }
        Request::Write { path, mode, content } => {
            let code = match mode {
                WriteMode::Replace => Code::PUT,
                WriteMode::PartialUpdate => Code::POST,
            };
            let f = format_of(opts, payload_format(reg));
            let payload = format::encode(f, path, content).map_err(ServerError::Encode)?;
            Message::request(code, &uri_path(reg, path))
                .with_content_format(f.code())
                .with_payload(payload)
        }
        Request::WriteAttributes { path, attributes } => {
            let mut m = Message::request(Code::PUT, &uri_path(reg, path));
            for q in attributes.to_queries() {
                m.add_uri_query(&q);
            }
            m
        }
        Request::Execute { path, arguments } => {
            let m = Message::request(Code::POST, &uri_path(reg, path));
            match arguments.as_deref() {
                Some(a) if !a.is_empty() => m
                    .with_content_format(ContentFormat::Text.code())
                    .with_payload(a.as_bytes()),
                _ => m,
            }
        }
        Request::Create {
            object_id,
            instance_id,
            resources,
        } => {
            let inst = |id| InstanceNode::new(id, resources.iter().cloned());
            let (f, payload) = match instance_id {
                Some(iid) => {
                    let f = format_of(opts, payload_format(reg));
                    let node = Node::Object(ObjectNode::new(*object_id, [inst(*iid)]));
                    let payload = format::encode(f, &Path::object(*object_id), &node).map_err(ServerError::Encode)?;
                    (f, payload)
                }
                None => {
                    let f = format_of(opts, ContentFormat::Tlv);
                    if f != ContentFormat::Tlv {
                        return Err(ServerError::InvalidRequest(format!(
                            "a Create without an instance id needs TLV (only TLV carries an instance without its id), not {f}"
                        )));
                    }
                    let probe = Path::instance(*object_id, 0);
                    let payload = format::encode(f, &probe, &Node::Instance(inst(0))).map_err(ServerError::Encode)?;
                    (f, payload)
                }
            };
            Message::request(Code::POST, &uri_path(reg, &Path::object(*object_id)))
                .with_content_format(f.code())
                .with_payload(payload)
        }
        Request::Delete { path } => Message::request(Code::DELETE, &uri_path(reg, path)),
        Request::ReadComposite { paths } | Request::ObserveComposite { paths } => {
            let f = composite_override(opts, reg, request.name())?;
            let payload = format::encode_paths(f, paths).map_err(ServerError::Encode)?;
            let mut m = Message::request(Code::FETCH, &uri_path(reg, &Path::ROOT))
                .with_content_format(f.code())
                .with_payload(payload);
            if opts.format.is_some() {
                m.set_accept(f.code());
            }
            m
        }
        Request::WriteComposite { records } => {
            let f = composite_override(opts, reg, request.name())?;
            let payload = format::encode_records(f, &Path::ROOT, records).map_err(ServerError::Encode)?;
            Message::request(Code::IPATCH, &uri_path(reg, &Path::ROOT))
                .with_content_format(f.code())
                .with_payload(payload)
        }
    };
    msg.token = lwm2m_coap::Token::EMPTY;
    Ok(msg)
}

fn decode_error(format: ContentFormat) -> impl Fn(FormatError) -> ServerError {
    move |source| ServerError::Decode { format, source }
}

/// Decodes the content of a 2.xx answer (a response or a notification) to `request`.
pub fn decode_content(
    reg: &Registration,
    models: &dyn Models,
    request: &Request,
    message: &Message,
) -> Result<(Option<ContentFormat>, Option<Content>), ServerError> {
    let cf = message.content_format();
    if message.payload.is_empty() && cf.is_none() {
        return Ok((None, None));
    }
    let format = match cf {
        Some(code) => ContentFormat::from_code(code).ok_or(ServerError::UnknownContentFormat(code))?,
        None => match request {
            Request::Discover { .. } => ContentFormat::Link,
            _ => ContentFormat::Text,
        },
    };
    let payload = message.payload.as_slice();
    let content = match request {
        Request::Discover { .. } => {
            if format != ContentFormat::Link {
                return Err(ServerError::Decode {
                    format,
                    source: FormatError::Unsupported {
                        format,
                        reason: "Discover answers in link format (40)".into(),
                    },
                });
            }
            let links =
                link::parse_discover(reg.objects.alternate_path.as_deref(), payload).map_err(decode_error(format))?;
            Content::Links {
                raw: String::from_utf8_lossy(payload).into_owned(),
                links,
            }
        }
        Request::Read { path } | Request::Observe { path } => {
            if format.is_record_based() {
                let records = format::decode_records(format, path, payload, models).map_err(decode_error(format))?;
                if records.iter().any(|r| r.time.is_some()) {
                    Content::Records(records)
                } else {
                    let node = Node::from_records(format, path, &records, models).map_err(decode_error(format))?;
                    Content::Node { path: *path, node }
                }
            } else {
                let node = format::decode(format, path, payload, models).map_err(decode_error(format))?;
                Content::Node { path: *path, node }
            }
        }
        Request::ReadComposite { .. } | Request::ObserveComposite { .. } => {
            if !format.is_record_based() {
                return Err(ServerError::Decode {
                    format,
                    source: FormatError::Unsupported {
                        format,
                        reason: "composite content is SenML".into(),
                    },
                });
            }
            let records = format::decode_records(format, &Path::ROOT, payload, models).map_err(decode_error(format))?;
            Content::Records(records)
        }
        // Other operations carry no content; a payload there is ignored.
        _ => return Ok((Some(format), None)),
    };
    Ok((Some(format), Some(content)))
}

/// Turns the client's answer to `request` into a [`Response`].
pub fn decode_response(
    reg: &Registration,
    models: &dyn Models,
    request: &Request,
    message: &Message,
) -> Result<Response, ServerError> {
    let mut response = Response {
        code: message.code,
        format: None,
        content: None,
        location: None,
        diagnostic: None,
        observation: None,
    };
    if !message.code.is_success() {
        if !message.payload.is_empty() {
            response.diagnostic = Some(String::from_utf8_lossy(&message.payload).into_owned());
        }
        return Ok(response);
    }
    let (format, content) = decode_content(reg, models, request, message)?;
    response.format = format;
    response.content = content;
    if let Request::Create { .. } = request {
        response.location = created_location(reg, message);
    }
    Ok(response)
}

/// The `/o/i` of a Create response's Location-Path (below the alternate path).
fn created_location(reg: &Registration, message: &Message) -> Option<Path> {
    let segs = message.location_path();
    let root: Vec<&str> = reg.root_path().split('/').filter(|s| !s.is_empty()).collect();
    let rel = if segs.len() >= root.len() && segs.iter().zip(&root).all(|(a, b)| a == b) {
        segs.get(root.len()..).unwrap_or(&[])
    } else {
        &segs[..]
    };
    if rel.is_empty() {
        return None;
    }
    Path::parse(&format!("/{}", rel.join("/"))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::Binding;
    use crate::registry::RegistrationId;
    use lwm2m_core::attributes::Change;
    use lwm2m_core::format::link::parse_registration;
    use lwm2m_core::{ModelRegistry, ResourceValue, Value};
    use std::collections::BTreeMap;

    fn reg(version: Version, payload: &str) -> Registration {
        Registration {
            id: RegistrationId(1),
            endpoint: "dev".into(),
            peer: "127.0.0.1:5683".parse().unwrap(),
            socket: 0,
            identity: None,
            lifetime_s: 60,
            binding: Binding::UDP,
            queue_mode: false,
            version,
            sms: None,
            objects: parse_registration(payload.as_bytes()).unwrap(),
            registered_at_ms: 0,
            last_update_ms: 0,
            expires_ms: 60_000,
            additional: BTreeMap::new(),
        }
    }

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    #[test]
    fn format_choice_follows_ct_then_version() {
        assert_eq!(payload_format(&reg(Version::V1_0, "</3/0>")), ContentFormat::Tlv);
        assert_eq!(payload_format(&reg(Version::V1_1, "</3/0>")), ContentFormat::SenmlCbor);
        let r = reg(Version::V1_1, r#"</>;rt="oma.lwm2m";ct="11543 110",</3/0>"#);
        assert_eq!(payload_format(&r), ContentFormat::SenmlJson);
        assert_eq!(composite_format(&r), ContentFormat::SenmlJson);
        let r = reg(Version::V1_0, r#"</>;rt="oma.lwm2m";ct=11543,</3/0>"#);
        assert_eq!(payload_format(&r), ContentFormat::Lwm2mJson);
        assert_eq!(composite_format(&r), ContentFormat::SenmlCbor);
        // Only single-value formats announced: fall back to the version default.
        let r = reg(Version::V1_1, r#"</>;rt="oma.lwm2m";ct="0 42",</3/0>"#);
        assert_eq!(payload_format(&r), ContentFormat::SenmlCbor);
    }

    #[test]
    fn messages_for_every_operation() {
        let r = reg(Version::V1_0, "</3/0>,</3442/0>");
        let o = RequestOptions::default();
        let m = build_message(&r, &Request::Read { path: p("/3/0/7/1") }, &o).unwrap();
        assert_eq!(
            (m.code, m.uri_path_string(), m.accept()),
            (Code::GET, "/3/0/7/1".into(), None)
        );
        let m = build_message(
            &r,
            &Request::Read { path: p("/3/0") },
            &o.with_format(ContentFormat::SenmlJson),
        )
        .unwrap();
        assert_eq!(m.accept(), Some(110));
        let m = build_message(&r, &Request::Discover { path: p("/3") }, &o).unwrap();
        assert_eq!(m.accept(), Some(40));

        let w = Request::Write {
            path: p("/3442/0/110"),
            mode: WriteMode::Replace,
            content: Node::Resource(ResourceNode::single(110, Value::String("hi".into()))),
        };
        let m = build_message(&r, &w, &o).unwrap();
        assert_eq!((m.code, m.content_format()), (Code::PUT, Some(11542)));
        assert_eq!(m.payload, b"\xc2\x6ehi".to_vec());
        let m = build_message(&r, &w, &o.with_format(ContentFormat::Text)).unwrap();
        assert_eq!((m.content_format(), m.payload.as_slice()), (Some(0), &b"hi"[..]));

        let wa = Request::WriteAttributes {
            path: p("/3/0/9"),
            attributes: AttributeChanges {
                pmin: Some(Change::Set(10)),
                pmax: Some(Change::Unset),
                ..AttributeChanges::default()
            },
        };
        let m = build_message(&r, &wa, &o).unwrap();
        assert_eq!(
            (m.code, m.uri_query(), m.content_format()),
            (Code::PUT, vec!["pmin=10".into(), "pmax".into()], None)
        );
        assert!(m.payload.is_empty());

        let ex = Request::Execute {
            path: p("/3/0/4"),
            arguments: Some("0,1='x'".into()),
        };
        let m = build_message(&r, &ex, &o).unwrap();
        assert_eq!(
            (m.code, m.content_format(), m.payload.as_slice()),
            (Code::POST, Some(0), &b"0,1='x'"[..])
        );

        let del = build_message(&r, &Request::Delete { path: p("/3442/0") }, &o).unwrap();
        assert_eq!((del.code, del.uri_path_string()), (Code::DELETE, "/3442/0".into()));

        let rc = build_message(
            &r,
            &Request::ReadComposite {
                paths: vec![p("/3/0/9"), p("/1/0/1")],
            },
            &o,
        )
        .unwrap();
        assert_eq!(
            (rc.code, rc.uri_path_string(), rc.content_format()),
            (Code::FETCH, "/".into(), Some(112))
        );
        assert_eq!(
            format::decode_paths(ContentFormat::SenmlCbor, &rc.payload).unwrap(),
            vec![p("/3/0/9"), p("/1/0/1")]
        );

        let wc = build_message(
            &r,
            &Request::WriteComposite {
                records: vec![Record::new(p("/3442/0/110"), Value::String("x".into()))],
            },
            &o.with_format(ContentFormat::SenmlJson),
        )
        .unwrap();
        assert_eq!((wc.code, wc.content_format()), (Code::IPATCH, Some(110)));
        assert_eq!(wc.payload, br#"[{"n":"/3442/0/110","vs":"x"}]"#.to_vec());
        assert!(matches!(
            build_message(
                &r,
                &Request::ReadComposite { paths: vec![p("/3")] },
                &o.with_format(ContentFormat::Tlv)
            ),
            Err(ServerError::InvalidRequest(_))
        ));
    }

    #[test]
    fn create_with_and_without_id() {
        let r = reg(Version::V1_1, "</3303>");
        let res = vec![ResourceNode::single(5700, Value::Float(21.5))];
        let with = Request::Create {
            object_id: 3303,
            instance_id: Some(4),
            resources: res.clone(),
        };
        let m = build_message(&r, &with, &RequestOptions::default()).unwrap();
        assert_eq!(
            (m.code, m.uri_path_string(), m.content_format()),
            (Code::POST, "/3303".into(), Some(112))
        );
        let models = ModelRegistry::builtin();
        let node = format::decode(ContentFormat::SenmlCbor, &p("/3303"), &m.payload, &models).unwrap();
        assert_eq!(
            node,
            Node::Object(ObjectNode::new(3303, [InstanceNode::new(4, res.clone())]))
        );

        let without = Request::Create {
            object_id: 3303,
            instance_id: None,
            resources: res.clone(),
        };
        let m = build_message(&r, &without, &RequestOptions::default()).unwrap();
        assert_eq!(m.content_format(), Some(11542));
        assert_eq!(m.payload[0] >> 6, 0b11, "a resource TLV, no instance wrapper");
        assert!(matches!(
            build_message(
                &r,
                &without,
                &RequestOptions::default().with_format(ContentFormat::SenmlJson)
            ),
            Err(ServerError::InvalidRequest(_))
        ));
    }

    #[test]
    fn alternate_path_prefixes_every_request() {
        let r = reg(Version::V1_1, r#"</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>"#);
        let o = RequestOptions::default();
        let m = build_message(&r, &Request::Read { path: p("/3/0/0") }, &o).unwrap();
        assert_eq!(m.uri_path(), vec!["lwm2m", "3", "0", "0"]);
        let m = build_message(&r, &Request::ReadComposite { paths: vec![p("/3/0")] }, &o).unwrap();
        assert_eq!(m.uri_path(), vec!["lwm2m"]);
        // A Create answer's location below the alternate path.
        let mut resp = Message::new(lwm2m_coap::MessageType::Ack, Code::CREATED);
        resp.set_location_path("/lwm2m/3303/7");
        let req = Request::Create {
            object_id: 3303,
            instance_id: None,
            resources: vec![],
        };
        let out = decode_response(&r, &lwm2m_core::model::NoModels, &req, &resp).unwrap();
        assert_eq!(out.location, Some(p("/3303/7")));
    }

    #[test]
    fn invalid_requests_name_the_problem() {
        let r = reg(Version::V1_1, "</3/0>");
        let o = RequestOptions::default();
        let cases = [
            Request::Read { path: Path::ROOT },
            Request::Discover { path: p("/3/0/7/0") },
            Request::Delete { path: p("/3") },
            Request::Execute {
                path: p("/3/0"),
                arguments: None,
            },
            Request::Execute {
                path: p("/3/0/4"),
                arguments: Some("x".into()),
            },
            Request::Write {
                path: p("/3/0/1"),
                mode: WriteMode::Replace,
                content: Node::Resource(ResourceNode::single(2, Value::Integer(1))),
            },
            Request::ReadComposite { paths: vec![] },
            Request::WriteComposite {
                records: vec![Record::new(p("/3/0"), Value::Integer(1))],
            },
        ];
        for c in cases {
            match build_message(&r, &c, &o) {
                Err(ServerError::InvalidRequest(why)) => assert!(!why.is_empty()),
                other => panic!("{c}: {other:?}"),
            }
        }
    }

    #[test]
    fn execute_argument_grammar() {
        for ok in [
            "",
            "5",
            "2='10.3'",
            "7,0=' '",
            "0,1,2,3,4",
            "7, 0='a'",
            "1='!#$%&()*+-./:;<=>?@[]^_`{|}~'",
        ] {
            assert_eq!(validate_execute_arguments(ok), Ok(()), "{ok:?}");
        }
        for bad in ["a", "1=x", "1='x", "1,1", "12", "1='\"'", "1='\\'", ",1", "1,", "1;2"] {
            assert!(validate_execute_arguments(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn responses_decode_with_the_registration_models() {
        let r = reg(Version::V1_1, "</3/0>");
        let models = ModelRegistry::builtin();
        let m = r.models(&models);
        let read = Request::Read { path: p("/3/0/9") };
        let msg = Message::new(lwm2m_coap::MessageType::Ack, Code::CONTENT)
            .with_content_format(0)
            .with_payload("87");
        let out = decode_response(&r, &m, &read, &msg).unwrap();
        assert_eq!(out.format, Some(ContentFormat::Text));
        assert_eq!(
            out.node(),
            Some(&Node::Resource(ResourceNode::single(9, Value::Integer(87))))
        );

        // SenML with a timestamp stays records.
        let msg = Message::new(lwm2m_coap::MessageType::Ack, Code::CONTENT)
            .with_content_format(110)
            .with_payload(r#"[{"bn":"/3/0/9","v":87,"t":1700000000}]"#);
        let out = decode_response(&r, &m, &read, &msg).unwrap();
        assert_eq!(out.records().map(|r| r.len()), Some(1));

        // Multiple resource via TLV.
        let read7 = Request::Read { path: p("/3/0/7") };
        let node = Node::Resource(ResourceNode::multiple(
            7,
            [(0, Value::Integer(3800)), (1, Value::Integer(5000))],
        ));
        let payload = format::encode(ContentFormat::Tlv, &p("/3/0/7"), &node).unwrap();
        let msg = Message::new(lwm2m_coap::MessageType::Ack, Code::CONTENT)
            .with_content_format(11542)
            .with_payload(payload);
        let out = decode_response(&r, &m, &read7, &msg).unwrap();
        assert!(
            matches!(out.node(), Some(Node::Resource(ResourceNode { value: ResourceValue::Multiple(v), .. })) if v.len() == 2)
        );

        // Errors: an unknown format, a malformed payload, an error response.
        let msg = Message::new(lwm2m_coap::MessageType::Ack, Code::CONTENT)
            .with_content_format(9999)
            .with_payload("x");
        assert_eq!(
            decode_response(&r, &m, &read, &msg),
            Err(ServerError::UnknownContentFormat(9999))
        );
        let msg = Message::new(lwm2m_coap::MessageType::Ack, Code::CONTENT)
            .with_content_format(11542)
            .with_payload(vec![0xff]);
        assert!(matches!(
            decode_response(&r, &m, &read, &msg),
            Err(ServerError::Decode {
                format: ContentFormat::Tlv,
                ..
            })
        ));
        let msg = Message::new(lwm2m_coap::MessageType::Ack, Code::NOT_FOUND).with_payload("no such object");
        let out = decode_response(&r, &m, &read, &msg).unwrap();
        assert_eq!(
            (out.code, out.diagnostic.as_deref(), out.content),
            (Code::NOT_FOUND, Some("no such object"), None)
        );

        // Discover.
        let disc = Request::Discover { path: p("/3/0") };
        let msg = Message::new(lwm2m_coap::MessageType::Ack, Code::CONTENT)
            .with_content_format(40)
            .with_payload("</3/0>;pmin=10,</3/0/7>;dim=2");
        match decode_response(&r, &m, &disc, &msg).unwrap().content {
            Some(Content::Links { raw, links }) => {
                assert_eq!(raw, "</3/0>;pmin=10,</3/0/7>;dim=2");
                assert_eq!(links.len(), 2);
                assert_eq!(links[0].1.pmin, Some(10));
                assert_eq!(links[1].1.dim, Some(2));
            }
            other => panic!("{other:?}"),
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn any_path() -> impl Strategy<Value = Path> {
            prop::collection::vec(0u16..4000, 1..=4).prop_map(|ids| Path::from_ids(&ids).unwrap_or(Path::object(3)))
        }

        fn any_request() -> impl Strategy<Value = Request> {
            prop_oneof![
                any_path().prop_map(|path| Request::Read { path }),
                any_path().prop_map(|path| Request::Discover { path }),
                any_path().prop_map(|path| Request::Observe { path }),
                prop::collection::vec(any_path(), 1..4).prop_map(|paths| Request::ReadComposite { paths }),
                prop::collection::vec(any_path(), 1..4).prop_map(|paths| Request::ObserveComposite { paths }),
                any::<u16>().prop_map(|o| Request::Create {
                    object_id: o,
                    instance_id: None,
                    resources: vec![]
                }),
            ]
        }

        proptest! {
            /// Whatever a client answers, decoding gives a response or a typed error, never a panic.
            #[test]
            fn decoding_any_answer_never_panics(
                request in any_request(),
                cf in prop_oneof![Just(None), (0u16..12000).prop_map(Some), prop::sample::select(vec![0u16, 40, 42, 60, 110, 112, 11542, 11543]).prop_map(Some)],
                code in prop::sample::select(vec![Code::CONTENT, Code::CREATED, Code::CHANGED, Code::NOT_FOUND]),
                payload in prop::collection::vec(any::<u8>(), 0..64),
                location in prop::collection::vec("[a-z0-9]{0,6}", 0..4),
            ) {
                let r = reg(Version::V1_1, "</3/0>,</3442/0>");
                let models = ModelRegistry::builtin();
                let m = r.models(&models);
                let mut msg = Message::new(lwm2m_coap::MessageType::Ack, code).with_payload(payload);
                if let Some(cf) = cf {
                    msg.set_content_format(cf);
                }
                msg.set_location_path(&location.join("/"));
                let _ = decode_response(&r, &m, &request, &msg);
            }

            /// Every request the typed API accepts becomes a CoAP message (or a typed refusal).
            #[test]
            fn building_never_panics(request in any_request(), f in prop::sample::select(ContentFormat::ALL.to_vec())) {
                let r = reg(Version::V1_0, "</3/0>");
                let _ = build_message(&r, &request, &RequestOptions::default());
                let _ = build_message(&r, &request, &RequestOptions::default().with_format(f));
            }

            /// Arguments built from the grammar validate; arbitrary text never panics the validator.
            #[test]
            fn execute_arguments(
                args in prop::collection::btree_map(0u8..10, prop::option::of("[a-zA-Z0-9 .!#-]{0,8}"), 0..10),
                junk in ".{0,20}",
            ) {
                let text: Vec<String> = args
                    .iter()
                    .map(|(id, v)| match v {
                        Some(v) => format!("{id}='{v}'"),
                        None => id.to_string(),
                    })
                    .collect();
                prop_assert_eq!(validate_execute_arguments(&text.join(",")), Ok(()));
                let _ = validate_execute_arguments(&junk);
            }
        }
    }
}
