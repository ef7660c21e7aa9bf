//! lwm2m-coap: the CoAP layer of lwm2m-rs.
//!
//! - [`message`]: strict RFC 7252 codec ([`Message::decode`], [`Message::encode`]), typed option access and
//!   builders, RFC 7959 [`Block`] values, and RFC 8323 TCP framing ([`message::tcp`]). Every decoder returns a
//!   typed [`MessageError`] naming the byte offset and reason; none panics on input.
//! - [`endpoint`]: a sans-IO CoAP/UDP endpoint ([`Endpoint`]) acting as client and server on one socket: CON
//!   retransmission, piggybacked and separate responses, deduplication with cached replies, token matching,
//!   NSTART queueing, Observe (RFC 7641) on both sides and transparent block-wise transfers (RFC 7959). It is
//!   driven with explicit [`Timestamp`]s.
//! - [`sim`]: a deterministic lossy network and virtual clock for testing endpoints without sleeping.
//! - [`time`]: the [`Timestamp`] type.
//! - [`transport`]: tokio drivers; `UdpEndpoint` runs an endpoint on one UDP socket for all peers (feature `udp`,
//!   on by default).
//!
//! Quick tour:
//!
//! ```
//! use lwm2m_coap::{Code, Endpoint, EndpointConfig, Event, Message, Timestamp};
//! let server = "127.0.0.1:5683".parse().unwrap();
//! let mut ep = Endpoint::with_seed(EndpointConfig::default(), 1);
//! let id = ep.send_request(Timestamp::ZERO, server, Message::request(Code::GET, "/3/0/0"));
//! let tx = ep.poll_transmit().unwrap();
//! assert_eq!(tx.peer, server);
//! // ... the driver sends tx.bytes; later, the peer's piggybacked answer arrives:
//! let req = Message::decode(&tx.bytes).unwrap();
//! let ack = Message::response_to(&req, Code::CONTENT).with_payload("Acme");
//! ep.handle_datagram(Timestamp::from_millis(40), server, &ack.encode());
//! match ep.poll_event() {
//!     Some(Event::Response { id: got, message, .. }) => {
//!         assert_eq!(got, id);
//!         assert_eq!(message.payload, b"Acme");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod message;
pub mod sim;
pub mod time;
pub mod transport;

pub use endpoint::{
    BlockwiseError, CancelReason, Endpoint, EndpointConfig, EndpointError, Event, RandomSource, RequestId, ResponderId,
    SplitMix64, Stats, Transmit,
};
pub use message::tcp::{decode_frame, decode_frame_with_limit, encode_frame, TcpMessage};
pub use message::{Block, Code, Message, MessageError, MessageType, Options, Token};
pub use time::Timestamp;
pub use transport::security::{DatagramSecurity, PeerIdentity, SecurityCloseReason, SecurityError, SecurityEvent};
#[cfg(feature = "udp")]
pub use transport::udp::{
    Delivery, DriverConfig, DriverStats, Incoming, IncomingRequest, Observation, RequestError, UdpEndpoint, UdpHandle,
};
