//! Query strings, decoded by hand so Write-Attributes keeps `?pmin` (no `=`: unset) and the order of names.

use std::time::Duration;

use lwm2m_core::format::ContentFormat;
use lwm2m_server::RequestOptions;

use crate::error::ApiError;

/// The decoded `name[=value]` pairs of a query string, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Query(pub Vec<(String, Option<String>)>);

/// Percent-decodes one query component (`+` is a space).
fn decode(s: &str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    return Err(ApiError::bad_request(
                        "bad_query",
                        format!("the query has a bad percent escape near {:?}", s.get(i..).unwrap_or("")),
                    ));
                };
                out.push(v);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("bad_query", "the query is not UTF-8"))
}

impl Query {
    /// Parses a raw query string (without `?`).
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let mut v = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (n, val) = match part.split_once('=') {
                Some((n, val)) => (decode(n)?, Some(decode(val)?)),
                None => (decode(part)?, None),
            };
            v.push((n, val));
        }
        Ok(Query(v))
    }

    /// The value of `name` (the last one; `Some("")` for `name` or `name=`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Fails on any name not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            Some((n, _)) => Err(ApiError::bad_request(
                "bad_query",
                format!(
                    "unknown query parameter {n:?}; this operation takes {}",
                    allowed.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A boolean flag: absent → false; `name`, `name=true`, `name=1` → true; `false`/`0` → false.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some("" | "true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ApiError::bad_request(
                "bad_query",
                format!("{name}={other}: use {name}=true or {name}=false"),
            )),
        }
    }

    /// `?format=` and `?timeout=` as request options.
    pub fn options(&self) -> Result<RequestOptions, ApiError> {
        let mut o = RequestOptions::default();
        if let Some(f) = self.get("format") {
            o.format = Some(f.parse::<ContentFormat>().map_err(|_| {
                ApiError::bad_request(
                    "bad_format",
                    format!(
                        "format={f} is not a content format; use text, opaque, cbor, tlv, lwm2m-json, senml-json, \
                         senml-cbor or a CoAP number such as 11542"
                    ),
                )
            })?);
        }
        if let Some(t) = self.get("timeout") {
            o.timeout = Some(parse_timeout(t)?);
        }
        Ok(o)
    }
}

/// `30`, `1.5`, `30s`, `500ms` (at most one hour).
pub(crate) fn parse_timeout(t: &str) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "bad_timeout",
            format!("timeout={t} is not a duration; use seconds (30, 1.5, 30s) or milliseconds (500ms), at most 3600s"),
        )
    };
    let (num, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 0.001)
    } else {
        (t.strip_suffix('s').unwrap_or(t), 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = v * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let q = Query::parse(Some("pmin=10&pmax&gt=-5.5&q=a%3Ab+c&pmin=")).unwrap();
        assert_eq!(q.0.len(), 5);
        assert_eq!(q.get("pmax"), Some(""));
        assert_eq!(q.get("q"), Some("a:b c"));
        assert_eq!(q.get("pmin"), Some(""));
        assert_eq!(q.get("nope"), None);
        assert!(Query::parse(Some("a=%zz")).is_err());
        assert!(Query::parse(Some("a=%f")).is_err());
        assert!(Query::parse(Some("a=%ff")).is_err(), "not UTF-8");
        assert_eq!(Query::parse(None).unwrap(), Query::default());
        assert!(q.only(&["pmin", "pmax", "gt", "q"]).is_ok());
        assert_eq!(q.only(&["pmin"]).unwrap_err().error, "bad_query");
    }

    #[test]
    fn options_and_flags() {
        let q = Query::parse(Some("format=senml-json&timeout=500ms&active")).unwrap();
        let o = q.options().unwrap();
        assert_eq!(o.format, Some(ContentFormat::SenmlJson));
        assert_eq!(o.timeout, Some(Duration::from_millis(500)));
        assert!(q.flag("active").unwrap());
        assert!(!q.flag("other").unwrap());
        assert!(Query::parse(Some("active=maybe")).unwrap().flag("active").is_err());
        assert_eq!(parse_timeout("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_timeout("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "x", "-1", "0", "4000", "NaN", "inf"] {
            assert_eq!(parse_timeout(bad).unwrap_err().error, "bad_timeout", "{bad}");
        }
        let e = Query::parse(Some("format=xml")).unwrap().options().unwrap_err();
        assert_eq!(e.error, "bad_format");
        assert_eq!(
            Query::parse(Some("format=11542")).unwrap().options().unwrap().format,
            Some(ContentFormat::Tlv)
        );
    }
}
