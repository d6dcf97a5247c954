//! `links`: a URL shortener on a key-value store, with click counts and page titles. Three
//! routes, dispatched by the SDK's [`Router`] on the pattern the host matched:
//!
//! - `POST /links` with `{"url": "https://...", "code"?: "my-code"}` → `201 {"code", "url",
//!   "title", "created_at"}` and `Location: /l/<code>`. Without `code`, a random 7-character
//!   base62 code is drawn (and drawn again on a collision). `400` for a body that is not such a
//!   JSON object, `422` for a URL (`invalid_url`) or code (`invalid_code`) that is not
//!   acceptable, `409` when the chosen code is taken. When the variable `api_key` is set, the
//!   request needs `Authorization: Bearer <api_key>` (`401` with `WWW-Authenticate: Bearer`
//!   otherwise). When the variable `create_limit_per_minute` is set, a client (its
//!   `client_addr`) creates at most that many links per fixed minute: `429` with `Retry-After`
//!   (the seconds left in its window) past it.
//! - `GET /l/:code` → `302` to the URL, counting the click; `HEAD` answers the same without
//!   counting (link checkers and preview bots use it). `404` for an unknown code.
//! - `GET /links/:code/stats` → `200 {"code", "url", "title", "clicks", "created_at"}`; `404`
//!   for an unknown code.
//!
//! Creation is atomic across processes: a code is claimed with a compare-and-swap "only if
//! absent" on `link:<code>`, so two wasmgate processes sharing the store can never hand out the
//! same code twice. Clicks are counted with the store's atomic increment on `clicks:<code>`.
//!
//! After claiming the code, the plugin tries to fetch the page's `<title>` through the host
//! (`allowed_outbound_hosts`); any failure, including the common "not allowed", just leaves the
//! title `null`. Store failures answer JSON errors (`503 store_unavailable` when the store is
//! down or slow) instead of trapping. Every error body has the host's shape `{"error": kind,
//! "message": ...}`.
//!
//! Configuration (`wasmgate.toml`): the store `links`, the grant `kv = ["links"]`, the
//! `[plugins.links.vars]` table (it may be empty), the three routes, and
//! `allowed_outbound_hosts`, the pages whose titles may be fetched (required: the module imports
//! `http_send`, so without the grant it is refused at load); see this crate's README.md.

mod code;
mod input;
mod limit;
mod store;
mod time;
mod title;

#[cfg(test)]
mod tests;

use input::NewLink;
use serde::Serialize;
use store::{Link, Links, failure};
use wasmgate_sdk::{Request, Response, Router};

/// The plugin's routes; the patterns are those of `wasmgate.toml`, compared exactly.
fn routes() -> Router {
    Router::new()
        .post("/links", create)
        .get("/l/:code", follow)
        .get("/links/:code/stats", stats)
}

wasmgate_sdk::handler!(|req| routes().handle(req));

/// What clients see of a link: the stored record with its code, and its clicks on `stats`.
#[derive(Debug, Serialize)]
struct LinkView<'a> {
    code: &'a str,
    url: &'a str,
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a str>,
}

impl<'a> LinkView<'a> {
    fn new(code: &'a str, link: &'a Link, clicks: Option<i64>) -> Self {
        LinkView {
            code,
            url: &link.url,
            title: link.title.as_deref(),
            clicks,
            created_at: link.created_at.as_deref(),
        }
    }
}

/// `POST /links`: checks the caller, the body, the URL and the code, claims the code, then
/// tries to add the page's title.
fn create(req: Request) -> Result<Response, Response> {
    input::authorize(&req)?;
    limit::admit(&req)?;
    let new: NewLink = input::new_link(&req)?;
    let url = input::check_url(&new.url)
        .map_err(|message| Response::error(422, "invalid_url", message))?;
    let chosen = match new.code.as_deref() {
        Some(code) => Some(
            input::check_code(code)
                .map_err(|message| Response::error(422, "invalid_code", message))?,
        ),
        None => None,
    };

    let links = Links::open().map_err(failure)?;
    let mut link = Link {
        url: url.to_owned(),
        title: None,
        created_at: time::now_rfc3339(),
    };
    let (code, stored) = match chosen {
        Some(code) => match links.insert(code, &link).map_err(failure)? {
            Some(stored) => (code.to_owned(), stored),
            None => {
                let message = format!("the code `{code}` is taken; choose another or omit `code`");
                return Err(Response::error(409, "conflict", message));
            }
        },
        None => store::insert_generated(&links, &link, code::generate)?,
    };

    // The code is ours from here on: whatever happens to the title, the link exists.
    if let Some(title) = title::fetch(&link.url) {
        let titled = Link {
            title: Some(title),
            ..link.clone()
        };
        match links.update(&code, &stored, &titled) {
            Ok(true) => link = titled,
            Ok(false) => eprintln!("links: `{code}` changed before its title was stored"),
            Err(e) => eprintln!("links: storing the title of `{code}` failed: {e}"),
        }
    }
    Ok(Response::json(201, &LinkView::new(&code, &link, None))
        .header("location", format!("/l/{code}")))
}

/// `GET /l/:code`: a 302 to the link's URL, counting the click (not for `HEAD`).
fn follow(req: Request) -> Result<Response, Response> {
    let code = known_code(&req)?;
    let links = Links::open().map_err(failure)?;
    let stored = links.get(code).map_err(failure)?.ok_or_else(unknown)?;
    if req.method() != "HEAD" {
        // A click that cannot be counted must not break the link: redirect anyway.
        if let Err(e) = links.count_click(code) {
            eprintln!("links: counting a click on `{code}` failed: {e}");
        }
    }
    // no-store: a cached redirect would skip the count on the next click.
    Ok(Response::found(stored.link.url).header("cache-control", "private, no-store"))
}

/// `GET /links/:code/stats`: the link and its click count.
fn stats(req: Request) -> Result<Response, Response> {
    let code = known_code(&req)?;
    let links = Links::open().map_err(failure)?;
    let stored = links.get(code).map_err(failure)?.ok_or_else(unknown)?;
    let clicks = links.clicks(code).map_err(failure)?;
    Ok(
        Response::json(200, &LinkView::new(code, &stored.link, Some(clicks)))
            .header("cache-control", "no-store"),
    )
}

/// The `:code` param when it could name a link; anything else is unknown without asking the
/// store.
fn known_code(req: &Request) -> Result<&str, Response> {
    req.param("code")
        .filter(|code| input::check_code(code).is_ok())
        .ok_or_else(unknown)
}

fn unknown() -> Response {
    Response::error(404, "not_found", "no link has this code")
}
