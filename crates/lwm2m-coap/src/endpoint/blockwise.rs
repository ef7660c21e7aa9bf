//! Block-wise transfers (RFC 7959) for the endpoint.
//!
//! Client side, a request exchange carries a [`Transfer`] while its body goes out in Block1 blocks or its
//! response comes in as Block2 blocks. Each further block is a new message on the same exchange (same
//! [`super::RequestId`], same NSTART slot) with a fresh token, so that a late answer to an earlier block can
//! never be taken for the answer to a later one; the application sees the request's own token in the result.
//!
//! Server side, Block1 uploads are reassembled per (peer, request key) and large responses are cut into Block2
//! blocks from a cached copy. The request key is the method and every option except Block1, Block2, Size1,
//! Size2 and Observe (plus the payload of a single-block FETCH), so the blocks of one transfer share it.

use std::net::SocketAddr;

use thiserror::Error;

use super::{Endpoint, Event, ExState, Exchange, RequestId, ResponderId};
use crate::message::{opt, Block, Code, Message, MessageType, Token};
use crate::time::Timestamp;

/// How often a Block2 download restarts from block 0 after the ETag changed before it fails.
pub(super) const MAX_RESTARTS: u32 = 2;

/// Why a block-wise transfer failed ([`Event::BlockwiseFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum BlockwiseError {
    /// The representation kept changing (different ETag) while its blocks were fetched.
    #[error("the representation changed during the block-wise transfer")]
    EtagChanged,
    /// The body would exceed `max_body_size`, or needs more than 2^20 blocks.
    #[error("the body exceeds the configured maximum size")]
    TooLarge,
    /// The peer answered with a block that does not continue the transfer (wrong offset or short block).
    #[error("the peer sent a block that does not continue the transfer")]
    Inconsistent,
}

/// Block size in bytes for a size exponent.
pub(super) fn block_size(szx: u8) -> usize {
    1usize << (szx.min(6) + 4)
}

/// The request key: method and options except Block1/Block2/Size1/Size2/Observe; a FETCH payload is part of
/// it unless the request is a Block1 block.
pub(super) fn request_key(msg: &Message) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    k.push(msg.code.0);
    for (n, v) in msg.options.iter() {
        if matches!(n, opt::BLOCK1 | opt::BLOCK2 | opt::SIZE1 | opt::SIZE2 | opt::OBSERVE) {
            continue;
        }
        k.extend_from_slice(&n.to_be_bytes());
        k.extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_be_bytes());
        k.extend_from_slice(v);
    }
    if msg.code == Code::FETCH && !msg.payload.is_empty() && !msg.options.contains(opt::BLOCK1) {
        k.push(0xFF);
        k.extend_from_slice(&msg.payload);
    }
    k
}

/// A 4-byte ETag derived from the body (FNV-1a), for bodies sent block-wise without one.
pub(super) fn etag_of(body: &[u8]) -> [u8; 4] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    ((h ^ (h >> 32)) as u32).to_be_bytes()
}

/// The block `requested` asks for (its offset), cut from `body` in blocks of `szx` (never larger than the
/// requested size): the template's code and options plus Block2 (and Size2 on block 0; Observe only on block
/// 0). A block beyond the end gives 4.02 Bad Option.
pub(super) fn slice(template: &Message, body: &[u8], requested: Block, szx: u8) -> Message {
    let out_of_range = || Message::new(MessageType::Ack, Code::BAD_OPTION).with_payload("block out of range");
    let size = block_size(szx);
    let offset = requested.offset();
    if offset > body.len() || (offset == body.len() && offset > 0) {
        return out_of_range();
    }
    let num = offset / size;
    let end = offset.saturating_add(size).min(body.len());
    let more = end < body.len();
    let Some(b) = u32::try_from(num).ok().and_then(|n| Block::new(n, more, szx).ok()) else {
        return out_of_range();
    };
    let mut m = template.clone();
    if num > 0 {
        m.options.remove(opt::OBSERVE);
        m.options.remove(opt::SIZE2);
    } else {
        m.set_size2(u32::try_from(body.len()).unwrap_or(u32::MAX));
    }
    m.set_block2(b);
    m.payload = body.get(offset..end).unwrap_or_default().to_vec();
    m
}

/// What the endpoint keeps of an inbound request to post-process the application's answer.
#[derive(Debug, Clone)]
pub(super) struct RespCtx {
    /// Request method.
    pub method: Code,
    /// The request's Observe value.
    pub observe: Option<u32>,
    /// The request's Block2 (size negotiation or a later block).
    pub block2: Option<Block>,
    /// Block1 to echo in the final response of a reassembled upload.
    pub block1_ack: Option<Block>,
    /// Request key (see the module docs).
    pub key: Vec<u8>,
}

impl RespCtx {
    pub(super) fn of(msg: &Message) -> Self {
        RespCtx {
            method: msg.code,
            observe: msg.observe(),
            block2: msg.block2(),
            block1_ack: None,
            key: request_key(msg),
        }
    }
}

/// A Block1 upload being reassembled (server side).
#[derive(Debug)]
pub(super) struct Block1Rx {
    pub body: Vec<u8>,
    pub expires: Timestamp,
}

/// A body being served block by block (server side).
#[derive(Debug)]
pub(super) struct Block2Cache {
    /// Code and options of the response (payload empty).
    pub template: Message,
    pub body: Vec<u8>,
    pub expires: Timestamp,
}

/// Block1 upload progress.
#[derive(Debug)]
pub(super) struct Upload {
    /// Size exponent for the next block.
    szx: u8,
    /// Offset of the block in flight.
    offset: usize,
    /// Length of the block in flight.
    sent: usize,
}

/// Block2 download progress.
#[derive(Debug)]
pub(super) struct Download {
    /// The response carrying block 0 (payload removed): code and options of the result.
    first: Message,
    body: Vec<u8>,
    etag: Option<Vec<u8>>,
}

/// Block-wise state of a client exchange.
#[derive(Debug)]
pub(super) struct Transfer {
    /// The request as the application sent it (its token, full payload).
    pub original: Message,
    upload: Option<Upload>,
    /// The request body went out in Block1 blocks.
    uploaded: bool,
    download: Option<Download>,
    /// For a notification's remaining blocks: the observation's request id.
    pub notify: Option<u64>,
    /// The observation was registered at block 0 of the registration response.
    pub registered: bool,
    restarts: u32,
}

/// What to do after a response on a block-wise exchange.
#[derive(Debug)]
pub(super) enum Step {
    /// Send this request next (same exchange, new token and Message ID).
    Next(Message),
    /// The response ends the exchange as it is (no Block2 download took place, or an error interrupted it).
    Final(Message),
    /// A Block2 download completed: the assembled response.
    Done(Message),
    /// The transfer failed.
    Failed(BlockwiseError),
}

impl Transfer {
    pub(super) fn new(original: Message) -> Self {
        Transfer {
            original,
            upload: None,
            uploaded: false,
            download: None,
            notify: None,
            registered: false,
            restarts: 0,
        }
    }

    /// The Block1 request for the current upload offset.
    fn next_upload(&mut self) -> Step {
        let Some(up) = self.upload.as_mut() else {
            return Step::Failed(BlockwiseError::Inconsistent);
        };
        let size = block_size(up.szx);
        let total = self.original.payload.len();
        let end = up.offset.saturating_add(size).min(total);
        let more = end < total;
        let Some(b) = u32::try_from(up.offset / size)
            .ok()
            .and_then(|n| Block::new(n, more, up.szx).ok())
        else {
            return Step::Failed(BlockwiseError::TooLarge);
        };
        let mut m = self.original.clone();
        m.payload = self.original.payload.get(up.offset..end).unwrap_or_default().to_vec();
        m.set_block1(b);
        if up.offset == 0 {
            m.set_size1(u32::try_from(total).unwrap_or(u32::MAX));
        } else {
            m.options.remove(opt::SIZE1);
        }
        up.sent = end - up.offset.min(end);
        Step::Next(m)
    }

    /// The request for Block2 block `num` of size `szx`: the original options without Observe and Block1
    /// (RFC 7959 §3.3, §3.4), without payload except for a single-block FETCH.
    fn next_download(&mut self, num: usize, szx: u8) -> Step {
        let Some(b) = u32::try_from(num).ok().and_then(|n| Block::new(n, false, szx).ok()) else {
            return Step::Failed(BlockwiseError::TooLarge);
        };
        let mut m = self.original.clone();
        for o in [opt::OBSERVE, opt::BLOCK1, opt::SIZE1, opt::SIZE2] {
            m.options.remove(o);
        }
        if self.uploaded || m.code != Code::FETCH {
            m.payload.clear();
        }
        m.set_block2(b);
        Step::Next(m)
    }

    /// A response that ends the transfer as it is, shown with the application's token.
    fn plain(&self, mut msg: Message) -> Message {
        if self.uploaded {
            msg.options.remove(opt::BLOCK1);
        }
        msg.token = self.original.token;
        msg
    }

    /// Advance with response `msg`.
    pub(super) fn step(&mut self, msg: Message, max_body: usize) -> Step {
        if let Some(up) = self.upload.as_mut() {
            let total = self.original.payload.len();
            let end = up.offset.saturating_add(up.sent);
            if msg.code == Code::CONTINUE && end < total {
                if let Some(b) = msg.block1() {
                    // RFC 7959 §2.3: use the server's smaller size for the remaining blocks.
                    up.szx = up.szx.min(b.szx);
                }
                up.offset = end;
                return self.next_upload();
            }
            if msg.code == Code::REQUEST_ENTITY_TOO_LARGE && up.offset == 0 {
                if let Some(b) = msg.block1().filter(|b| b.szx < up.szx) {
                    // The server rejected block 0 but told us a size it accepts: start over with it.
                    up.szx = b.szx;
                    return self.next_upload();
                }
            }
            self.upload = None;
        }
        let Some(b) = msg.block2().filter(|_| msg.code.is_success()) else {
            return Step::Final(self.plain(msg));
        };
        match &self.download {
            Some(dl) => {
                if msg.etag() != dl.etag.as_deref() {
                    // The representation changed under us: start over, or give up.
                    self.download = None;
                    self.restarts += 1;
                    if self.notify.is_some() || self.restarts > MAX_RESTARTS {
                        return Step::Failed(BlockwiseError::EtagChanged);
                    }
                    return self.next_download(0, b.szx);
                }
                if b.offset() != dl.body.len() {
                    return Step::Failed(BlockwiseError::Inconsistent);
                }
            }
            None => {
                if b.num != 0 || !b.more {
                    return Step::Final(self.plain(msg));
                }
                let mut first = msg.clone();
                first.payload = Vec::new();
                self.download = Some(Download {
                    first,
                    body: Vec::new(),
                    etag: msg.etag().map(<[u8]>::to_vec),
                });
            }
        }
        let Some(dl) = self.download.as_mut() else {
            return Step::Failed(BlockwiseError::Inconsistent);
        };
        if dl.body.len().saturating_add(msg.payload.len()) > max_body {
            return Step::Failed(BlockwiseError::TooLarge);
        }
        if b.more && msg.payload.len() != b.size() {
            return Step::Failed(BlockwiseError::Inconsistent);
        }
        dl.body.extend_from_slice(&msg.payload);
        if b.more {
            let num = dl.body.len() / b.size();
            return self.next_download(num, b.szx);
        }
        let Some(dl) = self.download.take() else {
            return Step::Failed(BlockwiseError::Inconsistent);
        };
        let mut m = dl.first;
        m.payload = dl.body;
        m.options.remove(opt::BLOCK2);
        m.options.remove(opt::SIZE2);
        Step::Done(self.plain(m))
    }
}

impl Endpoint {
    /// The configured block size exponent.
    pub(super) fn block_szx(&self) -> u8 {
        let size = self.config.block_size.clamp(16, 1024);
        let mut szx = 0u8;
        while szx < 6 && (1usize << (szx + 5)) <= size {
            szx += 1;
        }
        szx
    }

    /// Client side: split a large request body into Block1 blocks. Returns the first message to send.
    pub(super) fn maybe_start_upload(&self, request: Message) -> (Message, Option<Box<Transfer>>) {
        let szx = self.block_szx();
        if !request.is_request() || request.options.contains(opt::BLOCK1) || request.payload.len() <= block_size(szx) {
            return (request, None);
        }
        let mut tr = Transfer::new(request);
        tr.uploaded = true;
        tr.upload = Some(Upload {
            szx,
            offset: 0,
            sent: 0,
        });
        match tr.next_upload() {
            Step::Next(m) => (m, Some(Box::new(tr))),
            _ => (tr.original, None),
        }
    }

    /// Client side: a response for request exchange `id` arrived; decide whether the transfer goes on.
    pub(super) fn client_block_step(&mut self, now: Timestamp, id: u64, peer: SocketAddr, msg: Message) -> Step {
        let max = self.config.max_body_size;
        let Some(ex) = self.exchanges.get_mut(&id) else {
            return Step::Final(msg);
        };
        if ex.transfer.is_none() {
            // A request that asked for a later block itself does block-wise by hand.
            let manual = matches!(ex.message.block2(), Some(b) if b.num > 0);
            let starts = !manual && msg.code.is_success() && msg.block2().is_some_and(|b| b.num == 0 && b.more);
            if !starts {
                return Step::Final(msg);
            }
            ex.transfer = Some(Box::new(Transfer::new(ex.message.clone())));
        }
        let observe_register = ex.observe_register;
        let Some(tr) = ex.transfer.as_mut() else {
            return Step::Final(msg);
        };
        let was_downloading = tr.download.is_some();
        let step = tr.step(msg, max);
        let mut register = None;
        if observe_register && !was_downloading && !tr.registered {
            if let Some(seq) = tr.download.as_ref().and_then(|d| d.first.observe()) {
                // Block 0 of the registration response establishes the observation now, so notifications
                // arriving while the rest is fetched are matched (RFC 7959 §3.4).
                tr.registered = true;
                register = Some((tr.original.clone(), seq));
            }
        }
        if let Some((req, seq)) = register {
            let token = req.token;
            self.register_observation(now, peer, token, id, req, seq);
        }
        step
    }

    /// Send the next message of a block-wise exchange: fresh token and Message ID, same exchange and slot.
    pub(super) fn continue_exchange(&mut self, now: Timestamp, id: u64, mut next: Message) {
        let Some(ex) = self.exchanges.get(&id) else { return };
        let (peer, mid, token, mtype) = (ex.peer, ex.mid, ex.token, ex.message.mtype);
        if self.by_mid.get(&(peer, mid)) == Some(&id) {
            self.by_mid.remove(&(peer, mid));
        }
        if self.by_token.get(&(peer, token)) == Some(&id) {
            self.by_token.remove(&(peer, token));
        }
        let token = self.fresh_token(peer);
        let Some(ex) = self.exchanges.get_mut(&id) else { return };
        next.token = token;
        next.message_id = 0;
        next.mtype = mtype;
        ex.message = next;
        ex.token = token;
        ex.state = ExState::Queued;
        self.by_token.insert((peer, token), id);
        self.start(now, id);
    }

    /// A client transfer failed (the exchange is already finished).
    pub(super) fn block_failed(&mut self, ex: Exchange, id: u64, error: BlockwiseError) {
        if let Some(t) = &ex.transfer {
            if let Some(obs_id) = t.notify {
                self.notify_fetch_done(ex.peer, t.original.token, obs_id, id, None);
                return;
            }
            if t.registered {
                self.forget_observation((ex.peer, t.original.token));
            }
        }
        self.events.push_back(Event::BlockwiseFailed {
            id: RequestId(id),
            peer: ex.peer,
            error,
        });
    }

    /// Observer side: a fresh notification carries Block2 block 0 with more to come: fetch the rest with the
    /// registration's options (no Observe) and deliver the whole notification at the end.
    pub(super) fn start_notify_fetch(&mut self, now: Timestamp, peer: SocketAddr, msg: Message) {
        let key = (peer, msg.token);
        let max = self.config.max_body_size;
        let Some(obs) = self.observations.get_mut(&key) else {
            return;
        };
        let obs_id = obs.id;
        let template = obs.request.clone();
        let prev = obs.fetch.take();
        if let Some(p) = prev {
            self.drop_exchange(p);
        }
        let mut tr = Transfer::new(template);
        tr.notify = Some(obs_id);
        if let Step::Next(mut m) = tr.step(msg, max) {
            m.token = Token::EMPTY;
            let fid = self.submit(now, peer, m, Some(Box::new(tr)));
            if let Some(o) = self.observations.get_mut(&key) {
                o.fetch = Some(fid);
            }
        }
    }

    /// Server side: cut a response into Block2 blocks if it is too large or a later block was asked for.
    pub(super) fn prepare_block2(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        ctx: &RespCtx,
        response: Message,
    ) -> Message {
        if response.options.contains(opt::BLOCK2) {
            return response;
        }
        let cfg = self.block_szx();
        let szx = ctx.block2.map_or(cfg, |b| b.szx.min(cfg));
        let requested = ctx.block2.unwrap_or(Block {
            num: 0,
            more: false,
            szx,
        });
        if response.payload.len() <= block_size(szx) && (requested.num == 0 || !response.code.is_success()) {
            return response;
        }
        self.cache_and_slice(now, peer, ctx.key.clone(), response, requested, szx)
    }

    /// Server side: a notification for an observer whose registration has request key `key`.
    pub(super) fn block2_notification(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        key: Vec<u8>,
        szx: u8,
        message: Message,
    ) -> Message {
        if message.options.contains(opt::BLOCK2) || message.payload.len() <= block_size(szx) {
            return message;
        }
        let first = Block {
            num: 0,
            more: false,
            szx,
        };
        self.cache_and_slice(now, peer, key, message, first, szx)
    }

    fn cache_and_slice(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        key: Vec<u8>,
        mut response: Message,
        requested: Block,
        szx: u8,
    ) -> Message {
        let body = std::mem::take(&mut response.payload);
        if response.code.is_success() && response.etag().is_none() {
            response.set_etag(&etag_of(&body));
        }
        let out = slice(&response, &body, requested, szx);
        if body.len() > block_size(szx) {
            let expires = now.plus_millis(self.config.exchange_lifetime_ms);
            self.block2_cache.insert(
                (peer, key),
                Block2Cache {
                    template: response,
                    body,
                    expires,
                },
            );
        }
        out
    }

    /// Server side: handle the block-wise part of an inbound request. Returns the request to show to the
    /// application, or `None` if the endpoint answered it itself.
    pub(super) fn server_block_request(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        rid: u64,
        msg: Message,
    ) -> Option<Message> {
        if let Some(b1) = msg.block1() {
            return self.server_block1(now, peer, rid, msg, b1);
        }
        let Some(b2) = msg.block2().filter(|b| b.num > 0) else {
            return Some(msg);
        };
        let lifetime = self.config.exchange_lifetime_ms;
        let szx = b2.szx.min(self.block_szx());
        let resp = {
            let Some(c) = self.block2_cache.get_mut(&(peer, request_key(&msg))) else {
                // Nothing cached (expired, or never sent block-wise by us): the application answers, and the
                // endpoint cuts out the requested block.
                return Some(msg);
            };
            c.expires = now.plus_millis(lifetime);
            slice(&c.template, &c.body, b2, szx)
        };
        let _ = self.respond(now, ResponderId(rid), resp);
        None
    }

    /// Server side: one Block1 block.
    fn server_block1(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        rid: u64,
        msg: Message,
        b1: Block,
    ) -> Option<Message> {
        let key = (peer, request_key(&msg));
        let max = self.config.max_body_size;
        let expires = now.plus_millis(self.config.exchange_lifetime_ms);
        let reply = |code: Code| Message::new(MessageType::Ack, code);
        let too_large = || {
            let mut m = reply(Code::REQUEST_ENTITY_TOO_LARGE);
            m.set_size1(u32::try_from(max).unwrap_or(u32::MAX));
            m
        };
        if b1.num == 0 {
            self.block1_rx.remove(&key);
            if msg
                .size1()
                .is_some_and(|s| usize::try_from(s).map_or(true, |s| s > max))
            {
                let _ = self.respond(now, ResponderId(rid), too_large());
                return None;
            }
            self.block1_rx.insert(
                key.clone(),
                Block1Rx {
                    body: Vec::new(),
                    expires,
                },
            );
        }
        let offset = b1.offset();
        let error = match self.block1_rx.get_mut(&key) {
            None => Some(reply(Code::REQUEST_ENTITY_INCOMPLETE)),
            Some(st) if offset > st.body.len() => Some(reply(Code::REQUEST_ENTITY_INCOMPLETE)),
            Some(_) if b1.more && msg.payload.len() != b1.size() => {
                Some(reply(Code::BAD_REQUEST).with_payload("short Block1 block"))
            }
            Some(_) if offset.saturating_add(msg.payload.len()) > max => Some(too_large()),
            Some(st) => {
                // A block at an earlier offset (the client repeated one) overwrites what followed it.
                st.body.truncate(offset);
                st.body.extend_from_slice(&msg.payload);
                st.expires = expires;
                None
            }
        };
        if let Some(e) = error {
            self.block1_rx.remove(&key);
            let _ = self.respond(now, ResponderId(rid), e);
            return None;
        }
        if b1.more {
            let szx = b1.szx.min(self.block_szx());
            let mut cont = reply(Code::CONTINUE);
            if let Ok(b) = Block::new(b1.num, true, szx) {
                cont.set_block1(b);
            }
            let _ = self.respond(now, ResponderId(rid), cont);
            return None;
        }
        let st = self.block1_rx.remove(&key)?;
        let mut whole = msg;
        whole.payload = st.body;
        whole.options.remove(opt::BLOCK1);
        whole.options.remove(opt::SIZE1);
        if let Some(r) = self.responders.get_mut(&rid) {
            r.ctx.block1_ack = Some(Block {
                num: b1.num,
                more: false,
                szx: b1.szx,
            });
            r.ctx.key = key.1;
            r.ctx.block2 = whole.block2();
        }
        Some(whole)
    }

    /// Drop expired partial uploads and cached bodies.
    pub(super) fn purge_blocks(&mut self, now: Timestamp) {
        self.block1_rx.retain(|_, v| v.expires > now);
        self.block2_cache.retain(|_, v| v.expires > now);
    }

    /// When the next partial upload or cached body expires.
    pub(super) fn block_deadline(&self) -> Option<Timestamp> {
        let a = self.block1_rx.values().map(|v| v.expires);
        let b = self.block2_cache.values().map(|v| v.expires);
        a.chain(b).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg_with_block2(num: u32, more: bool, szx: u8, payload: &[u8]) -> Message {
        let mut m = Message::new(MessageType::Ack, Code::CONTENT).with_payload(payload.to_vec());
        m.set_block2(Block::new(num, more, szx).unwrap());
        m
    }

    #[test]
    fn slice_cuts_blocks_with_size2_and_range_checks() {
        let body: Vec<u8> = (0..100u8).collect();
        let mut tpl = Message::new(MessageType::Ack, Code::CONTENT);
        tpl.set_observe(7);
        let b = |num, szx| Block::new(num, false, szx).unwrap();
        let m0 = slice(&tpl, &body, b(0, 1), 1);
        assert_eq!(m0.block2(), Some(Block::new(0, true, 1).unwrap()));
        assert_eq!((m0.size2(), m0.observe()), (Some(100), Some(7)));
        assert_eq!(m0.payload, body[..32]);
        let m3 = slice(&tpl, &body, b(3, 1), 1);
        assert_eq!(m3.block2(), Some(Block::new(3, false, 1).unwrap()));
        assert_eq!(m3.payload, body[96..]);
        assert_eq!(
            (m3.observe(), m3.size2()),
            (None, None),
            "later blocks carry neither Observe nor Size2"
        );
        // A larger requested size is served in our smaller size at the same offset (RFC 7959 §2.4).
        let m = slice(&tpl, &body, b(1, 2), 1);
        assert_eq!(m.block2(), Some(Block::new(2, true, 1).unwrap()));
        assert_eq!(m.payload, body[64..96]);
        // Beyond the end.
        assert_eq!(slice(&tpl, &body, b(4, 1), 1).code, Code::BAD_OPTION);
        assert_eq!(slice(&tpl, &body[..64], b(2, 1), 1).code, Code::BAD_OPTION);
        // An empty body is one empty block.
        let e = slice(&tpl, &[], b(0, 1), 1);
        assert_eq!((e.code, e.block2().map(|b| b.more)), (Code::CONTENT, Some(false)));
    }

    #[test]
    fn request_key_ignores_block_size_observe_options() {
        let mut a = Message::request(Code::GET, "/5/0/0");
        a.set_observe(0);
        a.set_block2(Block::new(0, false, 6).unwrap());
        let mut b = Message::request(Code::GET, "/5/0/0");
        b.set_block2(Block::new(3, false, 2).unwrap());
        b.set_size2(0);
        assert_eq!(request_key(&a), request_key(&b));
        assert_ne!(request_key(&a), request_key(&Message::request(Code::GET, "/5/0/1")));
        assert_ne!(request_key(&a), request_key(&Message::request(Code::PUT, "/5/0/0")));
        let f1 = Message::request(Code::FETCH, "/").with_payload("a");
        let f2 = Message::request(Code::FETCH, "/").with_payload("b");
        assert_ne!(
            request_key(&f1),
            request_key(&f2),
            "single-block FETCH payload is part of the key"
        );
        let mut g1 = f1.clone();
        g1.set_block1(Block::new(0, true, 0).unwrap());
        assert_eq!(request_key(&g1), request_key(&Message::request(Code::FETCH, "/")));
    }

    #[test]
    fn download_detects_short_block_offset_and_size_limit() {
        let mut tr = Transfer::new(Message::request(Code::GET, "/x"));
        assert!(matches!(
            tr.step(msg_with_block2(0, true, 0, &[1; 16]), 1000),
            Step::Next(_)
        ));
        // Wrong offset.
        assert!(matches!(
            tr.step(msg_with_block2(2, true, 0, &[1; 16]), 1000),
            Step::Failed(BlockwiseError::Inconsistent)
        ));
        let mut tr = Transfer::new(Message::request(Code::GET, "/x"));
        tr.step(msg_with_block2(0, true, 0, &[1; 16]), 1000);
        // A short non-final block.
        assert!(matches!(
            tr.step(msg_with_block2(1, true, 0, &[1; 15]), 1000),
            Step::Failed(BlockwiseError::Inconsistent)
        ));
        let mut tr = Transfer::new(Message::request(Code::GET, "/x"));
        assert!(matches!(
            tr.step(msg_with_block2(0, true, 0, &[1; 16]), 15),
            Step::Failed(BlockwiseError::TooLarge)
        ));
    }

    #[test]
    fn block_szx_rounds_down_and_clamps() {
        let mut ep = Endpoint::with_seed(Default::default(), 1);
        for (size, szx) in [(1024, 6), (4096, 6), (1000, 5), (100, 2), (16, 0), (1, 0), (64, 2)] {
            ep.config.block_size = size;
            assert_eq!(ep.block_szx(), szx, "block_size {size}");
        }
    }
}
