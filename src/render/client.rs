//! [`Client`]: the requests, over a blocking HTTP client (ureq, rustls for https).

use std::fmt;
use std::time::Duration;

use ureq::Agent;
use ureq::http::{Response, Uri};

use super::error::Error;
use super::query::{Query, Time};
use super::response::{self, CsvRow, Event, Node, Series, TagValue};
use crate::web::{base64, percent_decode};

/// The largest answer read by default: a render of many long series is large, but not this
/// large.
const MAX_ANSWER: u64 = 256 << 20;

/// The most of an error answer read: its message is all that is kept of it.
const MAX_ERROR_ANSWER: u64 = 64 << 10;

/// A query longer than this goes by POST: proxies and servers limit URLs.
const MAX_GET_QUERY: usize = 2000;

/// A client for one graphite-web: render, find, tags and events.
///
/// Cheap to clone (its connections are pooled and shared). Built from the server's base URL
/// (`http` or `https`, with a path prefix if graphite-web is mounted under one):
///
/// ```no_run
/// use graphyte::render::{Client, Query, Time};
/// use std::time::Duration;
///
/// let graphite = Client::builder("https://graphite.example.com")
///     .basic_auth("reader", &std::env::var("GRAPHITE_PASSWORD").unwrap_or_default())
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// for series in graphite.render(&Query::new("app.*.requests").from("-1h".parse::<Time>()?))? {
///     let last = series.points.iter().rev().find_map(|&(_, value)| value);
///     println!("{}: {last:?}", series.name);
/// }
/// # Ok::<(), graphyte::render::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: Agent,
    /// The `Authorization` header of basic auth, if any.
    authorization: Option<String>,
    user: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    max_answer: u64,
}

impl fmt::Debug for Client {
    /// The password and the headers' values are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.base)
            .field("user", &self.user)
            .field("password", &self.authorization.as_ref().map(|_| "<hidden>"))
            .field("headers", &HeaderNames(&self.headers))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Headers shown by name only: their values may be secrets (a bearer token).
struct HeaderNames<'a>(&'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| format!("{name}: <hidden>")))
            .finish()
    }
}

/// How to reach graphite-web: see [`Client::builder`].
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ClientBuilder {
    url: String,
    credentials: Option<(String, String)>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    max_answer: u64,
}

impl fmt::Debug for ClientBuilder {
    /// The password and the headers' values are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("password", &self.credentials.as_ref().map(|_| "<hidden>"))
            .field("headers", &HeaderNames(&self.headers))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientBuilder {
    /// HTTP basic authentication, on every request. Credentials in the URL
    /// (`https://user:password@host`) are taken the same way.
    pub fn basic_auth(mut self, user: &str, password: &str) -> ClientBuilder {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// A header sent with every request, such as `Authorization: Bearer <token>` for a
    /// server behind a token-checking proxy. Its value is never shown by `Debug`.
    pub fn header(mut self, name: &str, value: &str) -> ClientBuilder {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// How long a whole request may take, answer included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// The largest answer read, in bytes (default 256 MiB); a larger one is an
    /// [`Error::Malformed`], read no further.
    pub fn max_answer_size(mut self, bytes: u64) -> ClientBuilder {
        self.max_answer = bytes;
        self
    }

    /// The client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL is not an `http` or `https` URL with a host, a header
    /// is not a valid HTTP header, or the timeout is zero.
    pub fn build(self) -> Result<Client, Error> {
        let (base, url_credentials) = base_url(&self.url)?;
        for (name, value) in &self.headers {
            let valid = ureq::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && ureq::http::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(Error::Config(format!(
                    "header '{name}' is not a valid HTTP header name and value"
                )));
            }
        }
        if self.timeout.is_zero() {
            return Err(Error::Config("a zero timeout".to_owned()));
        }
        let credentials = self.credentials.or(url_credentials);
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            // A redirect is answered as an error naming where it points: following it would
            // send the custom headers (a token, say) to wherever it points.
            .max_redirects(0)
            .user_agent(concat!("graphyte/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            base,
            agent,
            authorization: credentials.as_ref().map(|(user, password)| {
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }),
            user: credentials.map(|(user, _)| user),
            headers: self.headers,
            timeout: self.timeout,
            max_answer: self.max_answer,
        })
    }
}

/// The URL without credentials or a trailing slash, and the credentials it held.
fn base_url(url: &str) -> Result<(String, Option<(String, String)>), Error> {
    let refuse = |why: &str| Err(Error::Config(format!("graphite-web URL: {why}")));
    let uri: Uri = match url.parse() {
        Ok(uri) => uri,
        Err(_) => return refuse("not a URL (e.g. http://graphite.example.com:8080)"),
    };
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return refuse("it must start with http:// or https://");
    }
    let Some(authority) = uri.authority() else {
        return refuse("no host");
    };
    if uri.query().is_some() {
        return refuse("a base URL takes no query (?...)");
    }
    let (credentials, host) = match authority.as_str().rsplit_once('@') {
        Some((userinfo, host)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (Some((percent_decode(user), percent_decode(password))), host)
        }
        None => (None, authority.as_str()),
    };
    if host.is_empty() {
        return refuse("no host");
    }
    // After an IPv6 address's brackets, if any: `:port`.
    let after_address = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
    if let Some((_, port)) = after_address.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return refuse("the port is not a number from 0 to 65535");
    }
    let path = uri.path().trim_end_matches('/');
    Ok((format!("{scheme}://{host}{path}"), credentials))
}

/// How a request goes out.
enum Method<'a> {
    Get(&'a [(&'static str, String)]),
    /// A form, as graphite-web takes long queries.
    PostForm(&'a [(&'static str, String)]),
    PostJson(Vec<u8>),
}

impl Client {
    /// How to reach the graphite-web at `url`: see [`ClientBuilder`].
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            credentials: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            max_answer: MAX_ANSWER,
        }
    }

    /// The client of the graphite-web at `url`, without credentials and with the default
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL cannot be used (see [`ClientBuilder::build`]).
    pub fn new(url: &str) -> Result<Client, Error> {
        Client::builder(url).build()
    }

    /// The base URL, without credentials.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The series `query` selects (graphite-web's `format=json`). A target that matches
    /// nothing adds no series; graphite-web answers a malformed target the same way, or
    /// with an error status.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn render(&self, query: &Query) -> Result<Vec<Series>, Error> {
        self.read(
            "/render",
            self.query_method(&query.fields("json")),
            response::series,
        )
    }

    /// The same data as CSV rows (`format=csv`), with times asked in UTC and read as Unix
    /// seconds.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn render_csv(&self, query: &Query) -> Result<Vec<CsvRow>, Error> {
        let fields = query.fields("csv");
        self.read("/render", self.query_method(&fields), response::csv_rows)
    }

    /// graphite-web's own picture of `query` (`format=png`): the bytes of a PNG image of
    /// `width` × `height` pixels.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`; [`Error::Malformed`] when the answer is not a PNG image.
    pub fn render_png(&self, query: &Query, width: u32, height: u32) -> Result<Vec<u8>, Error> {
        let mut fields = query.fields("png");
        fields.push(("width", width.to_string()));
        fields.push(("height", height.to_string()));
        self.read("/render", self.query_method(&fields), |body| {
            if body.starts_with(b"\x89PNG\r\n\x1a\n") {
                Ok(body.to_vec())
            } else {
                Err(format!(
                    "not a PNG image (it starts {:?})",
                    String::from_utf8_lossy(&body[..body.len().min(40)])
                ))
            }
        })
    }

    /// The nodes of the metric tree `glob` matches (`/metrics/find`): `app.*` lists what is
    /// under `app`.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn find(&self, glob: &str) -> Result<Vec<Node>, Error> {
        let fields = [("query", glob.to_owned())];
        self.read("/metrics/find", self.query_method(&fields), response::nodes)
    }

    /// The paths of the series the globs match (`/metrics/expand`, leaves only).
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn expand(&self, globs: &[&str]) -> Result<Vec<String>, Error> {
        let mut fields: Vec<(&'static str, String)> = globs
            .iter()
            .map(|glob| ("query", (*glob).to_owned()))
            .collect();
        fields.push(("leavesOnly", "1".to_owned()));
        self.read(
            "/metrics/expand",
            self.query_method(&fields),
            response::expanded,
        )
    }

    /// Every tag of the tag database (`/tags`), `name` included.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn tags(&self) -> Result<Vec<String>, Error> {
        self.read("/tags", Method::Get(&[]), response::tags)
    }

    /// The values of `tag` and how many series carry each (`/tags/<tag>`).
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`; [`Error::Config`] when the tag holds a character a tag
    /// cannot (`;`, `!`, `^`, `=`, `/`, whitespace).
    pub fn tag_values(&self, tag: &str) -> Result<Vec<TagValue>, Error> {
        // graphite-web's own views under /tags/, which a tag of that name cannot reach.
        const ROUTES: [&str; 5] = [
            "findSeries",
            "autoComplete",
            "delSeries",
            "tagSeries",
            "tagMultiSeries",
        ];
        let odd = |c: char| c.is_whitespace() || c.is_control() || ";!^=/?#%\\".contains(c);
        if tag.is_empty() || tag.contains(odd) || tag == "." || tag == ".." || ROUTES.contains(&tag)
        {
            return Err(Error::Config(format!("'{tag}' is not a tag name")));
        }
        let path = format!("/tags/{}", path_segment(tag));
        self.read(&path, Method::Get(&[]), response::tag_values)
    }

    /// Tags that start with `prefix`, among the series the `exprs` select (all series when
    /// none): `/tags/autoComplete/tags`.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn autocomplete_tags(&self, prefix: &str, exprs: &[&str]) -> Result<Vec<String>, Error> {
        let mut fields = exprs_fields(exprs);
        fields.push(("tagPrefix", prefix.to_owned()));
        self.read(
            "/tags/autoComplete/tags",
            self.query_method(&fields),
            response::strings,
        )
    }

    /// Values of `tag` that start with `prefix`, among the series the `exprs` select:
    /// `/tags/autoComplete/values`.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn autocomplete_values(
        &self,
        tag: &str,
        prefix: &str,
        exprs: &[&str],
    ) -> Result<Vec<String>, Error> {
        let mut fields = exprs_fields(exprs);
        fields.push(("tag", tag.to_owned()));
        fields.push(("valuePrefix", prefix.to_owned()));
        self.read(
            "/tags/autoComplete/values",
            self.query_method(&fields),
            response::strings,
        )
    }

    /// The tagged series that match every tag expression (`/tags/findSeries`), such as
    /// `env=prod` or `name=~app\..*`: their names with tags, `app.hits;env=prod`. The same
    /// expressions select series in a render: `seriesByTag('env=prod')`.
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`; graphite-web answers a malformed expression with
    /// [`Error::Status`] (400) and says why.
    pub fn find_series(&self, exprs: &[&str]) -> Result<Vec<String>, Error> {
        self.read(
            "/tags/findSeries",
            self.query_method(&exprs_fields(exprs)),
            response::strings,
        )
    }

    /// Records an event (`POST /events/`): a deploy marker, say, which dashboards draw over
    /// graphs and `events('deploy')` renders.
    ///
    /// ```no_run
    /// use graphyte::render::{Client, NewEvent};
    ///
    /// let graphite = Client::new("http://graphite.example.com")?;
    /// graphite.add_event(&NewEvent::new("deploy app v2.1").tag("deploy").tag("app").data("by ci #1234"))?;
    /// # Ok::<(), graphyte::render::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn add_event(&self, event: &NewEvent) -> Result<(), Error> {
        self.read("/events/", Method::PostJson(event.to_json()), |_| Ok(()))
    }

    /// The events between `from` and `until`, with every one of `tags` when any are given
    /// (`/events/get_data`).
    ///
    /// # Errors
    ///
    /// Any [`Error`] but `Config`: see its variants.
    pub fn events(
        &self,
        from: impl Into<Time>,
        until: impl Into<Time>,
        tags: &[&str],
    ) -> Result<Vec<Event>, Error> {
        let mut fields = vec![
            ("from", from.into().to_string()),
            ("until", until.into().to_string()),
        ];
        if !tags.is_empty() {
            fields.push(("tags", tags.join(" ")));
        }
        self.read("/events/get_data", Method::Get(&fields), response::events)
    }

    /// GET, or POST for a query too long for a URL.
    fn query_method<'a>(&self, fields: &'a [(&'static str, String)]) -> Method<'a> {
        let len: usize = fields.iter().map(|(k, v)| k.len() + v.len() * 3 + 2).sum();
        if len > MAX_GET_QUERY {
            Method::PostForm(fields)
        } else {
            Method::Get(fields)
        }
    }

    /// Sends a request to `path` and reads a successful answer with `parse`.
    fn read<T>(
        &self,
        path: &str,
        method: Method<'_>,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, Error> {
        let url = format!("{}{path}", self.base);
        let response = self
            .send(&url, method)
            .map_err(|err| self.request_error(&url, err))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let limit = if (200..300).contains(&status) {
            self.max_answer
        } else {
            MAX_ERROR_ANSWER
        };
        let body = read_body(response, limit).map_err(|err| self.answer_error(&url, err))?;
        match status {
            200..=299 => parse(&body).map_err(|detail| Error::Malformed { url, detail }),
            401 | 403 => Err(Error::Unauthorized {
                url,
                status,
                sent_credentials: self.authorization.is_some(),
            }),
            300..=399 => Err(Error::Status {
                url,
                status,
                message: format!(
                    "redirected to {}: give graphyte that URL (redirects are not followed, so that credentials and headers go nowhere else)",
                    location.as_deref().unwrap_or("nowhere")
                ),
            }),
            _ => Err(Error::Status {
                url,
                status,
                message: response::error_message(&body),
            }),
        }
    }

    /// What a failure to read an answer says: too slow, too large, or cut short (a
    /// connection closed or reset before its end).
    fn answer_error(&self, url: &str, err: ureq::Error) -> Error {
        use std::io::ErrorKind;
        match err {
            ureq::Error::Timeout(_) => self.timeout_error(url),
            ureq::Error::Io(io) if io.kind() == ErrorKind::TimedOut => self.timeout_error(url),
            ureq::Error::BodyExceedsLimit(limit) => Error::Malformed {
                url: url.to_owned(),
                detail: format!("the answer is larger than {limit} bytes (see max_answer_size)"),
            },
            err => Error::Malformed {
                url: url.to_owned(),
                detail: format!("the answer was cut short: {err}"),
            },
        }
    }

    fn send(&self, url: &str, method: Method<'_>) -> Result<Response<ureq::Body>, ureq::Error> {
        macro_rules! with_headers {
            ($request:expr) => {{
                let mut request = $request;
                if let Some(authorization) = &self.authorization {
                    request = request.header("Authorization", authorization);
                }
                for (name, value) in &self.headers {
                    request = request.header(name, value);
                }
                request
            }};
        }
        match method {
            Method::Get(fields) => {
                let mut request = with_headers!(self.agent.get(url));
                for (name, value) in fields {
                    request = request.query(*name, value);
                }
                request.call()
            }
            Method::PostForm(fields) => with_headers!(self.agent.post(url))
                .send_form(fields.iter().map(|(name, value)| (*name, value.as_str()))),
            Method::PostJson(body) => with_headers!(self.agent.post(url))
                .header("Content-Type", "application/json")
                .send(&body[..]),
        }
    }

    /// What a request that got no answer says.
    fn request_error(&self, url: &str, err: ureq::Error) -> Error {
        use std::io::ErrorKind;
        match err {
            ureq::Error::Timeout(_) => self.timeout_error(url),
            ureq::Error::Io(io) if io.kind() == ErrorKind::TimedOut => self.timeout_error(url),
            ureq::Error::HostNotFound => Error::Connect {
                url: self.base.clone(),
                detail: "the host name does not resolve".to_owned(),
            },
            ureq::Error::BadUri(why) => Error::Config(format!("graphite-web URL {url}: {why}")),
            ureq::Error::Http(why) => {
                Error::Config(format!("a request to {url} cannot be made: {why}"))
            }
            err => Error::Connect {
                url: self.base.clone(),
                detail: err.to_string(),
            },
        }
    }

    fn timeout_error(&self, url: &str) -> Error {
        Error::Timeout {
            url: url.to_owned(),
            after: self.timeout,
        }
    }
}

/// The answer's body, up to `limit` bytes.
fn read_body(mut response: Response<ureq::Body>, limit: u64) -> Result<Vec<u8>, ureq::Error> {
    response.body_mut().with_config().limit(limit).read_to_vec()
}

/// `segment` percent-encoded for a URL path: unreserved characters as they are, every other
/// byte (`.` included, so no segment reads as `.` or `..`) as `%XX`.
fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn exprs_fields(exprs: &[&str]) -> Vec<(&'static str, String)> {
    exprs
        .iter()
        .map(|expr| ("expr", (*expr).to_owned()))
        .collect()
}

/// An event to record with [`Client::add_event`].
#[derive(Debug, Clone, PartialEq)]
#[must_use = "an event is recorded by `Client::add_event`"]
pub struct NewEvent {
    what: String,
    tags: Vec<String>,
    data: String,
    when: Option<u32>,
}

impl NewEvent {
    /// An event saying `what` happened, now.
    pub fn new(what: impl Into<String>) -> NewEvent {
        NewEvent {
            what: what.into(),
            tags: Vec::new(),
            data: String::new(),
            when: None,
        }
    }

    /// Adds a tag (events are selected by their tags: `events('deploy')`).
    pub fn tag(mut self, tag: impl Into<String>) -> NewEvent {
        self.tags.push(tag.into());
        self
    }

    /// Anything more: a description, a link.
    pub fn data(mut self, data: impl Into<String>) -> NewEvent {
        self.data = data.into();
        self
    }

    /// When it happened, in Unix seconds (default: when graphite-web records it).
    pub fn when(mut self, secs: u32) -> NewEvent {
        self.when = Some(secs);
        self
    }

    fn to_json(&self) -> Vec<u8> {
        let mut event = serde_json::json!({
            "what": self.what,
            "tags": self.tags,
            "data": self.data,
        });
        if let Some(when) = self.when {
            event["when"] = when.into();
        }
        event.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_loses_its_trailing_slash_and_keeps_its_path() {
        assert_eq!(base_url("http://h:8080/").unwrap().0, "http://h:8080");
        assert_eq!(
            base_url("https://h/graphite/").unwrap().0,
            "https://h/graphite"
        );
    }

    #[test]
    fn credentials_in_the_url_are_taken_out_of_it_and_decoded() {
        let (base, credentials) = base_url("http://reader:p%40ss@h:8080").unwrap();
        assert_eq!(base, "http://h:8080");
        assert_eq!(credentials, Some(("reader".into(), "p@ss".into())));
    }

    #[test]
    fn a_url_that_is_not_http_is_refused() {
        for url in [
            "",
            "graphite.example.com",
            "ftp://h",
            "http://",
            "http://h/?x=1",
            "http://h:99999",
        ] {
            assert!(matches!(Client::new(url), Err(Error::Config(_))), "{url:?}");
        }
    }

    #[test]
    fn debug_shows_neither_the_password_nor_header_values() {
        let builder = Client::builder("http://h")
            .basic_auth("reader", "s3cret-pw")
            .header("X-Token", "t0ken-value");
        let client = builder.clone().build().unwrap();
        for shown in [
            format!("{builder:?}"),
            format!("{client:?}"),
            format!("{client:#?}"),
        ] {
            assert!(
                shown.contains("reader") && shown.contains("X-Token"),
                "{shown}"
            );
            for secret in ["s3cret-pw", "t0ken-value", &base64(b"reader:s3cret-pw")] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn an_invalid_header_or_a_zero_timeout_is_refused() {
        assert!(matches!(
            Client::builder("http://h").header("Bad Name", "x").build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Client::builder("http://h").header("X", "a\nb").build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Client::builder("http://h").timeout(Duration::ZERO).build(),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn an_event_is_sent_as_graphite_webs_json() {
        let event = NewEvent::new("deploy")
            .tag("a")
            .tag("b")
            .data("v2")
            .when(1_700_000_000);
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"what": "deploy", "tags": ["a", "b"], "data": "v2", "when": 1_700_000_000})
        );
        let json: serde_json::Value =
            serde_json::from_slice(&NewEvent::new("x").to_json()).unwrap();
        assert!(json.get("when").is_none());
    }
}
