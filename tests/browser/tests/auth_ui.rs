//! The web UIs of APIs that run with a token (`--api-token`), in headless chromium: the page asks for the
//! token with a login card, refuses a wrong one, and after the right one continues where it was, the event
//! stream (EventSource, which only has the session cookie) included: a device that registers appears live.
//! "Log out" ends the session and the card comes back. Every wait is for a condition on the page or an event,
//! bounded by `UI_WAIT`.

use lwm2m_browser_tests::{Browser, TestBootstrap, TestServer};
use lwm2m_client::dm::{FactoryConfig, ServerConfig as AccountConfig};
use lwm2m_client::runtime::{Client, ClientConfig};

const TOKEN: &str = "ui-test-token-5f0c2a9e";
const EP: &str = "urn:dev:auth-ui-01";

/// Types `token` into the login card and submits it.
async fn log_in(browser: &Browser, token: &str) {
    browser
        .fill("#login-token", token)
        .await
        .expect("the login card has a token field");
    browser.press("#login-submit").await.expect("the Log in button");
}

/// The page showed no unexpected script error (the server UI lists them in `#ui-errors`).
async fn assert_no_ui_error(browser: &Browser) {
    let errors = browser.texts("#ui-errors .ui-error").await.expect("query");
    assert!(errors.is_empty(), "script errors: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ui_asks_for_the_token_then_lists_clients_live() {
    let Some(browser) = Browser::start().await else { return };
    let mut server = TestServer::start_with_token(TOKEN).await.expect("server starts");
    browser.goto(&server.ui("#/clients")).await.expect("page loads");

    // The API refused the page's calls: the login card asks for the token; nothing is listed meanwhile.
    browser.find("#login-card").await.expect("the login card shows");
    browser
        .wait_text("#login-reason", "Authorization: Bearer")
        .await
        .expect("the card says why");
    browser.screenshot("server-login").await.expect("screenshot");
    log_in(&browser, "not-the-token").await;
    browser
        .wait_text("#login-error", "wrong")
        .await
        .expect("a wrong token is refused");
    browser.find("#login-card").await.expect("the card stays");

    // The right token: the card goes, the page continues (client list, live event stream).
    log_in(&browser, TOKEN).await;
    browser.wait_gone("#login").await.expect("the card closes");
    browser
        .wait_text("#clients-empty", "No client is registered yet")
        .await
        .expect("the client list loads");
    browser
        .wait_text("#sse-status", "live")
        .await
        .expect("the event stream connects with the session cookie");
    browser.find("#logout").await.expect("a Log out link in the top bar");

    // A device registers: it appears without a reload (SSE through the cookie).
    let dm = FactoryConfig {
        servers: vec![AccountConfig::new(1, format!("coap://{}", server.coap), 300)],
        ..FactoryConfig::default()
    }
    .build()
    .expect("factory configuration");
    let (device, _events) = Client::start(dm, ClientConfig::new(EP)).expect("client starts");
    server.registered(EP).await;
    browser
        .wait_text(&format!(r#"[data-testid="client-row-{EP}"]"#), EP)
        .await
        .expect("the new client is listed live");
    browser.wait_text("#event-log", "registered").await.expect("logged");
    assert_no_ui_error(&browser).await;

    // Log out: the session ends and the card is back after the reload.
    browser.press("#logout").await.expect("Log out");
    browser.find("#login-card").await.expect("the login card is back");
    assert_eq!(
        browser
            .texts(&format!(r#"[data-testid="client-row-{EP}"]"#))
            .await
            .unwrap(),
        Vec::<String>::new(),
        "nothing is listed while logged out"
    );
    device.shutdown().await;
    browser.close().await.expect("session closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_ui_asks_for_the_token() {
    let Some(browser) = Browser::start().await else { return };
    let bs = TestBootstrap::start_with_token(TOKEN)
        .await
        .expect("Bootstrap-Server starts");
    browser.goto(&bs.ui("#/configs")).await.expect("page loads");
    browser.find("#login-card").await.expect("the login card shows");
    log_in(&browser, TOKEN).await;
    browser.wait_gone("#login").await.expect("the card closes");
    browser
        .wait_text("#configs-body", "No endpoint configuration yet")
        .await
        .expect("the configurations load");
    browser
        .wait_text("#live", "live")
        .await
        .expect("the event stream connects with the session cookie");
    browser.find("#logout").await.expect("a Log out link in the top bar");
    browser.close().await.expect("session closes");
    bs.shutdown().await;
}
