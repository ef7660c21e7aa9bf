//! The Bootstrap-Server UI in chromium against a real `BootstrapServer` (configurations in a TOML file) and its
//! REST API: a configuration is made and edited through the form, checked through the handle and the file, an
//! invalid edit shows the server's reason, and a real `lwm2m_client` device bootstraps with it (towards a real
//! LwM2M Server) while the session log page follows the operations live. Every wait is for a condition on the
//! page or an event, bounded by `UI_WAIT`.

use lwm2m_bootstrap::{
    BootstrapConfig, BootstrapCredential, BootstrapServerHandle, Bytes, Rights, SecurityConfig, ServerAccount,
};
use lwm2m_browser_tests::{Browser, TestBootstrap, TestServer};
use lwm2m_client::dm::Credentials;
use lwm2m_client::runtime::{Client, ClientConfig};
use lwm2m_coap::Code;
use lwm2m_server::RequestOptions;
use lwm2m_testkit::client::bootstrap_only;

const EP: &str = "dev-ui";
const PSK_KEY: &str = "000102030405060708090a0b0c0d0e0f";

fn stored(bs: &BootstrapServerHandle) -> lwm2m_bootstrap::BootstrapConfig {
    bs.get_config(EP).expect("the configuration is stored")
}

/// Clicks Save and waits until the editor's message contains `text`.
async fn save(browser: &Browser, text: &str) -> String {
    browser.click("[data-testid=save]").await.expect("save button");
    browser
        .wait_text("#editor-message", text)
        .await
        .expect("the editor reports the outcome")
}

/// A screenshot of the whole page (the window grows to the page's height for the picture, scrollbars hidden),
/// scrolled to the top with nothing focused; only when `LWM2M_SCREENSHOTS` is set.
async fn shot(browser: &Browser, name: &str) {
    if std::env::var_os("LWM2M_SCREENSHOTS").is_none() {
        return;
    }
    let script = "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); \
                  document.documentElement.style.overflow = 'hidden'; \
                  return [document.documentElement.scrollHeight, window.innerHeight];";
    let v = browser.client.execute(script, vec![]).await.expect("page height");
    let (page, inner) = (v[0].as_u64().unwrap_or(720), v[1].as_u64().unwrap_or(720));
    // The window's height minus the viewport's is the browser's own chrome (the window is 860 high here).
    let chrome = 860u64.saturating_sub(inner).min(400);
    let height = u32::try_from(page.clamp(720, 2600) + chrome).unwrap_or(860);
    browser.client.set_window_size(1280, height).await.expect("resize");
    // Two animation frames: the page is laid out and painted at the new size.
    let frames = "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
    browser.client.execute_async(frames, vec![]).await.expect("repaint");
    browser.screenshot(name).await.expect("screenshot");
    browser.client.set_window_size(1280, 860).await.expect("resize back");
    let restore = "document.documentElement.style.overflow = ''; return true;";
    browser.client.execute(restore, vec![]).await.expect("scrollbars back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_ui_edits_configurations_and_follows_a_session_live() {
    let Some(browser) = Browser::start().await else { return };
    let mut server = TestServer::start().await.expect("LwM2M server starts");
    let bs = TestBootstrap::start().await.expect("Bootstrap-Server starts");
    let server_uri = format!("coap://{}", server.coap);

    // 1. The list is empty; a new endpoint opens the editor.
    browser.goto(&bs.ui("#/configs")).await.unwrap();
    browser
        .wait_text("#configs-body", "No endpoint configuration yet")
        .await
        .unwrap();
    browser
        .wait_text("#live", "live")
        .await
        .expect("the event stream connects");
    browser.fill("[data-testid=new-endpoint]", EP).await.unwrap();
    browser.click("[data-testid=add-config]").await.unwrap();
    browser.wait_text("#cfg-state", "new").await.unwrap();

    // 2. One server account through the form: ssid 1 (proposed), the LwM2M Server's URI, lifetime 300.
    browser.click("[data-testid=add-server]").await.unwrap();
    let ssid = browser.find("#srv-0-ssid").await.unwrap().prop("value").await.unwrap();
    assert_eq!(ssid.as_deref(), Some("1"));
    browser.fill("#srv-0-uri", &server_uri).await.unwrap();
    browser.fill("#srv-0-lifetime", "300").await.unwrap();
    save(&browser, "Created the configuration of dev-ui").await;
    let c = stored(&bs.bs);
    assert_eq!(c.servers.len(), 1);
    assert_eq!(
        (c.servers[0].ssid, c.servers[0].uri.as_str(), c.servers[0].lifetime),
        (1, server_uri.as_str(), 300)
    );
    assert!(c.credentials.is_none());
    let file = bs.file_text();
    assert!(
        file.contains(EP) && file.contains(&server_uri) && file.contains("lifetime = 300"),
        "{file}"
    );
    browser.wait_text("#cfg-state", "stored").await.unwrap();

    // 3. Edit: lifetime, a PSK bootstrap credential, two registration-procedure resources (/1/x/13, /1/x/16).
    browser.fill("#srv-0-lifetime", "600").await.unwrap();
    browser.select("#cred-mode", "psk").await.unwrap();
    let identity = browser
        .find("#cred-psk-identity")
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        identity.as_deref(),
        Some(EP),
        "the PSK identity defaults to the endpoint name"
    );
    browser.fill("#cred-psk-key", PSK_KEY).await.unwrap();
    browser.fill("#srv-0-registration_priority_order", "1").await.unwrap();
    browser
        .select("#srv-0-bootstrap_on_registration_failure", "true")
        .await
        .unwrap();
    // An ACL entry for /3/0 owned by ssid 1, which gets Read and Write.
    browser.click("[data-testid=add-acl]").await.unwrap();
    browser.fill("#acl-0-owner", "1").await.unwrap();
    browser.click("#acl-0-add-right").await.unwrap();
    browser.fill("#acl-0-right-0-ssid", "1").await.unwrap();
    browser.click("#acl-0-right-0-W").await.unwrap();
    // ... and one for its own Server instance /1/0 (Read, Write, Execute: it may trigger a bootstrap, BsR-2).
    browser.click("[data-testid=add-acl]").await.unwrap();
    browser.fill("#acl-1-object_id", "1").await.unwrap();
    browser.fill("#acl-1-owner", "1").await.unwrap();
    browser.click("#acl-1-add-right").await.unwrap();
    browser.fill("#acl-1-right-0-ssid", "1").await.unwrap();
    browser.click("#acl-1-right-0-W").await.unwrap();
    browser.click("#acl-1-right-0-E").await.unwrap();
    browser.wait_text("#cfg-dirty", "unsaved").await.unwrap();
    shot(&browser, "bootstrap-config-editor").await;
    save(&browser, "Saved the configuration of dev-ui").await;
    let c = stored(&bs.bs);
    assert_eq!(c.servers[0].lifetime, 600);
    assert_eq!(c.servers[0].registration_priority_order, Some(1));
    assert_eq!(c.servers[0].bootstrap_on_registration_failure, Some(true));
    let acls: Vec<_> = c
        .acls
        .iter()
        .map(|a| {
            (
                a.object_id,
                a.instance_id,
                a.owner,
                a.rights_map().into_iter().collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        acls,
        [(3, 0, 1, vec![(1, Rights(3))]), (1, 0, 1, vec![(1, Rights(7))])],
        "the ACL entries"
    );
    match &c.credentials {
        Some(BootstrapCredential::Psk { identity, key }) => {
            assert_eq!(identity, EP);
            assert_eq!(key.to_hex(), PSK_KEY);
        }
        other => panic!("expected PSK credentials, got {other:?}"),
    }
    let file = bs.file_text();
    assert!(
        file.contains("lifetime = 600") && file.contains(PSK_KEY) && file.contains("psk"),
        "{file}"
    );

    // 4. An invalid edit: the server's reason is shown and nothing is stored.
    browser.fill("#srv-0-uri", "http://127.0.0.1:5683").await.unwrap();
    let msg = save(&browser, "must start with coap://").await;
    assert!(msg.contains("invalid_config"), "{msg}");
    let class = browser
        .find("#editor-message")
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(class.contains("err"), "{class}");
    shot(&browser, "bootstrap-config-invalid").await;
    assert_eq!(
        stored(&bs.bs).servers[0].uri,
        server_uri,
        "the invalid edit was not stored"
    );

    // 5. Fix the URI and drop the PSK credential again: the device below uses plain CoAP.
    browser.fill("#srv-0-uri", &server_uri).await.unwrap();
    browser.select("#cred-mode", "none").await.unwrap();
    save(&browser, "Saved the configuration of dev-ui").await;
    assert!(stored(&bs.bs).credentials.is_none());
    assert!(!bs.file_text().contains(PSK_KEY));

    // 6. The session log page, then a real device bootstraps: the operations appear without a reload.
    browser.click("#to-sessions").await.unwrap();
    browser.wait_text("#session-log", "No session yet").await.unwrap();
    browser
        .client
        .execute("window.__sameDocument = true; return true;", vec![])
        .await
        .unwrap();
    let dm = bootstrap_only(&format!("coap://{}", bs.coap), Credentials::NoSec)
        .build()
        .expect("device data model");
    let (client, _client_events) = Client::start(dm, ClientConfig::new(EP)).expect("device starts");
    let log = browser
        .wait_text_where("#session-log", |t| {
            t.contains("bootstrap-request") && t.contains("finish /bs") && t.contains("finished")
        })
        .await
        .expect("the session appears live");
    let (req, disc, fin) = (
        log.find("bootstrap-request").unwrap(),
        log.find("discover").expect("a Bootstrap-Discover is logged"),
        log.find("finish /bs").expect("a Bootstrap-Finish is logged"),
    );
    assert!(req < disc && disc < fin, "operations in order: {log}");
    assert!(
        log.contains("/0/") && log.contains("/1/"),
        "the account writes are logged: {log}"
    );
    assert!(log.contains("2.04"), "{log}");
    browser.wait_text("#session-status", "finished").await.unwrap();
    browser
        .wait_text("#accounts", &server_uri)
        .await
        .expect("the accounts the session left");
    browser
        .wait_text("#accounts-found", "LwM2M 1.1")
        .await
        .expect("the accounts found (BsR-7)");
    assert!(log.contains("/2/"), "the ACL write is logged: {log}");
    browser
        .wait_text("#acl-state", "no Access Control instances")
        .await
        .expect("the BsR-1 ACL state (read before the writes) is shown");
    let same = browser
        .client
        .execute("return window.__sameDocument === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, serde_json::Value::Bool(true), "the page was not reloaded");
    // The device took the configuration: it registers at the LwM2M Server.
    server.registered(EP).await;

    // BsR-2 through the LwM2M Server: a second session appears live on top, and its Bootstrap-Read of /2
    // shows the ACL the first one wrote (BsR-1).
    let resp = server
        .server
        .execute(EP, "/1/0/9".parse().unwrap(), None, RequestOptions::default())
        .await
        .expect("the trigger is answered");
    assert_eq!(resp.code, Code::CHANGED);
    let log = browser
        .wait_text_where("#session-log", |t| t.contains("Session #2 finished"))
        .await
        .expect("the second session appears live");
    assert!(
        log.find("Session #2").unwrap() < log.find("Session #1").unwrap(),
        "newest first: {log}"
    );
    let acl = browser.wait_text("#acl-state", "/3/0").await.expect("the ACL state");
    assert!(acl.contains("ssid 1: RW") && acl.contains("ssid 1: RWE"), "{acl}");
    assert_eq!(
        browser
            .client
            .execute("return window.__sameDocument === true;", vec![])
            .await
            .unwrap(),
        serde_json::Value::Bool(true),
        "still the same page"
    );
    shot(&browser, "bootstrap-session-log").await;

    // The sessions list has the endpoint with its result.
    browser.click("#nav-sessions").await.unwrap();
    browser.wait_text("tr[data-endpoint=dev-ui]", "finished").await.unwrap();

    // 7. The default configuration for unknown endpoints, through the form.
    browser.click("#nav-configs").await.unwrap();
    browser.click("#create-default").await.unwrap();
    browser
        .wait_text("#cfg-endpoint", "Default configuration")
        .await
        .unwrap();
    browser.wait_text("#cfg-state", "new").await.unwrap();
    browser.click("[data-testid=add-server]").await.unwrap();
    browser.fill("#srv-0-uri", &server_uri).await.unwrap();
    browser.fill("#srv-0-lifetime", "3600").await.unwrap();
    save(&browser, "Created the default configuration").await;
    let d = bs.bs.config_store().default_config().expect("a default configuration");
    assert_eq!(
        (d.servers[0].uri.as_str(), d.servers[0].lifetime),
        (server_uri.as_str(), 3600)
    );

    // 8. The list shows every endpoint with its last session and the default; a second device is added
    // through the handle (as another operator would) and shows up too.
    let mut other = BootstrapConfig::with_servers(vec![
        ServerAccount::new(101, "coaps://dm.example.com:5684", 300),
        ServerAccount::new(102, "coap://backup.example.com:5683", 3600),
    ]);
    other.servers[0].security = SecurityConfig::Psk {
        identity: "urn:imei:490154203237511-dm".into(),
        key: Bytes(vec![0x11; 16]),
    };
    other.credentials = Some(BootstrapCredential::Psk {
        identity: "urn:imei:490154203237511".into(),
        key: Bytes(vec![0x22; 16]),
    });
    bs.bs
        .put_config("urn:imei:490154203237511", other)
        .expect("fixture stored");
    browser.click("#nav-configs").await.unwrap();
    browser.wait_text("tr[data-endpoint=dev-ui]", "finished").await.unwrap();
    browser
        .wait_text("tr[data-endpoint=dev-ui]", &server_uri)
        .await
        .unwrap();
    browser
        .wait_text("#configs-body", "urn:imei:490154203237511")
        .await
        .unwrap();
    browser.wait_text("#default-config", "lifetime 3600 s").await.unwrap();
    browser.wait_text("#health", "2 configurations").await.unwrap();
    shot(&browser, "bootstrap-configs").await;
    browser.click("tr[data-endpoint=dev-ui] a.ep").await.unwrap();
    browser.wait_text("#cfg-state", "stored").await.unwrap();
    browser.click("[data-testid=tab-json]").await.unwrap();
    let json = browser
        .find("#cfg-json")
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("the JSON tab holds JSON");
    assert_eq!(parsed["servers"][0]["lifetime"], 600);
    assert_eq!(parsed["servers"][0]["registration_priority_order"], 1);
    shot(&browser, "bootstrap-config-json").await;
    // A typo in the JSON tab: the server names the unknown field, nothing is stored.
    let typo = format!(r#"{{"servers": [{{"ssid": 1, "uri": "{server_uri}", "lifetim": 5}}]}}"#);
    browser.fill("#cfg-json", &typo).await.unwrap();
    let msg = save(&browser, "lifetim").await;
    assert!(msg.contains("bad_json") && msg.contains("unknown field"), "{msg}");
    assert_eq!(
        stored(&bs.bs).servers[0].lifetime,
        600,
        "the refused JSON was not stored"
    );

    client.shutdown().await;
    browser.close().await.unwrap();
    bs.shutdown().await;
    server.server.shutdown().await;
}
