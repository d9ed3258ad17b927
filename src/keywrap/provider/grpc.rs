//! gRPC providers (`"grpc"` in the configuration): the `keyprovider.KeyProviderService` client.
//!
//! The engine is synchronous (rayon), so each provider owns a small tokio runtime (one worker
//! thread), created on the first request and shared by every thread that asks; calls block on
//! it. One lazily connected channel per provider is shared too (a channel multiplexes
//! concurrent calls over one HTTP/2 connection and reconnects when needed).
//!
//! Connections are made by our own connector, so that plaintext TCP, unix sockets and TLS work
//! the same way: TLS goes through the OpenSSL layercrypt already links, trusting the
//! `root-ca-file` CAs if given (and then only those, as in Go), else the system's; with an
//! optional client certificate; checking the `server-name` or, by default, the target's host
//! (`localhost` for unix sockets), as Go's gRPC does. `insecure-skip-verify` turns all
//! checking off (see [`GrpcTls::insecure_skip_verify`]).
//!
//! Every call has the provider's timeout and answers are limited to
//! [`MAX_RESPONSE`](super::protocol::MAX_RESPONSE) bytes. The request and answer are never
//! logged; the buffers tonic and hyper use for them are outside layercrypt's reach and are not
//! wiped.
//!
//! The code for the messages and the client is generated from `proto/keyprovider.proto` and
//! committed (`proto/keyprovider.rs`), so building needs no `protoc`;
//! `proto/regenerate.sh` remakes it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use zeroize::Zeroizing;

use super::config::{GrpcConfig, GrpcTls};
use super::protocol::MAX_RESPONSE;

#[allow(missing_docs, clippy::all, clippy::pedantic)]
#[path = "proto/keyprovider.rs"]
mod proto;

use proto::KeyProviderKeyWrapProtocolInput;
use proto::key_provider_service_client::KeyProviderServiceClient;

/// Which rpc to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rpc {
    /// `/keyprovider.KeyProviderService/WrapKey`
    WrapKey,
    /// `/keyprovider.KeyProviderService/UnWrapKey`
    UnWrapKey,
}

/// A gRPC provider's client: its settings, and the runtime and channel made on first use.
pub(super) struct Client {
    config: GrpcConfig,
    timeout: Duration,
    /// The runtime and channel, or why they could not be made (a bad target, an unreadable
    /// CA file): decided once, reported on every call.
    state: OnceLock<Result<State, String>>,
}

struct State {
    /// Always `Some` until dropped (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    channel: Channel,
}

impl State {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("present until dropped")
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside an async context (an embedder that
        // drops the registry in async code); shutting down in the background never blocks.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("grpc::Client")
            .field("target", &self.config.target)
            .field("tls", &self.config.tls.is_some())
            .field("timeout", &self.timeout)
            .field("started", &self.state.get().is_some())
            .finish()
    }
}

impl Client {
    /// A client for `config`; nothing is started or read until the first call.
    pub(super) fn new(config: GrpcConfig, timeout: Duration) -> Client {
        Client {
            config,
            timeout,
            state: OnceLock::new(),
        }
    }

    /// Check what can be checked without connecting: the target's form.
    pub(super) fn check(&self) -> Result<(), String> {
        Target::parse(&self.config.target).map(|_| ())
    }

    /// Send one request; the answer's bytes (the JSON document).
    pub(super) fn call(&self, rpc: Rpc, request: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let state = self
            .state
            .get_or_init(|| State::start(&self.config))
            .as_ref()
            .map_err(Clone::clone)?;
        let message = KeyProviderKeyWrapProtocolInput {
            key_provider_key_wrap_protocol_input: request.to_vec(),
        };
        let mut client = KeyProviderServiceClient::new(state.channel.clone())
            .max_decoding_message_size(MAX_RESPONSE);
        let timeout = self.timeout;
        // The timeout covers connecting too: the channel connects on the first call.
        let exchange = async move {
            let answer = async move {
                match rpc {
                    Rpc::WrapKey => client.wrap_key(message).await,
                    Rpc::UnWrapKey => client.un_wrap_key(message).await,
                }
            };
            // Awaited in slices, so that a stop request (`crate::interrupt`) is noticed; the
            // call is dropped (cancelled) then.
            let deadline = tokio::time::Instant::now() + timeout;
            let mut answer = std::pin::pin!(answer);
            loop {
                let slice = deadline
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(super::cmd::POLL);
                match tokio::time::timeout(slice, answer.as_mut()).await {
                    Ok(answer) => break Some(answer),
                    Err(_) if crate::interrupt::requested() => break None,
                    Err(_) if tokio::time::Instant::now() < deadline => {}
                    Err(_) => break None,
                }
            }
        };
        let runtime = state.runtime();
        let result = if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside someone else's runtime (an async embedder): blocking on ours
            // there would panic, so block on a plain thread instead.
            std::thread::scope(|s| {
                std::thread::Builder::new()
                    .spawn_scoped(s, || runtime.block_on(exchange))
                    .map_err(|e| {
                        format!("gRPC {}: no thread for the call: {e}", self.config.target)
                    })
                    .map(|t| t.join().ok().flatten())
            })?
        } else {
            runtime.block_on(exchange)
        };
        match result {
            Some(Ok(answer)) => Ok(Zeroizing::new(
                answer.into_inner().key_provider_key_wrap_protocol_output,
            )),
            None if crate::interrupt::requested() => Err(format!(
                "gRPC {}: {}",
                self.config.target,
                crate::interrupt::Interrupted
            )),
            None => Err(format!(
                "gRPC {} did not answer within {}",
                self.config.target,
                super::cmd::seconds(self.timeout)
            )),
            Some(Err(status)) => Err(describe_status(&self.config.target, &status)),
        }
    }
}

impl State {
    fn start(config: &GrpcConfig) -> Result<State, String> {
        let target = Target::parse(&config.target)?;
        let tls = config
            .tls
            .as_ref()
            .map(|t| Tls::new(t, &target))
            .transpose()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("layercrypt-keyprovider")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the gRPC client: {e}"))?;
        // The URI only names the HTTP/2 authority; our connector decides where to connect.
        let endpoint = Endpoint::from_shared(format!("http://{}", target.authority()))
            .map_err(|e| format!("gRPC target {}: {e}", config.target))?;
        let connector = Connector {
            target: Arc::new(target),
            tls: tls.map(Arc::new),
        };
        // Creating a channel spawns its worker, which needs the runtime entered.
        let channel = {
            let _entered = runtime.enter();
            endpoint.connect_with_connector_lazy(connector)
        };
        Ok(State {
            runtime: Some(runtime),
            channel,
        })
    }
}

/// Where a gRPC target points.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl Target {
    /// Parse a Go gRPC dial target: `host:port`, `[v6]:port`, `dns:[//authority/]host[:port]`
    /// (port 443 by default, as Go's dns resolver), `passthrough:///host:port`,
    /// `unix:path`, `unix:///absolute/path`.
    fn parse(target: &str) -> Result<Target, String> {
        let bad = |why: &str| format!("gRPC target \"{target}\": {why}");
        let after_authority = |rest: &'_ str| -> Result<String, String> {
            // `scheme://authority/endpoint`; an authority is accepted and ignored (Go's dns
            // resolver would ask that DNS server; we use the system's).
            match rest.strip_prefix("//") {
                Some(r) => r
                    .split_once('/')
                    .map(|(_, e)| e.to_string())
                    .ok_or_else(|| bad("expected scheme://[authority]/endpoint")),
                None => Ok(rest.to_string()),
            }
        };
        if let Some(rest) = target.strip_prefix("unix:") {
            let path = match rest.strip_prefix("//") {
                Some(p) if p.starts_with('/') => p,
                Some(_) => {
                    return Err(bad(
                        "a unix socket is unix:RELATIVE-PATH or unix:///ABSOLUTE-PATH",
                    ));
                }
                None => rest,
            };
            if path.is_empty() {
                return Err(bad("no socket path"));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if target.starts_with("unix-abstract:") {
            return Err(bad("abstract unix sockets are not supported"));
        }
        let (address, default_port) = if let Some(rest) = target.strip_prefix("dns:") {
            (after_authority(rest)?, Some(443))
        } else if let Some(rest) = target.strip_prefix("passthrough:") {
            (after_authority(rest)?, None)
        } else {
            (target.to_string(), None)
        };
        let (host, port) = split_host_port(&address, default_port).map_err(|e| bad(&e))?;
        Ok(Target::Tcp { host, port })
    }

    /// The HTTP/2 authority (what Go's gRPC sends as `:authority`).
    fn authority(&self) -> String {
        match self {
            Target::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Target::Tcp { host, port } => format!("{host}:{port}"),
            Target::Unix(_) => "localhost".into(),
        }
    }

    /// The name a server certificate is checked against by default.
    fn host(&self) -> &str {
        match self {
            Target::Tcp { host, .. } => host,
            Target::Unix(_) => "localhost",
        }
    }
}

/// `host:port` / `[v6]:port` / `host` (with a default port).
fn split_host_port(address: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing bracket")?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err("expected :PORT after the IPv6 address".into()),
        }
    } else {
        match address.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("write an IPv6 address as [ADDRESS]:PORT".into());
            }
            Some((h, p)) => (h, Some(p)),
            None => (address, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("\"{p}\" is not a port number"))?,
        None => default_port.ok_or("no port (write HOST:PORT)")?,
    };
    // Go dials ":port" on the local system.
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((host.to_string(), port))
}

/// TLS settings, made once per provider.
struct Tls {
    connector: SslConnector,
    server_name: String,
    verify: bool,
}

impl Tls {
    fn new(config: &GrpcTls, target: &Target) -> Result<Tls, String> {
        let ssl_err = |what: &str, e: openssl::error::ErrorStack| format!("grpc-tls: {what}: {e}");
        let mut builder =
            SslConnector::builder(SslMethod::tls_client()).map_err(|e| ssl_err("TLS setup", e))?;
        // gRPC is HTTP/2; servers that check ALPN (grpc-go does) need to see it.
        builder
            .set_alpn_protos(b"\x02h2")
            .map_err(|e| ssl_err("TLS setup", e))?;
        if let Some(file) = &config.root_ca_file {
            // As in Go: the given CAs replace the system's.
            let pem = read(file, "root-ca-file")?;
            let certs = X509::stack_from_pem(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    format!(
                        "grpc-tls: root-ca-file {}: no PEM certificates in it",
                        file.display()
                    )
                })?;
            let mut store = X509StoreBuilder::new().map_err(|e| ssl_err("TLS setup", e))?;
            for cert in certs {
                store
                    .add_cert(cert)
                    .map_err(|e| ssl_err(&format!("root-ca-file {}", file.display()), e))?;
            }
            builder.set_cert_store(store.build());
        }
        match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => {
                // Read them ourselves first, for an error that names the file plainly.
                read(cert, "cert-file")?;
                read(key, "key-file")?;
                builder
                    .set_certificate_chain_file(cert)
                    .map_err(|e| ssl_err(&format!("cert-file {}", cert.display()), e))?;
                builder
                    .set_private_key_file(key, SslFiletype::PEM)
                    .map_err(|e| ssl_err(&format!("key-file {}", key.display()), e))?;
                builder.check_private_key().map_err(|e| {
                    ssl_err(
                        &format!(
                            "key-file {} does not belong to cert-file {}",
                            key.display(),
                            cert.display()
                        ),
                        e,
                    )
                })?;
            }
            (None, None) => {}
            _ => {
                return Err(
                    "grpc-tls: a client certificate needs both cert-file and key-file".into(),
                );
            }
        }
        let verify = !config.insecure_skip_verify;
        if !verify {
            builder.set_verify(SslVerifyMode::NONE);
        }
        Ok(Tls {
            connector: builder.build(),
            server_name: config
                .server_name
                .clone()
                .unwrap_or_else(|| target.host().to_string()),
            verify,
        })
    }
}

fn read(file: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("grpc-tls: cannot read {what} {}: {e}", file.display()))
}

/// A byte stream to the provider: TCP or unix socket, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens connections for the channel, wherever the URI says (it only carries the authority).
struct Connector {
    target: Arc<Target>,
    tls: Option<Arc<Tls>>,
}

impl Service<Uri> for Connector {
    type Response = TokioIo<Box<dyn Io>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let target = self.target.clone();
        let tls = self.tls.clone();
        Box::pin(async move { connect(&target, tls.as_deref()).await.map(TokioIo::new) })
    }
}

async fn connect(target: &Target, tls: Option<&Tls>) -> Result<Box<dyn Io>, BoxError> {
    let stream: Box<dyn Io> = match target {
        Target::Tcp { host, port } => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", target.authority()))?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Target::Unix(path) => Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("cannot connect to unix socket {}: {e}", path.display()))?,
        ),
    };
    let Some(tls) = tls else {
        return Ok(stream);
    };
    let ssl = tls
        .connector
        .configure()
        .and_then(|c| {
            c.verify_hostname(tls.verify)
                .use_server_name_indication(true)
                .into_ssl(&tls.server_name)
        })
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut stream =
        tokio_openssl::SslStream::new(ssl, stream).map_err(|e| format!("TLS setup: {e}"))?;
    Pin::new(&mut stream).connect().await.map_err(|e| {
        let why = match stream.ssl().verify_result() {
            openssl::x509::X509VerifyResult::OK => e.to_string(),
            failed => format!("the server's certificate is not trusted ({failed})"),
        };
        format!("TLS handshake with {} failed: {why}", tls.server_name)
    })?;
    Ok(Box::new(stream))
}

/// A gRPC failure in words: the status, and the cause chain (connection errors hide there).
fn describe_status(target: &str, status: &tonic::Status) -> String {
    // The code's name (`PermissionDenied`, `Unavailable`) is what gRPC users search for.
    let mut out = format!("gRPC {target}: {:?}", status.code());
    let message = status.message().trim();
    if !message.is_empty() {
        out.push_str(": ");
        out.push_str(&message.chars().take(1000).collect::<String>());
    }
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Target {
        Target::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn targets_are_read_as_go_reads_them() {
        for (text, want) in [
            ("localhost:50051", tcp("localhost", 50051)),
            ("127.0.0.1:1", tcp("127.0.0.1", 1)),
            ("[::1]:50051", tcp("::1", 50051)),
            (":7000", tcp("localhost", 7000)),
            ("dns:kp.example:9", tcp("kp.example", 9)),
            ("dns:///kp.example:9", tcp("kp.example", 9)),
            ("dns://8.8.8.8/kp.example", tcp("kp.example", 443)),
            ("passthrough:///10.0.0.1:5", tcp("10.0.0.1", 5)),
            ("unix:///run/kp.sock", Target::Unix("/run/kp.sock".into())),
            ("unix:/run/kp.sock", Target::Unix("/run/kp.sock".into())),
            ("unix:kp.sock", Target::Unix("kp.sock".into())),
        ] {
            assert_eq!(Target::parse(text), Ok(want), "{text}");
        }
        for (text, why) in [
            ("localhost", "no port"),
            ("localhost:http", "not a port number"),
            ("localhost:70000", "not a port number"),
            ("::1:5", "[ADDRESS]:PORT"),
            ("[::1", "closing bracket"),
            ("[::1]x", "expected :PORT"),
            ("unix:", "no socket path"),
            ("unix://host/path", "unix:///ABSOLUTE-PATH"),
            ("unix-abstract:kp", "not supported"),
            ("dns://x", "scheme://[authority]/endpoint"),
        ] {
            let err = Target::parse(text).unwrap_err();
            assert!(err.contains(why) && err.contains(text), "{text}: {err}");
        }
        assert_eq!(tcp("::1", 5).authority(), "[::1]:5");
        assert_eq!(Target::Unix("/x".into()).authority(), "localhost");
    }

    #[test]
    fn tls_files_are_checked_with_plain_messages() {
        let dir = tempfile::tempdir().unwrap();
        let target = tcp("localhost", 1);
        let missing = GrpcTls {
            root_ca_file: Some(dir.path().join("ca.pem")),
            ..Default::default()
        };
        let err = Tls::new(&missing, &target).err().unwrap();
        assert!(
            err.starts_with("grpc-tls: cannot read root-ca-file "),
            "{err}"
        );
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let err = Tls::new(&missing, &target).err().unwrap();
        assert!(err.contains("no PEM certificates"), "{err}");
        let half = GrpcTls {
            cert_file: Some(dir.path().join("c.pem")),
            ..Default::default()
        };
        let err = Tls::new(&half, &target).err().unwrap();
        assert!(err.contains("both cert-file and key-file"), "{err}");
        // No CA file: the system's roots; the default name is the target's host.
        let tls = Tls::new(&GrpcTls::default(), &target).unwrap();
        assert_eq!(tls.server_name, "localhost");
        assert!(tls.verify);
    }

    #[test]
    fn unreachable_servers_fail_with_the_reason() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(
            GrpcConfig {
                target: format!("127.0.0.1:{port}"),
                tls: None,
            },
            Duration::from_secs(30),
        );
        let err = client.call(Rpc::WrapKey, b"{}").unwrap_err();
        assert!(
            err.starts_with(&format!("gRPC 127.0.0.1:{port}: ")),
            "{err}"
        );
        assert!(err.contains("refused"), "{err}");
        // A second call on the same client (and runtime) fails the same way.
        let again = client.call(Rpc::UnWrapKey, b"{}").unwrap_err();
        assert!(again.contains("refused"), "{again}");
        let client = Client::new(
            GrpcConfig {
                target: "unix:///nonexistent/kp.sock".into(),
                tls: None,
            },
            Duration::from_secs(30),
        );
        let err = client.call(Rpc::WrapKey, b"{}").unwrap_err();
        assert!(err.contains("/nonexistent/kp.sock"), "{err}");
    }

    #[test]
    fn a_silent_server_times_out() {
        // Accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let client = Client::new(
            GrpcConfig {
                target: format!("127.0.0.1:{port}"),
                tls: None,
            },
            Duration::from_millis(300),
        );
        let err = client.call(Rpc::WrapKey, b"{}").unwrap_err();
        assert_eq!(
            err,
            format!("gRPC 127.0.0.1:{port} did not answer within 0.3 s")
        );
        drop(held);
    }

    #[test]
    fn calls_from_inside_a_runtime_do_not_panic() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = Client::new(
            GrpcConfig {
                target: "unix:///nonexistent/kp.sock".into(),
                tls: None,
            },
            Duration::from_secs(30),
        );
        let err = outer.block_on(async { client.call(Rpc::WrapKey, b"{}") });
        assert!(err.is_err());
    }
}
