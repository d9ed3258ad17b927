//! The OCI Distribution API over HTTP, for one repository: manifests (get, put, delete), tag
//! lists, and blobs (get, head, upload), with the conventions registries expect and the limits
//! a hostile registry needs.
//!
//! - Authentication as the registry asks for it in its `401`'s `WWW-Authenticate`: Basic with
//!   the credentials found for it, or a Bearer token fetched from its realm (with those
//!   credentials, or anonymously) for this repository's scope.
//! - TLS verified by default, on the OpenSSL the binary links; `tls_verify: false` accepts any
//!   certificate and falls back to plain HTTP when the registry does not speak TLS, as skopeo
//!   does. CA and client certificates come from a certificate directory.
//! - Redirects are followed only to the same host and port, except for blob downloads, which
//!   registries legitimately send to their storage (credentials are never sent along).
//! - Every body read into memory is bounded; timeouts on connecting and on each read; 429,
//!   5xx and broken connections are retried with backoff (every request made here is
//!   idempotent: manifests are put by digest or tag, uploads are single PUTs).

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::{Method, StatusCode, Url, header, redirect};
use zeroize::Zeroizing;

use super::access::{Access, Credentials};
use super::certs;
use super::{RegistryError, RegistryRef};
use crate::digest::Digest;
use crate::format::media_type::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};

/// How many times a request is retried after a 429, a 5xx or a broken connection.
const RETRIES: u32 = 3;

/// The first wait before a retry; doubled each time.
const BACKOFF: Duration = Duration::from_millis(250);

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Largest token answer, error body or tag-list page read.
const MAX_SMALL_BODY: u64 = 4 * 1024 * 1024;

/// Most tag-list pages followed (1,000 tags each).
const MAX_TAG_PAGES: usize = 1000;

/// What a manifest request accepts.
const MANIFEST_ACCEPT: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A manifest as the registry served it.
pub(crate) struct Fetched {
    /// Its bytes, at most the limit asked for.
    pub bytes: Vec<u8>,
    /// The `Content-Type` the registry gave.
    pub content_type: Option<String>,
    /// The digest of the bytes.
    pub digest: Digest,
}

/// What a manifest deletion did.
pub(crate) enum Deleted {
    /// The registry deleted it.
    Yes,
    /// It was gone already.
    Gone,
    /// The registry does not allow it; its answer.
    Refused(String),
}

/// A client for one repository of one registry.
pub(crate) struct Client {
    /// Manifests, tags, tokens: redirects only within the registry.
    http: Http,
    /// Blob downloads, which may be redirected to storage elsewhere.
    blobs: Http,
    /// `https://host[:port]`, or `http://` once a registry without TLS was accepted.
    base: Mutex<String>,
    /// Whether plain HTTP may be tried when TLS fails (`tls_verify: false`).
    insecure: bool,
    /// Whether the scheme was already settled by an answer.
    settled: AtomicBool,
    /// The registry, for messages (`host:port`).
    registry: String,
    /// The repository path.
    repository: String,
    /// Credentials found for this registry.
    credentials: Option<Credentials>,
    /// The actions a token is asked for: `pull`, `pull,push` when writing, and `delete` too
    /// for `--delete-old`.
    actions: &'static str,
    /// The `Authorization` header value in use.
    authorization: Mutex<Option<Zeroizing<String>>>,
}

impl Client {
    /// A client for `reference`'s repository; `write`: it will push (and maybe delete).
    pub(crate) fn new(
        reference: &RegistryRef,
        access: &Access,
        write: bool,
    ) -> Result<Client, RegistryError> {
        let host = reference.api_host().to_string();
        let tls = certs::load(access.cert_dir.as_deref(), &reference.registry)?;
        let same_host = host.clone();
        let build = |policy: redirect::Policy| {
            let mut b = Http::builder()
                .redirect(policy)
                .connect_timeout(Duration::from_secs(15))
                .timeout(Duration::from_secs(60))
                .user_agent(concat!("layercrypt/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(!access.tls_verify);
            for ca in &tls.roots {
                b = b.add_root_certificate(ca.clone());
            }
            if let Some(identity) = &tls.identity {
                b = b.identity(identity.clone());
            }
            b.build().map_err(|e| RegistryError::Setup {
                registry: reference.registry.clone(),
                reason: e.to_string(),
            })
        };
        let http = build(redirect::Policy::custom(move |attempt| {
            let to = attempt.url().clone();
            let authority = match to.port() {
                Some(p) => format!("{}:{p}", to.host_str().unwrap_or("")),
                None => to.host_str().unwrap_or("").to_string(),
            };
            if attempt.previous().len() > 5 {
                attempt.error("too many redirects")
            } else if authority != same_host {
                attempt.error(format!("a redirect to another host, {to}, was refused"))
            } else {
                attempt.follow()
            }
        }))?;
        let blobs = build(redirect::Policy::limited(5))?;
        let credentials = match &access.credentials {
            Some(c) => Some(c.clone()),
            None => super::auth::find(access, &reference.registry, &reference.repository)?,
        };
        Ok(Client {
            http,
            blobs,
            base: Mutex::new(format!("https://{host}")),
            insecure: !access.tls_verify,
            settled: AtomicBool::new(false),
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            credentials,
            // Distribution's token services want `delete` named to grant it.
            actions: match (write, access.delete_old) {
                (true, true) => "pull,push,delete",
                (true, false) => "pull,push",
                (false, _) => "pull",
            },
            authorization: Mutex::new(None),
        })
    }

    /// The registry, as named.
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    fn base(&self) -> String {
        self.base.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Send a request built by `build` on `path` (below the base), authenticating and
    /// retrying as needed. The response may be any status; `what` names it in errors.
    fn send(
        &self,
        blobs: bool,
        method: Method,
        path: &str,
        what: &str,
        build: &dyn Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let http = if blobs { &self.blobs } else { &self.http };
        let mut retries = 0;
        let mut authenticated = false;
        loop {
            crate::interrupt::check().map_err(|_| RegistryError::Interrupted)?;
            let url = if path.starts_with("http://") || path.starts_with("https://") {
                path.to_string()
            } else {
                format!("{}{path}", self.base())
            };
            let mut request = build(http.request(method.clone(), &url));
            if let Some(auth) = &*self.authorization.lock().unwrap_or_else(|p| p.into_inner()) {
                request = request.header(header::AUTHORIZATION, auth.as_str());
            }
            let response = match request.send() {
                Ok(r) => r,
                Err(e) => {
                    if e.is_redirect() {
                        return Err(RegistryError::Redirect {
                            registry: self.registry.clone(),
                            what: what.to_string(),
                            reason: error_chain(&e),
                        });
                    }
                    if self.insecure
                        && !self.settled.load(Ordering::SeqCst)
                        && url.starts_with("https://")
                        && e.is_connect()
                    {
                        // skopeo's --tls-verify=false: a registry that does not speak TLS.
                        *self.base.lock().unwrap_or_else(|p| p.into_inner()) =
                            self.base().replacen("https://", "http://", 1);
                        self.settled.store(true, Ordering::SeqCst);
                        continue;
                    }
                    let reason = error_chain(&e);
                    if reason.contains("certificate") || reason.contains("SSL routines") {
                        // Retrying will not make a certificate trusted.
                        return Err(RegistryError::Tls {
                            registry: self.registry.clone(),
                            what: what.to_string(),
                            reason,
                        });
                    }
                    if retries < RETRIES && (e.is_connect() || e.is_timeout() || e.is_request()) {
                        backoff(retries, None);
                        retries += 1;
                        continue;
                    }
                    return Err(RegistryError::Unreachable {
                        registry: self.registry.clone(),
                        what: what.to_string(),
                        reason,
                    });
                }
            };
            self.settled.store(true, Ordering::SeqCst);
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                if self.authenticate(&response)? {
                    continue;
                }
                return Ok(response);
            }
            if (status == StatusCode::TOO_MANY_REQUESTS
                || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED))
                && retries < RETRIES
            {
                backoff(retries, retry_after(&response));
                retries += 1;
                continue;
            }
            return Ok(response);
        }
    }

    /// Answer a 401's challenge: set the `Authorization` to send from now on. `false`: the
    /// challenge cannot be answered (no credentials for Basic, or an unknown scheme).
    fn authenticate(&self, response: &Response) -> Result<bool, RegistryError> {
        let Some(challenge) = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(Challenge::parse)
        else {
            return Ok(false);
        };
        let value = match challenge {
            Challenge::Basic => match &self.credentials {
                Some(c) => Zeroizing::new(basic(c)),
                None => return Ok(false),
            },
            Challenge::Bearer { realm, service } => Zeroizing::new(format!(
                "Bearer {}",
                self.token(&realm, service.as_deref())?.as_str()
            )),
            Challenge::Other => return Ok(false),
        };
        let mut current = self.authorization.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_deref().map(String::as_str) == Some(value.as_str()) {
            // The same answer was refused already.
            return Ok(false);
        }
        *current = Some(value);
        Ok(true)
    }

    /// A Bearer token for this repository from the registry's token service.
    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
    ) -> Result<Zeroizing<String>, RegistryError> {
        let fail = |reason: String| RegistryError::Token {
            registry: self.registry.clone(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|e| fail(format!("its realm `{realm}`: {e}")))?;
        if url.scheme() != "https" && !(self.insecure || self.base().starts_with("http://")) {
            return Err(fail(format!(
                "its token service {realm} is not HTTPS; credentials are not sent there"
            )));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(s) = service {
                query.append_pair("service", s);
            }
            query.append_pair(
                "scope",
                &format!("repository:{}:{}", self.repository, self.actions),
            );
        }
        let mut request = self.http.get(url.clone());
        if let Some(c) = &self.credentials {
            request = request.header(header::AUTHORIZATION, basic(c));
        }
        let response = request
            .send()
            .map_err(|e| fail(format!("{url}: {}", error_chain(&e))))?;
        let status = response.status();
        let body = read_bounded(response, MAX_SMALL_BODY)
            .map_err(|e| fail(format!("reading its answer: {e}")))?;
        if !status.is_success() {
            return Err(RegistryError::Denied {
                registry: self.registry.clone(),
                what: format!("a token for {}", self.repository),
                status: status.as_u16(),
                detail: error_detail(&body),
                credentials: self.credentials.is_some(),
            });
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("its answer is not a token: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .map(Zeroizing::new)
            .ok_or_else(|| fail("its answer holds no token".into()))
    }

    /// Turn a response that is not a success into the error that says why.
    fn refuse(&self, what: &str, response: Response) -> RegistryError {
        let status = response.status();
        let body = read_bounded(response, 64 * 1024).unwrap_or_default();
        let detail = error_detail(&body);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Denied {
                registry: self.registry.clone(),
                what: what.to_string(),
                status: status.as_u16(),
                detail,
                credentials: self.credentials.is_some(),
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry: self.registry.clone(),
                what: what.to_string(),
            },
            _ => RegistryError::Status {
                registry: self.registry.clone(),
                what: what.to_string(),
                status: status.as_u16(),
                detail,
            },
        }
    }

    /// GET a manifest by tag or digest, at most `limit` bytes.
    pub(crate) fn get_manifest(
        &self,
        reference: &str,
        limit: u64,
    ) -> Result<Fetched, RegistryError> {
        let what = format!("manifest {}:{reference}", self.repository);
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let response = self.send(false, Method::GET, &path, &what, &|r| {
            r.header(header::ACCEPT, MANIFEST_ACCEPT.join(", "))
        })?;
        if !response.status().is_success() {
            return Err(self.refuse(&what, response));
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let claimed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let bytes = read_bounded(response, limit).map_err(|e| self.body_error(&what, limit, e))?;
        let digest = Digest::sha256(&bytes);
        // A digest the registry vouches for, or the one asked for, must be the bytes' own.
        let expected = reference.parse::<Digest>().ok().or(claimed);
        if let Some(expected) = expected
            && expected.algorithm() == digest.algorithm()
            && expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                registry: self.registry.clone(),
                what,
                expected,
                actual: digest,
            });
        }
        Ok(Fetched {
            bytes,
            content_type,
            digest,
        })
    }

    /// The digest a tag points at now (`None`: no such tag).
    pub(crate) fn tag_digest(&self, tag: &str) -> Result<Option<Digest>, RegistryError> {
        match self.get_manifest(tag, crate::store::MAX_MANIFEST_SIZE) {
            Ok(f) => Ok(Some(f.digest)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT a manifest under a tag or its digest.
    pub(crate) fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let what = format!("manifest {}:{reference}", self.repository);
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let response = self.send(false, Method::PUT, &path, &what, &|r| {
            r.header(header::CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        })?;
        if !response.status().is_success() {
            return Err(self.refuse(&format!("pushing {what}"), response));
        }
        Ok(())
    }

    /// DELETE a manifest by digest.
    pub(crate) fn delete_manifest(&self, digest: &Digest) -> Result<Deleted, RegistryError> {
        let what = format!("manifest {}@{digest}", self.repository);
        let path = format!("/v2/{}/manifests/{digest}", self.repository);
        let response = self.send(false, Method::DELETE, &path, &what, &|r| r)?;
        let status = response.status();
        if status.is_success() {
            return Ok(Deleted::Yes);
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(Deleted::Gone);
        }
        let body = read_bounded(response, 64 * 1024).unwrap_or_default();
        Ok(Deleted::Refused(format!(
            "{} {}{}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            match error_detail(&body) {
                Some(d) => format!(": {d}"),
                None => String::new(),
            }
        )))
    }

    /// Every tag of the repository, sorted, following the list's pages.
    pub(crate) fn list_tags(&self) -> Result<Vec<String>, RegistryError> {
        let what = format!("tag list of {}", self.repository);
        let mut path = format!("/v2/{}/tags/list?n=1000", self.repository);
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let response = self.send(false, Method::GET, &path, &what, &|r| r)?;
            if !response.status().is_success() {
                return Err(self.refuse(&what, response));
            }
            let next = response
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = read_bounded(response, MAX_SMALL_BODY)
                .map_err(|e| self.body_error(&what, MAX_SMALL_BODY, e))?;
            #[derive(serde::Deserialize)]
            struct Page {
                tags: Option<Vec<String>>,
            }
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| RegistryError::BadAnswer {
                    registry: self.registry.clone(),
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => path = n,
                None => {
                    tags.sort();
                    tags.dedup();
                    return Ok(tags);
                }
            }
        }
        Err(RegistryError::BadAnswer {
            registry: self.registry.clone(),
            what,
            reason: format!("more than {MAX_TAG_PAGES} pages of tags"),
        })
    }

    /// GET a small blob (a config), at most `limit` bytes.
    pub(crate) fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, RegistryError> {
        let mut response = self.open_blob(digest)?;
        let what = format!("blob {digest}");
        let mut bytes = Vec::new();
        (&mut response)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.body_error(&what, limit, BodyError::Io(e)))?;
        if bytes.len() as u64 > limit {
            return Err(self.body_error(&what, limit, BodyError::TooLarge));
        }
        Ok(bytes)
    }

    /// GET a blob as a stream (the caller verifies it).
    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<Response, RegistryError> {
        let what = format!("blob {digest}");
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        let response = self.send(true, Method::GET, &path, &what, &|r| r)?;
        if !response.status().is_success() {
            return Err(self.refuse(&what, response));
        }
        Ok(response)
    }

    /// Whether the repository has a blob.
    pub(crate) fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let what = format!("blob {digest}");
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        let response = self.send(false, Method::HEAD, &path, &what, &|r| r)?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.refuse(&what, response)),
        }
    }

    /// Upload a small blob in one PUT.
    pub(crate) fn upload_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
        let what = format!("uploading blob {digest}");
        let path = format!("/v2/{}/blobs/uploads/", self.repository);
        let response = self.send(false, Method::POST, &path, &what, &|r| r)?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.refuse(&what, response));
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::BadAnswer {
                registry: self.registry.clone(),
                what: what.clone(),
                reason: "no Location for the upload".into(),
            })?;
        let base = Url::parse(&format!("{}/", self.base())).expect("the base is a URL");
        let mut url = base.join(location).map_err(|e| RegistryError::BadAnswer {
            registry: self.registry.clone(),
            what: what.clone(),
            reason: format!("its upload location `{location}`: {e}"),
        })?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self.send(false, Method::PUT, url.as_str(), &what, &|r| {
            r.header(header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec())
        })?;
        if !response.status().is_success() {
            return Err(self.refuse(&what, response));
        }
        Ok(())
    }

    fn body_error(&self, what: &str, limit: u64, e: BodyError) -> RegistryError {
        match e {
            BodyError::TooLarge => RegistryError::TooLarge {
                registry: self.registry.clone(),
                what: what.to_string(),
                limit,
            },
            BodyError::Io(e) => RegistryError::Unreachable {
                registry: self.registry.clone(),
                what: what.to_string(),
                reason: e.to_string(),
            },
        }
    }
}

/// Why a body could not be read.
pub(crate) enum BodyError {
    TooLarge,
    Io(std::io::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge => f.write_str("the answer is too large"),
            BodyError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Read a whole body, refusing more than `limit` bytes (whatever `Content-Length` claims).
fn read_bounded(response: Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(BodyError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(bytes)
}

fn basic(c: &Credentials) -> String {
    let pair = Zeroizing::new(format!("{}:{}", c.username, c.password.as_str()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
    )
}

/// Wait before retry number `n` (from 0): the registry's `Retry-After` if it gave one (up to
/// a bound), else an exponential backoff.
fn backoff(n: u32, retry_after: Option<Duration>) {
    let wait = retry_after
        .map(|d| d.min(MAX_RETRY_AFTER))
        .unwrap_or(BACKOFF * 2u32.pow(n));
    std::thread::sleep(wait);
}

fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// An error with its causes (reqwest's own message is only the outermost).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        next = cause.source();
    }
    text
}

/// The first message of a Distribution error body (`{"errors":[{"code","message"}]}`).
fn error_detail(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    let body: Body = serde_json::from_slice(body).ok()?;
    let item = body.errors.into_iter().next()?;
    let text = match (item.code, item.message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => return None,
    };
    Some(text.chars().take(300).collect())
}

/// The next page of a tag list from its `Link: <URL>; rel="next"` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Other,
}

impl Challenge {
    fn parse(header: &str) -> Challenge {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Challenge::Basic;
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Challenge::Other;
        }
        let params = auth_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        match get("realm") {
            Some(realm) => Challenge::Bearer {
                realm,
                service: get("service"),
            },
            None => Challenge::Other,
        }
    }
}

/// `key="quoted value", key=token, …` as RFC 7235 writes auth-params.
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            return out;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Challenge::Basic
        );
        assert_eq!(Challenge::parse("Negotiate"), Challenge::Other);
        assert_eq!(Challenge::parse("Bearer service=x"), Challenge::Other);
        assert_eq!(
            auth_params(r#"a="x,\"y", b=z ,c="""#),
            vec![
                ("a".into(), "x,\"y".into()),
                ("b".into(), "z".into()),
                ("c".into(), String::new())
            ]
        );
        for hostile in ["", "=", "\"", "a=\"", ",,,", "a=b=c"] {
            let _ = auth_params(hostile);
        }
    }

    #[test]
    fn tag_pages_follow_the_next_link_and_errors_show_the_registrys_message() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(
            error_detail(br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#)
                .as_deref(),
            Some("DENIED: requested access to the resource is denied")
        );
        assert_eq!(error_detail(b"<html>"), None);
    }
}
