//! Sans-IO CoAP/UDP endpoint (RFC 7252 §4 message layer, §5.2 request/response matching, RFC 7641 observe
//! matching).
//!
//! The endpoint serves both directions on one socket: it sends requests (and notifications) to peers and
//! receives requests from them, towards the same peer at the same time. It never reads a clock or touches a
//! socket: the driver feeds it datagrams ([`Endpoint::handle_datagram`]) and timer expiries
//! ([`Endpoint::handle_timeout`]) with the current [`Timestamp`], and drains [`Endpoint::poll_transmit`] and
//! [`Endpoint::poll_event`], sleeping until [`Endpoint::poll_timeout`].
//!
//! Message layer behaviour:
//! - CON messages are retransmitted after a random initial timeout in
//!   `[ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]`, doubling each time, at most `MAX_RETRANSMIT` times; after
//!   the last timeout the exchange fails with [`Event::Timeout`].
//! - An empty ACK moves a request to "awaiting separate response" (bounded by `response_timeout_ms`); a CON
//!   separate response is ACKed, a NON one is accepted as is.
//! - Incoming CON/NON messages are deduplicated per (peer, Message ID) for EXCHANGE_LIFETIME (CON) or
//!   NON_LIFETIME (NON). A duplicate CON is answered with the cached reply (piggybacked response, empty ACK or
//!   RST); if the application has not answered yet, an empty ACK is sent and the later answer becomes a
//!   separate response. The application sees every request once.
//! - Responses are matched to requests by (peer, token); ACK/RST by (peer, Message ID).
//! - NSTART: at most `nstart` requests per peer are outstanding; more are queued in order. Notifications and
//!   separate responses are not subject to NSTART.
//! - CON pings (Empty CON) get an RST; unmatched CON/NON responses get an RST (RFC 7641 §3.6); malformed CON
//!   messages get an RST when their Message ID can be read; other malformed input is dropped and counted.
//! - Requests with an unrecognised or malformed critical option are answered 4.02 Bad Option without being
//!   shown to the application.
//!
//! Observe (RFC 7641):
//! - Observer: a GET/FETCH with Observe=0 sent with [`Endpoint::send_request`] keeps its token alive when the
//!   response carries Observe; later notifications become [`Event::Notification`] after the §3.4 freshness
//!   check (stale or reordered ones are ACKed but dropped). [`Endpoint::cancel_observe`] cancels actively,
//!   [`Endpoint::cancel_observation`] passively (the next notification gets RST).
//! - Observed: answering a GET/FETCH with Observe=0 with a 2.xx response that carries Observe registers the
//!   observer; [`Endpoint::send_notification`] then numbers notifications (24-bit, wrapping) unless the
//!   application sets Observe, upgrades a NON notification to CON when none was sent for
//!   `notify_con_interval_ms`, and ends the observation with [`Event::ObservationCancelled`] on RST, CON
//!   timeout or a GET/FETCH with Observe=1.
//!
//! Peer migration: [`Endpoint::migrate_peer`] moves everything held with one address to another (a device behind
//! a NAT that rebound its public address and port): observations keep their tokens and request ids, so
//! notifications from the new address are delivered as before, and exchanges in flight continue there.
//!
//! Block-wise transfers (RFC 7959) are transparent to the application:
//! - Requests with a payload above `block_size` go out as Block1 blocks, each waiting for 2.31 Continue (a
//!   smaller size asked for by the server is honoured); responses with Block2 are fetched to the end and
//!   delivered as one [`Event::Response`] (or [`Event::Notification`]). A changed ETag restarts the download.
//! - Inbound Block1 uploads are reassembled per (peer, request options) and shown as one
//!   [`Event::IncomingRequest`]; the endpoint answers 2.31, 4.08 and 4.13 itself. Responses and notifications
//!   above the block size are sent as Block2 block 0 and the rest is served from a cached copy.

mod blockwise;
mod migrate;
mod observe;
pub mod rng;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;

use thiserror::Error;

pub use blockwise::BlockwiseError;
pub use migrate::PeerMigration;
pub use observe::CancelReason;
pub use rng::{RandomSource, SplitMix64};

use blockwise::{Block1Rx, Block2Cache, RespCtx, Transfer};
use observe::{ClientObservation, ServerObservation};

use crate::message::{Code, Message, MessageError, MessageType, Token};
use crate::time::Timestamp;

/// Transmission parameters (RFC 7252 §4.8; the LwM2M defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// ACK_TIMEOUT in milliseconds (2000).
    pub ack_timeout_ms: u64,
    /// ACK_RANDOM_FACTOR (1.5); values below 1.0 are treated as 1.0.
    pub ack_random_factor: f64,
    /// MAX_RETRANSMIT (4).
    pub max_retransmit: u32,
    /// NSTART: outstanding requests per peer (1); 0 is treated as 1.
    pub nstart: usize,
    /// EXCHANGE_LIFETIME in milliseconds (247 000): how long CON Message IDs are remembered.
    pub exchange_lifetime_ms: u64,
    /// NON_LIFETIME in milliseconds (145 000): how long NON Message IDs are remembered.
    pub non_lifetime_ms: u64,
    /// How long to wait for a separate response after an empty ACK, or for the response to a NON request
    /// (120 000, Leshan's default).
    pub response_timeout_ms: u64,
    /// Length of generated tokens, 1..=8 (8).
    pub token_len: usize,
    /// Preferred block size for block-wise transfers (RFC 7959): 16..=1024 (1024). Other values are clamped
    /// into that range and rounded down to a power of two.
    pub block_size: usize,
    /// Largest body reassembled from a Block1 upload or a Block2 download (8 MiB). Larger uploads are
    /// answered 4.13 Request Entity Too Large with Size1; larger downloads fail.
    pub max_body_size: usize,
    /// RFC 7641 §4.5: an observation notified with NON messages gets a CON notification at least this often
    /// (24 h in milliseconds).
    pub notify_con_interval_ms: u64,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            ack_timeout_ms: 2000,
            ack_random_factor: 1.5,
            max_retransmit: 4,
            nstart: 1,
            exchange_lifetime_ms: 247_000,
            non_lifetime_ms: 145_000,
            response_timeout_ms: 120_000,
            token_len: 8,
            block_size: 1024,
            max_body_size: 8 * 1024 * 1024,
            notify_con_interval_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// Identifies an outbound request or notification for the events about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies an inbound request that awaits the application's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponderId(pub u64);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub peer: SocketAddr,
    /// Encoded CoAP message.
    pub bytes: Vec<u8>,
}

/// Something the application must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new (deduplicated) request; answer it with [`Endpoint::respond`].
    IncomingRequest {
        peer: SocketAddr,
        request: Message,
        responder: ResponderId,
    },
    /// The response to a request sent with [`Endpoint::send_request`].
    Response {
        id: RequestId,
        peer: SocketAddr,
        message: Message,
    },
    /// A further notification for an observation established by request `id` (RFC 7641).
    Notification {
        id: RequestId,
        peer: SocketAddr,
        message: Message,
    },
    /// A CON notification sent with [`Endpoint::send_notification`] was acknowledged.
    Delivered { id: RequestId },
    /// No ACK after all retransmissions, or no response within the response timeout.
    Timeout { id: RequestId },
    /// The peer rejected the request or notification with RST.
    Reset { id: RequestId },
    /// A separate CON response could not be delivered (no ACK, or RST when `reset`).
    ResponseFailed {
        responder: ResponderId,
        peer: SocketAddr,
        reset: bool,
    },
    /// An observation of one of our resources by `peer` (identified by its token) ended: the observer sent RST
    /// to a notification, deregistered with Observe=1, or a CON notification was not acknowledged.
    ObservationCancelled {
        peer: SocketAddr,
        token: Token,
        reason: CancelReason,
    },
    /// A block-wise transfer for request `id` could not be completed (ETag kept changing, body too large, or
    /// the peer's blocks did not fit together). No other event follows for `id`.
    BlockwiseFailed {
        id: RequestId,
        peer: SocketAddr,
        error: BlockwiseError,
    },
}

/// Errors of the endpoint API.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EndpointError {
    /// The responder was already used, or its exchange expired.
    #[error("unknown or already answered responder {0:?}")]
    UnknownResponder(ResponderId),
    /// A notification needs the token of its observation.
    #[error("a notification must carry the observation's token")]
    MissingToken,
}

/// Counters of what the endpoint dropped or repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that failed to decode or broke a message-layer rule.
    pub rejected: u64,
    /// Duplicate CON/NON messages received.
    pub duplicates: u64,
    /// CON retransmissions sent.
    pub retransmissions: u64,
    /// Responses, ACKs and RSTs that matched nothing.
    pub unmatched: u64,
    /// Notifications dropped as stale or reordered (RFC 7641 §3.4).
    pub stale_notifications: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Request,
    Notification,
    Separate(ResponderId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExState {
    Queued,
    AwaitAck {
        retransmits: u32,
        timeout_ms: u64,
    },
    AwaitResponse,
    /// A NON notification/response, remembered only to match an RST.
    NonSent,
}

#[derive(Debug)]
struct Exchange {
    origin: Origin,
    peer: SocketAddr,
    token: Token,
    mid: u16,
    message: Message,
    bytes: Vec<u8>,
    observe_register: bool,
    counts_nstart: bool,
    state: ExState,
    generation: u32,
    /// Block-wise progress of a request (None for plain requests, notifications and separate responses).
    transfer: Option<Box<Transfer>>,
}

#[derive(Debug)]
struct DedupEntry {
    expires: Timestamp,
    reply: Option<Vec<u8>>,
    responder: Option<u64>,
    acked: bool,
}

#[derive(Debug)]
struct Responder {
    peer: SocketAddr,
    mid: u16,
    token: Token,
    confirmable: bool,
    /// What the endpoint needs of the request to post-process the response (observe, block-wise).
    ctx: RespCtx,
}

#[derive(Debug, Default)]
struct PeerState {
    in_flight: usize,
    queue: VecDeque<u64>,
}

type PeerKey<T> = (SocketAddr, T);

/// The sans-IO endpoint. See the module documentation.
pub struct Endpoint {
    config: EndpointConfig,
    rng: Box<dyn RandomSource>,
    next_mid: u16,
    next_id: u64,
    exchanges: HashMap<u64, Exchange>,
    by_mid: HashMap<PeerKey<u16>, u64>,
    by_token: HashMap<PeerKey<Token>, u64>,
    observations: HashMap<PeerKey<Token>, ClientObservation>,
    observers: HashMap<PeerKey<Token>, ServerObservation>,
    block1_rx: HashMap<PeerKey<Vec<u8>>, Block1Rx>,
    block2_cache: HashMap<PeerKey<Vec<u8>>, Block2Cache>,
    peers: HashMap<SocketAddr, PeerState>,
    dedup: HashMap<PeerKey<u16>, DedupEntry>,
    dedup_con: VecDeque<(Timestamp, PeerKey<u16>)>,
    dedup_non: VecDeque<(Timestamp, PeerKey<u16>)>,
    responders: HashMap<u64, Responder>,
    timers: BinaryHeap<Reverse<(Timestamp, u64, u32)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    /// The latest time passed to any method (for work triggered by methods without a time argument).
    last_now: Timestamp,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("exchanges", &self.exchanges.len())
            .field("dedup", &self.dedup.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint seeded from process entropy.
    pub fn new(config: EndpointConfig) -> Self {
        Self::with_rng(config, Box::new(SplitMix64::from_entropy()))
    }

    /// A deterministic endpoint (tests, simulations).
    pub fn with_seed(config: EndpointConfig, seed: u64) -> Self {
        Self::with_rng(config, Box::new(SplitMix64::new(seed)))
    }

    /// An endpoint using the given random source for Message IDs, tokens and retransmission jitter.
    pub fn with_rng(config: EndpointConfig, mut rng: Box<dyn RandomSource>) -> Self {
        let next_mid = rng.next_u64() as u16;
        Endpoint {
            config,
            rng,
            next_mid,
            next_id: 1,
            exchanges: HashMap::new(),
            by_mid: HashMap::new(),
            by_token: HashMap::new(),
            observations: HashMap::new(),
            observers: HashMap::new(),
            block1_rx: HashMap::new(),
            block2_cache: HashMap::new(),
            peers: HashMap::new(),
            dedup: HashMap::new(),
            dedup_con: VecDeque::new(),
            dedup_non: VecDeque::new(),
            responders: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_now: Timestamp::ZERO,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of outbound exchanges (queued, awaiting ACK or response) — for tests and metrics.
    pub fn outstanding(&self) -> usize {
        self.exchanges.len()
    }

    // ------------------------------------------------------------------ outbound API

    /// Send a request (CON unless `request.mtype` is NON). A token is generated if the request has none; the
    /// Message ID is always assigned here. With `nstart` requests already outstanding to `peer`, the request
    /// is queued and sent when one completes.
    ///
    /// A payload larger than `block_size` is sent block-wise (Block1) unless the request already carries a
    /// Block1 option; a response with Block2 is fetched to the end unless the request asked for a block
    /// other than 0 itself. Either way exactly one [`Event::Response`], [`Event::Timeout`], [`Event::Reset`]
    /// or [`Event::BlockwiseFailed`] follows, with the whole body and the request's token.
    pub fn send_request(&mut self, now: Timestamp, peer: SocketAddr, request: Message) -> RequestId {
        RequestId(self.submit(now, peer, request, None))
    }

    /// Queue or start a request exchange; `transfer` continues a block-wise transfer (notification fetches).
    fn submit(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        mut request: Message,
        transfer: Option<Box<Transfer>>,
    ) -> u64 {
        self.last_now = self.last_now.max(now);
        request.mtype = if request.mtype == MessageType::Non {
            MessageType::Non
        } else {
            MessageType::Con
        };
        if request.token.is_empty() || self.by_token.contains_key(&(peer, request.token)) {
            request.token = self.fresh_token(peer);
        }
        let id = self.alloc_id();
        let observe_register = matches!(request.code, Code::GET | Code::FETCH) && request.observe() == Some(0);
        let (request, transfer) = match transfer {
            Some(t) => (request, Some(t)),
            None => self.maybe_start_upload(request),
        };
        let token = request.token;
        self.exchanges.insert(
            id,
            Exchange {
                origin: Origin::Request,
                peer,
                token,
                mid: 0,
                message: request,
                bytes: Vec::new(),
                observe_register,
                counts_nstart: false,
                state: ExState::Queued,
                generation: 0,
                transfer,
            },
        );
        self.by_token.insert((peer, token), id);
        let nstart = self.config.nstart.max(1);
        let ps = self.peers.entry(peer).or_default();
        if ps.in_flight < nstart && ps.queue.is_empty() {
            ps.in_flight += 1;
            self.start(now, id);
        } else {
            ps.queue.push_back(id);
        }
        id
    }

    /// Send a notification (or any other non-request message, e.g. a late response) to `peer` as CON or NON
    /// (per `message.mtype`; ACK/RST become CON). It must carry the observation's token. A CON notification
    /// yields [`Event::Delivered`], [`Event::Reset`] or [`Event::Timeout`]; a NON one yields [`Event::Reset`]
    /// if the peer rejects it within NON_LIFETIME, and nothing otherwise.
    ///
    /// For a registered observation (see [`Endpoint::respond`]) a 2.xx notification without Observe gets the
    /// next sequence number (24 bits, wrapping; an Observe set by the application is kept and continued from),
    /// a NON notification becomes CON if no CON was sent for `notify_con_interval_ms`, and a payload above the
    /// negotiated block size is sent as Block2 block 0 with the rest served on request (RFC 7959 §3.4). A
    /// non-2.xx notification ends the observation (RFC 7641 §4.2). RST or a CON timeout ends it too, with
    /// [`Event::ObservationCancelled`] after the [`Event::Reset`] / [`Event::Timeout`].
    pub fn send_notification(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        mut message: Message,
    ) -> Result<RequestId, EndpointError> {
        if message.token.is_empty() {
            return Err(EndpointError::MissingToken);
        }
        self.last_now = self.last_now.max(now);
        if message.mtype != MessageType::Non {
            message.mtype = MessageType::Con;
        }
        let message = self.prepare_notification(now, peer, message);
        let id = self.alloc_id();
        self.insert_unqueued(now, id, Origin::Notification, peer, message);
        Ok(RequestId(id))
    }

    /// Abandon a request (queued or in flight) or notification without any further event. Later messages for
    /// it are treated as unmatched.
    pub fn cancel(&mut self, now: Timestamp, id: RequestId) {
        self.last_now = self.last_now.max(now);
        if let Some(ex) = self.exchanges.get(&id.0) {
            if ex.state == ExState::Queued {
                if let Some(ps) = self.peers.get_mut(&ex.peer) {
                    ps.queue.retain(|q| *q != id.0);
                }
            }
        }
        self.finish(now, id.0);
        self.cancel_observation(id);
    }

    /// Stop accepting notifications of the observation established by request `id`; later notifications are
    /// answered with RST (the reactive cancellation of RFC 7641 §3.6).
    pub fn cancel_observation(&mut self, id: RequestId) {
        let keys: Vec<_> = self
            .observations
            .iter()
            .filter(|(_, o)| o.id == id.0)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.forget_observation(k);
        }
    }

    // ------------------------------------------------------------------ inbound API

    /// Answer an inbound request. The token is copied from the request. If the request was a CON that has not
    /// been acknowledged yet, the response is piggybacked on the ACK; if an empty ACK was already sent, it goes
    /// as a separate CON response (NON if `response.mtype` is NON) with retransmission; a NON request gets a NON
    /// response (CON if `response.mtype` is CON).
    ///
    /// A 2.xx response carrying Observe to a GET/FETCH with Observe=0 registers the peer as an observer of
    /// this token (any other answer to such a request removes an existing registration). A payload above the
    /// block size (or the smaller size the request asked for with Block2) is sent as Block2 block 0, with Size2
    /// and an ETag (generated if the response has none, for 2.xx), and later blocks are served by the endpoint
    /// from a copy kept for EXCHANGE_LIFETIME after the last access. A response that already carries Block2
    /// is sent unchanged. The answer to a reassembled Block1 upload gets the final Block1 option added.
    pub fn respond(&mut self, now: Timestamp, responder: ResponderId, response: Message) -> Result<(), EndpointError> {
        let r = self
            .responders
            .remove(&responder.0)
            .ok_or(EndpointError::UnknownResponder(responder))?;
        self.last_now = self.last_now.max(now);
        self.note_observe_response(now, &r, &response);
        let mut response = self.prepare_block2(now, r.peer, &r.ctx, response);
        response.token = r.token;
        if let Some(b1) = r.ctx.block1_ack {
            if !response.options.contains(crate::message::opt::BLOCK1) {
                response.set_block1(b1);
            }
        }
        let key = (r.peer, r.mid);
        let acked = self.dedup.get(&key).map(|e| e.acked).unwrap_or(false);
        if let Some(e) = self.dedup.get_mut(&key) {
            e.responder = None;
        }
        if r.confirmable && !acked {
            response.mtype = MessageType::Ack;
            response.message_id = r.mid;
            let bytes = response.encode();
            if let Some(e) = self.dedup.get_mut(&key) {
                e.reply = Some(bytes.clone());
                e.acked = true;
            }
            self.transmits.push_back(Transmit { peer: r.peer, bytes });
            return Ok(());
        }
        response.mtype = match (r.confirmable, response.mtype) {
            (true, MessageType::Non) => MessageType::Non,
            (true, _) => MessageType::Con,
            (false, MessageType::Con) => MessageType::Con,
            (false, _) => MessageType::Non,
        };
        let id = self.alloc_id();
        self.insert_unqueued(now, id, Origin::Separate(responder), r.peer, response);
        Ok(())
    }

    /// Acknowledge a CON request now with an empty ACK, announcing a separate response (RFC 7252 §5.2.2). Does
    /// nothing for NON requests or requests already acknowledged.
    pub fn accept(&mut self, responder: ResponderId) -> Result<(), EndpointError> {
        let r = self
            .responders
            .get(&responder.0)
            .ok_or(EndpointError::UnknownResponder(responder))?;
        if !r.confirmable {
            return Ok(());
        }
        let (peer, mid) = (r.peer, r.mid);
        if let Some(e) = self.dedup.get_mut(&(peer, mid)) {
            if !e.acked {
                let bytes = Message::empty_ack(mid).encode();
                e.acked = true;
                e.reply = Some(bytes.clone());
                self.transmits.push_back(Transmit { peer, bytes });
            }
        }
        Ok(())
    }

    /// Process one received datagram.
    pub fn handle_datagram(&mut self, now: Timestamp, peer: SocketAddr, bytes: &[u8]) {
        self.last_now = self.last_now.max(now);
        self.purge_dedup(now);
        self.purge_blocks(now);
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(MessageError::UnsupportedVersion { .. }) | Err(MessageError::TooShort { .. }) => {
                self.stats.rejected += 1;
                return;
            }
            Err(_) => {
                self.stats.rejected += 1;
                // RFC 7252 §4.2: a CON that cannot be processed is rejected with RST.
                if let [b0, _, hi, lo, ..] = bytes {
                    if (b0 >> 4) & 3 == 0 {
                        let rst = Message::reset(u16::from_be_bytes([*hi, *lo])).encode();
                        self.transmits.push_back(Transmit { peer, bytes: rst });
                    }
                }
                return;
            }
        };
        match msg.mtype {
            MessageType::Ack => self.on_ack(now, peer, msg),
            MessageType::Rst => self.on_rst(now, peer, msg),
            MessageType::Con | MessageType::Non => {
                if msg.is_empty() {
                    if msg.mtype == MessageType::Con {
                        // CoAP ping.
                        let rst = Message::reset(msg.message_id).encode();
                        self.transmits.push_back(Transmit { peer, bytes: rst });
                    } else {
                        self.stats.rejected += 1;
                    }
                } else if msg.is_request() {
                    self.on_request(now, peer, msg);
                } else {
                    self.on_response(now, peer, msg);
                }
            }
        }
    }

    // ------------------------------------------------------------------ timers and output

    /// The earliest time [`Endpoint::handle_timeout`] must be called, if any.
    pub fn poll_timeout(&mut self) -> Option<Timestamp> {
        while let Some(Reverse((_, id, gen))) = self.timers.peek() {
            if self.timer_valid(*id, *gen) {
                break;
            }
            self.timers.pop();
        }
        let t = self.timers.peek().map(|Reverse((t, _, _))| *t);
        let d = [self.dedup_con.front(), self.dedup_non.front()]
            .into_iter()
            .flatten()
            .map(|(t, _)| *t)
            .chain(self.block_deadline())
            .min();
        match (t, d) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run every timer due at `now`: retransmissions, exchange failures, dedup expiry.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.last_now = self.last_now.max(now);
        self.purge_dedup(now);
        self.purge_blocks(now);
        while let Some(Reverse((t, id, gen))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if !self.timer_valid(id, gen) {
                continue;
            }
            self.on_exchange_timer(now, id);
        }
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------------ internals

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn alloc_mid(&mut self, peer: SocketAddr) -> u16 {
        let mut mid = self.next_mid;
        for _ in 0..=u16::MAX {
            mid = self.next_mid;
            self.next_mid = self.next_mid.wrapping_add(1);
            if !self.by_mid.contains_key(&(peer, mid)) {
                break;
            }
        }
        mid
    }

    fn fresh_token(&mut self, peer: SocketAddr) -> Token {
        let len = self.config.token_len.clamp(1, 8);
        let mut attempt: u64 = 0;
        loop {
            // Adding the attempt number guarantees progress even with a degenerate random source.
            let bytes = self.rng.next_u64().wrapping_add(attempt).to_be_bytes();
            attempt += 1;
            let token = Token::try_from_slice(bytes.get(..len).unwrap_or(&bytes)).unwrap_or(Token::from_u64(0));
            if !self.by_token.contains_key(&(peer, token)) && !self.observations.contains_key(&(peer, token)) {
                return token;
            }
        }
    }

    fn initial_timeout(&mut self) -> u64 {
        let base = self.config.ack_timeout_ms;
        let factor = self.config.ack_random_factor.max(1.0);
        let span = ((base as f64) * (factor - 1.0)) as u64;
        base + self.rng.below_inclusive(span)
    }

    fn timer_valid(&self, id: u64, gen: u32) -> bool {
        self.exchanges
            .get(&id)
            .is_some_and(|e| e.generation == gen && e.state != ExState::Queued)
    }

    fn schedule(&mut self, id: u64, at: Timestamp) {
        if let Some(ex) = self.exchanges.get_mut(&id) {
            ex.generation = ex.generation.wrapping_add(1);
            self.timers.push(Reverse((at, id, ex.generation)));
        }
    }

    /// Insert an exchange that bypasses NSTART (notifications, separate responses) and start it.
    fn insert_unqueued(&mut self, now: Timestamp, id: u64, origin: Origin, peer: SocketAddr, message: Message) {
        let token = message.token;
        self.exchanges.insert(
            id,
            Exchange {
                origin,
                peer,
                token,
                mid: 0,
                message,
                bytes: Vec::new(),
                observe_register: false,
                counts_nstart: false,
                state: ExState::Queued,
                generation: 0,
                transfer: None,
            },
        );
        self.start(now, id);
    }

    /// Assign a Message ID, encode, transmit and arm the first timer.
    fn start(&mut self, now: Timestamp, id: u64) {
        let Some(peer) = self.exchanges.get(&id).map(|e| e.peer) else {
            return;
        };
        let mid = self.alloc_mid(peer);
        let timeout = self.initial_timeout();
        let response_timeout = self.config.response_timeout_ms;
        let non_lifetime = self.config.non_lifetime_ms;
        let Some(ex) = self.exchanges.get_mut(&id) else { return };
        ex.mid = mid;
        ex.message.message_id = mid;
        ex.bytes = ex.message.encode();
        ex.counts_nstart = ex.origin == Origin::Request;
        let confirmable = ex.message.mtype == MessageType::Con;
        let (state, at) = if confirmable {
            (
                ExState::AwaitAck {
                    retransmits: 0,
                    timeout_ms: timeout,
                },
                now.plus_millis(timeout),
            )
        } else if ex.origin == Origin::Request {
            (ExState::AwaitResponse, now.plus_millis(response_timeout))
        } else {
            (ExState::NonSent, now.plus_millis(non_lifetime))
        };
        ex.state = state;
        let bytes = ex.bytes.clone();
        self.by_mid.insert((peer, mid), id);
        self.transmits.push_back(Transmit { peer, bytes });
        self.schedule(id, at);
    }

    /// Remove an exchange and everything pointing at it; release its NSTART slot and start the next queued
    /// request of that peer.
    fn finish(&mut self, now: Timestamp, id: u64) -> Option<Exchange> {
        let ex = self.exchanges.remove(&id)?;
        if self.by_mid.get(&(ex.peer, ex.mid)) == Some(&id) {
            self.by_mid.remove(&(ex.peer, ex.mid));
        }
        if self.by_token.get(&(ex.peer, ex.token)) == Some(&id) {
            self.by_token.remove(&(ex.peer, ex.token));
        }
        if ex.counts_nstart {
            let mut next = None;
            if let Some(ps) = self.peers.get_mut(&ex.peer) {
                ps.in_flight = ps.in_flight.saturating_sub(1);
                if ps.in_flight < self.config.nstart.max(1) {
                    next = ps.queue.pop_front();
                    if next.is_some() {
                        ps.in_flight += 1;
                    }
                }
                if ps.in_flight == 0 && ps.queue.is_empty() {
                    self.peers.remove(&ex.peer);
                }
            }
            if let Some(n) = next {
                self.start(now, n);
            }
        }
        Some(ex)
    }

    fn on_exchange_timer(&mut self, now: Timestamp, id: u64) {
        let Some(ex) = self.exchanges.get_mut(&id) else { return };
        match ex.state {
            ExState::AwaitAck {
                retransmits,
                timeout_ms,
            } if retransmits < self.config.max_retransmit => {
                let next = timeout_ms.saturating_mul(2);
                ex.state = ExState::AwaitAck {
                    retransmits: retransmits + 1,
                    timeout_ms: next,
                };
                let t = Transmit {
                    peer: ex.peer,
                    bytes: ex.bytes.clone(),
                };
                self.transmits.push_back(t);
                self.stats.retransmissions += 1;
                self.schedule(id, now.plus_millis(next));
            }
            ExState::AwaitAck { .. } | ExState::AwaitResponse => {
                if let Some(ex) = self.finish(now, id) {
                    self.fail(ex, id, false);
                }
            }
            ExState::NonSent => {
                self.finish(now, id);
            }
            ExState::Queued => {}
        }
    }

    fn fail(&mut self, ex: Exchange, id: u64, reset: bool) {
        if let Some(t) = &ex.transfer {
            if let Some(obs_id) = t.notify {
                // A notification's remaining blocks could not be fetched: the next notification will do.
                self.notify_fetch_done(ex.peer, t.original.token, obs_id, id, None);
                return;
            }
            if t.registered {
                // The registration response never completed: do not keep an observation the app never saw.
                self.forget_observation((ex.peer, t.original.token));
            }
        }
        let ev = match (ex.origin, reset) {
            (Origin::Separate(responder), _) => Event::ResponseFailed {
                responder,
                peer: ex.peer,
                reset,
            },
            (_, true) => Event::Reset { id: RequestId(id) },
            (_, false) => Event::Timeout { id: RequestId(id) },
        };
        self.events.push_back(ev);
        if ex.origin != Origin::Request {
            self.end_observer_after_failure(ex.peer, ex.token, reset);
        }
    }

    fn on_ack(&mut self, now: Timestamp, peer: SocketAddr, msg: Message) {
        if msg.is_request() {
            self.stats.rejected += 1;
            return;
        }
        let Some(&id) = self.by_mid.get(&(peer, msg.message_id)) else {
            self.stats.unmatched += 1;
            return;
        };
        let Some(ex) = self.exchanges.get_mut(&id) else { return };
        if !matches!(ex.state, ExState::AwaitAck { .. }) {
            self.stats.unmatched += 1;
            return;
        }
        match ex.origin {
            Origin::Request if msg.is_empty() => {
                ex.state = ExState::AwaitResponse;
                self.by_mid.remove(&(peer, msg.message_id));
                let at = now.plus_millis(self.config.response_timeout_ms);
                self.schedule(id, at);
            }
            Origin::Request => {
                if msg.token != ex.token {
                    self.stats.unmatched += 1;
                    return;
                }
                self.complete_request(now, id, peer, msg);
            }
            Origin::Notification => {
                self.finish(now, id);
                self.events.push_back(Event::Delivered { id: RequestId(id) });
            }
            Origin::Separate(_) => {
                self.finish(now, id);
            }
        }
    }

    fn complete_request(&mut self, now: Timestamp, id: u64, peer: SocketAddr, msg: Message) {
        let (msg, done) = match self.client_block_step(now, id, peer, msg) {
            blockwise::Step::Next(next) => {
                self.continue_exchange(now, id, next);
                return;
            }
            blockwise::Step::Failed(error) => {
                if let Some(ex) = self.finish(now, id) {
                    self.block_failed(ex, id, error);
                }
                return;
            }
            blockwise::Step::Final(m) => (m, false),
            blockwise::Step::Done(m) => (m, true),
        };
        let Some(ex) = self.finish(now, id) else { return };
        let (template, registered) = match ex.transfer {
            Some(t) => {
                if let Some(obs_id) = t.notify {
                    self.notify_fetch_done(peer, t.original.token, obs_id, id, done.then_some(msg));
                    return;
                }
                (t.original, t.registered)
            }
            None => (ex.message, false),
        };
        if ex.observe_register && !registered && msg.code.is_success() {
            if let Some(seq) = msg.observe() {
                self.register_observation(now, peer, template.token, id, template, seq);
            }
        }
        self.events.push_back(Event::Response {
            id: RequestId(id),
            peer,
            message: msg,
        });
    }

    fn on_rst(&mut self, now: Timestamp, peer: SocketAddr, msg: Message) {
        if !msg.is_empty() {
            self.stats.rejected += 1;
            return;
        }
        let Some(&id) = self.by_mid.get(&(peer, msg.message_id)) else {
            self.stats.unmatched += 1;
            return;
        };
        if let Some(ex) = self.finish(now, id) {
            self.fail(ex, id, true);
        }
    }

    /// Look up the dedup cache. Returns true if the message is a duplicate (and replays the cached reply).
    fn dedup_hit(&mut self, peer: SocketAddr, msg: &Message) -> bool {
        let Some(e) = self.dedup.get_mut(&(peer, msg.message_id)) else {
            return false;
        };
        self.stats.duplicates += 1;
        if msg.mtype == MessageType::Con {
            if let Some(reply) = &e.reply {
                self.transmits.push_back(Transmit {
                    peer,
                    bytes: reply.clone(),
                });
            } else if e.responder.is_some() && !e.acked {
                // Still being processed: acknowledge now, the response will be separate (RFC 7252 §5.2.2).
                let bytes = Message::empty_ack(msg.message_id).encode();
                e.acked = true;
                e.reply = Some(bytes.clone());
                self.transmits.push_back(Transmit { peer, bytes });
            }
        }
        true
    }

    fn remember(&mut self, now: Timestamp, peer: SocketAddr, msg: &Message, reply: Option<Vec<u8>>) {
        let con = msg.mtype == MessageType::Con;
        let lifetime = if con {
            self.config.exchange_lifetime_ms
        } else {
            self.config.non_lifetime_ms
        };
        let expires = now.plus_millis(lifetime);
        let key = (peer, msg.message_id);
        self.dedup.insert(
            key,
            DedupEntry {
                expires,
                reply,
                responder: None,
                acked: false,
            },
        );
        if con {
            self.dedup_con.push_back((expires, key));
        } else {
            self.dedup_non.push_back((expires, key));
        }
    }

    fn on_request(&mut self, now: Timestamp, peer: SocketAddr, msg: Message) {
        if self.dedup_hit(peer, &msg) {
            return;
        }
        self.remember(now, peer, &msg, None);
        let rid = self.alloc_id();
        self.responders.insert(
            rid,
            Responder {
                peer,
                mid: msg.message_id,
                token: msg.token,
                confirmable: msg.mtype == MessageType::Con,
                ctx: RespCtx::of(&msg),
            },
        );
        if let Some(e) = self.dedup.get_mut(&(peer, msg.message_id)) {
            e.responder = Some(rid);
        }
        if let Err(MessageError::BadOption { number, reason }) = msg.options.validate_critical() {
            self.stats.rejected += 1;
            let resp = Message::new(MessageType::Ack, Code::BAD_OPTION)
                .with_payload(format!("option {number}: {reason}").into_bytes());
            // The responder was just created, so this cannot fail.
            let _ = self.respond(now, ResponderId(rid), resp);
            return;
        }
        self.note_observe_request(peer, &msg);
        let msg = match self.server_block_request(now, peer, rid, msg) {
            Some(m) => m,
            None => return,
        };
        self.events.push_back(Event::IncomingRequest {
            peer,
            request: msg,
            responder: ResponderId(rid),
        });
    }

    fn on_response(&mut self, now: Timestamp, peer: SocketAddr, msg: Message) {
        if self.dedup_hit(peer, &msg) {
            return;
        }
        let con = msg.mtype == MessageType::Con;
        let ack = || Message::empty_ack(msg.message_id).encode();
        let key = (peer, msg.token);
        let reply;
        let waiting = self.by_token.get(&key).copied().filter(|id| {
            self.exchanges
                .get(id)
                .is_some_and(|e| e.origin == Origin::Request && e.state != ExState::Queued)
        });
        if let Some(id) = waiting {
            reply = if con { Some(ack()) } else { None };
            self.remember(now, peer, &msg, reply.clone());
            if self.is_late_notification(id, &msg) {
                self.stats.stale_notifications += 1;
            } else {
                self.complete_request(now, id, peer, msg);
            }
        } else if self.observations.contains_key(&key) {
            reply = if con { Some(ack()) } else { None };
            self.remember(now, peer, &msg, reply.clone());
            self.on_notification(now, peer, msg);
        } else {
            self.stats.unmatched += 1;
            reply = Some(Message::reset(msg.message_id).encode());
            self.remember(now, peer, &msg, reply.clone());
        }
        if let Some(bytes) = reply {
            self.transmits.push_back(Transmit { peer, bytes });
        }
    }

    fn purge_dedup(&mut self, now: Timestamp) {
        for con in [true, false] {
            loop {
                let queue = if con { &mut self.dedup_con } else { &mut self.dedup_non };
                let Some(&(t, key)) = queue.front() else { break };
                if t > now {
                    break;
                }
                queue.pop_front();
                if self.dedup.get(&key).is_some_and(|e| e.expires == t) {
                    if let Some(e) = self.dedup.remove(&key) {
                        if let Some(r) = e.responder {
                            self.responders.remove(&r);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod block_tests;
#[cfg(test)]
mod migrate_tests;
#[cfg(test)]
mod observe_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
