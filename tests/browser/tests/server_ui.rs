//! The server's web UI in headless chromium against a real server and a real lwm2m-rs client device:
//! the live client list, the object tree with model names, Read / Write (resource instance) / Observe with
//! live notifications, composite Read, Write-Attributes + Discover, error display, requests held for a sleeping
//! queue-mode device, the credentials editor and the object model browser. With
//! `LWM2M_SCREENSHOTS=docs/screenshots` the walk-throughs write the `server-*.png` pictures of the documentation.

use std::time::Duration;

use lwm2m_browser_tests::{Browser, TestServer};
use lwm2m_client::dm::{DataModel, FactoryConfig, ServerConfig as AccountConfig};
use lwm2m_client::objects::device::DeviceInfo;
use lwm2m_client::runtime::{Client, ClientConfig, ClientHandle};
use lwm2m_core::node::{Node, ResourceNode};
use lwm2m_core::{Path, Value};
use lwm2m_server::security::{Credential, SecurityStore};
use lwm2m_server::{RequestOptions, ServerConfig};
use lwm2m_testkit::client::{object_3442, resource_1120};

const EP: &str = "urn:dev:ui-demo-01";

/// A device with the Device object, a temperature sensor `/3303/0` and the test object 3442 (whose resource
/// 1120 is a writable multi-instance Integer).
fn device(server: &TestServer, serial: &str) -> DataModel {
    let mut dm = FactoryConfig {
        servers: vec![AccountConfig::new(1, format!("coap://{}", server.coap), 300)],
        device: DeviceInfo {
            manufacturer: Some("ACME Sensors".into()),
            model_number: Some("TH-200".into()),
            serial_number: Some(serial.into()),
            battery_level: Some(87),
            memory_free: Some(2048),
            utc_offset: Some("+01:00".into()),
            timezone: Some("Europe/Paris".into()),
            ..DeviceInfo::default()
        },
        temperature: Some(vec![(0, 21.5)]),
        ..FactoryConfig::default()
    }
    .build()
    .expect("factory configuration is consistent");
    dm.add_object(object_3442([resource_1120()]));
    dm
}

fn start_device(server: &TestServer, endpoint: &str, queue_mode: bool) -> ClientHandle {
    let mut config = ClientConfig::new(endpoint);
    config.queue_mode = queue_mode;
    let (handle, _events) = Client::start(device(server, &format!("SN-{endpoint}")), config).expect("client starts");
    handle
}

/// The page showed no unexpected script error (app.js lists them in `#ui-errors`).
async fn assert_no_ui_error(browser: &Browser) {
    let errors = browser.texts("#ui-errors .ui-error").await.expect("query");
    assert!(errors.is_empty(), "script errors: {errors:?}");
}

/// Scrolls the page and the object tree to the top (before a screenshot) and lets the page settle.
async fn scroll_top(browser: &Browser) {
    browser
        .client
        .execute(
            "window.scrollTo(0, 0); const t = document.getElementById('object-tree'); if (t) t.scrollTop = 0;",
            vec![],
        )
        .await
        .expect("scroll");
}

/// Selects `path` through the path box of the client page.
async fn select_path(browser: &Browser, path: &str) {
    browser.fill("#path-input", path).await.expect("path box");
    browser.press("#path-go").await.expect("select path");
    browser
        .wait_text_where("#op-path", |t| t.split_whitespace().next() == Some(path))
        .await
        .expect("the operation panel shows the path");
}

fn value_of(path: &str) -> String {
    format!(r#"[data-testid="value-{path}"]"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_tree_operations_and_live_values() {
    let Some(browser) = Browser::start().await else { return };
    browser.client.set_window_size(1280, 1000).await.expect("window size");
    let mut server = TestServer::start().await.expect("server starts");
    browser.goto(&server.ui("#/clients")).await.expect("page loads");
    browser
        .wait_text("#clients-empty", "No client is registered yet")
        .await
        .expect("empty list");
    browser
        .wait_text("#sse-status", "live")
        .await
        .expect("the event stream connects");

    // A device registers: it appears in the open page without a reload (SSE).
    let device = start_device(&server, EP, false);
    server.registered(EP).await;
    let row = format!(r#"[data-testid="client-row-{EP}"]"#);
    let text = browser
        .wait_text(&row, EP)
        .await
        .expect("the new client is listed live");
    assert!(text.contains("registered"), "state badge: {text}");
    assert!(
        text.contains("1.1") && text.contains("300 s"),
        "version and lifetime: {text}"
    );
    browser.wait_text("#event-log", "registered").await.expect("logged");
    // Two more: one in queue mode (state "awake").
    let _queued = start_device(&server, "urn:dev:ui-demo-02", true);
    server.registered("urn:dev:ui-demo-02").await;
    let _meter = start_device(&server, "urn:dev:meter-17", false);
    server.registered("urn:dev:meter-17").await;
    let queued_row = r#"[data-testid="client-row-urn:dev:ui-demo-02"]"#;
    browser.wait_text(queued_row, "awake").await.expect("queue-mode state");
    browser.wait_text("#client-count", "3 registered").await.expect("count");

    // Search (GET /api/clients?q=).
    browser
        .fill("#client-search", "no-such-device")
        .await
        .expect("search box");
    browser
        .wait_text("#clients-empty", "No registered client matches")
        .await
        .expect("search filters");
    browser.fill("#client-search", "ui-demo").await.expect("search box");
    browser.wait_text(&row, EP).await.expect("search finds the client");
    browser
        .wait_text("#client-count", "2 matching")
        .await
        .expect("only matching clients");
    browser.fill("#client-search", "").await.expect("search box");
    browser
        .wait_text("#clients-body", "meter-17")
        .await
        .expect("all clients again");
    browser.screenshot("server-clients").await.expect("screenshot");

    // The client page: object tree with model names.
    browser.press(&format!("{row} a")).await.expect("open the client");
    browser.wait_text("#object-tree", "Device").await.expect("object names");
    let tree = browser
        .wait_text("#object-tree", "Temperature")
        .await
        .expect("IPSO object name");
    assert!(tree.contains("LwM2M Server"), "{tree}");
    browser
        .wait_text("#client-facts", "300 s")
        .await
        .expect("registration facts");

    // Read /3/0/0 (Manufacturer): the value lands in the tree and in the result panel.
    browser
        .press(r#"[data-testid="node-/3/0/0"]"#)
        .await
        .expect("select Manufacturer");
    browser.wait_text("#op-path", "Manufacturer").await.expect("panel");
    browser.press("#op-read").await.expect("Read");
    browser
        .wait_text(&value_of("/3/0/0"), "ACME Sensors")
        .await
        .expect("read value in the tree");
    browser.wait_text("#op-result", "2.05").await.expect("result panel");

    // Read the whole instance: every resource fills in.
    browser
        .press(r#"[data-testid="node-/3/0"]"#)
        .await
        .expect("select /3/0");
    browser.wait_text("#op-path", "/3/0").await.expect("panel");
    browser.press("#op-read").await.expect("Read /3/0");
    browser
        .wait_text(&value_of("/3/0/1"), "TH-200")
        .await
        .expect("model number");
    browser
        .wait_text(&value_of("/3/0/9"), "87")
        .await
        .expect("battery level");
    scroll_top(&browser).await;
    browser.screenshot("server-client").await.expect("screenshot");

    // A device error is shown to the user: Manufacturer is read-only.
    select_path(&browser, "/3/0/0").await;
    browser.press("#tab-write").await.expect("Write tab");
    browser.fill("#write-value", "Other").await.expect("value");
    browser.press("#op-write").await.expect("Write");
    let err = browser
        .wait_text("#op-result .message.err", "4.05")
        .await
        .expect("the refusal is shown");
    assert!(err.contains("device_error"), "{err}");

    // Write one instance of a multi-instance resource: /3442/0/1120/1.
    select_path(&browser, "/3442/0/1120/1").await;
    browser.press("#tab-write").await.expect("Write tab");
    browser.fill("#write-value", "99").await.expect("value");
    browser.press("#op-write").await.expect("Write");
    browser
        .wait_text("#op-ok", "Write /3442/0/1120/1")
        .await
        .expect("write succeeded");
    let read = server
        .server
        .read(EP, "/3442/0/1120".parse().expect("path"), RequestOptions::default())
        .await
        .expect("read answered");
    let Some(Node::Resource(ResourceNode { value, .. })) = read.node() else {
        panic!("not a resource: {read:?}")
    };
    let text = format!("{value:?}");
    assert!(
        text.contains("99") && text.contains("10") && text.contains("12"),
        "instance 1 written, 0 and 2 kept: {text}"
    );
    browser
        .wait_text(&value_of("/3442/0/1120/1"), "99")
        .await
        .expect("the tree shows the written value");

    // Write-Attributes, then Discover shows them in the tree.
    let temp: Path = "/3303/0/5700".parse().expect("path");
    select_path(&browser, "/3303/0/5700").await;
    browser.press("#tab-attributes").await.expect("Attributes tab");
    browser.fill("#attr-pmax", "60").await.expect("pmax");
    browser.press("#op-attributes").await.expect("Write-Attributes");
    browser
        .wait_text("#op-ok", "Write-Attributes")
        .await
        .expect("attributes written");
    browser.press("#op-discover-attrs").await.expect("Discover");
    browser
        .wait_text(r#"[data-testid="node-/3303/0/5700"]"#, "pmax=60")
        .await
        .expect("discovered attributes in the tree");

    // Observe the temperature (after reading the whole sensor); the device's new reading appears live.
    select_path(&browser, "/3303/0").await;
    browser.press("#tab-read").await.expect("Read tab");
    browser.press("#op-read").await.expect("Read /3303/0");
    browser
        .wait_text(&value_of("/3303/0/5701"), "Cel")
        .await
        .expect("sensor units");
    select_path(&browser, "/3303/0/5700").await;
    browser.press("#tab-read").await.expect("Read tab");
    browser.press("#op-observe").await.expect("Observe");
    browser
        .wait_text(&value_of("/3303/0/5700"), "21.5")
        .await
        .expect("current value");
    browser
        .wait_text("#observations", "/3303/0/5700")
        .await
        .expect("listed observation");
    device
        .set_value(temp, Value::Float(23.75))
        .await
        .expect("device sets a new reading");
    browser
        .wait_text(&value_of("/3303/0/5700"), "23.75")
        .await
        .expect("notified value in the tree");
    browser
        .wait_text("#client-log", "notification")
        .await
        .expect("notification in the event log");

    // Composite Read over two ticked paths.
    browser
        .press(r#"[data-testid="pick-/3/0/0"]"#)
        .await
        .expect("tick /3/0/0");
    browser
        .press(r#"[data-testid="pick-/3303/0/5700"]"#)
        .await
        .expect("tick /3303/0/5700");
    browser
        .wait_text("#composite-paths", "/3303/0/5700")
        .await
        .expect("selection");
    browser.press("#composite-read").await.expect("Read-Composite");
    let result = browser
        .wait_text("#op-result", "Read-Composite")
        .await
        .expect("composite result");
    browser
        .wait_text("#op-values", "23.75")
        .await
        .unwrap_or_else(|e| panic!("composite values: {e}; {result}"));
    select_path(&browser, "/3303/0/5700").await;
    browser
        .press(r#"[data-testid="toggle-/3"]"#)
        .await
        .expect("collapse /3");
    browser
        .wait_gone(r#"[data-testid="node-/3/0"]"#)
        .await
        .expect("collapsed");
    scroll_top(&browser).await;
    browser.screenshot("server-client-observe").await.expect("screenshot");
    browser
        .client
        .execute("document.querySelector('.cols-3').scrollIntoView()", vec![])
        .await
        .expect("scroll");
    browser.screenshot("server-client-panels").await.expect("screenshot");

    // Cancel the observation from the list.
    browser
        .press(r#"#observations button[data-testid^="cancel-observation-"]"#)
        .await
        .expect("cancel");
    browser
        .wait_text("#observations", "No active observation")
        .await
        .expect("observation cancelled");
    assert!(server.server.observations(EP).is_empty(), "the server forgot it");

    // De-registration shows on the page.
    device.shutdown().await;
    browser
        .wait_text("#client-gone", "deregistered")
        .await
        .expect("de-registration shown live");
    browser.press("#back-to-clients").await.expect("back");
    browser.wait_text("#clients-body", "meter-17").await.expect("the list");
    browser
        .wait_gone(&row)
        .await
        .expect("the de-registered client left the list");
    assert_no_ui_error(&browser).await;
    browser.close().await.expect("session closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_credentials_and_object_models() {
    let Some(browser) = Browser::start().await else { return };
    browser.client.set_window_size(1280, 1000).await.expect("window size");
    let config = ServerConfig {
        awake_time: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let mut server = TestServer::start_with(config).await.expect("server starts");

    // A queue-mode device falls asleep; a Read is held, shown in the queue, and completes at its wake-up.
    const SLEEPY: &str = "urn:dev:sleepy-01";
    let mut client_config = ClientConfig::new(SLEEPY);
    client_config.queue_mode = true;
    client_config.awake_time = Duration::from_secs(1);
    let (sleepy, _events) = Client::start(device(&server, "SN-0001"), client_config).expect("client starts");
    server.registered(SLEEPY).await;
    browser
        .goto(&server.ui(&format!("#/clients/{SLEEPY}")))
        .await
        .expect("page loads");
    browser.wait_text("#object-tree", "Device").await.expect("tree");
    browser
        .wait_text("#client-badges", "sleeping")
        .await
        .expect("the device falls asleep");
    select_path(&browser, "/3/0/0").await;
    browser.press("#op-read").await.expect("Read");
    browser
        .wait_text("#op-pending", "queued")
        .await
        .expect("the pending request says it is queued");
    let queue = browser
        .wait_text("#queue-table", "/3/0/0")
        .await
        .expect("held request listed");
    assert!(queue.contains("Read"), "{queue}");
    browser.wait_text("#fact-queued", "1").await.expect("queued count");
    browser
        .client
        .execute(
            "document.querySelector('.cols-3').scrollIntoView({block: 'center'})",
            vec![],
        )
        .await
        .expect("scroll");
    browser.screenshot("server-queue").await.expect("screenshot");
    sleepy.update(None).await.expect("the device wakes up");
    browser
        .wait_text("#op-ok", "Read /3/0/0")
        .await
        .expect("the held Read completes");
    browser
        .wait_text(&value_of("/3/0/0"), "ACME Sensors")
        .await
        .expect("value");
    browser
        .wait_text("#client-log", "queued-request-done")
        .await
        .expect("the queued-request-done event is logged");
    browser
        .wait_text("#queue", "No request is waiting")
        .await
        .expect("the queue is empty again");

    // The credentials editor.
    browser.press("#nav-security").await.expect("security page");
    browser
        .wait_text("#security-empty", "No credentials")
        .await
        .expect("empty store");

    // Add a PSK entry.
    let key = "000102030405060708090a0b0c0d0e0f";
    browser.fill("#sec-endpoint", "urn:dev:psk-1").await.expect("endpoint");
    browser.select("#sec-mode", "psk").await.expect("mode");
    browser.fill("#sec-identity", "psk-identity-1").await.expect("identity");
    browser.fill("#sec-key", key).await.expect("key");
    browser
        .wait_text("#sec-key-bytes", "16 bytes")
        .await
        .expect("key length");
    browser.press("#sec-save").await.expect("save");
    browser.wait_text("#sec-message", "Saved").await.expect("saved");
    let row = r#"[data-testid="security-row-urn:dev:psk-1"]"#;
    let text = browser.wait_text(row, "psk-identity-1").await.expect("listed");
    assert!(
        text.contains("16 bytes") && !text.contains(key),
        "the list masks the key: {text}"
    );
    let info = server
        .api
        .security()
        .by_endpoint("urn:dev:psk-1")
        .expect("the store has the entry");
    assert_eq!(
        info.credential,
        Credential::Psk {
            identity: "psk-identity-1".into(),
            key: (0u8..16).collect()
        }
    );

    // Add an RPK entry too, and show a refused one (a PSK identity already in use) to the user.
    browser.fill("#sec-endpoint", "urn:dev:rpk-1").await.expect("endpoint");
    browser.select("#sec-mode", "rpk").await.expect("mode");
    browser
        .fill(
            "#sec-public-key",
            "3059301306072a8648ce3d020106082a8648ce3d03010703420004aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677",
        )
        .await
        .expect("public key");
    browser.press("#sec-save").await.expect("save");
    browser.wait_text("#sec-message", "Saved the RPK").await.expect("saved");
    browser.fill("#sec-endpoint", "urn:dev:psk-2").await.expect("endpoint");
    browser.select("#sec-mode", "psk").await.expect("mode");
    browser.fill("#sec-identity", "psk-identity-1").await.expect("identity");
    browser.fill("#sec-key", "aabb").await.expect("key");
    browser.press("#sec-save").await.expect("save");
    let err = browser
        .wait_text("#sec-message .message.err", "credentials_in_use")
        .await
        .expect("the conflict is shown");
    assert!(err.contains("psk-identity-1"), "{err}");
    browser
        .wait_text("#security-table", "urn:dev:rpk-1")
        .await
        .expect("listed");
    browser.screenshot("server-security").await.expect("screenshot");

    // Edit reveals the key for a replacement.
    browser
        .press(r#"[data-testid="security-edit-urn:dev:psk-1"]"#)
        .await
        .expect("edit");
    browser
        .wait_text("#sec-form-title", "Edit urn:dev:psk-1")
        .await
        .expect("edit form");
    let shown = browser
        .client
        .find(lwm2m_browser_tests::fantoccini::Locator::Css("#sec-key"))
        .await
        .expect("key field")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(shown.as_deref(), Some(key));

    // The object models page (GET /api/models).
    browser.press("#nav-models").await.expect("models page");
    browser.wait_text("#models-list", "Device").await.expect("model list");
    browser
        .press(r##"#models-list a[href="#/models/3"]"##)
        .await
        .expect("Device model");
    let table = browser
        .wait_text("#model-resources", "Manufacturer")
        .await
        .expect("resources of /3");
    assert!(table.contains("Reboot") && table.contains("Battery Level"), "{table}");
    browser.screenshot("server-models").await.expect("screenshot");
    assert_no_ui_error(&browser).await;
    browser.close().await.expect("session closes");
}
