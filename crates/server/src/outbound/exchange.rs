//! One call's exchange with its upstream: the request sent through the plugin's pooled client,
//! redirects followed one checked hop at a time, the response body read under its cap, and the
//! client's errors turned into the verdicts the plugin sees.
//!
//! Owns the redirect rules (which statuses, how many hops, what a hop does to the method, body and
//! credentials) and the response size cap while reading. Every hop's URL goes through
//! `request::check` before the client may connect for it, exactly like the first URL. It must not
//! time the call (its caller bounds the whole exchange) nor pick addresses (the connector's).

use std::error::Error;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, COOKIE, HeaderName, LOCATION,
    PROXY_AUTHORIZATION, WWW_AUTHENTICATE,
};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use url::Url;

use super::connector::Connector;
use super::{Answer, OutboundError, request, tls};
use crate::config::AllowEntry;

/// A plugin's HTTP/1.1 client: hyper-util's pool over our connector.
pub(super) type Http = Client<Connector, Full<Bytes>>;

/// How much of a redirect's own body is read so that its connection can go back to the pool;
/// a longer one is dropped with its connection rather than read for nothing.
const REDIRECT_BODY_DRAINED: usize = 64 * 1024;

/// Headers dropped when a redirect leaves the origin (scheme, host or port change): credentials
/// meant for one server are not handed to another.
const CREDENTIALS: [HeaderName; 4] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE];

/// A request of a call, checked and ready to send (again, after a redirect).
pub(super) struct Outgoing {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

/// What an exchange may do beyond the first request.
pub(super) struct Policy<'a> {
    pub(super) plugin: &'a str,
    pub(super) allow: &'a [AllowEntry],
    /// `[outbound] max_redirects`: 0 hands every 3xx to the plugin.
    pub(super) max_redirects: u32,
    pub(super) max_response_bytes: usize,
}

/// Sends `out`, follows redirects as `policy` allows, and reads the final answer.
pub(super) async fn run(
    http: &Http,
    mut out: Outgoing,
    policy: &Policy<'_>,
) -> Result<Answer, OutboundError> {
    let mut followed = 0;
    loop {
        let response = send(http, &out).await?;
        let Some(next) = redirect_target(&response, &out.url, policy.max_redirects) else {
            return read(response, policy.max_response_bytes).await;
        };
        followed += 1;
        if followed > policy.max_redirects {
            return Err(OutboundError::Protocol(format!(
                "more than {} redirects (max_redirects)",
                policy.max_redirects
            )));
        }
        request::check(policy.plugin, policy.allow, &next)?;
        let status = response.status();
        drain(response.into_body()).await;
        out.follow(status, next);
    }
}

impl Outgoing {
    /// The request for the hop to `next` after a `status` redirect, as browsers do (WHATWG
    /// Fetch): 303 turns anything but HEAD into a GET without a body, 301 and 302 do that to a
    /// POST only, 307 and 308 repeat the request as it was. Leaving the origin drops
    /// [`CREDENTIALS`].
    fn follow(&mut self, status: StatusCode, next: Url) {
        let to_get = match status {
            StatusCode::SEE_OTHER => self.method != Method::HEAD,
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => self.method == Method::POST,
            _ => false,
        };
        if to_get {
            self.method = Method::GET;
            self.body = Bytes::new();
            self.headers.remove(CONTENT_TYPE);
            self.headers.remove(CONTENT_ENCODING);
        }
        if next.origin() != self.url.origin() {
            for name in &CREDENTIALS {
                self.headers.remove(name);
            }
        }
        self.url = next;
    }
}

/// One request through the pool.
async fn send(http: &Http, out: &Outgoing) -> Result<Response<Incoming>, OutboundError> {
    let mut request = Request::new(Full::new(out.body.clone()));
    *request.method_mut() = out.method.clone();
    *request.uri_mut() = request::uri(&out.url)?;
    *request.headers_mut() = out.headers.clone();
    http.request(request)
        .await
        .map_err(|e| classify(&e, e.is_connect()))
}

/// Where `response` redirects to, if it is a redirect to follow: redirects are on, the status
/// is 301, 302, 303, 307 or 308, and `Location` is a URL (relative to `from`). Anything else is
/// the answer, handed to the plugin as it is.
fn redirect_target(response: &Response<Incoming>, from: &Url, max_redirects: u32) -> Option<Url> {
    let redirects = [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ];
    if max_redirects == 0 || !redirects.contains(&response.status()) {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    from.join(location).ok()
}

/// The answer, its body read up to `cap` bytes: `too_large` at once when `Content-Length` says
/// more, or the moment the body passes it (the connection is then dropped, not drained).
async fn read(response: Response<Incoming>, cap: usize) -> Result<Answer, OutboundError> {
    let (parts, mut body) = response.into_parts();
    if body.size_hint().lower() > cap as u64 {
        return Err(too_large(cap));
    }
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify(&e, false))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > cap {
                return Err(too_large(cap));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Answer {
        status: parts.status.as_u16(),
        headers,
        body: bytes,
    })
}

/// Reads a redirect's body to its end (up to [`REDIRECT_BODY_DRAINED`]) so that its connection
/// is reusable; any failure just drops it.
async fn drain(mut body: Incoming) {
    let mut read = 0;
    while read <= REDIRECT_BODY_DRAINED {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) | None => return,
        }
    }
}

fn too_large(cap: usize) -> OutboundError {
    OutboundError::TooLarge(format!(
        "the response body is larger than max_outbound_response_bytes ({cap})"
    ))
}

/// Turns a client error into its verdict: one the connector made travels inside it (found by
/// walking the causes), a TLS failure is `protocol`, and the rest is `connect` while connecting
/// and `protocol` after (the upstream closed early, sent invalid HTTP).
fn classify(e: &(dyn Error + 'static), connecting: bool) -> OutboundError {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(verdict) = c.downcast_ref::<OutboundError>() {
            return verdict.clone();
        }
        if tls::is_tls(c) {
            return OutboundError::Protocol(format!("TLS: {c}"));
        }
        cause = c.source();
    }
    match connecting {
        true => OutboundError::Connect(chain(e)),
        false => OutboundError::Protocol(chain(e)),
    }
}

/// `e` and its causes, `: `-separated.
fn chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
