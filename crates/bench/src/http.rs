//! One HTTP/1.1 keep-alive connection (hyper's low-level client): the load generator opens
//! exactly as many as it is told, and each sends one request at a time.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response, body read in full.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (empty if it is not UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }

    /// The start of the body, for error messages.
    pub fn snippet(&self) -> String {
        self.text().chars().take(160).collect()
    }
}

/// A keep-alive connection to one server, reopened when the server closes it.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `addr`, opened at the first request.
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            sender: None,
        })
    }

    /// `GET path` (path and query), with an optional `Cookie` header.
    pub async fn get(&mut self, path: &str, cookie: Option<&str>) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, cookie, None, None).await
    }

    /// `POST path` with a form body and an optional `Authorization` header.
    pub async fn post_form(
        &mut self,
        path: &str,
        form: String,
        authorization: Option<&str>,
    ) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, None, authorization, Some(form))
            .await
    }

    /// `POST path` with a form body and a `Cookie` header (a browser's form).
    pub async fn post_form_with_cookie(
        &mut self,
        path: &str,
        form: String,
        cookie: &str,
    ) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, Some(cookie), None, Some(form))
            .await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        authorization: Option<&str>,
        form: Option<String>,
    ) -> anyhow::Result<Reply> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(cookie) = cookie {
            builder = builder.header(COOKIE, cookie);
        }
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        let body = match form {
            Some(form) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).context("building the request")?;
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.sender = Some(connect(self.addr).await?);
        }
        let Some(sender) = self.sender.as_mut() else {
            anyhow::bail!("no connection");
        };
        let exchanged = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        }
        .await;
        match exchanged {
            Ok(reply) => Ok(reply),
            Err(e) => {
                self.sender = None;
                Err(anyhow::Error::new(e).context("HTTP exchange"))
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it.
        connection.await.ok();
    });
    Ok(sender)
}
