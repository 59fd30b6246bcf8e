//! Starting and stopping the local server, and the HTTP versions it speaks.
#![cfg(feature = "server")]

#[path = "common/server.rs"]
mod common;

use std::time::Duration;

use common::*;
use osspipe::server::{FaultRule, LocalServer};
use osspipe::Credentials;
use osspipe::Operation;

const B: &str = "life-bucket";

async fn refuses_connections(addr: std::net::SocketAddr) -> bool {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn dropping_the_server_closes_its_port() {
    let server = LocalServer::builder().start().await.unwrap();
    let addr = server.addr();
    assert!(server.endpoint().starts_with("http://127.0.0.1:"));
    tokio::net::TcpStream::connect(addr).await.unwrap();
    drop(server);
    assert!(refuses_connections(addr).await);
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let oss = Oss::memory().await;
    oss.call("PUT", B, Some("k")).body("slow").send().await.ok();
    oss.server().faults().add(FaultRule::delay(
        Some(Operation::GetObject),
        Duration::from_millis(500),
    ));
    let addr = oss.addr();
    let call = oss.call("GET", B, Some("k"));
    let (headers, url, client) = (call.signed_headers(), call.url(), oss.client.clone());
    let request = tokio::spawn(async move {
        let response = client.get(url).headers(headers).send().await.unwrap();
        Reply::from_reqwest(response).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    oss.shutdown().await;
    let reply = request.await.unwrap().ok();
    assert_eq!(reply.text(), "slow");
    assert!(refuses_connections(addr).await);
}

#[tokio::test]
async fn made_up_credentials_are_random_and_given_ones_are_used() {
    let a = LocalServer::builder().start().await.unwrap();
    let b = LocalServer::builder().start().await.unwrap();
    assert!(a.credentials().access_key_id().starts_with("LTAI"));
    assert_ne!(a.credentials(), b.credentials());
    assert!(a.credentials().access_key_secret().len() >= 30);
    assert_eq!(a.region(), "cn-hangzhou");
    let given = Credentials::new("LTAIgiven", "given-secret");
    let c = LocalServer::builder()
        .credentials(given.clone())
        .region("cn-shanghai")
        .start()
        .await
        .unwrap();
    assert_eq!(c.credentials(), &given);
    assert_eq!(c.region(), "cn-shanghai");
    let bad = LocalServer::builder().bucket("Not_A_Bucket").start().await;
    assert_eq!(bad.unwrap_err().kind(), osspipe::ErrorKind::InvalidInput);
    let bad = LocalServer::builder().region("").start().await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn run_until_serves_until_the_signal() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, endpoint) = tokio::sync::oneshot::channel::<(String, Credentials)>();
    let server = tokio::spawn(osspipe::server::run_until(
        LocalServer::builder().bucket("ready"),
        async {
            let _ = stopped.await;
        },
        move |server| {
            let _ = ready.send((server.endpoint(), server.credentials().clone()));
        },
    ));
    let (endpoint, _credentials) = endpoint.await.unwrap();
    let addr: std::net::SocketAddr = endpoint.trim_start_matches("http://").parse().unwrap();
    tokio::net::TcpStream::connect(addr).await.unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(refuses_connections(addr).await);
}

#[tokio::test]
async fn http2_with_prior_knowledge() {
    let mut oss = Oss::memory().await;
    oss.client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let body = data(3 * 1024 * 1024, 8);
    let reply = oss
        .call("PUT", B, Some("h2"))
        .body(body.clone())
        .send()
        .await
        .ok();
    assert_common_headers(&reply);
    assert_eq!(reply.header("etag").unwrap(), md5_etag(&body));
    let response = oss
        .client
        .get(oss.call("GET", B, Some("h2")).url())
        .headers(oss.call("GET", B, Some("h2")).signed_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let reply = Reply::from_reqwest(response).await.ok();
    assert_eq!(reply.body.as_ref(), body.as_slice());
}
