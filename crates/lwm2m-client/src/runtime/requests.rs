//! CoAP requests to LwM2M operations (digest §3.4, §5.1, §6): which DM&SE, Information Reporting or Bootstrap
//! operation a request is, with its path and formats. Pure functions, no IO; the driver executes the result on
//! the [`DataModel`](crate::dm::DataModel).

use lwm2m_coap::{Code, Message};
use lwm2m_core::{ContentFormat, Path};

use crate::object::{DmError, WriteMode};

/// A DM&SE or Information Reporting request from a LwM2M Server (digest §5.1, §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmOp {
    /// GET.
    Read {
        /// Target.
        path: Path,
        /// Accept.
        accept: Option<ContentFormat>,
    },
    /// GET with Accept 40.
    Discover {
        /// Target.
        path: Path,
    },
    /// GET with Observe 0.
    Observe {
        /// Target.
        path: Path,
        /// Accept.
        accept: Option<ContentFormat>,
    },
    /// GET with Observe 1: cancel, then read.
    CancelObserve {
        /// Target.
        path: Path,
        /// Accept.
        accept: Option<ContentFormat>,
    },
    /// FETCH `/` (Observe 0: Observe-Composite, Observe 1: cancel it).
    ReadComposite {
        /// The request body's format (SenML JSON or CBOR).
        format: ContentFormat,
        /// Accept.
        accept: Option<ContentFormat>,
        /// The Observe option.
        observe: Option<u32>,
    },
    /// PUT or POST with a Content-Format on an instance, resource or resource instance.
    Write {
        /// Target.
        path: Path,
        /// Replace (PUT) or Partial Update (POST).
        mode: WriteMode,
        /// Payload format.
        format: ContentFormat,
    },
    /// PUT without Content-Format and payload.
    WriteAttributes {
        /// Target.
        path: Path,
        /// Uri-Query options.
        queries: Vec<String>,
    },
    /// POST on a resource.
    Execute {
        /// Target.
        path: Path,
    },
    /// POST on an object.
    Create {
        /// Target object.
        path: Path,
        /// Payload format.
        format: ContentFormat,
    },
    /// DELETE.
    Delete {
        /// Target.
        path: Path,
    },
    /// iPATCH `/`.
    WriteComposite {
        /// Payload format.
        format: ContentFormat,
    },
}

impl DmOp {
    /// The operation's name, for logs and events.
    pub fn name(&self) -> &'static str {
        match self {
            DmOp::Read { .. } => "Read",
            DmOp::Discover { .. } => "Discover",
            DmOp::Observe { .. } => "Observe",
            DmOp::CancelObserve { .. } => "Cancel-Observation",
            DmOp::ReadComposite { observe: Some(0), .. } => "Observe-Composite",
            DmOp::ReadComposite { observe: Some(1), .. } => "Cancel-Observation-Composite",
            DmOp::ReadComposite { .. } => "Read-Composite",
            DmOp::Write {
                mode: WriteMode::Replace,
                ..
            } => "Write-Replace",
            DmOp::Write { .. } => "Write-Partial-Update",
            DmOp::WriteAttributes { .. } => "Write-Attributes",
            DmOp::Execute { .. } => "Execute",
            DmOp::Create { .. } => "Create",
            DmOp::Delete { .. } => "Delete",
            DmOp::WriteComposite { .. } => "Write-Composite",
        }
    }
}

/// A Bootstrap-interface request from the Bootstrap-Server (digest §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapOp {
    /// PUT.
    Write {
        /// Target.
        path: Path,
        /// Payload format.
        format: ContentFormat,
    },
    /// GET (not Accept 40).
    Read {
        /// Target.
        path: Path,
        /// Accept.
        accept: Option<ContentFormat>,
    },
    /// GET with Accept 40.
    Discover {
        /// Target.
        path: Path,
    },
    /// DELETE.
    Delete {
        /// Target.
        path: Path,
    },
    /// POST `/bs`.
    Finish,
}

impl BootstrapOp {
    /// The operation's name, for logs and events.
    pub fn name(&self) -> &'static str {
        match self {
            BootstrapOp::Write { .. } => "Bootstrap-Write",
            BootstrapOp::Read { .. } => "Bootstrap-Read",
            BootstrapOp::Discover { .. } => "Bootstrap-Discover",
            BootstrapOp::Delete { .. } => "Bootstrap-Delete",
            BootstrapOp::Finish => "Bootstrap-Finish",
        }
    }
}

/// The request's Uri-Path as an LwM2M path; a segment that is not an id in 0..=65534 is 4.04 (no such
/// object), more than four segments 4.04 too.
pub fn request_path(req: &Message) -> Result<Path, DmError> {
    let segs = req.uri_path();
    if segs.len() > 4 {
        return Err(DmError::not_found(format!(
            "{} is not an LwM2M path",
            req.uri_path_string()
        )));
    }
    let mut ids = Vec::with_capacity(segs.len());
    for s in &segs {
        let id = s
            .parse::<u16>()
            .map_err(|_| DmError::not_found(format!("{} is not an LwM2M path", req.uri_path_string())))?;
        ids.push(id);
    }
    Path::from_ids(&ids).map_err(|e| DmError::not_found(format!("{}: {e}", req.uri_path_string())))
}

/// The Content-Format option: `None` when absent, 4.15 when not an LwM2M format.
pub fn content_format(req: &Message) -> Result<Option<ContentFormat>, DmError> {
    match req.content_format() {
        None => Ok(None),
        Some(c) => ContentFormat::from_code(c)
            .map(Some)
            .ok_or_else(|| DmError::unsupported_format(format!("content format {c} is not supported"))),
    }
}

/// The Accept option: `None` when absent, 4.06 when not an LwM2M format.
pub fn accept(req: &Message) -> Result<Option<ContentFormat>, DmError> {
    match req.accept() {
        None => Ok(None),
        Some(c) => ContentFormat::from_code(c)
            .map(Some)
            .ok_or_else(|| DmError::not_acceptable(format!("content format {c} cannot be produced"))),
    }
}

/// Classifies a request from a LwM2M Server (digest §5.1: PUT without Content-Format is Write-Attributes, GET
/// with Accept 40 Discover, POST on `/o` Create, on `/o/i` Partial Update, on `/o/i/r` Execute unless the
/// resource is a writable, non-executable resource and a Content-Format is given). `executable(path)` tells
/// whether a resource is executable per its model.
pub fn classify_dm(req: &Message, executable: impl Fn(&Path) -> bool) -> Result<DmOp, DmError> {
    let path = request_path(req)?;
    let cf = content_format(req)?;
    let accept = accept(req)?;
    match req.code {
        Code::GET => {
            let discover = accept == Some(ContentFormat::Link);
            match req.observe() {
                Some(0) if !discover => Ok(DmOp::Observe { path, accept }),
                Some(1) if !discover => Ok(DmOp::CancelObserve { path, accept }),
                _ if discover => Ok(DmOp::Discover { path }),
                _ => Ok(DmOp::Read { path, accept }),
            }
        }
        Code::FETCH => {
            if !path.is_root() {
                return Err(DmError::method_not_allowed(format!(
                    "FETCH (Read-Composite) targets /, not {path}"
                )));
            }
            let format =
                cf.ok_or_else(|| DmError::unsupported_format("Read-Composite needs Content-Format 110 or 112"))?;
            Ok(DmOp::ReadComposite {
                format,
                accept,
                observe: req.observe(),
            })
        }
        Code::IPATCH => {
            if !path.is_root() {
                return Err(DmError::method_not_allowed(format!(
                    "iPATCH (Write-Composite) targets /, not {path}"
                )));
            }
            let format =
                cf.ok_or_else(|| DmError::unsupported_format("Write-Composite needs Content-Format 110 or 112"))?;
            Ok(DmOp::WriteComposite { format })
        }
        Code::PUT => match cf {
            None if req.payload.is_empty() => Ok(DmOp::WriteAttributes {
                path,
                queries: req.uri_query(),
            }),
            None => Err(DmError::bad_request("a Write needs a Content-Format")),
            Some(format) => Ok(DmOp::Write {
                path,
                mode: WriteMode::Replace,
                format,
            }),
        },
        Code::POST => match path.len() {
            0 => Err(DmError::method_not_allowed("POST on / is not an LwM2M operation")),
            1 => {
                let format = match cf {
                    Some(f) => f,
                    // An empty instance: TLV's empty payload is "no resources".
                    None if req.payload.is_empty() => ContentFormat::Tlv,
                    None => return Err(DmError::unsupported_format("a Create needs a Content-Format")),
                };
                Ok(DmOp::Create { path, format })
            }
            2 => Ok(DmOp::Write {
                path,
                mode: WriteMode::PartialUpdate,
                format: cf.ok_or_else(|| DmError::bad_request("a Write needs a Content-Format"))?,
            }),
            3 => match cf {
                Some(format) if !executable(&path) => Ok(DmOp::Write {
                    path,
                    mode: WriteMode::PartialUpdate,
                    format,
                }),
                _ => Ok(DmOp::Execute { path }),
            },
            _ => Ok(DmOp::Execute { path }),
        },
        Code::DELETE => Ok(DmOp::Delete { path }),
        other => Err(DmError::method_not_allowed(format!(
            "method {other} is not an LwM2M operation"
        ))),
    }
}

/// Classifies a request from the Bootstrap-Server (digest §3.4). POST `/bs` is Finish; GET with Accept 40
/// Discover, other GETs Read; PUT Write (Content-Format required); DELETE Delete.
pub fn classify_bootstrap(req: &Message) -> Result<BootstrapOp, DmError> {
    if req.code == Code::POST {
        return if req.uri_path() == ["bs"] {
            Ok(BootstrapOp::Finish)
        } else {
            Err(DmError::bad_request(format!(
                "POST {} is not a bootstrap operation (Bootstrap-Finish is POST /bs)",
                req.uri_path_string()
            )))
        };
    }
    let path = request_path(req).map_err(|e| DmError::bad_request(e.reason().to_owned()))?;
    match req.code {
        Code::GET => {
            let accept = accept(req)?;
            if accept == Some(ContentFormat::Link) {
                Ok(BootstrapOp::Discover { path })
            } else {
                Ok(BootstrapOp::Read { path, accept })
            }
        }
        Code::PUT => {
            let format =
                content_format(req)?.ok_or_else(|| DmError::bad_request("a Bootstrap-Write needs a Content-Format"))?;
            Ok(BootstrapOp::Write { path, format })
        }
        Code::DELETE => Ok(BootstrapOp::Delete { path }),
        other => Err(DmError::method_not_allowed(format!(
            "method {other} is not a bootstrap operation"
        ))),
    }
}

/// The CoAP code of an LwM2M error.
pub fn error_code(e: &DmError) -> Code {
    let (c, d) = e.code();
    Code::new(c, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_coap::Code;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    fn req(code: Code, path: &str) -> Message {
        Message::request(code, path)
    }

    fn dm(m: &Message) -> Result<DmOp, DmError> {
        classify_dm(m, |p| p.resource_id() == Some(4))
    }

    #[test]
    fn get_variants() {
        assert_eq!(
            dm(&req(Code::GET, "/3/0/0")).unwrap(),
            DmOp::Read {
                path: p("/3/0/0"),
                accept: None
            }
        );
        let mut m = req(Code::GET, "/3/0");
        m.set_accept(40);
        assert_eq!(dm(&m).unwrap(), DmOp::Discover { path: p("/3/0") });
        let mut m = req(Code::GET, "/3/0/7/1");
        m.set_accept(112);
        m.set_observe(0);
        assert_eq!(
            dm(&m).unwrap(),
            DmOp::Observe {
                path: p("/3/0/7/1"),
                accept: Some(ContentFormat::SenmlCbor)
            }
        );
        m.set_observe(1);
        assert_eq!(dm(&m).unwrap().name(), "Cancel-Observation");
        let mut m = req(Code::GET, "/3/0");
        m.set_accept(9999);
        assert_eq!(dm(&m).unwrap_err().code(), (4, 6));
        assert_eq!(
            dm(&req(Code::GET, "/")).unwrap(),
            DmOp::Read {
                path: Path::ROOT,
                accept: None
            }
        );
    }

    #[test]
    fn put_post_delete() {
        let w = req(Code::PUT, "/1/0/1").with_content_format(0).with_payload("60");
        assert_eq!(
            dm(&w).unwrap(),
            DmOp::Write {
                path: p("/1/0/1"),
                mode: WriteMode::Replace,
                format: ContentFormat::Text
            }
        );
        let wa = req(Code::PUT, "/3/0/9?pmin=10&pmax=60");
        assert_eq!(
            dm(&wa).unwrap(),
            DmOp::WriteAttributes {
                path: p("/3/0/9"),
                queries: vec!["pmin=10".into(), "pmax=60".into()]
            }
        );
        assert_eq!(
            dm(&req(Code::PUT, "/3/0/9").with_payload("x")).unwrap_err().code(),
            (4, 0)
        );
        assert_eq!(
            dm(&req(Code::POST, "/3/0/4")).unwrap(),
            DmOp::Execute { path: p("/3/0/4") }
        );
        // A writable resource with a format is a partial update; an executable one stays Execute.
        let pu = req(Code::POST, "/3/0/7")
            .with_content_format(112)
            .with_payload(vec![0x80]);
        assert_eq!(dm(&pu).unwrap().name(), "Write-Partial-Update");
        let ex = req(Code::POST, "/1/0/4").with_content_format(0).with_payload("0");
        assert_eq!(dm(&ex).unwrap(), DmOp::Execute { path: p("/1/0/4") });
        let cr = req(Code::POST, "/3303")
            .with_content_format(11542)
            .with_payload(vec![0]);
        assert_eq!(
            dm(&cr).unwrap(),
            DmOp::Create {
                path: p("/3303"),
                format: ContentFormat::Tlv
            }
        );
        assert_eq!(dm(&req(Code::POST, "/3303")).unwrap().name(), "Create");
        assert_eq!(
            dm(&req(Code::POST, "/3303").with_payload("x")).unwrap_err().code(),
            (4, 15)
        );
        assert_eq!(dm(&req(Code::POST, "/3/0")).unwrap_err().code(), (4, 0));
        assert_eq!(dm(&req(Code::POST, "/")).unwrap_err().code(), (4, 5));
        assert_eq!(
            dm(&req(Code::DELETE, "/3303/1")).unwrap(),
            DmOp::Delete { path: p("/3303/1") }
        );
        assert_eq!(dm(&req(Code::PATCH, "/3")).unwrap_err().code(), (4, 5));
        let bad = req(Code::PUT, "/3/0/1").with_content_format(47).with_payload("x");
        assert_eq!(dm(&bad).unwrap_err().code(), (4, 15));
    }

    #[test]
    fn composite_operations() {
        let f = req(Code::FETCH, "/").with_content_format(110).with_payload("[]");
        assert_eq!(
            dm(&f).unwrap(),
            DmOp::ReadComposite {
                format: ContentFormat::SenmlJson,
                accept: None,
                observe: None
            }
        );
        let mut o = f.clone();
        o.set_observe(0);
        assert_eq!(dm(&o).unwrap().name(), "Observe-Composite");
        assert_eq!(dm(&req(Code::FETCH, "/")).unwrap_err().code(), (4, 15));
        assert_eq!(dm(&req(Code::FETCH, "/3")).unwrap_err().code(), (4, 5));
        let i = req(Code::IPATCH, "/").with_content_format(112).with_payload(vec![0x80]);
        assert_eq!(
            dm(&i).unwrap(),
            DmOp::WriteComposite {
                format: ContentFormat::SenmlCbor
            }
        );
        assert_eq!(dm(&req(Code::IPATCH, "/1")).unwrap_err().code(), (4, 5));
    }

    #[test]
    fn non_lwm2m_paths_are_not_found() {
        for path in ["/rd", "/3/x", "/1/2/3/4/5", "/70000"] {
            assert_eq!(dm(&req(Code::GET, path)).unwrap_err().code(), (4, 4), "{path}");
        }
    }

    #[test]
    fn bootstrap_requests() {
        assert_eq!(
            classify_bootstrap(&req(Code::POST, "/bs")).unwrap(),
            BootstrapOp::Finish
        );
        assert_eq!(classify_bootstrap(&req(Code::POST, "/1")).unwrap_err().code(), (4, 0));
        let mut d = req(Code::GET, "/");
        d.set_accept(40);
        assert_eq!(
            classify_bootstrap(&d).unwrap(),
            BootstrapOp::Discover { path: Path::ROOT }
        );
        assert_eq!(
            classify_bootstrap(&req(Code::GET, "/1")).unwrap(),
            BootstrapOp::Read {
                path: p("/1"),
                accept: None
            }
        );
        let w = req(Code::PUT, "/0/1").with_content_format(11542).with_payload(vec![0]);
        assert_eq!(
            classify_bootstrap(&w).unwrap(),
            BootstrapOp::Write {
                path: p("/0/1"),
                format: ContentFormat::Tlv
            }
        );
        assert_eq!(classify_bootstrap(&req(Code::PUT, "/0/1")).unwrap_err().code(), (4, 0));
        assert_eq!(
            classify_bootstrap(&req(Code::DELETE, "/")).unwrap(),
            BootstrapOp::Delete { path: Path::ROOT }
        );
        assert_eq!(classify_bootstrap(&req(Code::DELETE, "/x")).unwrap_err().code(), (4, 0));
        assert_eq!(classify_bootstrap(&req(Code::FETCH, "/")).unwrap_err().code(), (4, 5));
        assert_eq!(error_code(&DmError::not_acceptable("x")), Code::NOT_ACCEPTABLE);
    }
}
