//! Waits for events on tokio channels. Two kinds of bound:
//! - an overall deadline for the whole wait ([`next_event`], [`next_event_strict`], [`next_matching`],
//!   [`next_map`]);
//! - a guard for each item ([`recv`], [`until`]): the wait goes on as long as items keep arriving within it
//!   (for tests on tokio's paused clock, where a long guard is only reached when something is stuck).

use std::future::Future;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

/// Runs `fut` to its end within `wait`; panics with `what` if the deadline passes first.
pub async fn within<F: Future>(wait: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(wait, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {wait:?}"),
    }
}

/// The next event of `rx` that `pred` accepts, within `wait` overall. Others are skipped; so are the events
/// lost when the receiver lagged behind. Panics when the channel closes or the deadline passes.
pub async fn next_event<T: Clone>(rx: &mut broadcast::Receiver<T>, wait: Duration, pred: impl FnMut(&T) -> bool) -> T {
    broadcast_wait(rx, wait, false, pred).await
}

/// Like [`next_event`], but a lagging receiver fails the wait (for tests that must see every event).
pub async fn next_event_strict<T: Clone>(
    rx: &mut broadcast::Receiver<T>,
    wait: Duration,
    pred: impl FnMut(&T) -> bool,
) -> T {
    broadcast_wait(rx, wait, true, pred).await
}

async fn broadcast_wait<T: Clone>(
    rx: &mut broadcast::Receiver<T>,
    wait: Duration,
    strict: bool,
    mut pred: impl FnMut(&T) -> bool,
) -> T {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) if strict => panic!("lagged by {n} events"),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("the event channel closed"),
            }
        }
    };
    within(wait, "a matching event", fut).await
}

/// The next item of `rx` that `pred` accepts, within `wait` overall (others are skipped). Panics when the
/// channel closes or the deadline passes.
pub async fn next_matching<T>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    wait: Duration,
    mut pred: impl FnMut(&T) -> bool,
) -> T {
    let fut = async {
        loop {
            let item = rx.recv().await.expect("the channel closed");
            if pred(&item) {
                return item;
            }
        }
    };
    within(wait, "a matching item", fut).await
}

/// The first `Some` that `f` makes of the items of `rx`, within `wait` overall (items it maps to `None` are
/// skipped). Panics when the channel closes or the deadline passes.
pub async fn next_map<T, R>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    wait: Duration,
    mut f: impl FnMut(&T) -> Option<R>,
) -> R {
    let fut = async {
        loop {
            let item = rx.recv().await.expect("the channel closed");
            if let Some(r) = f(&item) {
                return r;
            }
        }
    };
    within(wait, "a matching item", fut).await
}

/// The next item of `rx`, within `guard`. Panics when the channel closes or the guard passes.
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, guard: Duration) -> T {
    within(guard, "an item", rx.recv()).await.expect("the channel closed")
}

/// The first `Some` that `f` makes of the items of `rx`, each item awaited within `guard` (see [`recv`]).
pub async fn until<T, R>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    guard: Duration,
    mut f: impl FnMut(&T) -> Option<R>,
) -> R {
    loop {
        let item = recv(rx, guard).await;
        if let Some(r) = f(&item) {
            return r;
        }
    }
}
