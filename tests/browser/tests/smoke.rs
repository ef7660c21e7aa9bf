//! The harness itself: chromium loads the server UI's index page from the embedded assets.

use lwm2m_browser_tests::{Browser, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_index_loads_in_chromium() {
    let Some(browser) = Browser::start().await else { return };
    let server = TestServer::start().await.expect("server starts");
    browser.goto(&format!("{}/", server.http)).await.expect("page loads");
    let title = browser.client.title().await.expect("title");
    assert!(title.contains("lwm2m"), "title was {title:?}");
    browser.find("#app").await.expect("the app root is there");
    browser.close().await.expect("session closes");
}
