//! CoRE link format (40), RFC 6690, digest §8.8.
//!
//! * [`parse`] / [`write`]: the generic codec (`</3/0>;rt="x";ct="60 110",</4>`).
//! * [`parse_registration`] / [`write_registration`]: the Register/Update payload (digest §4.1, §4.2).
//! * [`parse_discover`] / [`write_discover`]: Discover output (digest §5.2).
//! * [`parse_bootstrap_discover`] / [`write_bootstrap_discover`]: Bootstrap-Discover output, 1.1 form
//!   and the legacy 1.0 form (digest §3.7).
//!
//! Grammar accepted by [`parse`] (RFC 6690, with the leniency of digest §8.8):
//!
//! ```text
//! payload = [ link *( "," OWS link ) ]            ; surrounding whitespace is ignored
//! link    = "<" target ">" *( OWS ";" OWS param ) OWS
//! param   = parmname [ "=" ( ptoken / quoted-string ) ]
//! ```
//!
//! `target` is any text without `<`, `>`, `"`, spaces or control characters. `parmname` is RFC 5987
//! `parmname` (plus `*`). `ptoken` is printable ASCII without `"`, `,`, `;`, `\` and space.
//! Quoted strings may hold any character; `\x` stands for `x`. Values are returned unquoted and
//! unescaped.

use std::collections::BTreeMap;

use crate::attributes::{AttributeError, Attributes};
use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::model::{default_version, Version};
use crate::path::Path;

const FMT: ContentFormat = ContentFormat::Link;

/// The `rt` value that marks the LwM2M root link in a registration payload.
pub const LWM2M_RESOURCE_TYPE: &str = "oma.lwm2m";

/// Parameters whose values are always written as quoted strings (RFC 6690 and LwM2M practice).
const ALWAYS_QUOTED: [&str; 5] = ["rt", "if", "uri", "title", "anchor"];

/// One link: `<target>;name=value;...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Link {
    /// The URI reference between `<` and `>`, verbatim.
    pub target: String,
    /// The link parameters, in payload order.
    pub params: Vec<LinkParam>,
}

/// One link parameter. `value` is `None` for a bare `;name`, and unquoted and unescaped otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkParam {
    pub name: String,
    pub value: Option<String>,
}

impl LinkParam {
    /// `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> LinkParam {
        LinkParam {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A bare `name` without a value.
    pub fn flag(name: impl Into<String>) -> LinkParam {
        LinkParam {
            name: name.into(),
            value: None,
        }
    }
}

impl Link {
    /// A link without parameters.
    pub fn new(target: impl Into<String>) -> Link {
        Link {
            target: target.into(),
            params: Vec::new(),
        }
    }

    /// Adds `name=value` (builder style).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Link {
        self.params.push(LinkParam::new(name, value));
        self
    }

    /// The first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&LinkParam> {
        self.params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of the first parameter called `name` (case-insensitive), if it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.param(name).and_then(|p| p.value.as_deref())
    }
}

// ---------------------------------------------------------------------------------------------
// Generic codec
// ---------------------------------------------------------------------------------------------

/// A parsed link with the byte offsets of the link and of each parameter (for error reports).
#[derive(Debug)]
struct Spanned {
    link: Link,
    offset: usize,
    param_offsets: Vec<usize>,
}

impl Spanned {
    fn param_offset(&self, index: usize) -> usize {
        self.param_offsets.get(index).copied().unwrap_or(self.offset)
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 6690 `ptokenchar`.
fn is_ptoken_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b',' | b';' | b'\\')
}

/// RFC 5987 `parmname` characters, plus `*` (for `title*`).
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~' | b'*'
        )
}

/// Bytes that cannot appear in a link target (written percent-encoded by [`write`]).
fn is_bad_target_byte(b: u8) -> bool {
    b.is_ascii_control() || matches!(b, b' ' | b'<' | b'>' | b'"')
}

fn err(offset: usize, reason: impl Into<String>) -> FormatError {
    FormatError::malformed(FMT, Some(offset), reason)
}

fn to_str(payload: &[u8]) -> Result<&str, FormatError> {
    std::str::from_utf8(payload).map_err(|e| err(e.valid_up_to(), "payload is not valid UTF-8"))
}

/// The character at byte `pos`, for error messages.
fn char_at(text: &str, pos: usize) -> String {
    text.get(pos..)
        .and_then(|s| s.chars().next())
        .map_or_else(|| "end of payload".to_string(), |c| format!("{c:?}"))
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Advances over bytes matching `f` and returns them.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // The callers' predicates match ASCII bytes only, so this is a char boundary; `get` keeps
        // it panic-free regardless.
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// A link target: `<` already seen at `open`.
    fn target(&mut self, open: usize) -> Result<String, FormatError> {
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(err(open, "unterminated '<': the link target has no closing '>'")),
                Some(b'>') => break,
                Some(b) if is_bad_target_byte(b) => {
                    return Err(err(
                        self.pos,
                        format!("{} is not allowed in a link target", char_at(self.text, self.pos)),
                    ))
                }
                Some(_) => self.pos += 1,
            }
        }
        let target = self.text.get(start..self.pos).unwrap_or("").to_string();
        self.pos += 1;
        Ok(target)
    }

    /// A quoted string; the opening `"` is at `self.pos`.
    fn quoted(&mut self) -> Result<String, FormatError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = self.text.get(self.pos..).unwrap_or("");
            let mut chars = rest.chars();
            match chars.next() {
                None => return Err(err(open, "unterminated quoted string (no closing '\"')")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => match chars.next() {
                    None => return Err(err(open, "unterminated quoted string (ends with '\\')")),
                    Some(c) => {
                        out.push(c);
                        self.pos += 1 + c.len_utf8();
                    }
                },
                Some(c) => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// A parameter value after `=`: quoted string or ptoken.
    fn value(&mut self, name: &str) -> Result<String, FormatError> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let v = self.take_while(is_ptoken_char);
        if v.is_empty() {
            return Err(err(
                self.pos,
                format!(
                    "parameter {name:?}: expected a value after '=', found {}",
                    char_at(self.text, self.pos)
                ),
            ));
        }
        Ok(v.to_string())
    }
}

/// Parses links from byte `start` of `text` to the end.
fn parse_spanned(text: &str, start: usize) -> Result<Vec<Spanned>, FormatError> {
    let mut c = Cursor { text, pos: start };
    let mut links = Vec::new();
    c.skip_ws();
    if c.peek().is_none() {
        return Ok(links);
    }
    loop {
        let offset = c.pos;
        if c.peek() != Some(b'<') {
            return Err(err(
                offset,
                format!("expected '<' to start a link, found {}", char_at(text, offset)),
            ));
        }
        c.pos += 1;
        let target = c.target(offset)?;
        let mut link = Spanned {
            link: Link::new(target),
            offset,
            param_offsets: Vec::new(),
        };
        loop {
            c.skip_ws();
            match c.peek() {
                None => {
                    links.push(link);
                    return Ok(links);
                }
                Some(b',') => {
                    c.pos += 1;
                    c.skip_ws();
                    links.push(link);
                    break;
                }
                Some(b';') => {
                    c.pos += 1;
                    c.skip_ws();
                    let at = c.pos;
                    let name = c.take_while(is_name_char);
                    if name.is_empty() {
                        return Err(err(
                            at,
                            format!("expected a parameter name after ';', found {}", char_at(text, at)),
                        ));
                    }
                    let value = if c.peek() == Some(b'=') {
                        c.pos += 1;
                        Some(c.value(name)?)
                    } else {
                        None
                    };
                    link.link.params.push(LinkParam {
                        name: name.to_string(),
                        value,
                    });
                    link.param_offsets.push(at);
                }
                Some(_) => {
                    return Err(err(
                        c.pos,
                        format!(
                            "unexpected {} after link <{}>: expected ';', ',' or the end",
                            char_at(text, c.pos),
                            link.link.target
                        ),
                    ))
                }
            }
        }
    }
}

/// Parses a CoRE link-format payload. An empty (or all-whitespace) payload gives no links.
///
/// Errors are [`FormatError::Malformed`] with the byte offset of the problem: non-UTF-8 input, a
/// missing `<`, an unterminated `<` or quoted string, an empty parameter name or value, and
/// anything between links other than `,` and whitespace.
pub fn parse(payload: &[u8]) -> Result<Vec<Link>, FormatError> {
    let text = to_str(payload)?;
    Ok(parse_spanned(text, 0)?.into_iter().map(|s| s.link).collect())
}

fn needs_quotes(name: &str, value: &str) -> bool {
    ALWAYS_QUOTED.iter().any(|n| n.eq_ignore_ascii_case(name)) || value.is_empty() || !value.bytes().all(is_ptoken_char)
}

fn write_link(out: &mut String, link: &Link) {
    out.push('<');
    for c in link.target.chars() {
        match u8::try_from(c) {
            Ok(b) if is_bad_target_byte(b) => out.push_str(&format!("%{b:02X}")),
            _ => out.push(c),
        }
    }
    out.push('>');
    for p in &link.params {
        out.push(';');
        out.push_str(&p.name);
        if let Some(v) = &p.value {
            out.push('=');
            if needs_quotes(&p.name, v) {
                out.push('"');
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            } else {
                out.push_str(v);
            }
        }
    }
}

/// Serialises links, separated by `,` without spaces.
///
/// Values are quoted when they must be: always for `rt`, `if`, `uri`, `title` and `anchor`, and
/// for any value that is empty or not a plain token (so a multi-valued `ct="60 110"` is quoted and
/// `ver=1.1`, `lwm2m=1.1`, `ssid=101`, `dim=8`, `pmin=10` are not). Inside quotes `"` and `\` are
/// escaped. Characters a target cannot hold (`<`, `>`, `"`, space, controls) are percent-encoded.
/// Parameter names are written verbatim and must be RFC 5987 `parmname`s.
pub fn write(links: &[Link]) -> String {
    let mut out = String::new();
    for (i, l) in links.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_link(&mut out, l);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Shared helpers for the LwM2M payloads
// ---------------------------------------------------------------------------------------------

/// Normalises an alternate path: leading `/`, no trailing `/`; `None` for the root.
fn normalize_alternate(path: &str) -> Option<String> {
    let t = path.trim_matches('/');
    if t.is_empty() {
        None
    } else {
        Some(format!("/{t}"))
    }
}

/// Strips the alternate-path prefix from a target; `None` when the target is not under it.
fn strip_alternate<'t>(target: &'t str, prefix: Option<&str>) -> Option<&'t str> {
    match prefix {
        None => Some(target),
        Some(p) => {
            let rest = target.strip_prefix(p)?;
            if rest.is_empty() {
                Some("/")
            } else if rest.starts_with('/') {
                Some(rest)
            } else {
                None
            }
        }
    }
}

/// `prefix` + `path` as a link target (`/lwm2m/3/0`, or `/lwm2m` for the root).
fn target_of(prefix: Option<&str>, path: &Path) -> String {
    match prefix {
        None => path.to_string(),
        Some(p) if path.is_root() => p.to_string(),
        Some(p) => format!("{p}{path}"),
    }
}

fn attr_err(s: &Spanned, index: usize, e: AttributeError) -> FormatError {
    err(s.param_offset(index), format!("link <{}>: {e}", s.link.target))
}

/// Parses a `ver` or `lwm2m` version value (quoted `"1.1"` was unquoted by the parser already).
fn version_param(s: &Spanned, index: usize, p: &LinkParam) -> Result<Version, FormatError> {
    let v = p.value.as_deref().ok_or_else(|| {
        err(
            s.param_offset(index),
            format!("link <{}>: parameter {} needs a value", s.link.target, p.name),
        )
    })?;
    v.parse().map_err(|_| {
        err(
            s.param_offset(index),
            format!(
                "link <{}>: {}={v:?} is not a version MAJOR.MINOR",
                s.link.target, p.name
            ),
        )
    })
}

/// Whether `ver` must be written on an object link: a version other than the LwM2M 1.1.1 default.
fn non_default(object_id: u16, version: Option<Version>) -> Option<Version> {
    version.filter(|v| *v != default_version(object_id))
}

// ---------------------------------------------------------------------------------------------
// Registration payload (Register / Update)
// ---------------------------------------------------------------------------------------------

/// The object list of a Register or Update request (digest §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrationLinks {
    /// The alternate path, e.g. `/lwm2m` (always with a leading `/` and no trailing `/`); `None`
    /// means the objects are at `/`.
    pub alternate_path: Option<String>,
    /// The `ct` content formats announced on the root link.
    pub content_formats: Vec<u16>,
    /// The objects, in payload order, each with its instances.
    pub objects: Vec<ObjectLink>,
}

/// One object of a registration payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectLink {
    pub object_id: u16,
    /// The `ver` announced on the object link; `None` means the default version (§1.4).
    pub version: Option<Version>,
    /// The instances, in payload order, without duplicates.
    pub instances: Vec<u16>,
}

impl ObjectLink {
    /// The announced version, or the LwM2M 1.1.1 default for this object.
    pub fn version_or_default(&self) -> Version {
        self.version.unwrap_or_else(|| default_version(self.object_id))
    }
}

impl RegistrationLinks {
    /// The object with this id, if listed.
    pub fn object(&self, object_id: u16) -> Option<&ObjectLink> {
        self.objects.iter().find(|o| o.object_id == object_id)
    }

    /// The root path the server prefixes its requests with: the alternate path or `/`.
    pub fn root_path(&self) -> &str {
        self.alternate_path.as_deref().unwrap_or("/")
    }
}

fn is_root_link(l: &Link) -> bool {
    l.params.iter().any(|p| {
        p.name.eq_ignore_ascii_case("rt")
            && p.value
                .as_deref()
                .is_some_and(|v| v.split_whitespace().any(|t| t == LWM2M_RESOURCE_TYPE))
    })
}

/// Parses a Register/Update payload.
///
/// * The root link is the first link with `rt="oma.lwm2m"` (or else a plain `</>` link); its target
///   is the alternate path and its `ct` the content formats (`ct=110` or `ct="60 110"`). An alternate
///   path with a numeric segment is rejected.
/// * Other links are taken relative to the alternate path: `</oid>` (with optional `ver`, quoted
///   or not) and `</oid/iid>`.
/// * Links the server cannot interpret are ignored, as servers MUST ignore what they do not know:
///   targets outside the alternate path or that are not object/instance paths, resource-level
///   links, reserved instance 65535, and links of Objects 0 (Security) and 21 (OSCORE), which a
///   client must never list. Unknown parameters are ignored too.
/// * A malformed value of a known parameter (`ver=abc`, `ct=x`) is an error.
pub fn parse_registration(payload: &[u8]) -> Result<RegistrationLinks, FormatError> {
    let text = to_str(payload)?;
    let links = parse_spanned(text, 0)?;
    let mut out = RegistrationLinks::default();

    let root = links
        .iter()
        .position(|s| is_root_link(&s.link))
        .or_else(|| links.iter().position(|s| s.link.target == "/"));
    if let Some(r) = root.and_then(|r| links.get(r)) {
        out.alternate_path = normalize_alternate(&r.link.target);
        if let Some(alt) = &out.alternate_path {
            if alt
                .split('/')
                .any(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(err(
                    r.offset,
                    format!("alternate path {alt:?} must not contain numeric segments"),
                ));
            }
        }
        for (i, p) in r.link.params.iter().enumerate() {
            if !p.name.eq_ignore_ascii_case("ct") {
                continue;
            }
            let v = p.value.as_deref().unwrap_or("");
            let mut any = false;
            for t in v.split_whitespace() {
                any = true;
                let code = t.parse::<u16>().map_err(|_| {
                    err(
                        r.param_offset(i),
                        format!("ct: {t:?} is not a content-format number (0..65535)"),
                    )
                })?;
                if !out.content_formats.contains(&code) {
                    out.content_formats.push(code);
                }
            }
            if !any {
                return Err(err(r.param_offset(i), "ct needs at least one content-format number"));
            }
        }
    }

    let prefix = out.alternate_path.clone();
    let mut index: BTreeMap<u16, usize> = BTreeMap::new();
    for (li, s) in links.iter().enumerate() {
        if Some(li) == root {
            continue;
        }
        let Some(rel) = strip_alternate(&s.link.target, prefix.as_deref()) else {
            continue;
        };
        let Ok(path) = Path::parse(rel) else {
            continue;
        };
        let Some(oid) = path.object_id() else {
            continue;
        };
        if oid == 0 || oid == 21 || path.len() > 2 {
            continue;
        }
        let version = if path.is_object() {
            match s
                .link
                .params
                .iter()
                .enumerate()
                .find(|(_, p)| p.name.eq_ignore_ascii_case("ver"))
            {
                Some((i, p)) => Some(version_param(s, i, p)?),
                None => None,
            }
        } else {
            None
        };
        let pos = *index.entry(oid).or_insert_with(|| {
            out.objects.push(ObjectLink {
                object_id: oid,
                version: None,
                instances: Vec::new(),
            });
            out.objects.len() - 1
        });
        let Some(obj) = out.objects.get_mut(pos) else {
            continue;
        };
        if obj.version.is_none() {
            obj.version = version;
        }
        if let Some(iid) = path.instance_id() {
            if !obj.instances.contains(&iid) {
                obj.instances.push(iid);
            }
        }
    }
    Ok(out)
}

/// Writes a Register/Update payload.
///
/// The root link (`</>;rt="oma.lwm2m"` or `</lwm2m>;rt="oma.lwm2m"`) is written when there is an
/// alternate path or content formats; `ct` is unquoted for one format and a quoted, space-separated
/// list for several. An object link `</oid>` is written when the object has no instances or a
/// version other than its default (then with `;ver=X.Y`); instance links follow. Objects 0 and 21
/// are never listed.
pub fn write_registration(reg: &RegistrationLinks) -> String {
    let prefix = reg.alternate_path.as_deref().and_then(normalize_alternate);
    let mut links = Vec::new();
    if prefix.is_some() || !reg.content_formats.is_empty() {
        let mut root = Link::new(prefix.clone().unwrap_or_else(|| "/".into())).with("rt", LWM2M_RESOURCE_TYPE);
        if !reg.content_formats.is_empty() {
            let cts: Vec<String> = reg.content_formats.iter().map(|c| c.to_string()).collect();
            root = root.with("ct", cts.join(" "));
        }
        links.push(root);
    }
    for o in &reg.objects {
        if o.object_id == 0 || o.object_id == 21 {
            continue;
        }
        let ver = non_default(o.object_id, o.version);
        if o.instances.is_empty() || ver.is_some() {
            let mut l = Link::new(target_of(prefix.as_deref(), &Path::object(o.object_id)));
            if let Some(v) = ver {
                l = l.with("ver", v.to_string());
            }
            links.push(l);
        }
        for &iid in &o.instances {
            links.push(Link::new(target_of(
                prefix.as_deref(),
                &Path::instance(o.object_id, iid),
            )));
        }
    }
    write(&links)
}

// ---------------------------------------------------------------------------------------------
// Discover
// ---------------------------------------------------------------------------------------------

/// Writes Discover output: one link per entry, in the given order, with the entry's attributes
/// rendered by [`Attributes::to_link_params`] (`</3/0/7>;dim=8;pmin=10;pmax=60;gt=50;lt=42.2`).
///
/// `ver` is written only on object links and only when it differs from the object's default
/// version (§1.4). Targets are prefixed with `alternate_path` when given.
pub fn write_discover(alternate_path: Option<&str>, entries: &[(Path, Attributes)]) -> String {
    let prefix = alternate_path.and_then(normalize_alternate);
    let links: Vec<Link> = entries
        .iter()
        .map(|(path, attrs)| {
            let mut a = *attrs;
            a.ver = match path.object_id() {
                Some(oid) if path.is_object() => non_default(oid, a.ver),
                _ => None,
            };
            Link {
                target: target_of(prefix.as_deref(), path),
                params: a.to_link_params(),
            }
        })
        .collect();
    write(&links)
}

/// Parses Discover output back into `(path, attributes)` entries, in payload order.
///
/// Targets are stripped of `alternate_path` when they carry it (targets without it are read as
/// plain paths). A target that is not an LwM2M path is [`FormatError::InvalidPath`]; a malformed
/// attribute value is [`FormatError::Malformed`] at the parameter's offset. Unknown parameters are
/// ignored.
pub fn parse_discover(alternate_path: Option<&str>, payload: &[u8]) -> Result<Vec<(Path, Attributes)>, FormatError> {
    let text = to_str(payload)?;
    let prefix = alternate_path.and_then(normalize_alternate);
    let mut out = Vec::new();
    for s in parse_spanned(text, 0)? {
        let target = strip_alternate(&s.link.target, prefix.as_deref()).unwrap_or(&s.link.target);
        let path = Path::parse(target).map_err(|source| FormatError::InvalidPath {
            format: FMT,
            text: s.link.target.clone(),
            source,
        })?;
        let mut attrs = Attributes::default();
        for (i, p) in s.link.params.iter().enumerate() {
            attrs.apply_link_param(p).map_err(|e| attr_err(&s, i, e))?;
        }
        out.push((path, attrs));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Bootstrap-Discover
// ---------------------------------------------------------------------------------------------

/// Bootstrap-Discover output (digest §3.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootstrapDiscover {
    /// The enabler version (`</>;lwm2m=1.1`, or the legacy leading `lwm2m="1.0"`).
    pub lwm2m_version: Option<Version>,
    /// Every object and instance link except the root link, in payload order.
    pub entries: Vec<BootstrapDiscoverEntry>,
}

/// One object or instance link of Bootstrap-Discover output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapDiscoverEntry {
    pub path: Path,
    /// Short Server ID (on Security, Server and OSCORE instances of LwM2M Server accounts).
    pub ssid: Option<u16>,
    /// Server URI (on Security and OSCORE instances, new in 1.1).
    pub uri: Option<String>,
    /// Object version (on object links).
    pub version: Option<Version>,
}

impl BootstrapDiscoverEntry {
    /// An entry without parameters.
    pub fn new(path: Path) -> BootstrapDiscoverEntry {
        BootstrapDiscoverEntry {
            path,
            ssid: None,
            uri: None,
            version: None,
        }
    }
}

/// Writes Bootstrap-Discover output in the 1.1 form:
/// `</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://...",</1/0>;ssid=101,</3303>;ver=1.1,...`.
///
/// The root link is written when `lwm2m_version` is set. Parameters are written in the order
/// `ver`, `ssid`, `uri`; `ver` only on object links and only when it differs from the default.
pub fn write_bootstrap_discover(d: &BootstrapDiscover) -> String {
    let mut links = Vec::new();
    if let Some(v) = d.lwm2m_version {
        links.push(Link::new("/").with("lwm2m", v.to_string()));
    }
    for e in &d.entries {
        let mut l = Link::new(e.path.to_string());
        if let Some(oid) = e.path.object_id().filter(|_| e.path.is_object()) {
            if let Some(v) = non_default(oid, e.version) {
                l = l.with("ver", v.to_string());
            }
        }
        if let Some(ssid) = e.ssid {
            l = l.with("ssid", ssid.to_string());
        }
        if let Some(uri) = &e.uri {
            l = l.with("uri", uri.clone());
        }
        links.push(l);
    }
    write(&links)
}

/// Parses Bootstrap-Discover output, in the 1.1 form (`</>;lwm2m=1.1,...`) or the legacy form
/// (`lwm2m="1.0",</0/0>;ssid=101,...`: a bare `lwm2m` parameter before the first link, which the
/// 1.1.1 TS says servers MAY accept).
///
/// Every link other than the root `</>` becomes an entry; a target that is not an LwM2M path is
/// [`FormatError::InvalidPath`]. `ssid` must be a number 0..65535, `ver`/`lwm2m` a version;
/// unknown parameters are ignored.
pub fn parse_bootstrap_discover(payload: &[u8]) -> Result<BootstrapDiscover, FormatError> {
    let text = to_str(payload)?;
    let mut out = BootstrapDiscover::default();
    let mut c = Cursor { text, pos: 0 };
    c.skip_ws();
    let legacy = text
        .get(c.pos..c.pos + 5)
        .is_some_and(|s| s.eq_ignore_ascii_case("lwm2m"))
        && text.as_bytes().get(c.pos + 5) == Some(&b'=');
    if legacy {
        let at = c.pos;
        c.pos += 6;
        let v = c.value("lwm2m")?;
        out.lwm2m_version = Some(
            v.parse()
                .map_err(|_| err(at, format!("lwm2m={v:?} is not a version MAJOR.MINOR")))?,
        );
        c.skip_ws();
        match c.peek() {
            None => return Ok(out),
            Some(b',') => c.pos += 1,
            Some(_) => {
                return Err(err(
                    c.pos,
                    format!(
                        "unexpected {} after the legacy lwm2m parameter: expected ','",
                        char_at(text, c.pos)
                    ),
                ))
            }
        }
        c.skip_ws();
        if c.peek().is_none() {
            return Err(err(c.pos, "expected '<' to start a link, found end of payload"));
        }
    }
    for s in parse_spanned(text, c.pos)? {
        let path = Path::parse(&s.link.target).map_err(|source| FormatError::InvalidPath {
            format: FMT,
            text: s.link.target.clone(),
            source,
        })?;
        if path.is_root() {
            for (i, p) in s.link.params.iter().enumerate() {
                if p.name.eq_ignore_ascii_case("lwm2m") {
                    out.lwm2m_version = Some(version_param(&s, i, p)?);
                }
            }
            continue;
        }
        let mut e = BootstrapDiscoverEntry::new(path);
        for (i, p) in s.link.params.iter().enumerate() {
            let missing = || {
                err(
                    s.param_offset(i),
                    format!("link <{}>: parameter {} needs a value", s.link.target, p.name),
                )
            };
            if p.name.eq_ignore_ascii_case("ssid") {
                let v = p.value.as_deref().ok_or_else(missing)?;
                let ssid = if v.bytes().all(|b| b.is_ascii_digit()) {
                    v.parse::<u16>().ok()
                } else {
                    None
                };
                e.ssid = Some(ssid.ok_or_else(|| {
                    err(
                        s.param_offset(i),
                        format!("link <{}>: ssid={v:?} is not a number 0..65535", s.link.target),
                    )
                })?);
            } else if p.name.eq_ignore_ascii_case("uri") {
                e.uri = Some(p.value.clone().ok_or_else(missing)?);
            } else if p.name.eq_ignore_ascii_case("ver") {
                e.version = Some(version_param(&s, i, p)?);
            }
        }
        out.entries.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn links(s: &str) -> Vec<Link> {
        parse(s.as_bytes()).unwrap()
    }

    fn offset_of(e: FormatError) -> Option<usize> {
        match e {
            FormatError::Malformed { offset, .. } => offset,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn parse_err(s: &[u8]) -> Option<usize> {
        offset_of(parse(s).unwrap_err())
    }

    // ---- generic codec ----------------------------------------------------------------------

    #[test]
    fn empty_payload_is_no_links() {
        assert_eq!(links(""), vec![]);
        assert_eq!(links(" \r\n\t"), vec![]);
        assert_eq!(write(&[]), "");
    }

    #[test]
    fn parses_quoted_and_unquoted_values() {
        let l = links("</>;rt=\"oma.lwm2m\";ct=\"60 110\",</3>;ver=1.2;obs,</4>;ver=\"1.1\"");
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].target, "/");
        assert_eq!(
            l[0].params,
            vec![LinkParam::new("rt", "oma.lwm2m"), LinkParam::new("ct", "60 110")]
        );
        assert_eq!(l[1].params, vec![LinkParam::new("ver", "1.2"), LinkParam::flag("obs")]);
        assert_eq!(l[2].value("VER"), Some("1.1"));
        assert_eq!(l[1].value("obs"), None);
        assert!(l[1].param("obs").is_some());
    }

    #[test]
    fn quoted_strings_hold_commas_semicolons_and_escapes() {
        let l = links(r#"</1>;title="a, b; c";x="say \"hi\" \\ ok",</2>;y="</3>,<4>""#);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].value("title"), Some("a, b; c"));
        assert_eq!(l[0].value("x"), Some(r#"say "hi" \ ok"#));
        assert_eq!(l[1].value("y"), Some("</3>,<4>"));
        // Written back with the same quoting and escapes.
        assert_eq!(
            write(&l),
            r#"</1>;title="a, b; c";x="say \"hi\" \\ ok",</2>;y="</3>,<4>""#
        );
    }

    #[test]
    fn accepts_whitespace_after_commas_and_around_semicolons() {
        let l = links(" </1/0>, </3/0> ;ver=1.1 ,\n\t</4>\n");
        let targets: Vec<&str> = l.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, ["/1/0", "/3/0", "/4"]);
        assert_eq!(l[1].value("ver"), Some("1.1"));
        assert_eq!(write(&l), "</1/0>,</3/0>;ver=1.1,</4>");
    }

    #[test]
    fn writer_quotes_only_what_needs_it() {
        let l = vec![
            Link::new("/")
                .with("rt", "oma.lwm2m")
                .with("ct", "110")
                .with("lwm2m", "1.1"),
            Link::new("/0/0").with("ssid", "101").with("uri", "coaps://a:5684"),
            Link::new("/1")
                .with("ct", "60 110")
                .with("empty", "")
                .with("gt", "-5.5"),
            Link::new("/2").with("if", "core.b").with("x", "a\"b"),
        ];
        assert_eq!(
            write(&l),
            r#"</>;rt="oma.lwm2m";ct=110;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://a:5684",</1>;ct="60 110";empty="";gt=-5.5,</2>;if="core.b";x="a\"b""#
        );
        assert_eq!(parse(write(&l).as_bytes()).unwrap(), l);
    }

    #[test]
    fn writer_percent_encodes_impossible_target_characters() {
        let l = vec![Link::new("/a b>c\"<")];
        assert_eq!(write(&l), "</a%20b%3Ec%22%3C>");
    }

    #[test]
    fn error_offsets() {
        // unterminated '<' is reported at the '<'
        assert_eq!(parse_err(b"</1>,</2"), Some(5));
        // unterminated quoted string at the opening quote
        assert_eq!(parse_err(b"</1>;rt=\"abc"), Some(8));
        assert_eq!(parse_err(b"</1>;rt=\"abc\\"), Some(8));
        // garbage between links
        assert_eq!(parse_err(b"</1>x,</2>"), Some(4));
        assert_eq!(parse_err(b"</1> </2>"), Some(5));
        assert_eq!(parse_err(b"</1>,,</2>"), Some(5));
        assert_eq!(parse_err(b"</1>;a=1 b,</2>"), Some(9));
        assert_eq!(parse_err(b"</1>;a=\"x\"y"), Some(10));
        // trailing comma
        assert_eq!(parse_err(b"</1>,"), Some(5));
        assert_eq!(parse_err(b"</1>, "), Some(6));
        // no '<'
        assert_eq!(parse_err(b"/1"), Some(0));
        assert_eq!(parse_err(b"  x"), Some(2));
        // empty parameter name / value
        assert_eq!(parse_err(b"</1>;=5"), Some(5));
        assert_eq!(parse_err(b"</1>;"), Some(5));
        assert_eq!(parse_err(b"</1>;a="), Some(7));
        assert_eq!(parse_err(b"</1>;a=,</2>"), Some(7));
        // characters a target cannot hold
        assert_eq!(parse_err(b"< /1>"), Some(1));
        assert_eq!(parse_err(b"</1<2>"), Some(3));
        // a raw '"' or '\' inside an unquoted value
        assert_eq!(parse_err(b"</1>;a=b\"c\""), Some(8));
        // non-UTF-8 at the first bad byte
        assert_eq!(parse_err(b"</1>,<\xff>"), Some(6));
        let msg = parse(b"</1>;rt=\"abc").unwrap_err().to_string();
        assert!(msg.contains("unterminated quoted string"), "{msg}");
        assert!(msg.contains("byte 8"), "{msg}");
        assert_eq!(parse(b"</1").unwrap_err().format(), ContentFormat::Link);
    }

    // ---- registration -----------------------------------------------------------------------

    const REGISTER_EXAMPLE: &str =
        "</>;rt=\"oma.lwm2m\";ct=\"110 112\",</1/0>,</3/0>,</4/0>,</5>,</3303>;ver=1.1,</3303/0>,</3303/1>";

    fn obj(object_id: u16, version: Option<Version>, instances: &[u16]) -> ObjectLink {
        ObjectLink {
            object_id,
            version,
            instances: instances.to_vec(),
        }
    }

    #[test]
    fn registration_example_round_trips() {
        let r = parse_registration(REGISTER_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            r,
            RegistrationLinks {
                alternate_path: None,
                content_formats: vec![110, 112],
                objects: vec![
                    obj(1, None, &[0]),
                    obj(3, None, &[0]),
                    obj(4, None, &[0]),
                    obj(5, None, &[]),
                    obj(3303, Some(Version::V1_1), &[0, 1]),
                ],
            }
        );
        assert_eq!(r.root_path(), "/");
        assert_eq!(r.object(4).unwrap().version_or_default(), Version::V1_2);
        assert_eq!(r.object(3303).unwrap().version_or_default(), Version::V1_1);
        assert_eq!(write_registration(&r), REGISTER_EXAMPLE);
    }

    #[test]
    fn registration_alternate_path() {
        let p = "</lwm2m>;rt=\"oma.lwm2m\",</lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/5>,</4/0>,</lwm2mx/6/0>";
        let r = parse_registration(p.as_bytes()).unwrap();
        assert_eq!(r.alternate_path.as_deref(), Some("/lwm2m"));
        assert_eq!(r.root_path(), "/lwm2m");
        assert_eq!(
            r.objects,
            vec![obj(1, None, &[0]), obj(3, None, &[0]), obj(5, None, &[])]
        );
        assert_eq!(
            write_registration(&r),
            "</lwm2m>;rt=\"oma.lwm2m\",</lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/5>"
        );
        // deeper prefixes, trailing slash normalised
        let r = parse_registration(b"</a/b/>;rt=\"oma.lwm2m\";ct=11542,</a/b/3/0>").unwrap();
        assert_eq!(r.alternate_path.as_deref(), Some("/a/b"));
        assert_eq!(r.content_formats, vec![11542]);
        assert_eq!(write_registration(&r), "</a/b>;rt=\"oma.lwm2m\";ct=11542,</a/b/3/0>");
    }

    #[test]
    fn registration_rejects_numeric_alternate_path() {
        let e = parse_registration(b"</lwm2m/7>;rt=\"oma.lwm2m\",</lwm2m/7/3/0>").unwrap_err();
        assert_eq!(offset_of(e), Some(0));
    }

    #[test]
    fn registration_accepts_quoted_ver_and_legacy_payloads() {
        let r = parse_registration(b"</1/0>, </3>;ver=\"1.0\", </3/0>").unwrap();
        assert_eq!(r.alternate_path, None);
        assert!(r.content_formats.is_empty());
        assert_eq!(r.objects, vec![obj(1, None, &[0]), obj(3, Some(Version::V1_0), &[0])]);
        assert_eq!(write_registration(&r), "</1/0>,</3>;ver=1.0,</3/0>");
    }

    #[test]
    fn registration_ignores_what_it_cannot_interpret() {
        let p = "</>;rt=\"oma.lwm2m\";foo=bar,</0/0>,</0/1>,</21/0>,</1/0>;x=1,</3/0/1>,</foo>,\
                 <coap://h/3/0>,</3/65535>,</3/0>,</3/0>,</70000>,</1/1>";
        let r = parse_registration(p.as_bytes()).unwrap();
        assert_eq!(r.objects, vec![obj(1, None, &[0, 1]), obj(3, None, &[0])]);
        // An rt link with another resource type is not the root link.
        let r = parse_registration(b"</x>;rt=\"core.rd\",</3/0>").unwrap();
        assert_eq!(r.alternate_path, None);
        assert_eq!(r.objects, vec![obj(3, None, &[0])]);
        // A plain </> link carries ct even without rt.
        let r = parse_registration(b"</>;ct=40,</3/0>").unwrap();
        assert_eq!(r.content_formats, vec![40]);
    }

    #[test]
    fn registration_rejects_malformed_known_values() {
        let e = parse_registration(b"</1/0>,</3>;ver=abc,</3/0>").unwrap_err();
        assert_eq!(offset_of(e), Some(12));
        let e = parse_registration(b"</3>;ver,</3/0>").unwrap_err();
        assert_eq!(offset_of(e), Some(5));
        let e = parse_registration(b"</>;rt=\"oma.lwm2m\";ct=\"110 x\"").unwrap_err();
        assert_eq!(offset_of(e), Some(19));
        let e = parse_registration(b"</>;rt=\"oma.lwm2m\";ct=\"\"").unwrap_err();
        assert_eq!(offset_of(e), Some(19));
        assert!(parse_registration(b"</1/0>,<").is_err());
    }

    #[test]
    fn registration_writer_rules() {
        let r = RegistrationLinks {
            alternate_path: None,
            content_formats: vec![110],
            objects: vec![
                obj(0, None, &[0, 1]),
                obj(1, Some(Version::V1_1), &[0]),
                obj(3, Some(Version::V1_0), &[0]),
                obj(21, None, &[0]),
                obj(2, None, &[]),
            ],
        };
        // Object 0 and 21 never listed; /1 has its default version so no object link; /3 announces 1.0.
        assert_eq!(
            write_registration(&r),
            "</>;rt=\"oma.lwm2m\";ct=110,</1/0>,</3>;ver=1.0,</3/0>,</2>"
        );
        // No root link without alternate path or content formats.
        let r = RegistrationLinks {
            objects: vec![obj(1, None, &[0]), obj(3, None, &[0])],
            ..Default::default()
        };
        assert_eq!(write_registration(&r), "</1/0>,</3/0>");
        assert_eq!(write_registration(&RegistrationLinks::default()), "");
    }

    // ---- Discover ---------------------------------------------------------------------------

    fn attrs(f: impl FnOnce(&mut Attributes)) -> Attributes {
        let mut a = Attributes::default();
        f(&mut a);
        a
    }

    #[test]
    fn discover_object_example_round_trips() {
        let p = "</3>;pmin=10,</3/0>,</3/0/1>,</3/0/2>,</3/0/3>,</3/0/4>,</3/0/6>;dim=8,</3/0/7>;dim=8;gt=50;lt=42.2";
        let entries = parse_discover(None, p.as_bytes()).unwrap();
        assert_eq!(entries.len(), 8);
        assert_eq!(entries[0], (Path::object(3), attrs(|a| a.pmin = Some(10))));
        assert_eq!(entries[1], (Path::instance(3, 0), Attributes::default()));
        assert_eq!(entries[6], (Path::resource(3, 0, 6), attrs(|a| a.dim = Some(8))));
        assert_eq!(
            entries[7],
            (
                Path::resource(3, 0, 7),
                attrs(|a| {
                    a.dim = Some(8);
                    a.gt = Some(50.0);
                    a.lt = Some(42.2);
                })
            )
        );
        assert_eq!(write_discover(None, &entries), p);
    }

    #[test]
    fn discover_resource_example_with_inheritance() {
        // pmin set at object level, pmax at instance level (digest §5.2).
        let object = attrs(|a| a.pmin = Some(10));
        let instance = attrs(|a| a.pmax = Some(60));
        let resource = attrs(|a| {
            a.dim = Some(8);
            a.gt = Some(50.0);
            a.lt = Some(42.2);
        });
        let eff = crate::attributes::effective(&[&object, &instance, &resource]);
        let out = write_discover(None, &[(Path::resource(3, 0, 7), eff)]);
        assert_eq!(out, "</3/0/7>;dim=8;pmin=10;pmax=60;gt=50;lt=42.2");
        assert_eq!(
            parse_discover(None, out.as_bytes()).unwrap(),
            vec![(Path::resource(3, 0, 7), eff)]
        );
    }

    #[test]
    fn discover_ver_only_on_non_default_object_links() {
        let v = |v| attrs(|a| a.ver = Some(v));
        let entries = [
            (Path::object(3), v(Version::V1_1)),
            (Path::object(4), v(Version::V1_1)),
            (Path::object(3303), v(Version::V1_1)),
            (Path::instance(3303, 0), v(Version::V1_2)),
        ];
        assert_eq!(
            write_discover(None, &entries),
            "</3>,</4>;ver=1.1,</3303>;ver=1.1,</3303/0>"
        );
        let back = parse_discover(None, b"</3>;ver=\"1.0\";ssid=1;rt=\"x\"").unwrap();
        assert_eq!(back, vec![(Path::object(3), v(Version::V1_0))]);
    }

    #[test]
    fn discover_with_alternate_path() {
        let entries = vec![
            (Path::instance(3, 0), attrs(|a| a.pmax = Some(5))),
            (Path::resource(3, 0, 1), Attributes::default()),
        ];
        let out = write_discover(Some("/lwm2m"), &entries);
        assert_eq!(out, "</lwm2m/3/0>;pmax=5,</lwm2m/3/0/1>");
        assert_eq!(parse_discover(Some("/lwm2m"), out.as_bytes()).unwrap(), entries);
        // a client that does not prefix its Discover links is understood too
        assert_eq!(
            parse_discover(Some("/lwm2m"), b"</3/0>;pmax=5,</3/0/1>").unwrap(),
            entries
        );
    }

    #[test]
    fn discover_errors() {
        match parse_discover(None, b"</3/0>,</x/1>").unwrap_err() {
            FormatError::InvalidPath { text, .. } => assert_eq!(text, "/x/1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            offset_of(parse_discover(None, b"</3/0/7>;dim=8;gt=abc").unwrap_err()),
            Some(15)
        );
        assert_eq!(offset_of(parse_discover(None, b"</3>;pmin=-1").unwrap_err()), Some(5));
        assert_eq!(
            offset_of(parse_discover(None, b"</3>;pmin=1;pmin=2").unwrap_err()),
            Some(12)
        );
        assert_eq!(offset_of(parse_discover(None, b"</3>;pmin").unwrap_err()), Some(5));
        let msg = parse_discover(None, b"</3/0/7>;gt=abc").unwrap_err().to_string();
        assert!(msg.contains("</3/0/7>") && msg.contains("gt"), "{msg}");
    }

    // ---- Bootstrap-Discover -----------------------------------------------------------------

    const BS_DISCOVER_TS: &str = "</>;lwm2m=1.1,</0/0>;ssid=101;uri=\"coaps://server_1.example.com\",</0/1>,</0/2>;ssid=102;uri=\"coaps://server_2.example.com\"";
    const BS_DISCOVER_ROOT: &str = "</>;lwm2m=1.1,</0/0>;ssid=101;uri=\"coaps://dm.example.com:5684\",</0/1>;uri=\"coaps://bs.example.com:5684\",</1/0>;ssid=101,</2>,</3/0>,</4>,</5>,</3303>;ver=1.1,</3303/0>";

    fn entry(path: Path, ssid: Option<u16>, uri: Option<&str>, version: Option<Version>) -> BootstrapDiscoverEntry {
        BootstrapDiscoverEntry {
            path,
            ssid,
            uri: uri.map(String::from),
            version,
        }
    }

    #[test]
    fn bootstrap_discover_ts_example_round_trips() {
        let d = parse_bootstrap_discover(BS_DISCOVER_TS.as_bytes()).unwrap();
        assert_eq!(
            d,
            BootstrapDiscover {
                lwm2m_version: Some(Version::V1_1),
                entries: vec![
                    entry(
                        Path::instance(0, 0),
                        Some(101),
                        Some("coaps://server_1.example.com"),
                        None
                    ),
                    entry(Path::instance(0, 1), None, None, None),
                    entry(
                        Path::instance(0, 2),
                        Some(102),
                        Some("coaps://server_2.example.com"),
                        None
                    ),
                ],
            }
        );
        assert_eq!(write_bootstrap_discover(&d), BS_DISCOVER_TS);
    }

    #[test]
    fn bootstrap_discover_root_example_round_trips() {
        let d = parse_bootstrap_discover(BS_DISCOVER_ROOT.as_bytes()).unwrap();
        assert_eq!(d.lwm2m_version, Some(Version::V1_1));
        assert_eq!(d.entries.len(), 9);
        assert_eq!(
            d.entries[1],
            entry(Path::instance(0, 1), None, Some("coaps://bs.example.com:5684"), None)
        );
        assert_eq!(d.entries[2], entry(Path::instance(1, 0), Some(101), None, None));
        assert_eq!(d.entries[7], entry(Path::object(3303), None, None, Some(Version::V1_1)));
        assert_eq!(write_bootstrap_discover(&d), BS_DISCOVER_ROOT);
    }

    #[test]
    fn bootstrap_discover_legacy_form() {
        let d = parse_bootstrap_discover(b"lwm2m=\"1.0\",</0/0>;ssid=101,</0/1>,</1/0>;ssid=101,</3/0>").unwrap();
        assert_eq!(
            d,
            BootstrapDiscover {
                lwm2m_version: Some(Version::V1_0),
                entries: vec![
                    entry(Path::instance(0, 0), Some(101), None, None),
                    entry(Path::instance(0, 1), None, None, None),
                    entry(Path::instance(1, 0), Some(101), None, None),
                    entry(Path::instance(3, 0), None, None, None),
                ],
            }
        );
        // written back in the 1.1 form
        assert_eq!(
            write_bootstrap_discover(&d),
            "</>;lwm2m=1.0,</0/0>;ssid=101,</0/1>,</1/0>;ssid=101,</3/0>"
        );
        // unquoted and with whitespace, as TS examples show
        let d2 = parse_bootstrap_discover(b" lwm2m=1.0, </0/0>;ssid=101, </0/1>, </1/0>;ssid=101, </3/0>").unwrap();
        assert_eq!(d2, d);
        // only the version
        let d3 = parse_bootstrap_discover(b"lwm2m=\"1.0\"").unwrap();
        assert_eq!(d3.lwm2m_version, Some(Version::V1_0));
        assert!(d3.entries.is_empty());
    }

    #[test]
    fn bootstrap_discover_errors() {
        assert_eq!(
            offset_of(parse_bootstrap_discover(b"lwm2m=\"1.0\" </0/0>").unwrap_err()),
            Some(12)
        );
        assert_eq!(
            offset_of(parse_bootstrap_discover(b"lwm2m=\"1.0\",").unwrap_err()),
            Some(12)
        );
        assert_eq!(
            offset_of(parse_bootstrap_discover(b"lwm2m=\"x\",</0/0>").unwrap_err()),
            Some(0)
        );
        assert_eq!(
            offset_of(parse_bootstrap_discover(b"lwm2m=\"1.0").unwrap_err()),
            Some(6)
        );
        assert_eq!(
            offset_of(parse_bootstrap_discover(b"</>;lwm2m=one").unwrap_err()),
            Some(4)
        );
        assert_eq!(
            offset_of(parse_bootstrap_discover(b"</0/0>;ssid=-1").unwrap_err()),
            Some(7)
        );
        assert_eq!(
            offset_of(parse_bootstrap_discover(b"</0/0>;ssid=70000").unwrap_err()),
            Some(7)
        );
        assert_eq!(offset_of(parse_bootstrap_discover(b"</0/0>;uri").unwrap_err()), Some(7));
        assert!(matches!(
            parse_bootstrap_discover(b"</>;lwm2m=1.1,</0/a>").unwrap_err(),
            FormatError::InvalidPath { .. }
        ));
        assert_eq!(parse_bootstrap_discover(b"").unwrap(), BootstrapDiscover::default());
    }

    // ---- property tests ---------------------------------------------------------------------

    fn arb_value() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            "[a-zA-Z0-9.:/=<>?@!#$%&'()*+_~-]{1,8}".prop_map(Some),
            "\\PC{0,10}".prop_map(Some),
            "[ ,;\"\\\\a]{0,6}".prop_map(Some),
        ]
    }

    fn arb_link() -> impl Strategy<Value = Link> {
        (
            "[a-zA-Z0-9/._~%:?=&é-]{0,12}",
            proptest::collection::vec(
                (
                    prop_oneof![
                        "[a-z][a-z0-9]{0,5}",
                        Just("rt".to_string()),
                        Just("uri".to_string()),
                        Just("ct".to_string()),
                        Just("title*".to_string()),
                    ],
                    arb_value(),
                ),
                0..4,
            ),
        )
            .prop_map(|(target, params)| Link {
                target,
                params: params
                    .into_iter()
                    .map(|(name, value)| LinkParam { name, value })
                    .collect(),
            })
    }

    fn arb_version() -> impl Strategy<Value = Option<Version>> {
        proptest::option::of((0u16..3, 0u16..4).prop_map(|(a, b)| Version::new(a, b)))
    }

    proptest! {
        #[test]
        fn write_parse_round_trip(links in proptest::collection::vec(arb_link(), 0..6)) {
            let text = write(&links);
            let back = parse(text.as_bytes()).unwrap();
            prop_assert_eq!(&back, &links);
            prop_assert_eq!(write(&back), text);
        }

        #[test]
        fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(l) = parse(&bytes) {
                prop_assert_eq!(parse(write(&l).as_bytes()).unwrap(), l);
            }
            let _ = parse_registration(&bytes);
            let _ = parse_bootstrap_discover(&bytes);
            let _ = parse_discover(Some("/lwm2m"), &bytes);
        }

        #[test]
        fn parse_never_panics_on_link_like_text(s in "[<>;,=\" \\\\/a-z0-9.é]{0,60}") {
            if let Ok(l) = parse(s.as_bytes()) {
                prop_assert_eq!(parse(write(&l).as_bytes()).unwrap(), l);
            }
            let _ = parse_registration(s.as_bytes());
            let _ = parse_bootstrap_discover(s.as_bytes());
            let _ = parse_discover(None, s.as_bytes());
        }

        #[test]
        fn registration_round_trip(
            alt in "(/[a-z]{1,5}){0,2}",
            cts in proptest::collection::btree_set(any::<u16>(), 0..4),
            objs in proptest::collection::btree_map(
                1u16..=65535,
                (arb_version(), proptest::collection::btree_set(0u16..65535, 0..4)),
                0..6,
            ),
        ) {
            let reg = RegistrationLinks {
                alternate_path: if alt.is_empty() { None } else { Some(alt) },
                content_formats: cts.into_iter().collect(),
                objects: objs
                    .into_iter()
                    .map(|(object_id, (version, inst))| ObjectLink {
                        object_id,
                        version,
                        instances: inst.into_iter().collect(),
                    })
                    .collect(),
            };
            let text = write_registration(&reg);
            let back = parse_registration(text.as_bytes()).unwrap();
            let mut want = reg.clone();
            want.objects.retain(|o| o.object_id != 21);
            for o in &mut want.objects {
                o.version = non_default(o.object_id, o.version);
            }
            prop_assert_eq!(&back, &want);
            prop_assert_eq!(write_registration(&back), text);
        }

        #[test]
        fn discover_round_trip(entries in proptest::collection::vec(
            (
                proptest::collection::vec(0u16..65535, 1..=4),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(-1e12f64..1e12),
                proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
                proptest::option::of(0f64..1e6),
                proptest::option::of(any::<u16>()),
                arb_version(),
            ),
            0..6,
        )) {
            let entries: Vec<(Path, Attributes)> = entries
                .into_iter()
                .map(|(ids, pmin, epmax, gt, lt, st, dim, ver)| {
                    let path = Path::from_ids(&ids).unwrap();
                    let ver = if path.is_object() { non_default(ids[0], ver) } else { None };
                    (path, Attributes { pmin, epmax, gt, lt, st, dim, ver, ..Default::default() })
                })
                .collect();
            let text = write_discover(None, &entries);
            let back = parse_discover(None, text.as_bytes()).unwrap();
            prop_assert_eq!(&back, &entries);
            prop_assert_eq!(write_discover(None, &back), text);
        }

        #[test]
        fn bootstrap_discover_round_trip(
            version in arb_version(),
            entries in proptest::collection::vec(
                (
                    proptest::collection::vec(0u16..65535, 1..=2),
                    proptest::option::of(any::<u16>()),
                    proptest::option::of("\\PC{0,20}"),
                    arb_version(),
                ),
                0..6,
            ),
        ) {
            let d = BootstrapDiscover {
                lwm2m_version: version,
                entries: entries
                    .into_iter()
                    .map(|(ids, ssid, uri, ver)| {
                        let path = Path::from_ids(&ids).unwrap();
                        let version = if path.is_object() { non_default(ids[0], ver) } else { None };
                        BootstrapDiscoverEntry { path, ssid, uri, version }
                    })
                    .collect(),
            };
            let text = write_bootstrap_discover(&d);
            prop_assert_eq!(parse_bootstrap_discover(text.as_bytes()).unwrap(), d);
        }
    }
}
