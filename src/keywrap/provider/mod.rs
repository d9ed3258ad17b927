//! Key providers (`provider:NAME[:ARGS]`, annotation
//! `org.opencontainers.image.enc.keys.provider.NAME`): external programs or gRPC services that
//! wrap and unwrap layer keys for layercrypt, as in containers/ocicrypt.
//!
//! Each entry of the configuration named by `OCICRYPT_KEYPROVIDER_CONFIG` ([`config`]) becomes
//! one scheme, `provider.NAME` ([`ProviderWrapper`]). Wrapping sends the layer's private options
//! to the provider with the ARGS of every `-r provider:NAME[:ARGS]` of the run, in one request,
//! and stores the opaque bytes it answers with (base64 again, in the annotation). Unwrapping
//! sends those bytes back, with the ARGS of every `-k provider:NAME[:ARGS]`; it is tried for
//! every configured provider whose annotation a layer carries, whether or not such a key was
//! given (a node-level provider needs none). The messages are Go's, to the byte
//! ([`protocol`]); the transports are a command (request on stdin, answer on stdout) and gRPC
//! (cargo feature `keyprovider-grpc`, on by default).
//!
//! What this module must never do: send a provider anything but its own parameters. Go hands
//! every provider the whole parameter map of the run — other recipients' public keys and, on
//! decryption, every private key and password the user gave; layercrypt sends only
//! `{NAME: [ARGS…]}`. It must also never wait forever on a provider (every request has a
//! timeout), accept unbounded answers, echo an answer (it may hold a layer key) into a
//! message, or keep unwrapped options outside zeroizing buffers.
//!
//! A broken or missing configuration file is not an error, as in Go: there are then no
//! providers, and a warning says why.

mod cmd;
pub mod config;
#[cfg(feature = "keyprovider-grpc")]
mod grpc;
pub mod protocol;

use std::fmt;

use zeroize::Zeroizing;

use crate::keywrap::{
    Attempt, DescribeContext, Environment, KeyRing, KeyWrapper, Recipient, RecipientError,
    RecipientFailure, RecipientInfo, RecipientKind, RecipientSpec, RegistryError, UnwrapFailure,
    Unwrapped, WrapError,
};

use config::{ProviderConfig, Transport};

/// A configured key provider: the scheme `provider.NAME`.
#[derive(Debug)]
pub struct ProviderWrapper {
    id: String,
    config: ProviderConfig,
    /// The gRPC client, for a gRPC provider (its runtime starts on the first request).
    #[cfg(feature = "keyprovider-grpc")]
    grpc: Option<grpc::Client>,
}

/// A key-provider recipient: the provider's arguments from `provider:NAME:ARGS`.
#[derive(Clone)]
pub struct ProviderRecipient {
    /// The arguments after `provider:NAME:`, if any (`provider:NAME` has none and sends
    /// `Enabled`, as in Go; `provider:NAME:` has empty ones).
    pub args: Option<String>,
}

impl fmt::Debug for ProviderRecipient {
    // Arguments may be secrets (a passphrase the provider derives a key from).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRecipient")
            .field("args", &self.args.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The providers configured by `env.keyprovider_config`, sorted by name. Configuration
/// problems never fail: they leave no providers (or an unusable one) and a warning.
pub fn configured(
    env: &Environment,
    warnings: &mut Vec<String>,
) -> Result<Vec<ProviderWrapper>, RegistryError> {
    let Some(path) = &env.keyprovider_config else {
        return Ok(Vec::new());
    };
    let providers = match config::load(path) {
        Ok(Some(p)) => p,
        Ok(None) => {
            warnings.push(format!(
                "no key providers: the configuration {} (OCICRYPT_KEYPROVIDER_CONFIG) does not exist",
                path.display()
            ));
            return Ok(Vec::new());
        }
        Err(e) => {
            warnings.push(format!(
                "no key providers: the configuration (OCICRYPT_KEYPROVIDER_CONFIG) cannot be used: {e}"
            ));
            return Ok(Vec::new());
        }
    };
    Ok(providers
        .into_iter()
        .map(|p| {
            if p.transport == Transport::Unset {
                warnings.push(format!(
                    "key provider {} in {} has neither \"cmd\" nor \"grpc\"; it cannot be used",
                    p.name,
                    path.display()
                ));
            }
            ProviderWrapper::new(p)
        })
        .collect())
}

impl ProviderWrapper {
    /// The scheme for one configured provider. Nothing is run or connected until a request.
    pub fn new(config: ProviderConfig) -> ProviderWrapper {
        ProviderWrapper {
            id: format!("provider.{}", config.name),
            #[cfg(feature = "keyprovider-grpc")]
            grpc: match &config.transport {
                Transport::Grpc(g) => Some(grpc::Client::new(g.clone(), config.timeout)),
                _ => None,
            },
            config,
        }
    }

    /// The provider name (`NAME` of `provider:NAME`).
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// How this provider is named in attempts and in `Unwrapped::key`.
    fn label(&self) -> String {
        format!("provider {}", self.config.name)
    }

    /// Why requests cannot work, when that is known without sending one.
    fn unusable(&self) -> Option<String> {
        match &self.config.transport {
            Transport::Unset => Some("its configuration names neither \"cmd\" nor \"grpc\"".into()),
            Transport::Command(c) if c.path.as_os_str().is_empty() => {
                Some("its \"cmd\" has no \"path\" in the key-provider configuration".into())
            }
            Transport::Command(_) => None,
            #[cfg(feature = "keyprovider-grpc")]
            Transport::Grpc(_) => self.grpc.as_ref().and_then(|g| g.check().err()),
            #[cfg(not(feature = "keyprovider-grpc"))]
            Transport::Grpc(_) => Some(
                "it is reached over gRPC, and this layercrypt was built without gRPC support \
                 (cargo feature keyprovider-grpc)"
                    .into(),
            ),
        }
    }

    /// Send one request (`wrap`: a WrapKey request, else UnWrapKey; only gRPC tells them
    /// apart); the answer document.
    #[cfg_attr(not(feature = "keyprovider-grpc"), allow(unused_variables))]
    fn exchange(&self, wrap: bool, request: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        if let Some(why) = self.unusable() {
            return Err(why);
        }
        match &self.config.transport {
            Transport::Command(c) => cmd::call(c, request, self.config.timeout),
            #[cfg(feature = "keyprovider-grpc")]
            Transport::Grpc(_) => match &self.grpc {
                Some(client) => client.call(
                    if wrap {
                        grpc::Rpc::WrapKey
                    } else {
                        grpc::Rpc::UnWrapKey
                    },
                    request,
                ),
                None => Err("no gRPC client".into()),
            },
            // `unusable` has refused every other case.
            _ => Err("no transport".into()),
        }
    }
}

impl KeyWrapper for ProviderWrapper {
    fn id(&self) -> &str {
        &self.id
    }

    fn recipients(&self, values: &[RecipientSpec]) -> Result<Vec<Recipient>, RecipientFailure> {
        values
            .iter()
            .map(|v| {
                // Refuse a provider that cannot work now, before any layer is read.
                if let Some(why) = self.unusable() {
                    return Err(RecipientFailure {
                        spec: v.spec.clone(),
                        error: RecipientError::Scheme(format!(
                            "key provider {} cannot be used: {why}",
                            self.config.name
                        )),
                    });
                }
                // The value cannot tell `provider:NAME` (no ARGS: "Enabled") from
                // `provider:NAME:` (empty ARGS); the recipient string can.
                let args = v
                    .spec
                    .strip_prefix("provider:")
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, args)| args.to_string());
                Ok(Recipient {
                    spec: v.spec.clone(),
                    scheme: self.id.clone(),
                    kind: RecipientKind::Provider(ProviderRecipient { args }),
                })
            })
            .collect()
    }

    fn wrap(&self, recipients: &[&Recipient], options: &[u8]) -> Result<Vec<u8>, WrapError> {
        let fail = |reason: String| WrapError {
            scheme: self.id.clone(),
            reason,
        };
        let params: Vec<&[u8]> = recipients
            .iter()
            .filter(|r| r.scheme == self.id)
            .filter_map(|r| match &r.kind {
                RecipientKind::Provider(p) => {
                    Some(p.args.as_deref().map_or(protocol::ENABLED, str::as_bytes))
                }
                _ => None,
            })
            .collect();
        if params.is_empty() {
            return Err(fail("no recipients for this provider".into()));
        }
        let request = protocol::wrap_request(&self.config.name, &params, options);
        let answer = self.exchange(true, &request).map_err(&fail)?;
        let annotation = protocol::decode_wrap_response(&answer)
            .map_err(|e| fail(format!("{}: {e}", self.config.transport)))?;
        if annotation.is_empty() {
            return Err(fail(format!(
                "{} answered with an empty annotation (no key for this provider)",
                self.config.transport
            )));
        }
        Ok(annotation)
    }

    fn has_keys(&self, _: &KeyRing) -> bool {
        // A provider may hold its own keys (a node-level key broker): always worth asking.
        true
    }

    fn unwrap(&self, keys: &KeyRing, blob: &[u8]) -> Result<Unwrapped, UnwrapFailure> {
        let failed = |reason: String| {
            UnwrapFailure::NotOpened(vec![Attempt {
                key: self.label(),
                reason,
            }])
        };
        // Only this provider's own `-k provider:NAME[:ARGS]`, never any other key.
        let params: Vec<&[u8]> = keys
            .providers
            .iter()
            .filter(|k| k.name == self.config.name)
            .map(|k| k.args.as_deref().map_or(protocol::ENABLED, str::as_bytes))
            .collect();
        let request = protocol::unwrap_request(&self.config.name, &params, blob);
        let answer = self.exchange(false, &request).map_err(failed)?;
        let options = protocol::decode_unwrap_response(&answer)
            .map_err(|e| failed(format!("{}: {e}", self.config.transport)))?;
        if options.is_empty() {
            return Err(failed(format!(
                "{} answered without the layer key (empty optsdata)",
                self.config.transport
            )));
        }
        Ok(Unwrapped {
            options,
            scheme: self.id.clone(),
            key: self.label(),
        })
    }

    fn describe(&self, _: &[u8], _: &DescribeContext) -> Result<Vec<RecipientInfo>, String> {
        // The blob belongs to the provider; its name is all that can be shown.
        Ok(vec![RecipientInfo {
            scheme: self.id.clone(),
            ..Default::default()
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keywrap::{ProviderKey, Registry};
    use config::CommandConfig;
    use std::path::{Path, PathBuf};

    /// A command provider that records each request in `dir` and answers with `answer`.
    fn recording(dir: &Path, name: &str, answer: &str) -> ProviderWrapper {
        let script = format!(
            "cat > \"{}/request-$$.json\"; printf '%s' '{answer}'",
            dir.display()
        );
        ProviderWrapper::new(ProviderConfig {
            name: name.into(),
            transport: Transport::Command(CommandConfig {
                path: "/bin/sh".into(),
                args: vec!["-c".into(), script],
            }),
            timeout: config::DEFAULT_TIMEOUT,
        })
    }

    fn requests(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        out
    }

    fn spec(s: &str) -> RecipientSpec {
        RecipientSpec {
            spec: s.into(),
            value: s.splitn(3, ':').nth(2).unwrap_or_default().into(),
        }
    }

    fn env_with(path: PathBuf) -> Environment {
        Environment {
            keyprovider_config: Some(path),
            ..Default::default()
        }
    }

    #[test]
    fn configuration_problems_are_warnings() {
        let mut warnings = Vec::new();
        assert!(
            configured(&Environment::default(), &mut warnings)
                .unwrap()
                .is_empty()
        );
        assert!(warnings.is_empty(), "not set: no warning");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        assert!(
            configured(&env_with(missing.clone()), &mut warnings)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            warnings.pop().unwrap(),
            format!(
                "no key providers: the configuration {} (OCICRYPT_KEYPROVIDER_CONFIG) does not exist",
                missing.display()
            )
        );
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, r#"{"key-providers":{"p":{"cmd":"x"}}}"#).unwrap();
        assert!(
            configured(&env_with(broken.clone()), &mut warnings)
                .unwrap()
                .is_empty()
        );
        let w = warnings.pop().unwrap();
        assert!(
            w.contains(&broken.display().to_string()) && w.contains("\"cmd\" must be an object"),
            "{w}"
        );
        let good = dir.path().join("good.json");
        std::fs::write(
            &good,
            r#"{"key-providers":{"b":{"cmd":{"path":"/bin/true"}},"a":{}}}"#,
        )
        .unwrap();
        let all = configured(&env_with(good), &mut warnings).unwrap();
        assert_eq!(
            all.iter().map(|w| w.id()).collect::<Vec<_>>(),
            ["provider.a", "provider.b"]
        );
        assert!(warnings.pop().unwrap().contains("key provider a in "));
        assert!(warnings.is_empty());
    }

    #[test]
    fn recipients_keep_their_args_and_unusable_providers_are_refused_early() {
        let dir = tempfile::tempdir().unwrap();
        let p = recording(dir.path(), "kp", "{}");
        let got = p
            .recipients(&[
                spec("provider:kp"),
                spec("provider:kp:"),
                spec("provider:kp:a:b"),
            ])
            .unwrap();
        let args: Vec<Option<String>> = got
            .iter()
            .map(|r| match &r.kind {
                RecipientKind::Provider(p) => p.args.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(args, [None, Some("".into()), Some("a:b".into())]);
        assert!(got.iter().all(|r| r.scheme == "provider.kp"));
        assert_eq!(
            format!("{:?}", got[2].kind),
            "Provider(ProviderRecipient { args: Some(\"<redacted>\") })"
        );

        let unset = ProviderWrapper::new(ProviderConfig {
            name: "u".into(),
            transport: Transport::Unset,
            timeout: config::DEFAULT_TIMEOUT,
        });
        let err = unset.recipients(&[spec("provider:u")]).unwrap_err();
        assert_eq!(
            err.error.to_string(),
            "key provider u cannot be used: its configuration names neither \"cmd\" nor \"grpc\""
        );
    }

    #[cfg(not(feature = "keyprovider-grpc"))]
    #[test]
    fn grpc_providers_need_the_feature() {
        let g = ProviderWrapper::new(ProviderConfig {
            name: "g".into(),
            transport: Transport::Grpc(config::GrpcConfig {
                target: "localhost:1".into(),
                tls: None,
            }),
            timeout: config::DEFAULT_TIMEOUT,
        });
        let err = g.recipients(&[spec("provider:g")]).unwrap_err();
        assert!(
            err.error.to_string().contains("built without gRPC support"),
            "{}",
            err.error
        );
    }

    /// Only this provider's own parameters travel: not other providers', not other schemes'
    /// recipients or keys.
    #[test]
    fn a_provider_sees_only_its_own_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let kp = recording(
            dir.path(),
            "kp",
            r#"{"keywrapresults":{"annotation":"YmxvYg=="}}"#,
        );
        let other = Recipient {
            spec: "provider:other:SECRET-OTHER".into(),
            scheme: "provider.other".into(),
            kind: RecipientKind::Provider(ProviderRecipient {
                args: Some("SECRET-OTHER".into()),
            }),
        };
        let mine = kp
            .recipients(&[spec("provider:kp:one"), spec("provider:kp")])
            .unwrap();
        let all: Vec<&Recipient> = vec![&mine[0], &other, &mine[1]];
        assert_eq!(kp.wrap(&all, b"OPTS").unwrap(), b"blob");
        assert_eq!(
            requests(dir.path()),
            [
                r#"{"op":"keywrap","keywrapparams":{"ec":{"Parameters":{"kp":["b25l","RW5hYmxlZA=="]},"DecryptConfig":{"Parameters":{}}},"optsdata":"T1BUUw=="},"keyunwrapparams":{"dc":null,"annotation":null}}"#
            ]
        );

        let dir = tempfile::tempdir().unwrap();
        let kp = recording(
            dir.path(),
            "kp",
            r#"{"keyunwrapresults":{"optsdata":[79,80,84,83]}}"#,
        );
        let mut keys = KeyRing {
            providers: vec![
                ProviderKey {
                    name: "other".into(),
                    args: Some("SECRET-OTHER".into()),
                },
                ProviderKey {
                    name: "kp".into(),
                    args: Some("two".into()),
                },
                ProviderKey {
                    name: "kp".into(),
                    args: None,
                },
            ],
            ..Default::default()
        };
        keys.private_keys.push(crate::keywrap::NamedKey {
            source: "rsa.pem".into(),
            key: crate::keys::PrivateKey::from_bytes(
                &std::fs::read(
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/rsa2048.pem"),
                )
                .unwrap(),
                None,
            )
            .unwrap(),
        });
        let got = kp.unwrap(&keys, b"blob").unwrap();
        assert_eq!(&*got.options, b"OPTS");
        assert_eq!(
            (got.scheme.as_str(), got.key.as_str()),
            ("provider.kp", "provider kp")
        );
        assert_eq!(
            requests(dir.path()),
            [
                r#"{"op":"keyunwrap","keywrapparams":{"ec":null,"optsdata":null},"keyunwrapparams":{"dc":{"Parameters":{"kp":["dHdv","RW5hYmxlZA=="]}},"annotation":"YmxvYg=="}}"#
            ]
        );
        // Without `-k provider:kp`: asked all the same, with no parameters.
        let dir = tempfile::tempdir().unwrap();
        let kp = recording(
            dir.path(),
            "kp",
            r#"{"keyunwrapresults":{"optsdata":"AQ=="}}"#,
        );
        assert!(kp.has_keys(&KeyRing::default()));
        kp.unwrap(&KeyRing::default(), b"blob").unwrap();
        assert!(requests(dir.path())[0].contains(r#""dc":{"Parameters":{}}"#));
    }

    #[test]
    fn failures_name_the_provider_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyRing::default();
        let attempt =
            |answer: &str| match recording(dir.path(), "kp", answer).unwrap(&keys, b"blob") {
                Err(UnwrapFailure::NotOpened(a)) => {
                    assert_eq!(a.len(), 1);
                    assert_eq!(a[0].key, "provider kp");
                    a[0].reason.clone()
                }
                other => panic!("{other:?}"),
            };
        assert_eq!(
            attempt("garbage"),
            "command /bin/sh: the answer is not valid JSON: expected value at line 1 column 1"
        );
        assert_eq!(
            attempt(r#"{"keyunwrapresults":{}}"#),
            "command /bin/sh answered without the layer key (empty optsdata)"
        );
        let r = recording(dir.path(), "kp", "{}");
        let mine = r.recipients(&[spec("provider:kp")]).unwrap();
        let err = r.wrap(&[&mine[0]], b"x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "wrapping the layer key for provider.kp recipients failed: command /bin/sh answered with an empty annotation (no key for this provider)"
        );
        let failing = ProviderWrapper::new(ProviderConfig {
            name: "kp".into(),
            transport: Transport::Command(CommandConfig {
                path: "/bin/sh".into(),
                args: vec!["-c".into(), "echo 'key not found' >&2; exit 2".into()],
            }),
            timeout: config::DEFAULT_TIMEOUT,
        });
        match failing.unwrap(&keys, b"blob") {
            Err(UnwrapFailure::NotOpened(a)) => assert_eq!(
                a[0].reason,
                "/bin/sh failed (exit status: 2): key not found"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn describe_names_the_provider() {
        let dir = tempfile::tempdir().unwrap();
        let p = recording(dir.path(), "kp", "{}");
        assert_eq!(
            p.describe(b"\x00opaque", &DescribeContext::default())
                .unwrap(),
            [RecipientInfo {
                scheme: "provider.kp".into(),
                ..Default::default()
            }]
        );
    }

    #[test]
    fn the_registry_lists_configured_providers() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("kp.json");
        std::fs::write(
            &conf,
            r#"{"key-providers":{"kp":{"cmd":{"path":"/bin/true"}}}}"#,
        )
        .unwrap();
        let registry = Registry::new(&env_with(conf)).unwrap();
        assert!(registry.get("provider.kp").is_some());
        let r = registry
            .load_recipients(&["provider:kp:x".to_string()])
            .unwrap();
        assert_eq!(r[0].scheme, "provider.kp");
    }
}
