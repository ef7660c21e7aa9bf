//! Scenario tests for the observation engine, on a virtual clock in milliseconds.

use std::collections::BTreeMap;

use lwm2m_core::attributes::Attributes;
use lwm2m_core::node::Record;
use lwm2m_core::path::Path;
use lwm2m_core::value::Value;
use proptest::prelude::*;

use super::*;

fn p(s: &str) -> Path {
    Path::parse(s).unwrap()
}

fn ms(v: u64) -> Timestamp {
    Timestamp::from_millis(v)
}

fn secs(v: u64) -> Timestamp {
    Timestamp::from_secs(v)
}

fn attrs(f: impl FnOnce(&mut Attributes)) -> Attributes {
    let mut a = Attributes::default();
    f(&mut a);
    a
}

/// The engine plus a toy data model and a driver that answers every output at once.
struct H {
    e: ObserveEngine,
    world: BTreeMap<Path, Value>,
    /// Every notification handed out, with the time and the records sent (or stored).
    out: Vec<(Timestamp, Notify, Vec<Record>)>,
    /// Every sample request, with its time.
    evals: Vec<(Timestamp, Evaluate)>,
    now: Timestamp,
    /// Answer notifications with `notified` (true) or leave them in flight.
    answer: bool,
}

impl H {
    fn new(config: ObserveConfig) -> H {
        H {
            e: ObserveEngine::new(config),
            world: BTreeMap::new(),
            out: Vec::new(),
            evals: Vec::new(),
            now: Timestamp::ZERO,
            answer: true,
        }
    }

    fn with(values: &[(&str, Value)]) -> H {
        let mut h = H::new(ObserveConfig::default());
        for (path, v) in values {
            h.world.insert(p(path), v.clone());
        }
        h
    }

    fn read(&self, paths: &[Path]) -> Vec<Record> {
        self.world
            .iter()
            .filter(|(leaf, _)| paths.iter().any(|t| t.starts(leaf)))
            .map(|(leaf, v)| Record::new(*leaf, v.clone()))
            .collect()
    }

    fn observe(&mut self, ssid: u16, token: u8, targets: &[(&str, Attributes)]) -> ObservationId {
        let paths: Vec<Path> = targets.iter().map(|(t, _)| p(t)).collect();
        let current = self.read(&paths);
        let id = self
            .e
            .observe(
                self.now,
                ssid,
                &[token],
                paths,
                targets.iter().map(|(_, a)| *a).collect(),
                &current,
            )
            .unwrap();
        self.drain();
        id
    }

    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(ev) = self.e.poll_evaluation() {
                any = true;
                let recs = self.read(&ev.paths);
                self.e.sampled(self.now, ev.id, &recs).unwrap();
                self.evals.push((self.now, ev));
            }
            if self.answer {
                if let Some(n) = self.e.poll_notification() {
                    any = true;
                    let mut sent: Vec<Record> = n.stored.iter().flat_map(|s| s.records.clone()).collect();
                    sent.extend(self.read(&n.targets));
                    self.e.notified(self.now, n.id, &sent).unwrap();
                    self.out.push((self.now, n, sent));
                }
            }
            if !any {
                break;
            }
        }
    }

    /// Runs the clock to `t`, firing every timer on its due time.
    fn run_to(&mut self, t: Timestamp) {
        while let Some(at) = self.e.poll_timeout() {
            assert!(at >= self.now, "timeout {at:?} in the past (now {:?})", self.now);
            if at > t {
                break;
            }
            self.now = at;
            self.e.handle_timeout(at);
            self.drain();
        }
        self.now = t;
        self.e.handle_timeout(t);
        self.drain();
    }

    /// At `t`, the value of `path` becomes `v` and the change is reported.
    fn set(&mut self, t: Timestamp, path: &str, v: Value) {
        self.run_to(t);
        self.world.insert(p(path), v.clone());
        self.e.value_changed(t, &[Record::new(p(path), v)]);
        self.drain();
    }

    /// At `t`, the value of `path` becomes `v` without a change report (a polled sensor).
    fn set_silently(&mut self, t: Timestamp, path: &str, v: Value) {
        self.run_to(t);
        self.world.insert(p(path), v);
    }

    fn times(&self) -> Vec<u64> {
        self.out.iter().map(|(t, _, _)| t.as_millis()).collect()
    }

    fn reasons(&self) -> Vec<Reason> {
        self.out.iter().map(|(_, n, _)| n.reason).collect()
    }
}

fn f(v: f64) -> Value {
    Value::Float(v)
}

#[test]
fn pmin_holds_back_a_change_then_sends_exactly_once() {
    let mut h = H::with(&[("/3/0/9", Value::Integer(90))]);
    h.observe(1, 1, &[("/3/0/9", attrs(|a| a.pmin = Some(10)))]);
    h.set(secs(2), "/3/0/9", Value::Integer(89));
    h.set(secs(4), "/3/0/9", Value::Integer(88));
    h.run_to(ms(9_999));
    assert!(h.out.is_empty(), "nothing before pmin");
    h.run_to(secs(10));
    assert_eq!(h.times(), [10_000]);
    assert_eq!(h.reasons(), [Reason::Changed]);
    // the latest value went out
    assert_eq!(h.out[0].2, [Record::new(p("/3/0/9"), Value::Integer(88))]);
    h.run_to(secs(500));
    assert_eq!(h.out.len(), 1, "exactly once");
    assert_eq!(h.e.poll_timeout(), None);
    // a change after pmin has passed goes out at once
    h.set(secs(600), "/3/0/9", Value::Integer(87));
    assert_eq!(h.times(), [10_000, 600_000]);
}

#[test]
fn pmin_zero_sends_at_once_and_unchanged_value_is_no_change() {
    let mut h = H::with(&[("/3/0/9", Value::Integer(90))]);
    h.observe(1, 1, &[("/3/0/9", Attributes::default())]);
    h.set(secs(1), "/3/0/9", Value::Integer(90));
    assert!(h.out.is_empty(), "the value the server already has");
    h.set(secs(2), "/3/0/9", Value::Integer(91));
    h.set(secs(3), "/3/0/9", Value::Integer(92));
    assert_eq!(h.times(), [2_000, 3_000]);
}

#[test]
fn pmax_forces_a_notification_at_exactly_pmax() {
    let mut h = H::with(&[("/3/0/9", Value::Integer(90))]);
    h.now = ms(500);
    h.observe(1, 1, &[("/3/0/9", attrs(|a| a.pmax = Some(60)))]);
    assert_eq!(h.e.poll_timeout(), Some(ms(60_500)));
    h.run_to(ms(60_499));
    assert!(h.out.is_empty());
    h.run_to(ms(60_500));
    assert_eq!(h.times(), [60_500]);
    assert_eq!(h.reasons(), [Reason::PmaxExpired]);
    h.run_to(ms(180_500));
    assert_eq!(h.times(), [60_500, 120_500, 180_500]);
    // a change restarts the pmax clock
    h.set(secs(200), "/3/0/9", Value::Integer(1));
    h.run_to(secs(300));
    assert_eq!(h.times(), [60_500, 120_500, 180_500, 200_000, 260_000]);
}

#[test]
fn pmax_not_above_pmin_or_zero_is_ignored() {
    for (pmin, pmax) in [(60, 30), (60, 60), (0, 0), (10, 0)] {
        let mut h = H::with(&[("/3/0/9", Value::Integer(90))]);
        h.observe(
            1,
            1,
            &[(
                "/3/0/9",
                attrs(|a| {
                    a.pmin = Some(pmin);
                    a.pmax = Some(pmax);
                }),
            )],
        );
        assert_eq!(h.e.poll_timeout(), None, "pmin {pmin} pmax {pmax}");
        h.run_to(secs(1000));
        assert!(h.out.is_empty(), "pmin {pmin} pmax {pmax}: pmax ignored");
        // pmin still applies
        h.set(secs(1001), "/3/0/9", Value::Integer(1));
        h.run_to(secs(2000));
        assert_eq!(h.times(), [1_001_000], "pmin {pmin} pmax {pmax}");
    }
}

#[test]
fn gt_and_lt_notify_only_on_crossing_both_ways() {
    let mut h = H::with(&[("/3303/0/5700", f(40.0))]);
    h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.gt = Some(50.0)))]);
    let seq = [45.0, 55.0, 60.0, 52.0, 48.0, 30.0, 50.0, 50.5];
    for (i, v) in seq.iter().enumerate() {
        h.set(secs(i as u64 + 1), "/3303/0/5700", f(*v));
    }
    // 55 crosses up, 48 crosses down, 50.5 crosses up (50 is not above gt)
    assert_eq!(h.times(), [2_000, 5_000, 8_000]);

    let mut h = H::with(&[("/3303/0/5700", f(25.0))]);
    h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.lt = Some(20.0)))]);
    for (i, v) in [22.0, 15.0, 10.0, 19.9, 20.0, 35.0, 5.0].iter().enumerate() {
        h.set(secs(i as u64 + 1), "/3303/0/5700", f(*v));
    }
    // 15 crosses down, 20 crosses up (20 is not below lt), 5 crosses down
    assert_eq!(h.times(), [2_000, 5_000, 7_000]);
}

#[test]
fn step_is_relative_to_the_last_notified_value() {
    let mut h = H::with(&[("/3303/0/5700", f(10.0))]);
    h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.st = Some(5.0)))]);
    for (i, v) in [12.0, 14.0, 15.5, 17.0, 20.5, 16.0, 15.0, 14.0].iter().enumerate() {
        h.set(secs(i as u64 + 1), "/3303/0/5700", f(*v));
    }
    // 15.5 (vs 10), 20.5 (vs 15.5), 15 (vs 20.5); 14 is 1 from 15
    assert_eq!(h.times(), [3_000, 5_000, 7_000]);
}

#[test]
fn gt_and_step_combined() {
    let mut h = H::with(&[("/3303/0/5700", f(40.0))]);
    h.observe(
        1,
        1,
        &[(
            "/3303/0/5700",
            attrs(|a| {
                a.gt = Some(50.0);
                a.st = Some(10.0);
            }),
        )],
    );
    for (i, v) in [45.0, 51.0, 55.0, 61.0, 62.0, 49.0, 41.0, 39.0].iter().enumerate() {
        h.set(secs(i as u64 + 1), "/3303/0/5700", f(*v));
    }
    // 51 crosses gt, 61 is a step from 51, 49 crosses down, 39 is a step from 49
    assert_eq!(h.times(), [2_000, 4_000, 6_000, 8_000]);
}

#[test]
fn digest_worked_example_lt_gt_st() {
    let a = attrs(|a| {
        a.lt = Some(20.0);
        a.gt = Some(85.0);
        a.st = Some(10.0);
    });
    for (old, new) in [(17.0, 24.0), (75.0, 90.0), (50.0, 10.0), (87.0, 99.0)] {
        let mut h = H::with(&[("/3/0/9", f(old))]);
        h.observe(1, 1, &[("/3/0/9", a)]);
        h.set(secs(1), "/3/0/9", f(new));
        assert_eq!(h.out.len(), 1, "{old} -> {new}");
    }
}

#[test]
fn crossing_during_pmin_is_delivered_at_pmin() {
    let a = attrs(|a| {
        a.pmin = Some(10);
        a.gt = Some(50.0);
    });
    let mut h = H::with(&[("/3303/0/5700", f(40.0))]);
    h.observe(1, 1, &[("/3303/0/5700", a)]);
    h.set(secs(2), "/3303/0/5700", f(45.0));
    h.set(secs(3), "/3303/0/5700", f(55.0));
    h.run_to(ms(9_999));
    assert!(h.out.is_empty());
    h.run_to(secs(10));
    assert_eq!(h.times(), [10_000]);
    assert_eq!(h.out[0].2[0].value, f(55.0));
    // no crossing afterwards: nothing more
    h.set(secs(12), "/3303/0/5700", f(58.0));
    h.run_to(secs(100));
    assert_eq!(h.out.len(), 1);

    // A change during pmin that does not cross is never delivered.
    let mut h = H::with(&[("/3303/0/5700", f(40.0))]);
    h.observe(1, 1, &[("/3303/0/5700", a)]);
    h.set(secs(3), "/3303/0/5700", f(45.0));
    h.run_to(secs(100));
    assert!(h.out.is_empty());

    // The trigger is sticky: crossed and back inside pmin is still delivered at pmin (with the value then).
    let mut h = H::with(&[("/3303/0/5700", f(40.0))]);
    h.observe(1, 1, &[("/3303/0/5700", a)]);
    h.set(secs(3), "/3303/0/5700", f(55.0));
    h.set(secs(5), "/3303/0/5700", f(45.0));
    h.run_to(secs(100));
    assert_eq!(h.times(), [10_000]);
    assert_eq!(h.out[0].2[0].value, f(45.0));
}

#[test]
fn epmin_limits_sampling() {
    let mut h = H::with(&[("/3303/0/5700", f(10.0))]);
    h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.epmin = Some(5)))]);
    // changes inside the first epmin window are not evaluated ...
    h.set(secs(1), "/3303/0/5700", f(11.0));
    h.set(secs(2), "/3303/0/5700", f(12.0));
    assert!(h.out.is_empty() && h.evals.is_empty());
    assert_eq!(h.e.poll_timeout(), Some(secs(5)));
    // ... until it ends: one sample, then the notification with the value current then
    h.run_to(secs(5));
    assert_eq!(h.evals.len(), 1);
    assert_eq!(h.evals[0].1.paths, [p("/3303/0/5700")]);
    assert_eq!(h.times(), [5_000]);
    assert_eq!(h.out[0].2[0].value, f(12.0));
    // a burst after that: one sample at the end of the next window
    for t in [6, 7, 8, 9] {
        h.set(secs(t), "/3303/0/5700", f(t as f64));
    }
    h.run_to(secs(30));
    let eval_times: Vec<u64> = h.evals.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(eval_times, [5_000, 10_000]);
    assert_eq!(h.times(), [5_000, 10_000]);
    // changed and back inside the window: the sample finds the notified value, no notification
    h.set(secs(31), "/3303/0/5700", f(99.0));
    h.set(secs(32), "/3303/0/5700", f(9.0));
    assert_eq!(h.evals.len(), 2, "31 s is outside the window: evaluated at once");
    assert_eq!(h.times(), [5_000, 10_000, 31_000]);
    h.set(secs(33), "/3303/0/5700", f(99.0));
    h.set(secs(34), "/3303/0/5700", f(9.0));
    h.run_to(secs(60));
    // the 32 s to 34 s changes fall in the window opened at 31 s: one sample at 36 s finds 9, 99 was notified
    assert_eq!(h.evals.last().unwrap().0, secs(36));
    assert_eq!(h.times(), [5_000, 10_000, 31_000, 36_000]);
}

#[test]
fn epmin_sample_equal_to_last_notified_is_not_notified() {
    let mut h = H::with(&[("/3303/0/5700", f(10.0))]);
    h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.epmin = Some(5)))]);
    h.set(secs(1), "/3303/0/5700", f(50.0));
    h.set(secs(2), "/3303/0/5700", f(10.0));
    h.run_to(secs(60));
    assert_eq!(h.evals.len(), 1);
    assert!(h.out.is_empty());
}

#[test]
fn epmax_forces_a_sampling() {
    let mut h = H::with(&[("/3303/0/5700", f(10.0))]);
    h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.epmax = Some(30)))]);
    assert_eq!(h.e.poll_timeout(), Some(secs(30)));
    h.set_silently(secs(10), "/3303/0/5700", f(20.0));
    h.run_to(ms(29_999));
    assert!(h.evals.is_empty() && h.out.is_empty());
    h.run_to(secs(30));
    assert_eq!(h.evals.len(), 1);
    assert_eq!(h.times(), [30_000]);
    // unchanged: sampled again at 60 s, nothing to notify
    h.run_to(secs(60));
    assert_eq!(h.evals.len(), 2);
    assert_eq!(h.out.len(), 1);
    // a reported change is an evaluation too: the next sample is epmax after it
    h.set(secs(70), "/3303/0/5700", f(21.0));
    assert_eq!(h.e.poll_timeout(), Some(secs(100)));
    // a sample of an object target that no longer lists a leaf: a change
    let mut h = H::with(&[("/3303/0/5700", f(1.0)), ("/3303/1/5700", f(2.0))]);
    h.observe(1, 1, &[("/3303", attrs(|a| a.epmax = Some(30)))]);
    h.run_to(secs(30));
    assert!(h.out.is_empty());
    h.world.remove(&p("/3303/1/5700"));
    h.run_to(secs(60));
    assert_eq!(h.times(), [60_000]);
    assert_eq!(h.out[0].2, [Record::new(p("/3303/0/5700"), f(1.0))]);
    h.run_to(secs(90));
    assert_eq!(h.out.len(), 1, "the notified state has one leaf now");
    // epmax <= epmin is ignored
    let mut h = H::with(&[("/3303/0/5700", f(10.0))]);
    h.observe(
        1,
        1,
        &[(
            "/3303/0/5700",
            attrs(|a| {
                a.epmin = Some(30);
                a.epmax = Some(30);
            }),
        )],
    );
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn epmax_sample_respects_pmin_and_conditions() {
    let mut h = H::with(&[("/3303/0/5700", f(10.0))]);
    h.observe(
        1,
        1,
        &[(
            "/3303/0/5700",
            attrs(|a| {
                a.epmax = Some(5);
                a.pmin = Some(12);
                a.st = Some(3.0);
            }),
        )],
    );
    h.set_silently(secs(1), "/3303/0/5700", f(11.0));
    h.run_to(secs(9));
    assert!(h.out.is_empty(), "a step of 1 < st");
    h.set_silently(secs(9), "/3303/0/5700", f(14.0));
    h.run_to(secs(30));
    // sampled at 10 s (step 4), delivered at pmin = 12 s
    assert_eq!(h.times(), [12_000]);
}

#[test]
fn object_and_instance_observations_see_any_change_below() {
    let mut h = H::with(&[
        ("/3/0/9", Value::Integer(90)),
        ("/3/0/10", Value::Integer(15)),
        ("/4/0/1", Value::Integer(3)),
    ]);
    let obj = h.observe(1, 1, &[("/3", Attributes::default())]);
    let inst = h.observe(1, 2, &[("/3/0", Attributes::default())]);
    let res = h.observe(1, 3, &[("/3/0/9", Attributes::default())]);
    h.set(secs(1), "/3/0/10", Value::Integer(16));
    let ids: Vec<ObservationId> = h.out.iter().map(|(_, n, _)| n.id).collect();
    assert_eq!(ids, [obj, inst]);
    assert!(!ids.contains(&res), "/3/0/10 is not under /3/0/9");
    // the whole node goes out
    assert_eq!(h.out[0].2.len(), 2);
    h.set(secs(2), "/4/0/1", Value::Integer(4));
    assert_eq!(h.out.len(), 2, "outside every target");
    // a new instance under /3 (reported as new values): only the object observation
    h.set(secs(3), "/3/1/0", Value::String("x".into()));
    assert_eq!(h.out.last().unwrap().1.id, obj);
    assert_eq!(h.out.len(), 3);
    // gt on an object target is not a value condition: any change still triggers
    let mut h = H::with(&[("/3/0/9", Value::Integer(90))]);
    h.observe(1, 1, &[("/3/0", attrs(|a| a.gt = Some(1000.0)))]);
    h.set(secs(1), "/3/0/9", Value::Integer(91));
    assert_eq!(h.out.len(), 1);
    // resource instances of a multiple resource under a resource target
    let mut h = H::with(&[("/3/0/7/0", Value::Integer(3800)), ("/3/0/7/1", Value::Integer(5000))]);
    h.observe(1, 1, &[("/3/0/7", attrs(|a| a.st = Some(100.0)))]);
    h.set(secs(1), "/3/0/7/1", Value::Integer(5050));
    assert!(h.out.is_empty());
    h.set(secs(2), "/3/0/7/1", Value::Integer(5100));
    assert_eq!(h.out.len(), 1);
    // an instance removed (no values): paths_changed
    let mut h = H::with(&[("/3303/0/5700", f(1.0)), ("/3303/1/5700", f(1.0))]);
    let id = h.observe(1, 1, &[("/3303", Attributes::default())]);
    h.world.remove(&p("/3303/1/5700"));
    h.now = secs(1);
    h.e.paths_changed(secs(1), &[p("/3303/1")]);
    h.drain();
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].1.id, id);
}

#[test]
fn composite_observation_one_notification_with_all_targets() {
    let mut h = H::with(&[("/3/0/9", f(40.0)), ("/3303/0/5700", f(20.0)), ("/3/0/10", f(1.0))]);
    let id = h.observe(
        1,
        7,
        &[
            ("/3/0/9", attrs(|a| a.gt = Some(50.0))),
            ("/3303/0/5700", attrs(|a| a.pmin = Some(10))),
        ],
    );
    h.set(secs(1), "/3/0/9", f(45.0));
    assert!(h.out.is_empty(), "no crossing on /3/0/9");
    h.set(secs(2), "/3303/0/5700", f(21.0));
    assert!(h.out.is_empty(), "pmin of /3303/0/5700");
    h.run_to(secs(10));
    assert_eq!(h.times(), [10_000]);
    let (_, n, sent) = &h.out[0];
    assert_eq!(n.id, id);
    assert_eq!(n.targets, [p("/3/0/9"), p("/3303/0/5700")]);
    assert_eq!(n.token.as_bytes(), [7]);
    assert_eq!(sent.len(), 2, "values of both targets, not /3/0/10");
    // a crossing on the pmin-0 target goes out at once and restarts the clock of both
    h.set(secs(11), "/3/0/9", f(55.0));
    assert_eq!(h.times(), [10_000, 11_000]);
    h.set(secs(12), "/3303/0/5700", f(22.0));
    h.run_to(secs(100));
    assert_eq!(h.times(), [10_000, 11_000, 21_000]);
    // /3/0/10 is not observed
    h.set(secs(200), "/3/0/10", f(2.0));
    assert_eq!(h.out.len(), 3);
}

#[test]
fn composite_pmax_of_one_target() {
    let mut h = H::with(&[("/3/0/9", f(40.0)), ("/3303/0/5700", f(20.0))]);
    h.observe(
        1,
        1,
        &[
            ("/3/0/9", attrs(|a| a.pmax = Some(100))),
            ("/3303/0/5700", attrs(|a| a.pmax = Some(30))),
        ],
    );
    h.run_to(secs(95));
    assert_eq!(h.times(), [30_000, 60_000, 90_000]);
    assert!(h.reasons().iter().all(|r| *r == Reason::PmaxExpired));
}

#[test]
fn cancel_stops_everything() {
    let mut h = H::with(&[("/3/0/9", f(40.0))]);
    let a = attrs(|a| {
        a.pmax = Some(10);
        a.epmax = Some(3);
    });
    let id = h.observe(1, 1, &[("/3/0/9", a)]);
    let other = h.observe(2, 1, &[("/3/0/9", a)]);
    h.run_to(secs(10));
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.e.cancel(1, &[1]), Some(id));
    assert_eq!(h.e.cancel(1, &[1]), None);
    assert_eq!(h.e.find(1, &[1]), None);
    h.set(secs(11), "/3/0/9", f(41.0));
    h.run_to(secs(100));
    assert!(h.out.iter().skip(2).all(|(_, n, _)| n.id == other));
    assert!(h
        .evals
        .iter()
        .filter(|(t, _)| *t > secs(10))
        .all(|(_, e)| e.id == other));
    assert_eq!(
        h.e.notified(secs(100), id, &[]),
        Err(ObserveError::UnknownObservation(id))
    );
    assert_eq!(h.e.cancel_server(2), vec![other]);
    assert!(h.e.is_empty());
    assert_eq!(h.e.poll_timeout(), None);
    let before = h.out.len();
    h.set(secs(200), "/3/0/9", f(42.0));
    h.run_to(secs(1000));
    assert_eq!(h.out.len(), before);

    // a cancel removes a notification already queued
    let mut h = H::with(&[("/3/0/9", f(40.0))]);
    h.answer = false;
    h.observe(1, 1, &[("/3/0/9", Attributes::default())]);
    h.set(secs(1), "/3/0/9", f(41.0));
    h.e.cancel(1, &[1]);
    assert_eq!(h.e.poll_notification(), None);
}

#[test]
fn write_attributes_after_observe_changes_behaviour() {
    let mut h = H::with(&[("/3303/0/5700", f(40.0))]);
    h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.pmin = Some(60)))]);
    h.set(secs(5), "/3303/0/5700", f(41.0));
    assert!(h.out.is_empty());
    // pmin lowered to 10: the held change is due now (10 s after the Observe have passed)
    h.run_to(secs(20));
    h.e.attributes_changed(secs(20), 1, |_| attrs(|a| a.pmin = Some(10)));
    h.drain();
    assert_eq!(h.times(), [20_000]);
    // add gt: non-crossing changes stop notifying
    h.e.attributes_changed(secs(40), 1, |_| {
        attrs(|a| {
            a.pmin = Some(10);
            a.gt = Some(50.0);
        })
    });
    h.set(secs(40), "/3303/0/5700", f(42.0));
    h.run_to(secs(100));
    assert_eq!(h.out.len(), 1);
    h.set(secs(101), "/3303/0/5700", f(51.0));
    assert_eq!(h.times(), [20_000, 101_000]);
    // a pmax written later counts from the last notification; already passed: due at once
    h.run_to(secs(200));
    h.e.attributes_changed(secs(200), 1, |_| attrs(|a| a.pmax = Some(60)));
    h.drain();
    assert_eq!(h.times(), [20_000, 101_000, 200_000]);
    assert_eq!(h.reasons()[2], Reason::PmaxExpired);
    assert_eq!(h.e.poll_timeout(), Some(secs(260)));
    // attributes of another server change nothing here
    h.e.attributes_changed(secs(201), 2, |_| attrs(|a| a.pmax = Some(1)));
    assert_eq!(h.e.poll_timeout(), Some(secs(260)));
}

#[test]
fn offline_with_storing_keeps_timestamped_notifications_oldest_first_and_bounded() {
    let cfg = ObserveConfig {
        max_stored_per_server: 3,
        ..ObserveConfig::default()
    };
    let mut h = H::new(cfg);
    h.world.insert(p("/3303/0/5700"), f(20.0));
    let id = h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.pmin = Some(5)))]);
    h.e.set_online(secs(1), 1, false);
    assert!(!h.e.is_online(1));
    for t in 1..=5u64 {
        h.set(secs(10 * t + 1), "/3303/0/5700", f(20.0 + t as f64));
    }
    // pmin still applies while offline
    h.set(secs(52), "/3303/0/5700", f(30.0));
    h.run_to(secs(56));
    assert!(h
        .out
        .iter()
        .all(|(_, n, _)| n.delivery == Delivery::Store && n.stored.is_empty()));
    assert!(h.out.iter().all(|(_, n, _)| !n.confirmable));
    assert_eq!(h.times(), [11_000, 21_000, 31_000, 41_000, 51_000, 56_000]);
    assert_eq!(h.e.stored_count(1), 3, "bounded");
    h.out.clear();
    h.e.set_online(secs(60), 1, true);
    h.now = secs(60);
    h.drain();
    assert_eq!(h.out.len(), 1);
    let (_, n, sent) = &h.out[0];
    assert_eq!((n.id, n.reason, n.delivery), (id, Reason::BackOnline, Delivery::Send));
    let times: Vec<Timestamp> = n.stored.iter().map(|s| s.time).collect();
    assert_eq!(times, [secs(41), secs(51), secs(56)], "the newest three, oldest first");
    let values: Vec<&Value> = n.stored.iter().map(|s| &s.records[0].value).collect();
    assert_eq!(values, [&f(24.0), &f(25.0), &f(30.0)]);
    assert_eq!(sent.len(), 4, "stored snapshots and the current value");
    assert_eq!(h.e.stored_count(1), 0);
    // normal operation again; pmin counts from the flush
    h.set(secs(61), "/3303/0/5700", f(31.0));
    h.run_to(secs(100));
    assert_eq!(h.times(), [60_000, 65_000]);
    assert_eq!(h.out[1].1.delivery, Delivery::Send);
    assert!(h.out[1].1.stored.is_empty());
}

#[test]
fn offline_without_storing_sends_only_the_latest_state() {
    let mut h = H::with(&[("/3303/0/5700", f(20.0)), ("/3/0/9", f(1.0))]);
    h.e.set_storing(1, false);
    let id = h.observe(1, 1, &[("/3303/0/5700", attrs(|a| a.pmax = Some(10)))]);
    let quiet = h.observe(1, 2, &[("/3/0/9", Attributes::default())]);
    h.e.set_online(secs(1), 1, false);
    for t in 2..40u64 {
        h.set(secs(t), "/3303/0/5700", f(t as f64));
    }
    assert!(h.out.is_empty());
    assert_eq!(h.e.stored_count(1), 0);
    assert_eq!(h.e.poll_timeout(), None, "held: no timer runs");
    h.e.set_online(secs(100), 1, true);
    h.now = secs(100);
    h.drain();
    assert_eq!(
        h.out.len(),
        1,
        "one notification, the observation without changes stays quiet"
    );
    let (_, n, sent) = &h.out[0];
    assert_eq!((n.id, n.reason), (id, Reason::BackOnline));
    assert!(n.stored.is_empty());
    assert_eq!(sent, &[Record::new(p("/3303/0/5700"), f(39.0))]);
    assert_ne!(n.id, quiet);
    assert_eq!(h.e.poll_timeout(), Some(secs(110)));
}

#[test]
fn stored_notifications_of_several_observations_flush_per_observation() {
    let mut h = H::with(&[("/3/0/9", f(1.0)), ("/3/0/10", f(1.0))]);
    let a = h.observe(1, 1, &[("/3/0/9", Attributes::default())]);
    let b = h.observe(1, 2, &[("/3/0/10", Attributes::default())]);
    let other_server = h.observe(2, 1, &[("/3/0/9", Attributes::default())]);
    h.e.set_online(secs(1), 1, false);
    h.set(secs(2), "/3/0/10", f(2.0));
    h.set(secs(3), "/3/0/9", f(2.0));
    h.set(secs(4), "/3/0/10", f(3.0));
    // server 2 is online: its notification went out normally
    let sent_to_2: Vec<_> = h.out.iter().filter(|(_, n, _)| n.ssid == 2).collect();
    assert_eq!(sent_to_2.len(), 1);
    assert_eq!(sent_to_2[0].1.delivery, Delivery::Send);
    assert_eq!(sent_to_2[0].1.id, other_server);
    assert_eq!(h.e.stored_count(1), 3);
    h.out.clear();
    h.e.set_online(secs(10), 1, true);
    h.now = secs(10);
    h.drain();
    let flushed: Vec<(ObservationId, Vec<Timestamp>)> = h
        .out
        .iter()
        .map(|(_, n, _)| (n.id, n.stored.iter().map(|s| s.time).collect()))
        .collect();
    assert_eq!(
        flushed,
        [(b, vec![secs(2), secs(4)]), (a, vec![secs(3)])],
        "oldest first"
    );
}

#[test]
fn con_at_least_every_24_hours() {
    const HOUR: u64 = 3600;
    let mut h = H::with(&[("/3/0/9", f(1.0))]);
    h.observe(1, 1, &[("/3/0/9", attrs(|a| a.pmax = Some(HOUR as u32)))]);
    h.run_to(secs(50 * HOUR));
    assert_eq!(h.out.len(), 50);
    let con: Vec<u64> = h
        .out
        .iter()
        .filter(|(_, n, _)| n.confirmable)
        .map(|(t, _, _)| t.as_millis() / 1000 / HOUR)
        .collect();
    assert_eq!(con, [24, 48]);

    // switched off: never
    let mut h = H::new(ObserveConfig {
        con_interval_ms: None,
        ..ObserveConfig::default()
    });
    h.world.insert(p("/3/0/9"), f(1.0));
    h.observe(1, 1, &[("/3/0/9", attrs(|a| a.pmax = Some(HOUR as u32)))]);
    h.run_to(secs(50 * HOUR));
    assert!(h.out.iter().all(|(_, n, _)| !n.confirmable));

    // irregular notifications: the first one at or after 24 h is CON
    let mut h = H::with(&[("/3/0/9", f(1.0))]);
    h.observe(1, 1, &[("/3/0/9", Attributes::default())]);
    h.set(secs(23 * HOUR), "/3/0/9", f(2.0));
    h.set(secs(30 * HOUR), "/3/0/9", f(3.0));
    h.set(secs(31 * HOUR), "/3/0/9", f(4.0));
    let con: Vec<bool> = h.out.iter().map(|(_, n, _)| n.confirmable).collect();
    assert_eq!(con, [false, true, false]);
}

#[test]
fn not_sent_restarts_the_clock_and_keeps_values() {
    let mut h = H::with(&[("/3/0/9", f(40.0))]);
    h.answer = false;
    let id = h.observe(1, 1, &[("/3/0/9", attrs(|a| a.pmax = Some(10)))]);
    h.run_to(secs(10));
    let n = h.e.poll_notification().unwrap();
    assert_eq!(n.reason, Reason::PmaxExpired);
    // in flight: no timer for it
    assert_eq!(h.e.poll_timeout(), None);
    h.run_to(secs(50));
    assert_eq!(h.e.poll_notification(), None);
    h.e.not_sent(secs(50), id).unwrap();
    assert_eq!(h.e.poll_timeout(), Some(secs(60)));
    // values kept: 40 is still the last notified one
    h.e.value_changed(secs(51), &[Record::new(p("/3/0/9"), f(40.0))]);
    assert_eq!(h.e.poll_notification(), None);
}

#[test]
fn observe_errors_and_replacement() {
    let mut e = ObserveEngine::new(ObserveConfig {
        max_observations_per_server: 2,
        ..ObserveConfig::default()
    });
    let t = p("/3/0/9");
    let a = Attributes::default();
    assert_eq!(
        e.observe(ms(0), 1, &[0; 9], vec![t], vec![a], &[]),
        Err(ObserveError::TokenTooLong(9))
    );
    assert_eq!(
        e.observe(ms(0), 1, &[1], vec![], vec![], &[]),
        Err(ObserveError::NoTargets)
    );
    assert_eq!(
        e.observe(ms(0), 1, &[1], vec![t, t], vec![a], &[]),
        Err(ObserveError::AttributeCountMismatch {
            targets: 2,
            attributes: 1
        })
    );
    let first = e.observe(ms(0), 1, &[1], vec![t], vec![a], &[]).unwrap();
    let second = e.observe(ms(0), 1, &[2], vec![t], vec![a], &[]).unwrap();
    assert_eq!(
        e.observe(ms(0), 1, &[3], vec![t], vec![a], &[]),
        Err(ObserveError::TooManyObservations { ssid: 1, max: 2 })
    );
    // another server has its own budget; an empty token is a token
    assert!(e.observe(ms(0), 2, &[], vec![t], vec![a], &[]).is_ok());
    // same token again replaces (a new id), within the budget
    let again = e.observe(ms(5), 1, &[1], vec![p("/3")], vec![a], &[]).unwrap();
    assert_ne!(again, first);
    assert_eq!(e.find(1, &[1]), Some(again));
    assert_eq!(e.targets(again), Some((1, vec![p("/3")])));
    assert_eq!(e.targets(first), None);
    assert_eq!(e.len(), 3);
    assert!(e.find(1, &[2]) == Some(second));
    assert_eq!(e.cancel(1, &[0; 9]), None);
    assert_eq!(
        e.sampled(ms(6), first, &[]),
        Err(ObserveError::UnknownObservation(first))
    );
    assert_eq!(format!("{:?}", Token::new(&[0xAB, 1]).unwrap()), "Token(ab01)");
}

#[test]
fn time_going_backwards_is_clamped() {
    let mut h = H::with(&[("/3/0/9", f(40.0))]);
    h.now = secs(100);
    h.observe(1, 1, &[("/3/0/9", attrs(|a| a.pmin = Some(10)))]);
    // a late report with an older time is taken as happening now (100 s), pmin holds it until 110 s
    h.e.value_changed(secs(50), &[Record::new(p("/3/0/9"), f(41.0))]);
    assert_eq!(h.e.poll_timeout(), Some(secs(110)));
    h.e.handle_timeout(secs(60));
    assert_eq!(h.e.poll_notification(), None);
    // a report with an old time restarts pmin/pmax at the latest time seen, not in the past
    let mut e = ObserveEngine::default();
    let t = p("/3/0/9");
    let id = e
        .observe(secs(100), 1, &[1], vec![t], vec![attrs(|a| a.pmax = Some(10))], &[])
        .unwrap();
    e.handle_timeout(secs(200));
    assert_eq!(e.poll_notification().map(|n| n.reason), Some(Reason::PmaxExpired));
    e.notified(secs(50), id, &[]).unwrap();
    assert_eq!(e.poll_timeout(), Some(secs(210)));
}

// ---------------------------------------------------------------------------------------------------------
// Property tests

#[derive(Debug, Clone)]
enum Step {
    /// Wait this many ms, then report a new value.
    Change(u64, f64),
    /// Wait this many ms, then change the value silently (only a sample sees it).
    Silent(u64, f64),
    /// Wait this many ms.
    Wait(u64),
}

fn arb_attrs() -> impl Strategy<Value = Attributes> {
    let period = proptest::option::of(0u32..40);
    let threshold = proptest::option::of(-50.0f64..50.0);
    (
        period.clone(),
        period.clone(),
        threshold.clone(),
        threshold,
        proptest::option::of(0.0f64..20.0),
        period.clone(),
        period,
    )
        .prop_map(|(pmin, pmax, gt, lt, st, epmin, epmax)| Attributes {
            pmin,
            pmax,
            gt,
            lt,
            st,
            epmin,
            epmax,
            ..Default::default()
        })
}

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    let value = -60.0f64..60.0;
    proptest::collection::vec(
        prop_oneof![
            (0u64..20_000, value.clone()).prop_map(|(d, v)| Step::Change(d, v)),
            (0u64..20_000, value).prop_map(|(d, v)| Step::Silent(d, v)),
            (0u64..120_000).prop_map(Step::Wait),
        ],
        0..40,
    )
}

/// Runs a scenario and returns the times of the notifications (Observe response excluded).
fn run(targets: &[(&str, Attributes)], steps: &[Step]) -> (Vec<u64>, u64) {
    let mut h = H::new(ObserveConfig::default());
    for (t, _) in targets {
        h.world.insert(p(t), f(0.0));
    }
    h.observe(1, 1, targets);
    let mut t = 0u64;
    for s in steps {
        match *s {
            Step::Change(d, v) => {
                t += d;
                let path = targets[(d as usize) % targets.len()].0;
                h.set(ms(t), path, f(v));
            }
            Step::Silent(d, v) => {
                t += d;
                let path = targets[(d as usize) % targets.len()].0;
                h.set_silently(ms(t), path, f(v));
            }
            Step::Wait(d) => {
                t += d;
                h.run_to(ms(t));
            }
        }
        if let Some(at) = h.e.poll_timeout() {
            assert!(at >= h.now, "timeout in the past");
        }
    }
    (h.times(), t)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// pmin spacing, pmax gaps, and no timeout in the past (checked inside `run`).
    #[test]
    fn notifications_respect_pmin_and_pmax(a in arb_attrs(), steps in arb_steps()) {
        let (times, end) = run(&[("/3303/0/5700", a)], &steps);
        let pmin = u64::from(a.effective_pmin()) * 1000;
        let mut all = vec![0u64];
        all.extend(&times);
        for w in all.windows(2) {
            prop_assert!(w[1] - w[0] >= pmin, "gap {} < pmin {} in {:?}", w[1] - w[0], pmin, all);
        }
        if let Some(pmax) = a.effective_pmax() {
            let pmax = u64::from(pmax) * 1000;
            all.push(end);
            for w in all.windows(2) {
                prop_assert!(w[1] - w[0] <= pmax, "gap {} > pmax {} in {:?}", w[1] - w[0], pmax, all);
            }
        }
    }

    /// Composite: spacing at least the smallest pmin, gaps at most the smallest effective pmax.
    #[test]
    fn composite_respects_the_tightest_periods(a in arb_attrs(), b in arb_attrs(), steps in arb_steps()) {
        let (times, end) = run(&[("/3303/0/5700", a), ("/3/0/9", b)], &steps);
        let pmin = u64::from(a.effective_pmin().min(b.effective_pmin())) * 1000;
        let mut all = vec![0u64];
        all.extend(&times);
        for w in all.windows(2) {
            prop_assert!(w[1] - w[0] >= pmin);
        }
        let pmax = match (a.effective_pmax(), b.effective_pmax()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, None) => x,
            (None, y) => y,
        };
        if let Some(pmax) = pmax {
            all.push(end);
            for w in all.windows(2) {
                prop_assert!(w[1] - w[0] <= u64::from(pmax) * 1000);
            }
        }
    }

    /// Sample requests of one target are never closer than epmin; without change reports they come every
    /// epmax, and never without epmax.
    #[test]
    fn sampling_respects_epmin_and_epmax(a in arb_attrs(), steps in arb_steps()) {
        let epmin = u64::from(a.effective_epmin()) * 1000;
        for reported in [true, false] {
            let mut h = H::new(ObserveConfig::default());
            h.world.insert(p("/3303/0/5700"), f(0.0));
            h.observe(1, 1, &[("/3303/0/5700", a)]);
            let mut t = 0u64;
            for s in &steps {
                match *s {
                    Step::Change(d, v) | Step::Silent(d, v) => {
                        t += d;
                        if reported {
                            h.set(ms(t), "/3303/0/5700", f(v));
                        } else {
                            h.set_silently(ms(t), "/3303/0/5700", f(v));
                        }
                    }
                    Step::Wait(d) => {
                        t += d;
                        h.run_to(ms(t));
                    }
                }
            }
            let times: Vec<u64> = h.evals.iter().map(|(t, _)| t.as_millis()).collect();
            let mut all = vec![0u64];
            all.extend(&times);
            for w in all.windows(2) {
                prop_assert!(w[1] - w[0] >= epmin.max(1), "{:?}", all);
            }
            if reported {
                if a.effective_epmax().is_none() && epmin == 0 {
                    prop_assert!(times.is_empty(), "no epmin and no epmax: no samples");
                }
            } else if let Some(epmax) = a.effective_epmax() {
                all.push(t);
                for w in all.windows(2) {
                    prop_assert!(w[1] - w[0] <= u64::from(epmax) * 1000);
                }
            } else {
                prop_assert!(times.is_empty(), "no change reports and no epmax: no samples");
            }
        }
    }
}
