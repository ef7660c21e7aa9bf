//! Sans-IO tests: the session against our client's data model (`lwm2m_client::dm::DataModel`, which answers
//! the Bootstrap interface without sockets) and against scripted answers.

use super::*;
use crate::config::{BootstrapAccount, ExtraWrite, SecurityConfig, ServerAccount};
use lwm2m_client::dm::{BootstrapConfig as FactoryBs, Credentials, DataModel, FactoryConfig, ServerConfig};
use lwm2m_client::objects::security::SecurityMode;
use proptest::prelude::*;

const NOW: i64 = 1_750_000_000;

fn params() -> SessionParams {
    SessionParams {
        pct: Some(ContentFormat::SenmlCbor),
        now_unix_s: NOW,
    }
}

fn factory_bs() -> Option<FactoryBs> {
    Some(FactoryBs {
        uri: "coap://bs.example".into(),
        credentials: Credentials::NoSec,
        hold_off_s: Some(0),
        account_timeout_s: None,
    })
}

/// A device with only a Bootstrap-Server account (and a temperature sensor).
fn fresh_device() -> DataModel {
    FactoryConfig {
        bootstrap: factory_bs(),
        temperature: Some(vec![(0, 20.0)]),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap()
}

/// What the client would answer.
fn answer(dm: &mut DataModel, req: &BsRequest) -> BsResponse {
    let r = match req.op {
        Operation::Discover => dm
            .bootstrap_discover(&req.path)
            .map(|s| BsResponse::content(Code::CONTENT, ContentFormat::Link, s)),
        Operation::Read => dm
            .bootstrap_read(&req.path, None)
            .map(|(cf, body)| BsResponse::content(Code::CONTENT, cf, body)),
        Operation::Write => dm
            .bootstrap_write(&req.path, req.content_format.unwrap(), &req.payload)
            .map(|_| BsResponse::code(Code::CHANGED)),
        Operation::Delete => dm.bootstrap_delete(&req.path).map(|_| BsResponse::code(Code::DELETED)),
        Operation::Finish => dm.bootstrap_finish().map(|_| BsResponse::code(Code::CHANGED)),
        other => panic!("unexpected {other}"),
    };
    r.unwrap_or_else(|e| {
        let (c, d) = e.code();
        BsResponse::code(Code::new(c, d))
    })
}

/// Runs a session against `dm`; returns the `"Op /path code"` lines and every other event.
fn run(session: &mut Session, dm: &mut DataModel) -> (Vec<String>, Vec<SessionEvent>) {
    let mut ops = Vec::new();
    let mut events = Vec::new();
    for _ in 0..200 {
        let Some(req) = session.poll_request() else { break };
        assert!(session.poll_request().is_none(), "one request at a time");
        let r = answer(dm, &req);
        session.handle_response(Ok(r));
        while let Some(ev) = session.poll_event() {
            match ev {
                SessionEvent::Operation { op, path, code, .. } => ops.push(format!(
                    "{op} {path} {}",
                    code.map(|c| c.to_string()).unwrap_or_default()
                )),
                other => events.push(other),
            }
        }
    }
    assert!(session.is_done(), "the session ended: {ops:?}");
    (ops, events)
}

fn account(ssid: u16, uri: &str) -> ServerAccount {
    ServerAccount::new(ssid, uri, 300)
}

#[test]
fn fresh_device_gets_its_account() {
    let mut dm = fresh_device();
    let mut a = account(101, "coap://dm.example:5683");
    a.registration_priority_order = Some(1);
    a.communication_retry_count = Some(3);
    let mut s = Session::new(BootstrapConfig::with_servers(vec![a]), params());
    let (ops, events) = run(&mut s, &mut dm);
    assert_eq!(
        ops,
        [
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Write /0/1 2.04",
            "Bootstrap-Write /1/0 2.04",
            "Bootstrap-Finish /bs 2.04"
        ],
        "the BS account is /0/0, so the new Security instance is /0/1; no Read (no Server instance); no ACLs"
    );
    assert_eq!(s.outcome(), Some(&Ok(())));
    let srv = &dm.server_instances()[0].1;
    assert_eq!(
        (
            srv.ssid,
            srv.lifetime_s,
            srv.priority_order,
            srv.retry_count,
            srv.last_bootstrapped
        ),
        (101, 300, Some(1), Some(3), Some(NOW))
    );
    let sec = dm.security_instances();
    assert_eq!(sec.len(), 2);
    assert!(sec
        .iter()
        .any(|(i, s)| *i == 1 && s.uri == "coap://dm.example:5683" && s.ssid == Some(101)));
    assert!(
        matches!(&events[0], SessionEvent::AccountsFound { accounts, bootstrap_instance: Some(0), .. } if accounts.is_empty())
    );
    assert!(events.contains(&SessionEvent::AclState {
        supported: true,
        acls: vec![]
    }));
    assert!(
        matches!(events.last(), Some(SessionEvent::Finished { accounts }) if accounts == &[AccountRecord {
            ssid: 101,
            uri: Some("coap://dm.example:5683".into()),
            security_instance: Some(1),
            server_instance: Some(0),
        }])
    );
}

fn stale_device() -> DataModel {
    let mut valid = ServerConfig::new(1, "coap://one", 300);
    valid.server.last_bootstrapped = None;
    let mut alerted = ServerConfig::new(2, "coap://two", 300);
    alerted.server.tls_alert_code = Some(40);
    let unknown = ServerConfig::new(7, "coap://seven", 300);
    FactoryConfig {
        servers: vec![valid, alerted, unknown],
        bootstrap: factory_bs(),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap()
}

#[test]
fn bsr7_keeps_valid_rewrites_stale_deletes_unknown() {
    let mut dm = stale_device();
    let before_valid = (dm.instance_values(0, 0), dm.instance_values(1, 0));
    let cfg = BootstrapConfig {
        generate_acls: false,
        ..BootstrapConfig::with_servers(vec![account(1, "coap://one"), account(2, "coap://two")])
    };
    let mut s = Session::new(cfg, params());
    let (ops, events) = run(&mut s, &mut dm);
    assert_eq!(
        ops,
        [
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Read /1 2.05",
            "Bootstrap-Read /2 2.05",
            "Bootstrap-Delete /0/2 2.02",
            "Bootstrap-Delete /1/2 2.02",
            "Bootstrap-Write /0/1 2.04",
            "Bootstrap-Write /1/1 2.04",
            "Bootstrap-Finish /bs 2.04"
        ]
    );
    let found = events
        .iter()
        .find_map(|e| match e {
            SessionEvent::AccountsFound { accounts, .. } => Some(accounts.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(found.iter().map(|a| a.ssid).collect::<Vec<_>>(), [1, 2, 7]);
    assert_eq!(found[1].tls_alert_code, Some(40));
    assert_eq!(found[2].uri.as_deref(), Some("coap://seven"));
    let Some(SessionEvent::Repaired {
        deleted,
        rewritten,
        kept,
        created,
    }) = events.iter().find(|e| matches!(e, SessionEvent::Repaired { .. }))
    else {
        panic!("{events:?}")
    };
    assert_eq!(kept, &[1]);
    assert!(created.is_empty());
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].ssid, 7);
    assert!(
        deleted[0].reasons[0].contains("SSID 7 is not configured"),
        "{deleted:?}"
    );
    assert_eq!(rewritten.len(), 1);
    assert_eq!(rewritten[0].reasons, ["TLS-DTLS alert code 40"]);
    // The device: account 1 untouched, account 2 rewritten (alert cleared, last bootstrapped set), 7 gone.
    assert_eq!((dm.instance_values(0, 0), dm.instance_values(1, 0)), before_valid);
    let servers = dm.server_instances();
    assert_eq!(servers.iter().map(|(_, s)| s.ssid).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(servers[1].1.tls_alert_code, Some(0));
    assert_eq!(servers[1].1.last_bootstrapped, Some(NOW));
    assert!(dm.security_instances().iter().all(|(_, s)| s.ssid != Some(7)));

    // A second session finds everything valid: nothing but Discover, the reads and Finish.
    let mut s = Session::new(
        BootstrapConfig {
            generate_acls: false,
            ..BootstrapConfig::with_servers(vec![account(1, "coap://one"), account(2, "coap://two")])
        },
        params(),
    );
    let (ops, _) = run(&mut s, &mut dm);
    assert_eq!(
        ops,
        [
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Read /1 2.05",
            "Bootstrap-Read /2 2.05",
            "Bootstrap-Finish /bs 2.04"
        ]
    );
}

#[test]
fn bsr7_policy_variants() {
    // Unknown SSIDs kept, stale accounts recreated, values that differ and an old Last Bootstrapped count.
    let mut dm = stale_device();
    let mut one = account(1, "coap://one");
    one.lifetime = 600;
    let cfg = BootstrapConfig {
        generate_acls: false,
        repair: crate::config::RepairPolicy {
            rewrite_stale_accounts: false,
            delete_unknown_ssids: false,
            delete_unconfigured_uris: false,
            alert_code_is_stale: false,
            last_bootstrapped_older_than_s: Some(3600),
            rewrite_differing: true,
        },
        ..BootstrapConfig::with_servers(vec![one, account(2, "coap://two")])
    };
    let mut s = Session::new(cfg, params());
    let (ops, events) = run(&mut s, &mut dm);
    assert_eq!(
        ops[3..],
        [
            "Bootstrap-Delete /0/0 2.02",
            "Bootstrap-Delete /1/0 2.02",
            "Bootstrap-Delete /0/1 2.02",
            "Bootstrap-Delete /1/1 2.02",
            "Bootstrap-Write /0/0 2.04",
            "Bootstrap-Write /1/0 2.04",
            "Bootstrap-Write /0/1 2.04",
            "Bootstrap-Write /1/1 2.04",
            "Bootstrap-Finish /bs 2.04"
        ]
    );
    let Some(SessionEvent::Repaired { rewritten, kept, .. }) =
        events.iter().find(|e| matches!(e, SessionEvent::Repaired { .. }))
    else {
        panic!()
    };
    assert_eq!(kept, &[7]);
    assert!(rewritten.iter().all(|r| r.recreated));
    assert_eq!(
        rewritten[0].reasons,
        [
            "never bootstrapped (no /1/x/12)",
            "resources [1] differ from the configuration"
        ]
    );
    assert_eq!(rewritten[1].reasons, ["never bootstrapped (no /1/x/12)"]);
    assert_eq!(dm.server_instances().len(), 3);
    // Recreated without resetting the alert code: the old instance was deleted, so it is gone anyway.
    assert_eq!(dm.server_instances()[1].1.tls_alert_code, None);

    // Now all were bootstrapped at NOW; an hour and a bit later they are too old.
    let mut s = Session::new(
        BootstrapConfig {
            generate_acls: false,
            repair: crate::config::RepairPolicy {
                last_bootstrapped_older_than_s: Some(3600),
                delete_unknown_ssids: false,
                delete_unconfigured_uris: false,
                ..Default::default()
            },
            ..BootstrapConfig::with_servers(vec![ServerAccount {
                lifetime: 600,
                ..account(1, "coap://one")
            }])
        },
        SessionParams {
            now_unix_s: NOW + 3601,
            ..params()
        },
    );
    let (ops, events) = run(&mut s, &mut dm);
    assert!(ops.contains(&"Bootstrap-Write /1/0 2.04".to_string()), "{ops:?}");
    let Some(SessionEvent::Repaired { rewritten, .. }) =
        events.iter().find(|e| matches!(e, SessionEvent::Repaired { .. }))
    else {
        panic!()
    };
    assert_eq!(
        rewritten[0].reasons,
        [format!("last bootstrapped at {NOW}, more than 3600 s ago")]
    );
}

#[test]
fn multi_server_acls_and_bsr1_acl_state() {
    let mut dm = fresh_device();
    let mut a = account(1, "coap://one");
    a.registration_priority_order = Some(2);
    let mut b = account(2, "coap://two");
    b.registration_priority_order = Some(1);
    let mut s = Session::new(BootstrapConfig::with_servers(vec![a.clone(), b.clone()]), params());
    let (ops, _) = run(&mut s, &mut dm);
    assert_eq!(ops.last().unwrap(), "Bootstrap-Finish /bs 2.04", "{ops:?}");
    // Generated: each server owns its Server instance; /3/0 and /3303/0 owned by ssid 2 (first in priority
    // order) with full default rights; Create on 3303 for both.
    let acls = dm.acl_instances();
    let find = |o: u16, i: u16| {
        acls.iter()
            .find(|(_, a)| (a.object_id, a.instance_id) == (o, i))
            .unwrap()
    };
    assert_eq!(find(1, 0).1.owner, 1);
    assert_eq!(find(1, 1).1.owner, 2);
    assert_eq!(find(3, 0).1.owner, 2);
    assert_eq!(find(3303, 0).1.acl.get(&0).map(|r| r.0), Some(15));
    assert_eq!(find(3303, MAX_ID).1.acl.len(), 2);
    assert!(dm.acl_enforced());

    // BsR-1: a second session reads /2; the reported state equals the device's, and nothing is rewritten.
    let mut s = Session::new(BootstrapConfig::with_servers(vec![a, b]), params());
    let (ops, events) = run(&mut s, &mut dm);
    assert_eq!(
        ops,
        [
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Read /1 2.05",
            "Bootstrap-Read /2 2.05",
            "Bootstrap-Finish /bs 2.04"
        ]
    );
    let reported = events
        .iter()
        .find_map(|e| match e {
            SessionEvent::AclState { supported: true, acls } => Some(acls.clone()),
            _ => None,
        })
        .unwrap();
    let device: Vec<AclEntry> = dm
        .acl_instances()
        .into_iter()
        .map(|(iid, a)| AclEntry {
            object_id: a.object_id,
            instance_id: a.instance_id,
            rights: a
                .acl
                .iter()
                .map(|(s, r)| crate::config::AclRight {
                    ssid: *s,
                    rights: Rights(r.0),
                })
                .collect(),
            owner: a.owner,
            acl_instance: Some(iid),
        })
        .collect();
    assert_eq!(reported, device);
}

#[test]
fn explicit_acl_rewrites_only_what_differs() {
    let mut dm = fresh_device();
    let cfg = BootstrapConfig {
        acls: vec![
            AclEntry::new(3, 0, 1).with(0, Rights::READ),
            AclEntry::new(3303, 0, 1).with(1, Rights::FULL_INSTANCE),
        ],
        ..BootstrapConfig::with_servers(vec![account(1, "coap://one")])
    };
    let mut s = Session::new(cfg.clone(), params());
    let (ops, _) = run(&mut s, &mut dm);
    assert!(ops.contains(&"Bootstrap-Write /2/0 2.04".to_string()), "{ops:?}");
    assert!(ops.contains(&"Bootstrap-Write /2/1 2.04".to_string()), "{ops:?}");
    let mut changed = cfg;
    changed.acls[1] = AclEntry::new(3303, 0, 1).with(1, Rights::READ);
    let mut s = Session::new(changed, params());
    let (ops, _) = run(&mut s, &mut dm);
    let writes: Vec<&String> = ops.iter().filter(|o| o.contains("Write")).collect();
    assert_eq!(writes, ["Bootstrap-Write /2/1 2.04"]);
    assert_eq!(dm.acl_instances()[1].1.acl.get(&1).map(|r| r.0), Some(1));
}

#[test]
fn bootstrap_account_rewrite_and_delete_before_write() {
    let mut dm = stale_device();
    let cfg = BootstrapConfig {
        delete_before_write: true,
        bootstrap_account: Some(BootstrapAccount {
            uri: "coap://new-bs".into(),
            security: SecurityConfig::NoSec,
            client_hold_off: Some(30),
            account_timeout: None,
            sni: None,
            ciphersuites: vec![],
        }),
        deletes: vec!["/3303".into()],
        ..BootstrapConfig::with_servers(vec![account(5, "coap://five")])
    };
    let mut s = Session::new(cfg, params());
    let (ops, events) = run(&mut s, &mut dm);
    assert_eq!(
        ops[..6],
        [
            "Bootstrap-Discover / 2.05",
            "Bootstrap-Read /1 2.05",
            "Bootstrap-Read /2 2.05",
            "Bootstrap-Delete / 2.02",
            "Bootstrap-Delete /3303 4.00",
            "Bootstrap-Write /0/3 2.04"
        ],
        "the device has no 3303: that delete fails and the session goes on; /0/3 is the BS account"
    );
    assert_eq!(ops.last().unwrap(), "Bootstrap-Finish /bs 2.04");
    let Some(SessionEvent::Repaired { deleted, created, .. }) =
        events.iter().find(|e| matches!(e, SessionEvent::Repaired { .. }))
    else {
        panic!()
    };
    assert_eq!(deleted.len(), 3);
    assert_eq!(created, &[5]);
    let (iid, bs) = dm.bootstrap_account().unwrap();
    assert_eq!(
        (iid, bs.uri.as_str(), bs.client_hold_off_s),
        (3, "coap://new-bs", Some(30))
    );
    assert_eq!(dm.server_instances().len(), 1);
    assert_eq!(dm.security_instances().len(), 2);
}

#[test]
fn psk_account_and_extra_writes() {
    let mut dm = fresh_device();
    let mut a = account(9, "coaps://dm.example:5684");
    a.security = SecurityConfig::Psk {
        identity: "dev-9".into(),
        key: crate::config::Bytes(vec![5; 16]),
    };
    a.ciphersuites = vec![49320];
    let cfg = BootstrapConfig {
        writes: vec![
            ExtraWrite {
                path: "/3/0/14".into(),
                value: serde_json::json!("+02:00"),
            },
            ExtraWrite {
                path: "/3303/4".into(),
                value: serde_json::json!({"5750": "kitchen"}),
            },
        ],
        ..BootstrapConfig::with_servers(vec![a])
    };
    let mut s = Session::new(cfg, SessionParams { pct: None, ..params() });
    let (ops, _) = run(&mut s, &mut dm);
    assert!(ops.contains(&"Bootstrap-Write /3/0/14 2.04".to_string()), "{ops:?}");
    assert!(ops.contains(&"Bootstrap-Write /3303/4 2.04".to_string()), "{ops:?}");
    let sec = &dm.security_instances()[1].1;
    assert_eq!(
        (
            sec.mode,
            sec.public_key_or_identity.as_slice(),
            sec.ciphersuites.as_slice()
        ),
        (SecurityMode::Psk, &b"dev-9"[..], &[49320u64][..])
    );
    assert_eq!(
        dm.instance_values(3303, 4).unwrap().resources[&5750].value,
        ResourceValue::Single(Value::String("kitchen".into()))
    );
}

#[test]
fn finish_refused_reports_the_cause_and_rewrite_all_retries_once() {
    let bad_write = ExtraWrite {
        path: "/1/9".into(),
        value: serde_json::json!({"0": 77, "1": 60, "6": true, "7": "U"}),
    };
    let cfg = BootstrapConfig {
        writes: vec![bad_write],
        generate_acls: false,
        ..BootstrapConfig::with_servers(vec![account(1, "coap://one")])
    };
    let mut dm = fresh_device();
    let mut s = Session::new(cfg.clone(), params());
    let (ops, events) = run(&mut s, &mut dm);
    assert_eq!(ops.last().unwrap(), "Bootstrap-Finish /bs 4.06");
    let Some(SessionEvent::Failed { reason }) = events.last() else {
        panic!("{events:?}")
    };
    assert!(reason.contains("4.06 Not Acceptable"), "{reason}");
    assert!(
        reason.contains("Server instance /1/9 (SSID 77) has no Security instance"),
        "{reason}"
    );
    assert!(matches!(s.outcome(), Some(Err(_))));

    let mut dm = fresh_device();
    let mut s = Session::new(
        BootstrapConfig {
            on_finish_rejected: OnFinishRejected::RewriteAll,
            ..cfg
        },
        params(),
    );
    let (ops, events) = run(&mut s, &mut dm);
    let finishes = ops.iter().filter(|o| o.starts_with("Bootstrap-Finish")).count();
    assert_eq!(finishes, 2, "{ops:?}");
    assert!(ops.contains(&"Bootstrap-Delete / 2.02".to_string()));
    let Some(SessionEvent::Failed { reason }) = events.last() else {
        panic!()
    };
    assert!(reason.contains("rewriting everything did not help"), "{reason}");
}

/// Drives a session with scripted answers: `(expected "METHOD path", answer)` pairs.
fn scripted(session: &mut Session, script: &[(&str, BsResponse)]) -> Vec<SessionEvent> {
    let mut events = Vec::new();
    for (want, resp) in script {
        let req = session
            .poll_request()
            .unwrap_or_else(|| panic!("expected {want}, got nothing"));
        let m = req.to_message();
        let method = match m.code {
            Code::GET => "GET",
            Code::PUT => "PUT",
            Code::POST => "POST",
            Code::DELETE => "DELETE",
            _ => "?",
        };
        assert_eq!(format!("{method} {}", m.uri_path_string()), *want);
        session.handle_response(Ok(resp.clone()));
        while let Some(e) = session.poll_event() {
            events.push(e);
        }
    }
    events
}

#[test]
fn legacy_discover_means_tlv_and_no_reads() {
    let mut s = Session::new(
        BootstrapConfig::with_servers(vec![account(101, "coap://dm")]),
        SessionParams {
            pct: None,
            now_unix_s: NOW,
        },
    );
    let first = s.poll_request().unwrap();
    assert_eq!(first.to_message().accept(), Some(40));
    s.handle_response(Ok(BsResponse::content(
        Code::CONTENT,
        ContentFormat::Link,
        &b"lwm2m=\"1.0\",</0/0>;ssid=101,</0/1>,</1/0>;ssid=101,</3/0>"[..],
    )));
    let mut found = None;
    while let Some(e) = s.poll_event() {
        if let SessionEvent::AccountsFound {
            lwm2m_version,
            accounts,
            bootstrap_instance,
            ..
        } = e
        {
            found = Some((lwm2m_version, accounts.len(), bootstrap_instance));
        }
    }
    assert_eq!(found, Some((Some("1.0".into()), 1, Some(1))));
    // 1.0: no Bootstrap-Read; the URI is unknown, so the account is rewritten, in TLV.
    let w = s.poll_request().unwrap();
    assert_eq!(
        (w.op, w.path, w.content_format),
        (Operation::Write, Path::instance(0, 0), Some(ContentFormat::Tlv))
    );
    assert_eq!(w.to_message().content_format(), Some(11542));
    s.handle_response(Ok(BsResponse::code(Code::CHANGED)));
    let events = scripted(
        &mut s,
        &[
            ("PUT /1/0", BsResponse::code(Code::CHANGED)),
            ("POST /bs", BsResponse::code(Code::CHANGED)),
        ],
    );
    assert!(matches!(events.last(), Some(SessionEvent::Finished { .. })));
    assert!(s.poll_request().is_none());
}

#[test]
fn failures_end_the_session_without_finish() {
    // Discover refused and no delete_before_write.
    let mut s = Session::new(BootstrapConfig::with_servers(vec![account(1, "coap://a")]), params());
    let ev = scripted(&mut s, &[("GET /", BsResponse::code(Code::NOT_FOUND))]);
    assert!(
        matches!(ev.last(), Some(SessionEvent::Failed { reason }) if reason.contains("Bootstrap-Discover / answered 4.04"))
    );
    assert!(s.poll_request().is_none() && s.is_done());

    // Discover refused with delete_before_write: DELETE / and blind writes.
    let mut s = Session::new(
        BootstrapConfig {
            delete_before_write: true,
            ..BootstrapConfig::with_servers(vec![account(1, "coap://a")])
        },
        params(),
    );
    let ev = scripted(
        &mut s,
        &[
            ("GET /", BsResponse::code(Code::BAD_REQUEST)),
            ("DELETE /", BsResponse::code(Code::DELETED)),
            ("PUT /0/0", BsResponse::code(Code::CHANGED)),
            ("PUT /1/0", BsResponse::code(Code::CHANGED)),
            ("POST /bs", BsResponse::code(Code::CHANGED)),
        ],
    );
    assert!(matches!(ev.last(), Some(SessionEvent::Finished { .. })));

    // A refused write: failed, no Finish.
    let mut s = Session::new(BootstrapConfig::with_servers(vec![account(1, "coap://a")]), params());
    let ev = scripted(
        &mut s,
        &[
            (
                "GET /",
                BsResponse::content(
                    Code::CONTENT,
                    ContentFormat::Link,
                    &b"</>;lwm2m=1.1,</0/0>;uri=\"coap://bs\",</1>,</3/0>"[..],
                ),
            ),
            ("PUT /0/1", BsResponse::code(Code::UNSUPPORTED_CONTENT_FORMAT)),
        ],
    );
    assert!(
        matches!(ev.last(), Some(SessionEvent::Failed { reason }) if reason == "Bootstrap-Write /0/1 answered 4.15"),
        "{ev:?}"
    );
    assert!(s.poll_request().is_none());

    // No answer.
    let mut s = Session::new(BootstrapConfig::default(), params());
    s.poll_request().unwrap();
    s.handle_response(Err("no acknowledgement".into()));
    let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(matches!(&ev[0], SessionEvent::Operation { code: None, .. }));
    assert!(matches!(ev.last(), Some(SessionEvent::Failed { reason }) if reason.contains("no answer")));

    // Aborted from outside.
    let mut s = Session::new(BootstrapConfig::default(), params());
    s.poll_request().unwrap();
    s.abort("replaced by a new Bootstrap-Request");
    assert!(s.is_done() && s.poll_request().is_none());
    assert_eq!(s.outcome(), Some(&Err("replaced by a new Bootstrap-Request".into())));
}

#[test]
fn pct_checks() {
    let c = BootstrapConfig::default();
    assert_eq!(check_pct(None, &c), Ok(None));
    assert_eq!(check_pct(Some("11542"), &c), Ok(Some(ContentFormat::Tlv)));
    assert_eq!(check_pct(Some("112"), &c), Ok(Some(ContentFormat::SenmlCbor)));
    assert_eq!(check_pct(Some("x"), &c).unwrap_err().0, Code::BAD_REQUEST);
    assert_eq!(
        check_pct(Some("0"), &c).unwrap_err().0,
        Code::UNSUPPORTED_CONTENT_FORMAT
    );
    assert_eq!(
        check_pct(Some("9999"), &c).unwrap_err().0,
        Code::UNSUPPORTED_CONTENT_FORMAT
    );
    let forced = BootstrapConfig {
        content_format: Some(ContentFormat::SenmlJson),
        ..BootstrapConfig::default()
    };
    assert_eq!(check_pct(Some("0"), &forced), Ok(None));
    // The configured format wins over pct.
    let mut s = Session::new(
        BootstrapConfig {
            servers: vec![account(1, "coap://a")],
            ..forced
        },
        params(),
    );
    s.poll_request().unwrap();
    s.handle_response(Ok(BsResponse::content(
        Code::CONTENT,
        ContentFormat::Link,
        &b"</>;lwm2m=1.1,</0/0>"[..],
    )));
    let w = s.poll_request().unwrap();
    assert_eq!(w.content_format, Some(ContentFormat::SenmlJson));
    assert!(String::from_utf8(w.payload).unwrap().starts_with("[{\"bn\":\"/0/1/\""));
}

proptest! {
    /// Whatever the device answers, the session never panics and ends within a bounded number of requests.
    #[test]
    fn any_answers_end_the_session(answers in proptest::collection::vec(
        (prop_oneof![Just(Code::CONTENT), Just(Code::CHANGED), Just(Code::DELETED), Just(Code::NOT_ACCEPTABLE),
                     Just(Code::BAD_REQUEST), Just(Code::NOT_FOUND)],
         proptest::option::of(prop_oneof![Just(40u16), Just(112), Just(11542), Just(110), Just(0)]),
         proptest::collection::vec(any::<u8>(), 0..40)),
        0..40))
    {
        let cfg = BootstrapConfig {
            on_finish_rejected: OnFinishRejected::RewriteAll,
            ..BootstrapConfig::with_servers(vec![account(1, "coap://a"), account(2, "coap://b")])
        };
        let mut s = Session::new(cfg, params());
        let mut n = 0;
        let mut answers = answers.into_iter();
        while let Some(_req) = s.poll_request() {
            n += 1;
            prop_assert!(n < 100);
            match answers.next() {
                Some((code, cf, payload)) => s.handle_response(Ok(BsResponse { code, content_format: cf, payload })),
                None => s.handle_response(Err("timeout".into())),
            }
            while s.poll_event().is_some() {}
        }
        prop_assert!(s.is_done());
    }
}

#[test]
fn recreating_an_account_restores_the_acls_the_client_dropped() {
    // Two servers with the factory's generated ACLs; ssid 2 is stale and recreated (deleted, written anew):
    // the client's unbootstrap drops the ACL of /1/1, which the session must write again.
    let mut alerted = ServerConfig::new(2, "coap://two", 300);
    alerted.server.tls_alert_code = Some(40);
    let mut dm = FactoryConfig {
        servers: vec![ServerConfig::new(1, "coap://one", 300), alerted],
        bootstrap: factory_bs(),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let owner_of_1_1 = |dm: &DataModel| {
        dm.acl_instances()
            .into_iter()
            .find(|(_, a)| (a.object_id, a.instance_id) == (1, 1))
            .map(|(_, a)| a.owner)
    };
    assert_eq!(owner_of_1_1(&dm), Some(2));
    let cfg = BootstrapConfig {
        repair: crate::config::RepairPolicy {
            rewrite_stale_accounts: false,
            ..Default::default()
        },
        ..BootstrapConfig::with_servers(vec![account(1, "coap://one"), account(2, "coap://two")])
    };
    let mut s = Session::new(cfg, params());
    let (ops, _) = run(&mut s, &mut dm);
    assert!(ops.contains(&"Bootstrap-Delete /0/1 2.02".to_string()), "{ops:?}");
    assert_eq!(ops.last().unwrap(), "Bootstrap-Finish /bs 2.04");
    assert_eq!(owner_of_1_1(&dm), Some(2), "{ops:?}");
    assert_eq!(dm.access_rights(2, 1, 1).0, 15);
}
