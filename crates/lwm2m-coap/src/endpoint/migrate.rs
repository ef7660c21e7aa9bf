//! Peer migration: moving what the endpoint holds with one transport address to another, for a peer whose
//! address changed while its state lives on — typically a device behind a NAT that rebinds its public address
//! and port (digest §4.2: the client then sends an Update from its new address, and the server moves the
//! registration there).
//!
//! Everything keyed by the peer's address moves: observations we hold on the peer (with their notification
//! matching state), the peer's observations of our resources, outbound requests and notifications (queued,
//! awaiting an ACK or a response; their NSTART slots and queue order come along), and — for a whole-peer
//! migration — the deduplication entries of its messages (a retransmission from the new address of a message
//! first received from the old one is a duplicate), the inbound requests awaiting the application's answer
//! (the answer goes to the new address) and the block-wise transfer states. Tokens, Message IDs, request ids
//! and the application's delivery channels are kept. Relations whose key (token, Message ID, request key) is
//! already taken on the new address stay on the old one and are counted as conflicts: nothing is dropped.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{Endpoint, ExState, Origin, RequestId};
use crate::message::Token;
use crate::time::Timestamp;

/// What [`Endpoint::migrate_peer`] or [`Endpoint::migrate_tokens`] moved from the old address to the new one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMigration {
    /// Observations we hold on the peer (the ids of their registration requests).
    pub observations: Vec<RequestId>,
    /// The peer's observations of our resources (their tokens).
    pub observers: Vec<Token>,
    /// Outbound requests and notifications, queued or in flight.
    pub exchanges: Vec<RequestId>,
    /// Other state: separate responses in flight, deduplication entries, inbound requests awaiting an answer,
    /// block-wise transfer states.
    pub other: usize,
    /// Relations left on the old address because the new address already has one with the same key.
    pub conflicts: usize,
}

impl PeerMigration {
    /// True if nothing was moved and nothing conflicted (e.g. the old address was unknown).
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
            && self.observers.is_empty()
            && self.exchanges.is_empty()
            && self.other == 0
            && self.conflicts == 0
    }
}

impl Endpoint {
    /// Move everything held with `old` to `new` (see the module documentation of `endpoint::migrate`): a
    /// notification from `new` on a migrated observation's token is then delivered as [`super::Event::Notification`]
    /// for the same request id, one from `old` is unmatched (RST); retransmissions, responses and later
    /// notifications of ours go to `new`. State `new` already has is kept and merged with; on a key clash the
    /// relation stays on `old` ([`PeerMigration::conflicts`]). An unknown `old`, or `old == new`, is a no-op.
    pub fn migrate_peer(&mut self, now: Timestamp, old: SocketAddr, new: SocketAddr) -> PeerMigration {
        self.migrate(now, old, new, None)
    }

    /// Like [`Endpoint::migrate_peer`], but only the relations on `tokens`: our observations and the peer's
    /// observations with these tokens, and outbound exchanges carrying them (including block-wise fetches of
    /// such a notification). Deduplication entries and inbound requests stay on `old`. For a peer address
    /// that now belongs to someone else (another client took the old address over) this moves one client's
    /// relations without touching the other's.
    pub fn migrate_tokens(
        &mut self,
        now: Timestamp,
        old: SocketAddr,
        new: SocketAddr,
        tokens: &[Token],
    ) -> PeerMigration {
        self.migrate(now, old, new, Some(tokens))
    }

    fn migrate(&mut self, now: Timestamp, old: SocketAddr, new: SocketAddr, only: Option<&[Token]>) -> PeerMigration {
        let mut out = PeerMigration::default();
        if old == new {
            return out;
        }
        self.last_now = self.last_now.max(now);
        let selected = |t: &Token| match only {
            None => true,
            Some(ts) => ts.contains(t),
        };
        self.migrate_exchanges(now, old, new, &selected, &mut out);
        let moved_observers = self.migrate_observations(old, new, &selected, &mut out);
        match only {
            None => self.migrate_inbound(old, new, &mut out),
            Some(_) => {
                // The blocks of a migrated observer's large notification are served at the new address.
                let keys: Vec<Vec<u8>> = self
                    .block2_cache
                    .keys()
                    .filter(|(p, k)| *p == old && moved_observers.contains(k))
                    .map(|(_, k)| k.clone())
                    .collect();
                for k in keys {
                    move_entry(&mut self.block2_cache, (old, k.clone()), (new, k), &mut out);
                }
            }
        }
        out
    }

    /// Outbound exchanges: re-key by Message ID and token, carry NSTART slots and queue order over, then start
    /// whatever may start on either address.
    fn migrate_exchanges(
        &mut self,
        now: Timestamp,
        old: SocketAddr,
        new: SocketAddr,
        selected: &dyn Fn(&Token) -> bool,
        out: &mut PeerMigration,
    ) {
        let mut ids: Vec<u64> = self
            .exchanges
            .iter()
            .filter(|(_, e)| {
                e.peer == old
                    && (selected(&e.token) || e.transfer.as_ref().is_some_and(|t| selected(&t.original.token)))
            })
            .map(|(id, _)| *id)
            .collect();
        // Submission order, so that queued requests keep their order on the new address.
        ids.sort_unstable();
        let old_queue: Vec<u64> = self
            .peers
            .get(&old)
            .map(|p| p.queue.iter().copied().collect())
            .unwrap_or_default();
        let mut moved_queued = HashSet::new();
        let mut moved_in_flight = 0usize;
        for id in ids {
            let Some(ex) = self.exchanges.get(&id) else { continue };
            let (token, mid, queued) = (ex.token, ex.mid, ex.state == ExState::Queued);
            let owns_mid = !queued && self.by_mid.get(&(old, mid)) == Some(&id);
            let owns_token = self.by_token.get(&(old, token)) == Some(&id);
            let token_clash = owns_token && self.by_token.contains_key(&(new, token));
            if queued && token_clash {
                // Not on the wire yet: it can take a fresh token, as `send_request` does on a clash.
                let fresh = self.fresh_token(new);
                self.by_token.remove(&(old, token));
                self.by_token.insert((new, fresh), id);
                if let Some(ex) = self.exchanges.get_mut(&id) {
                    ex.token = fresh;
                    ex.message.token = fresh;
                    if let Some(t) = ex.transfer.as_mut().filter(|t| t.original.token == token) {
                        t.original.token = fresh;
                    }
                }
            } else if (owns_mid && self.by_mid.contains_key(&(new, mid))) || token_clash {
                out.conflicts += 1;
                continue;
            }
            if owns_mid {
                self.by_mid.remove(&(old, mid));
                self.by_mid.insert((new, mid), id);
            }
            if owns_token && self.by_token.get(&(old, token)) == Some(&id) {
                self.by_token.remove(&(old, token));
                self.by_token.insert((new, token), id);
            }
            let Some(ex) = self.exchanges.get_mut(&id) else {
                continue;
            };
            ex.peer = new;
            if queued {
                moved_queued.insert(id);
            } else if ex.counts_nstart {
                moved_in_flight += 1;
            }
            match ex.origin {
                Origin::Request | Origin::Notification => out.exchanges.push(RequestId(id)),
                Origin::Separate(_) => out.other += 1,
            }
        }
        if moved_queued.is_empty() && moved_in_flight == 0 {
            return;
        }
        if let Some(ps) = self.peers.get_mut(&old) {
            ps.in_flight = ps.in_flight.saturating_sub(moved_in_flight);
            ps.queue.retain(|q| !moved_queued.contains(q));
        }
        let ps = self.peers.entry(new).or_default();
        ps.in_flight += moved_in_flight;
        ps.queue
            .extend(old_queue.into_iter().filter(|q| moved_queued.contains(q)));
        for peer in [old, new] {
            self.start_queued(now, peer);
        }
    }

    /// Start queued requests of `peer` while NSTART allows; forget an idle peer.
    fn start_queued(&mut self, now: Timestamp, peer: SocketAddr) {
        let nstart = self.config.nstart.max(1);
        loop {
            let Some(ps) = self.peers.get_mut(&peer) else { return };
            if ps.in_flight == 0 && ps.queue.is_empty() {
                self.peers.remove(&peer);
                return;
            }
            if ps.in_flight >= nstart {
                return;
            }
            let Some(next) = ps.queue.pop_front() else { return };
            ps.in_flight += 1;
            self.start(now, next);
        }
    }

    /// Both sides of observe. Returns the request keys of the observers moved (for their Block2 caches).
    fn migrate_observations(
        &mut self,
        old: SocketAddr,
        new: SocketAddr,
        selected: &dyn Fn(&Token) -> bool,
        out: &mut PeerMigration,
    ) -> HashSet<Vec<u8>> {
        let mut keys: Vec<Token> = self
            .observations
            .keys()
            .filter(|(p, t)| *p == old && selected(t))
            .map(|(_, t)| *t)
            .collect();
        keys.sort_unstable();
        let mut touched = Vec::new();
        for token in keys {
            if self.observations.contains_key(&(new, token)) {
                out.conflicts += 1;
                touched.push((old, token));
                continue;
            }
            if let Some(obs) = self.observations.remove(&(old, token)) {
                out.observations.push(RequestId(obs.id));
                self.observations.insert((new, token), obs);
                touched.push((new, token));
            }
        }
        // A notification's remaining blocks are fetched from where its observation now lives; a fetch that
        // ended up elsewhere is abandoned (the next notification will do).
        for key in touched {
            let stray = self
                .observations
                .get(&key)
                .and_then(|o| o.fetch)
                .filter(|f| self.exchanges.get(f).is_some_and(|e| e.peer != key.0));
            if let Some(f) = stray {
                if let Some(o) = self.observations.get_mut(&key) {
                    o.fetch = None;
                }
                self.drop_exchange(f);
            }
        }

        let mut keys: Vec<Token> = self
            .observers
            .keys()
            .filter(|(p, t)| *p == old && selected(t))
            .map(|(_, t)| *t)
            .collect();
        keys.sort_unstable();
        let mut moved = HashSet::new();
        for token in keys {
            if self.observers.contains_key(&(new, token)) {
                out.conflicts += 1;
                continue;
            }
            if let Some(obs) = self.observers.remove(&(old, token)) {
                out.observers.push(token);
                moved.insert(obs.key.clone());
                self.observers.insert((new, token), obs);
            }
        }
        moved
    }

    /// Whole-peer migration of inbound state: deduplication entries (with the inbound requests awaiting an
    /// answer that they point to) and block-wise transfers.
    fn migrate_inbound(&mut self, old: SocketAddr, new: SocketAddr, out: &mut PeerMigration) {
        let mut mids: Vec<u16> = self.dedup.keys().filter(|(p, _)| *p == old).map(|(_, m)| *m).collect();
        mids.sort_unstable();
        let mut moved = HashSet::new();
        for mid in mids {
            if self.dedup.contains_key(&(new, mid)) {
                out.conflicts += 1;
                continue;
            }
            let Some(entry) = self.dedup.remove(&(old, mid)) else {
                continue;
            };
            if let Some(r) = entry.responder.and_then(|rid| self.responders.get_mut(&rid)) {
                r.peer = new;
            }
            self.dedup.insert((new, mid), entry);
            moved.insert(mid);
            out.other += 1;
        }
        if !moved.is_empty() {
            // Rename in place: the expiry queues stay in time order.
            for queue in [&mut self.dedup_con, &mut self.dedup_non] {
                for (_, key) in queue.iter_mut() {
                    if key.0 == old && moved.contains(&key.1) {
                        key.0 = new;
                    }
                }
            }
        }
        // Inbound requests whose dedup entry is gone (none normally) follow the peer as well.
        for r in self.responders.values_mut() {
            if r.peer == old && !self.dedup.contains_key(&(old, r.mid)) {
                r.peer = new;
            }
        }
        let keys: Vec<Vec<u8>> = self
            .block1_rx
            .keys()
            .filter(|(p, _)| *p == old)
            .map(|(_, k)| k.clone())
            .collect();
        for k in keys {
            move_entry(&mut self.block1_rx, (old, k.clone()), (new, k), out);
        }
        let keys: Vec<Vec<u8>> = self
            .block2_cache
            .keys()
            .filter(|(p, _)| *p == old)
            .map(|(_, k)| k.clone())
            .collect();
        for k in keys {
            move_entry(&mut self.block2_cache, (old, k.clone()), (new, k), out);
        }
    }
}

/// Move one map entry unless the destination key is taken.
fn move_entry<K: std::hash::Hash + Eq, V>(
    map: &mut std::collections::HashMap<K, V>,
    from: K,
    to: K,
    out: &mut PeerMigration,
) {
    if map.contains_key(&to) {
        out.conflicts += 1;
        return;
    }
    if let Some(v) = map.remove(&from) {
        map.insert(to, v);
        out.other += 1;
    }
}
