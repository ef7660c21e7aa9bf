//! Drive one `Endpoint` with arbitrary operations from a few peers with an advancing clock; answer every
//! inbound request; drain transmits and events after each step. Nothing may panic.
//!
//! The endpoint uses 1-byte tokens and a fixed seed so the fuzzer can hit tokens and Message IDs; the
//! `Reply` operation also answers the last datagram sent to a peer with a matching ACK, so client-side
//! exchanges (piggybacked responses, Block2 continuations, observe registrations) complete.
#![no_main]
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use lwm2m_coap::message::Block;
use lwm2m_coap::{Code, Endpoint, EndpointConfig, Event, Message, MessageType, Timestamp, Token};

struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

const PEERS: [&str; 3] = ["127.0.0.1:5683", "[::1]:5683", "10.0.0.2:56830"];

fn peer(b: u8) -> SocketAddr {
    PEERS[usize::from(b) % PEERS.len()]
        .parse()
        .expect("fixed addresses parse")
}

fn body(len: usize, fill: u8) -> Vec<u8> {
    (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
}

fuzz_target!(|data: &[u8]| {
    let config = EndpointConfig {
        token_len: 1,
        block_size: 16,
        max_body_size: 4096,
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::with_seed(config, 7);
    let mut input = Input { data };
    let mut now = Timestamp::ZERO;
    let mut last_sent: [Option<Vec<u8>>; 3] = [None, None, None];
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 256 {
            break;
        }
        let arg = input.byte().unwrap_or(0);
        match op % 6 {
            // A raw datagram from a peer.
            0 => {
                let len = usize::from(input.byte().unwrap_or(0));
                let bytes = input.bytes(len);
                ep.handle_datagram(now, peer(arg), bytes);
            }
            // Time passes (up to ~65 s per step), then the timers run.
            1 => {
                let ms = u64::from(arg) * 256 + u64::from(input.byte().unwrap_or(0));
                now = now.plus_millis(ms);
                ep.handle_timeout(now);
            }
            // The application sends a request, possibly large (Block1) or an observe registration.
            2 => {
                let code = [Code::GET, Code::POST, Code::PUT, Code::DELETE, Code::FETCH][usize::from(arg) % 5];
                let mut m = Message::request(code, "/3/0");
                if arg & 0x10 != 0 {
                    m.set_observe(0);
                }
                if arg & 0x20 != 0 {
                    m.mtype = MessageType::Non;
                }
                let len = usize::from(input.byte().unwrap_or(0)) * 4;
                m.payload = body(len, arg);
                ep.send_request(now, peer(arg >> 6), m);
            }
            // The application sends a notification with a guessable token.
            3 => {
                let token = Token::try_from_slice(&[input.byte().unwrap_or(0)]).unwrap_or(Token::EMPTY);
                let mtype = if arg & 1 == 0 {
                    MessageType::Con
                } else {
                    MessageType::Non
                };
                let len = usize::from(input.byte().unwrap_or(0));
                let m = Message::new(mtype, Code::CONTENT)
                    .with_token(token)
                    .with_payload(body(len, arg));
                let _ = ep.send_notification(now, peer(arg >> 6), m);
            }
            // The peer answers the last datagram we sent it with a piggybacked ACK.
            4 => {
                let i = usize::from(arg) % PEERS.len();
                if let Some(sent) = last_sent[i].as_ref().and_then(|b| Message::decode(b).ok()) {
                    let code = [
                        Code::CONTENT,
                        Code::CHANGED,
                        Code::CONTINUE,
                        Code::NOT_FOUND,
                        Code::EMPTY,
                    ][usize::from(input.byte().unwrap_or(0)) % 5];
                    let mut ack = Message::new(MessageType::Ack, code);
                    ack.message_id = sent.message_id;
                    if code != Code::EMPTY {
                        ack.token = sent.token;
                        let sel = input.byte().unwrap_or(0);
                        if sel & 1 != 0 {
                            ack.set_observe(u32::from(sel));
                        }
                        if sel & 2 != 0 {
                            if let Ok(b) = Block::new(u32::from(sel >> 4), sel & 4 != 0, 0) {
                                ack.set_block2(b);
                            }
                        }
                        if let Some(b1) = sent.block1() {
                            ack.set_block1(b1);
                        }
                        ack.payload = body(usize::from(sel >> 3), sel);
                    }
                    ep.handle_datagram(now, peer(arg), &ack.encode());
                }
            }
            // The application cancels something.
            _ => {
                ep.cancel(now, lwm2m_coap::RequestId(u64::from(arg)));
            }
        }
        // Answer every inbound request, sometimes with a body large enough for Block2.
        while let Some(ev) = ep.poll_event() {
            if let Event::IncomingRequest { request, responder, .. } = ev {
                let mut resp = Message::response_to(&request, Code::CONTENT);
                if request.observe() == Some(0) {
                    resp.set_observe(1);
                }
                resp.payload = body(usize::from(arg) * 2, arg);
                ep.respond(now, responder, resp).expect("a fresh responder is valid");
            }
        }
        while let Some(tx) = ep.poll_transmit() {
            let i = PEERS.iter().position(|p| p.parse::<SocketAddr>().ok() == Some(tx.peer));
            if let Some(i) = i {
                last_sent[i] = Some(tx.bytes);
            }
        }
        if let Some(t) = ep.poll_timeout() {
            assert!(t.as_millis() < u64::MAX, "timers stay finite");
        }
    }
});
