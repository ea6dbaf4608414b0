//! Health endpoints: liveness, and readiness that follows the store and database.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sesame_tests::TestApp;

#[tokio::test]
async fn live_and_ready_answer_when_everything_is_up() {
    let app = TestApp::spawn().await;
    let live = reqwest::get(format!("{}/health/live", app.address))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = reqwest::get(format!("{}/health/ready", app.address))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "up");
    assert_eq!(body["checks"]["store"], "up");
}

struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Self { child, port })
    }

    async fn wait_until_up(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn ready_status(app: &TestApp) -> (u16, serde_json::Value) {
    let res = reqwest::get(format!("{}/health/ready", app.address))
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn readiness_goes_red_while_redis_is_down_and_green_when_it_is_back() {
    let port = free_port();
    let Some(redis) = RedisServer::start(port) else {
        assert!(
            std::env::var("CI").is_err(),
            "redis-server must be installed in CI"
        );
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    redis.wait_until_up().await;
    let app = TestApp::builder()
        .with(move |s| {
            s.store.url = format!("redis://127.0.0.1:{port}").into();
            s.store.key_prefix = sesame_store::testing::random_prefix();
            s.cas.services.push(sesame_tests::cas_service(
                "app",
                "https://app.example.org/",
                "",
            ));
        })
        .spawn()
        .await;
    assert_eq!(ready_status(&app).await.0, 200);

    redis.stop();
    let (status, body) = ready_status(&app).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["store"], "down");
    assert_eq!(body["checks"]["database"], "up");
    let live = reqwest::get(format!("{}/health/live", app.address))
        .await
        .unwrap();
    assert_eq!(live.status(), 200, "liveness stays green");
    // A login needs the store: it must fail closed with 503, not open a session.
    let login_page = reqwest::get(format!("{}/cas/login", app.address))
        .await
        .unwrap();
    assert_eq!(login_page.status(), 503);
    assert!(login_page.headers().contains_key("retry-after"));
    // A ticket cannot be checked without the store: INTERNAL_ERROR, never a success (F01).
    let xml = reqwest::get(format!(
        "{}/cas/serviceValidate?service=https%3A%2F%2Fapp.example.org%2F&ticket=ST-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL",
        app.address
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        xml.contains("code=\"INTERNAL_ERROR\"") && !xml.contains("authenticationSuccess"),
        "{xml}"
    );

    let redis = RedisServer::start(port).expect("restart redis-server");
    redis.wait_until_up().await;
    let mut recovered = false;
    for _ in 0..100 {
        if ready_status(&app).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready again without restarting Sesame");
    redis.stop();
}
