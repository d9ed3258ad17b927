//! `keyprovider`: a key provider for layercrypt's tests, speaking ocicrypt's key-provider
//! protocol as a command (one request on stdin, the answer on stdout) or as a gRPC server
//! (`keyprovider.KeyProviderService`, plaintext or TLS, on TCP or a unix socket).
//!
//! It wraps the layer options with AES-256-GCM under a key derived (SHA-256) from each
//! recipient's ARGS, so only the same ARGS open them again: on unwrap it tries the ARGS of the
//! request (`-k provider:NAME:ARGS`) or, when there are none, its own `--secret` (a node-level
//! provider that needs no key). It checks that requests have the shape Go ocicrypt sends, can
//! record every request it gets (`--capture DIR`), and can misbehave on purpose (`--mode`).
//! It is a test tool: the wrapping is sound, but nothing else about it is meant for real keys.
//!
//! ```text
//! cargo run --example keyprovider -- --name kp cmd < request.json
//! cargo run --example keyprovider -- --name kp grpc 127.0.0.1:0 --ready-file /tmp/addr
//! ```

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod proto;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use proto::key_provider_service_server::{KeyProviderService, KeyProviderServiceServer};
use proto::{KeyProviderKeyWrapProtocolInput, KeyProviderKeyWrapProtocolOutput};

const USAGE: &str = "\
usage: keyprovider [OPTIONS] cmd
       keyprovider [OPTIONS] grpc ADDRESS [--ready-file FILE] [--tls-cert PEM --tls-key PEM [--client-ca PEM]]

cmd   serves one request: the request JSON on stdin, the answer on stdout; errors on stderr,
      exit status 1.
grpc  serves keyprovider.KeyProviderService on ADDRESS (HOST:PORT, port 0 picks one, or
      unix:PATH) until killed; --ready-file receives the bound address (HOST:PORT or
      unix:PATH) once it listens. With --tls-cert/--tls-key it speaks TLS (ALPN h2); with
      --client-ca it also requires a client certificate issued by that CA.

options:
  --name NAME      the provider name whose parameters it reads (default: test)
  --secret ARGS    what to unwrap with when a request carries no parameters
  --arrays         answer with arrays of numbers (as CoCo's providers) instead of base64
  --mixed-case     answer with mixed-case member names and extra unknown members
  --capture DIR    write every request it receives to DIR/request-*.json
  --mode MODE      ok (default); garbage: answer with non-JSON; empty: answer with no key;
                   fail: refuse with an error; hang: never answer
";

/// How to behave.
#[derive(Clone, Debug)]
struct Options {
    name: String,
    secret: Option<Vec<u8>>,
    arrays: bool,
    mixed_case: bool,
    capture: Option<PathBuf>,
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    Garbage,
    Empty,
    Fail,
    Hang,
}

/// What the server side needs besides the options.
struct Serve {
    address: String,
    ready_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Ok((options, None)) => serve_command(&options),
        Ok((options, Some(serve))) => serve_grpc(options, serve),
        Err(e) => {
            eprintln!("keyprovider: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_args(args: &[String]) -> Result<(Options, Option<Serve>), String> {
    let mut options = Options {
        name: "test".into(),
        secret: None,
        arrays: false,
        mixed_case: false,
        capture: None,
        mode: Mode::Ok,
    };
    let mut serve: Option<Serve> = None;
    let mut command = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--name" => options.name = value()?,
            "--secret" => options.secret = Some(value()?.into_bytes()),
            "--arrays" => options.arrays = true,
            "--mixed-case" => options.mixed_case = true,
            "--capture" => options.capture = Some(value()?.into()),
            "--mode" => {
                options.mode = match value()?.as_str() {
                    "ok" => Mode::Ok,
                    "garbage" => Mode::Garbage,
                    "empty" => Mode::Empty,
                    "fail" => Mode::Fail,
                    "hang" => Mode::Hang,
                    other => return Err(format!("unknown mode {other}")),
                }
            }
            "--ready-file" | "--tls-cert" | "--tls-key" | "--client-ca" => {
                let v = PathBuf::from(value()?);
                let s = serve
                    .as_mut()
                    .ok_or(format!("{arg} belongs after grpc ADDRESS"))?;
                match arg.as_str() {
                    "--ready-file" => s.ready_file = Some(v),
                    "--tls-cert" => s.tls_cert = Some(v),
                    "--tls-key" => s.tls_key = Some(v),
                    _ => s.client_ca = Some(v),
                }
            }
            "cmd" if command.is_none() => command = Some("cmd"),
            "grpc" if command.is_none() => {
                command = Some("grpc");
                serve = Some(Serve {
                    address: value()?,
                    ready_file: None,
                    tls_cert: None,
                    tls_key: None,
                    client_ca: None,
                });
            }
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    match command {
        Some(_) => Ok((options, serve)),
        None => Err("say cmd or grpc".into()),
    }
}

/// Why a request failed: shown on stderr (command) or as the gRPC status message.
type Failure = String;

/// Answer one request document.
fn answer(options: &Options, request: &[u8]) -> Result<Vec<u8>, Failure> {
    if let Some(dir) = &options.capture {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let file = dir.join(format!("request-{}-{nanos}-{n}.json", std::process::id()));
        std::fs::write(&file, request).map_err(|e| format!("capture {}: {e}", file.display()))?;
    }
    match options.mode {
        Mode::Ok | Mode::Empty => {}
        Mode::Garbage => return Ok(b"this is not JSON".to_vec()),
        Mode::Fail => return Err("told to fail".into()),
        Mode::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
    }
    let request: Value =
        serde_json::from_slice(request).map_err(|e| format!("request is not JSON: {e}"))?;
    check_shape(&request)?;
    let (results, member, bytes) = match request["op"].as_str() {
        Some("keywrap") => {
            let params = &request["keywrapparams"];
            let secrets = parameters(&params["ec"], &options.name)?;
            if secrets.is_empty() {
                return Err(format!("no parameters for provider {}", options.name));
            }
            let opts = b64_field(&params["optsdata"], "optsdata")?;
            ("keywrapresults", "annotation", wrap(&secrets, &opts)?)
        }
        Some("keyunwrap") => {
            let params = &request["keyunwrapparams"];
            let mut secrets = parameters(&params["dc"], &options.name)?;
            if secrets.is_empty() {
                secrets.extend(options.secret.clone());
            }
            let blob = b64_field(&params["annotation"], "annotation")?;
            ("keyunwrapresults", "optsdata", unwrap(&secrets, &blob)?)
        }
        other => return Err(format!("unknown op {other:?}")),
    };
    let bytes = if options.mode == Mode::Empty {
        Vec::new()
    } else {
        bytes
    };
    let encoded = if options.arrays {
        json!(bytes)
    } else {
        json!(B64.encode(&bytes))
    };
    let document = if options.mixed_case {
        let mut inner = serde_json::Map::new();
        inner.insert("Unknown".into(), json!([1, {"x": null}]));
        inner.insert(member.to_uppercase(), encoded);
        let mut outer = serde_json::Map::new();
        outer.insert("Extra".into(), json!("ignored"));
        let mut name = results.to_string();
        name[..1].make_ascii_uppercase();
        outer.insert(name, Value::Object(inner));
        Value::Object(outer)
    } else {
        json!({ results: { member: encoded } })
    };
    Ok(serde_json::to_vec(&document).expect("a JSON value serializes"))
}

/// Insist on Go's request shape: both params objects present, the unused one all `null`.
fn check_shape(request: &Value) -> Result<(), Failure> {
    let object = request.as_object().ok_or("request is not an object")?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    if keys != ["keyunwrapparams", "keywrapparams", "op"] {
        return Err(format!("request members are {keys:?}"));
    }
    let (unused, names) = match request["op"].as_str() {
        Some("keywrap") => ("keyunwrapparams", ["dc", "annotation"]),
        Some("keyunwrap") => ("keywrapparams", ["ec", "optsdata"]),
        _ => return Err("bad op".into()),
    };
    let unused = request[unused].as_object().ok_or("params missing")?;
    if unused.len() != 2 || names.iter().any(|n| unused.get(*n) != Some(&Value::Null)) {
        return Err(format!("unused params are not null: {unused:?}"));
    }
    Ok(())
}

/// `Parameters[name]` of an `ec` or `dc` object, base64-decoded.
fn parameters(config: &Value, name: &str) -> Result<Vec<Vec<u8>>, Failure> {
    let map = config["Parameters"]
        .as_object()
        .ok_or("no Parameters object")?;
    match map.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|v| b64_field(v, "parameter")).collect(),
        Some(_) => Err("a parameter list is not a list".into()),
    }
}

fn b64_field(value: &Value, what: &str) -> Result<Vec<u8>, Failure> {
    let text = value.as_str().ok_or(format!("{what} is not a string"))?;
    B64.decode(text)
        .map_err(|e| format!("{what} is not base64: {e}"))
}

fn key_for(secret: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"layercrypt test key provider\0")
        .chain_update(secret)
        .finalize()
        .into()
}

/// `{"entries":[base64(nonce || ciphertext || tag), …]}`, one entry per secret.
fn wrap(secrets: &[Vec<u8>], options: &[u8]) -> Result<Vec<u8>, Failure> {
    let cipher = openssl::symm::Cipher::aes_256_gcm();
    let mut entries = Vec::new();
    for secret in secrets {
        let mut nonce = [0u8; 12];
        openssl::rand::rand_bytes(&mut nonce).map_err(|e| e.to_string())?;
        let mut tag = [0u8; 16];
        let ct = openssl::symm::encrypt_aead(
            cipher,
            &key_for(secret),
            Some(&nonce),
            b"",
            options,
            &mut tag,
        )
        .map_err(|e| e.to_string())?;
        entries.push(B64.encode([&nonce[..], &ct, &tag].concat()));
    }
    Ok(serde_json::to_vec(&json!({ "entries": entries })).expect("serializes"))
}

fn unwrap(secrets: &[Vec<u8>], blob: &[u8]) -> Result<Vec<u8>, Failure> {
    let doc: Value =
        serde_json::from_slice(blob).map_err(|_| "the annotation is not this provider's")?;
    let entries = doc["entries"]
        .as_array()
        .ok_or("the annotation is not this provider's")?;
    let cipher = openssl::symm::Cipher::aes_256_gcm();
    for entry in entries {
        let Some(raw) = entry.as_str().and_then(|s| B64.decode(s).ok()) else {
            continue;
        };
        if raw.len() < 28 {
            continue;
        }
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        for secret in secrets {
            if let Ok(pt) =
                openssl::symm::decrypt_aead(cipher, &key_for(secret), Some(nonce), b"", ct, tag)
            {
                return Ok(pt);
            }
        }
    }
    Err(format!(
        "none of the {} secret(s) opens any of the {} entr{}",
        secrets.len(),
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    ))
}

fn serve_command(options: &Options) -> ExitCode {
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut request) {
        eprintln!("keyprovider: cannot read stdin: {e}");
        return ExitCode::from(1);
    }
    match answer(options, &request) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&out)
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keyprovider: {e}");
            ExitCode::from(1)
        }
    }
}

// ---- gRPC ----

struct Service {
    options: Arc<Options>,
}

impl Service {
    async fn handle(
        &self,
        request: tonic::Request<KeyProviderKeyWrapProtocolInput>,
        op: &str,
    ) -> Result<tonic::Response<KeyProviderKeyWrapProtocolOutput>, tonic::Status> {
        let input = request.into_inner().key_provider_key_wrap_protocol_input;
        // Each rpc must carry its own op, as Go's client sends it.
        let stated = serde_json::from_slice::<Value>(&input)
            .ok()
            .and_then(|v| v["op"].as_str().map(String::from));
        if self.options.mode == Mode::Ok && stated.as_deref() != Some(op) {
            return Err(tonic::Status::invalid_argument(format!(
                "rpc for {op} carries op {stated:?}"
            )));
        }
        let options = self.options.clone();
        // `answer` may block (hang mode, file writes): keep it off the async workers.
        let result = tokio::task::spawn_blocking(move || answer(&options, &input))
            .await
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        match result {
            Ok(out) => Ok(tonic::Response::new(KeyProviderKeyWrapProtocolOutput {
                key_provider_key_wrap_protocol_output: out,
            })),
            Err(e) => Err(tonic::Status::permission_denied(e)),
        }
    }
}

#[tonic::async_trait]
impl KeyProviderService for Service {
    async fn wrap_key(
        &self,
        request: tonic::Request<KeyProviderKeyWrapProtocolInput>,
    ) -> Result<tonic::Response<KeyProviderKeyWrapProtocolOutput>, tonic::Status> {
        self.handle(request, "keywrap").await
    }

    async fn un_wrap_key(
        &self,
        request: tonic::Request<KeyProviderKeyWrapProtocolInput>,
    ) -> Result<tonic::Response<KeyProviderKeyWrapProtocolOutput>, tonic::Status> {
        self.handle(request, "keyunwrap").await
    }
}

/// A connection as tonic's server takes it: TCP or unix, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

struct Conn(Box<dyn Io>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

fn serve_grpc(options: Options, serve: Serve) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyprovider: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run_grpc(options, serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyprovider: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_grpc(options: Options, serve: Serve) -> Result<(), String> {
    let acceptor = match (&serve.tls_cert, &serve.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(tls_acceptor(
            cert,
            key,
            serve.client_ca.as_deref(),
        )?)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    // Accepted (and, with TLS, handshaken) connections flow to tonic through this channel.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Conn, std::io::Error>>(16);
    let bound = if let Some(path) = serve.address.strip_prefix("unix:") {
        let listener =
            tokio::net::UnixListener::bind(path).map_err(|e| format!("bind {path}: {e}"))?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                spawn_handshake(Box::new(s), acceptor.clone(), tx.clone());
            }
        });
        format!("unix:{path}")
    } else {
        let listener = tokio::net::TcpListener::bind(&serve.address)
            .await
            .map_err(|e| format!("bind {}: {e}", serve.address))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let _ = s.set_nodelay(true);
                spawn_handshake(Box::new(s), acceptor.clone(), tx.clone());
            }
        });
        addr.to_string()
    };
    if let Some(file) = &serve.ready_file {
        // Written whole, then renamed: a reader never sees half an address.
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, &bound).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let service = KeyProviderServiceServer::new(Service {
        options: Arc::new(options),
    });
    tonic::transport::Server::builder()
        .serve_with_incoming(service, tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|e| e.to_string())
}

fn spawn_handshake(
    stream: Box<dyn Io>,
    acceptor: Option<Arc<openssl::ssl::SslAcceptor>>,
    tx: tokio::sync::mpsc::Sender<Result<Conn, std::io::Error>>,
) {
    tokio::spawn(async move {
        let conn = match acceptor {
            None => Conn(stream),
            Some(acceptor) => {
                let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else {
                    return;
                };
                let Ok(mut tls) = tokio_openssl::SslStream::new(ssl, stream) else {
                    return;
                };
                // A client that fails the handshake (an untrusted certificate) is dropped.
                if Pin::new(&mut tls).accept().await.is_err() {
                    return;
                }
                Conn(Box::new(tls))
            }
        };
        let _ = tx.send(Ok(conn)).await;
    });
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> Result<openssl::ssl::SslAcceptor, String> {
    use openssl::ssl::{AlpnError, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
    let e = |e: openssl::error::ErrorStack| e.to_string();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(e)?;
    b.set_certificate_chain_file(cert).map_err(e)?;
    b.set_private_key_file(key, SslFiletype::PEM).map_err(e)?;
    b.check_private_key().map_err(e)?;
    b.set_alpn_select_callback(|_, offered| {
        openssl::ssl::select_next_proto(b"\x02h2", offered).ok_or(AlpnError::NOACK)
    });
    if let Some(ca) = client_ca {
        b.set_ca_file(ca).map_err(e)?;
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    Ok(b.build())
}
