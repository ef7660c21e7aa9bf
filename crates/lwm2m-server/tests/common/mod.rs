//! Shared by the server tests: a scripted device on a real UDP socket (lwm2m-coap's driver) whose objects are an
//! `lwm2m_client::dm::DataModel`, so every DM&SE operation gets the client library's answers and codes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lwm2m_client::dm::{DataModel, FactoryConfig, ServerConfig as AccountConfig};
use lwm2m_client::object::{ObjectHandler, WriteMode};
use lwm2m_coap::{
    Code, Delivery, EndpointConfig, Incoming, IncomingRequest, Message, MessageType, RequestError, Token, UdpEndpoint,
    UdpHandle,
};
use lwm2m_core::format::{self, ContentFormat};
use lwm2m_core::{Path, ResourceNode, Value};
use lwm2m_server::{Event, Server, ServerConfig, ServerHandle};
use lwm2m_testkit::client::{object_3442, resource_1120};
use tokio::sync::{broadcast, mpsc};

/// Bound of every wait in the tests (virtual under a paused clock).
pub const WAIT: Duration = Duration::from_secs(20);

/// The device's Short Server ID for the server under test.
pub const SSID: u16 = 1;

/// CoAP parameters that fail fast on loopback.
pub fn fast_coap() -> EndpointConfig {
    EndpointConfig {
        ack_timeout_ms: 300,
        max_retransmit: 2,
        response_timeout_ms: 3000,
        ..EndpointConfig::default()
    }
}

/// Starts a server on 127.0.0.1 with `config`.
pub async fn start_server(config: ServerConfig) -> (ServerHandle, broadcast::Receiver<Event>, SocketAddr) {
    let socket = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), fast_coap())
        .await
        .unwrap();
    let addr = socket.0.local_addr();
    let (h, rx) = Server::start(config, vec![socket]).unwrap();
    (h, rx, addr)
}

/// The next event matching `pred` (others are skipped) within [`WAIT`]; a lag fails the wait.
pub async fn next_event(rx: &mut broadcast::Receiver<Event>, pred: impl FnMut(&Event) -> bool) -> Event {
    next_event_within(rx, WAIT, pred).await
}

/// The next event matching `pred` within `wait`; a lag fails the wait.
pub async fn next_event_within(
    rx: &mut broadcast::Receiver<Event>,
    wait: Duration,
    pred: impl FnMut(&Event) -> bool,
) -> Event {
    lwm2m_testkit::events::next_event_strict(rx, wait, pred).await
}

/// The Leshan test object 3442 with instance 0: String 110 = "hello", Integer 120 = 42, multiple Integer
/// 1120 = {0: 10, 1: 11, 2: 12}, plus executable 0.
pub fn test_object() -> impl ObjectHandler {
    object_3442([
        ResourceNode::single(110, Value::String("hello".into())),
        ResourceNode::single(120, Value::Integer(42)),
        resource_1120(),
    ])
    .with_executables(&[0])
    .with_exec(|_, _, _, _, _| Ok(()))
}

/// A data model: objects 0-3, 3303 (instance 0 at 20 °C) and 3442.
pub fn data_model() -> DataModel {
    let mut dm = FactoryConfig {
        servers: vec![AccountConfig::new(SSID, "coap://127.0.0.1:5683", 60)],
        temperature: Some(vec![(0, 20.0)]),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    dm.add_object(test_object());
    dm
}

/// What the device saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub code: Code,
    pub path: String,
    pub content_format: Option<u16>,
    pub accept: Option<u16>,
    pub observe: Option<u32>,
    pub queries: Vec<String>,
    pub payload: Vec<u8>,
}

impl Received {
    /// `(code, path)`, for short assertions.
    pub fn op(&self) -> (Code, String) {
        (self.code, self.path.clone())
    }
}

/// One observation the device serves.
#[derive(Debug, Clone)]
pub struct Observer {
    pub peer: SocketAddr,
    pub token: Token,
    pub paths: Vec<Path>,
    pub composite: bool,
    pub format: ContentFormat,
}

/// A scripted LwM2M device.
pub struct Device {
    pub handle: UdpHandle,
    pub server: SocketAddr,
    pub location: Option<String>,
    pub dm: Arc<Mutex<DataModel>>,
    pub observers: Arc<Mutex<Vec<Observer>>>,
    /// Every request the device received, in order.
    pub received: mpsc::UnboundedReceiver<Received>,
    /// Tokens of observations the server cancelled by RST.
    pub cancelled: mpsc::UnboundedReceiver<Token>,
    /// Alternate path the device's objects live under (e.g. `/lwm2m`).
    pub alternate: Option<String>,
}

fn code_of(e: &lwm2m_client::object::DmError) -> Code {
    let (c, d) = e.code();
    Code::new(c, d)
}

fn error_response(req: &Message, e: &lwm2m_client::object::DmError) -> Message {
    Message::response_to(req, code_of(e)).with_payload(e.reason().as_bytes())
}

fn content(req: &Message, format: ContentFormat, body: Vec<u8>) -> Message {
    Message::response_to(req, Code::CONTENT)
        .with_content_format(format.code())
        .with_payload(body)
}

/// Answers one request from the data model; returns the response and a new observer, if any.
fn dispatch(
    dm: &mut DataModel,
    alternate: Option<&str>,
    r: &IncomingRequest,
    observers: &Mutex<Vec<Observer>>,
) -> Message {
    let req = &r.request;
    let mut segs = req.uri_path();
    if let Some(alt) = alternate {
        let alt: Vec<String> = alt.split('/').filter(|s| !s.is_empty()).map(String::from).collect();
        if !segs.starts_with(&alt) {
            return Message::response_to(req, Code::NOT_FOUND);
        }
        segs.drain(..alt.len());
    }
    let path = match Path::parse(&format!("/{}", segs.join("/"))) {
        Ok(p) => p,
        Err(_) => return Message::response_to(req, Code::NOT_FOUND),
    };
    let cf = req.content_format().and_then(ContentFormat::from_code);
    let accept = req.accept().and_then(ContentFormat::from_code);
    let queries = req.uri_query();
    let q: Vec<&str> = queries.iter().map(String::as_str).collect();
    let result: Result<Message, lwm2m_client::object::DmError> = (|| match req.code {
        Code::GET if req.accept() == Some(40) => Ok(content(
            req,
            ContentFormat::Link,
            dm.discover(SSID, &path)?.into_bytes(),
        )),
        Code::GET => {
            let (f, body) = dm.read(SSID, &path, accept)?;
            let mut m = content(req, f, body);
            match req.observe() {
                Some(0) => {
                    m.set_observe(0);
                    let mut obs = observers.lock().unwrap();
                    obs.retain(|o| o.token != req.token);
                    obs.push(Observer {
                        peer: r.peer,
                        token: req.token,
                        paths: vec![path],
                        composite: false,
                        format: f,
                    });
                }
                Some(1) => observers.lock().unwrap().retain(|o| o.token != req.token),
                _ => {}
            }
            Ok(m)
        }
        Code::PUT if cf.is_none() => {
            dm.write_attributes(SSID, &path, &q)?;
            Ok(Message::response_to(req, Code::CHANGED))
        }
        Code::PUT => {
            dm.write(
                SSID,
                &path,
                WriteMode::Replace,
                cf.unwrap_or(ContentFormat::Text),
                &req.payload,
            )?;
            Ok(Message::response_to(req, Code::CHANGED))
        }
        Code::POST if path.len() == 1 => {
            let f = cf.ok_or_else(|| lwm2m_client::object::DmError::bad_request("Create needs a Content-Format"))?;
            let created = dm.create(SSID, &path, f, &req.payload)?;
            let mut m = Message::response_to(req, Code::CREATED);
            let loc = match alternate {
                Some(a) => format!("{a}{created}"),
                None => created.to_string(),
            };
            m.set_location_path(&loc);
            Ok(m)
        }
        Code::POST if path.len() == 3 && cf.is_none() || cf == Some(ContentFormat::Text) && path.len() == 3 => {
            dm.execute(SSID, &path, &req.payload)?;
            Ok(Message::response_to(req, Code::CHANGED))
        }
        Code::POST => {
            let f = cf.ok_or_else(|| lwm2m_client::object::DmError::bad_request("Write needs a Content-Format"))?;
            dm.write(SSID, &path, WriteMode::PartialUpdate, f, &req.payload)?;
            Ok(Message::response_to(req, Code::CHANGED))
        }
        Code::DELETE => {
            dm.delete(SSID, &path)?;
            Ok(Message::response_to(req, Code::DELETED))
        }
        Code::FETCH => {
            let f = cf.ok_or_else(|| lwm2m_client::object::DmError::unsupported_format("no Content-Format"))?;
            let (out, body) = dm.read_composite(SSID, f, &req.payload, accept)?;
            let mut m = content(req, out, body);
            match req.observe() {
                Some(0) => {
                    m.set_observe(0);
                    let paths = format::decode_paths(f, &req.payload).unwrap_or_default();
                    let mut obs = observers.lock().unwrap();
                    obs.retain(|o| o.token != req.token);
                    obs.push(Observer {
                        peer: r.peer,
                        token: req.token,
                        paths,
                        composite: true,
                        format: out,
                    });
                }
                Some(1) => observers.lock().unwrap().retain(|o| o.token != req.token),
                _ => {}
            }
            Ok(m)
        }
        Code::IPATCH => {
            let f = cf.ok_or_else(|| lwm2m_client::object::DmError::unsupported_format("no Content-Format"))?;
            dm.write_composite(SSID, f, &req.payload)?;
            Ok(Message::response_to(req, Code::CHANGED))
        }
        _ => Ok(Message::response_to(req, Code::METHOD_NOT_ALLOWED)),
    })();
    result.unwrap_or_else(|e| error_response(req, &e))
}

impl Device {
    /// A device with the default data model, talking to `server`.
    pub async fn start(server: SocketAddr) -> Device {
        Device::with_model(server, data_model(), None).await
    }

    /// A device with `dm`, its objects under `alternate` (e.g. `/lwm2m`) when given.
    pub async fn with_model(server: SocketAddr, dm: DataModel, alternate: Option<&str>) -> Device {
        let socket = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), fast_coap())
            .await
            .unwrap();
        Device::on_socket(server, dm, alternate, socket)
    }

    /// A device on an already running driver (e.g. a DTLS one).
    pub fn on_socket(
        server: SocketAddr,
        dm: DataModel,
        alternate: Option<&str>,
        (handle, mut rx): (UdpHandle, mpsc::Receiver<Incoming>),
    ) -> Device {
        let dm = Arc::new(Mutex::new(dm));
        let observers = Arc::new(Mutex::new(Vec::new()));
        let (rtx, received) = mpsc::unbounded_channel();
        let (ctx, cancelled) = mpsc::unbounded_channel();
        let alt = alternate.map(str::to_string);
        {
            let (handle, dm, observers, alt) = (handle.clone(), dm.clone(), observers.clone(), alt.clone());
            tokio::spawn(async move {
                while let Some(item) = rx.recv().await {
                    match item {
                        Incoming::Request(r) => {
                            let _ = rtx.send(Received {
                                code: r.request.code,
                                path: r.request.uri_path_string(),
                                content_format: r.request.content_format(),
                                accept: r.request.accept(),
                                observe: r.request.observe(),
                                queries: r.request.uri_query(),
                                payload: r.request.payload.clone(),
                            });
                            let resp = {
                                let mut dm = dm.lock().unwrap();
                                dispatch(&mut dm, alt.as_deref(), &r, &observers)
                            };
                            let _ = handle.respond(r.responder, resp);
                        }
                        Incoming::ObservationCancelled { token, .. } => {
                            observers.lock().unwrap().retain(|o| o.token != token);
                            let _ = ctx.send(token);
                        }
                        _ => {}
                    }
                }
            });
        }
        Device {
            handle,
            server,
            location: None,
            dm,
            observers,
            received,
            cancelled,
            alternate: alt,
        }
    }

    /// This device's address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// The registration payload of the data model (with the alternate path root link when there is one).
    pub fn links(&self) -> String {
        let dm = self.dm.lock().unwrap();
        let mut links = dm.registration_links();
        links.alternate_path = self.alternate.clone();
        lwm2m_core::format::link::write_registration(&links)
    }

    /// Sends a raw request to the server.
    pub async fn raw(&self, m: Message) -> Result<Message, RequestError> {
        tokio::time::timeout(WAIT, self.handle.request(self.server, m))
            .await
            .expect("server answer in time")
    }

    /// Register with these query parameters (e.g. `["ep=dev", "lt=60"]`) and the data model's links.
    pub async fn register(&mut self, queries: &[&str]) -> Message {
        let payload = self.links();
        self.register_with(queries, &payload).await
    }

    /// Register with an explicit payload.
    pub async fn register_with(&mut self, queries: &[&str], payload: &str) -> Message {
        let mut m = Message::request(Code::POST, "/rd")
            .with_content_format(40)
            .with_payload(payload.as_bytes());
        for q in queries {
            m.add_uri_query(q);
        }
        let resp = self.raw(m).await.expect("register answered");
        if resp.code == Code::CREATED {
            self.location = Some(format!("/{}", resp.location_path().join("/")));
        }
        resp
    }

    /// Update with `queries` and an optional payload.
    pub async fn update(&self, queries: &[&str], payload: Option<&str>) -> Message {
        let loc = self.location.clone().expect("registered");
        let mut m = Message::request(Code::POST, &loc);
        for q in queries {
            m.add_uri_query(q);
        }
        if let Some(p) = payload {
            m = m.with_content_format(40).with_payload(p.as_bytes());
        }
        self.raw(m).await.expect("update answered")
    }

    /// De-register.
    pub async fn deregister(&self) -> Message {
        let loc = self.location.clone().expect("registered");
        self.raw(Message::request(Code::DELETE, &loc))
            .await
            .expect("de-register answered")
    }

    /// Send (`POST /dp`) the current values of `paths` in `format`.
    pub async fn send(&self, paths: &[Path], format: ContentFormat) -> Message {
        let records = {
            let dm = self.dm.lock().unwrap();
            paths.iter().flat_map(|p| dm.records_at(p)).collect::<Vec<_>>()
        };
        let body = format::encode_records(format, &Path::ROOT, &records).unwrap();
        let m = Message::request(Code::POST, "/dp")
            .with_content_format(format.code())
            .with_payload(body);
        self.raw(m).await.expect("send answered")
    }

    /// Sets a value in the data model (a new sensor reading).
    pub fn set(&self, path: &str, value: Value) {
        self.dm
            .lock()
            .unwrap()
            .set_value(&path.parse().unwrap(), value)
            .unwrap();
    }

    /// Sends a notification with the current value to every observer; returns each delivery.
    pub async fn notify_all(&self) -> Vec<Result<Delivery, RequestError>> {
        let obs: Vec<Observer> = self.observers.lock().unwrap().clone();
        let mut out = Vec::new();
        for o in obs {
            let (f, body) = {
                let dm = self.dm.lock().unwrap();
                if o.composite {
                    let recs = dm.composite_records(SSID, &o.paths);
                    (o.format, format::encode_records(o.format, &Path::ROOT, &recs).unwrap())
                } else {
                    dm.read(SSID, &o.paths[0], Some(o.format)).unwrap()
                }
            };
            let m = Message::new(MessageType::Con, Code::CONTENT)
                .with_token(o.token)
                .with_content_format(f.code())
                .with_payload(body);
            out.push(
                tokio::time::timeout(WAIT, self.handle.notify(o.peer, m))
                    .await
                    .expect("notify in time"),
            );
        }
        out
    }

    /// The next request the device received.
    pub async fn next_received(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.received.recv())
            .await
            .expect("a request in time")
            .expect("device running")
    }

    /// Models of the device (for building expected values).
    pub fn read_local(&self, path: &str) -> lwm2m_core::Node {
        self.dm.lock().unwrap().local_read(&path.parse().unwrap()).unwrap()
    }
}
