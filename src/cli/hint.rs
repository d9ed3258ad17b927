//! `hint:` lines: for a library error, a likely fix in the command's own words (its flags,
//! its subcommands). The library's errors never name a flag; the names live here, beside the
//! flags they name, as rage keeps its recommended fixes in its binary.

use layercrypt::cipher::CipherError;
use layercrypt::error::{Error, LayerError};
use layercrypt::image::ImageError;
use layercrypt::keys::certificate::EXPECT_CERTIFICATE;
use layercrypt::keys::{FileKind, KeyError};
use layercrypt::keywrap::{KeySourceError, RecipientError, RekeyError, RemoveError, UnwrapError};
use layercrypt::store::StoreError;
use layercrypt::store::registry::RegistryError;

/// What to do about a key provider that is named but not configured.
const PROVIDER_CONFIG_HINT: &str = "set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file whose \"key-providers\" has an entry of that name (README: Key providers)";

/// A likely fix for `error`, for the `hint:` line under it.
pub fn hint(error: &Error) -> Option<String> {
    match error {
        Error::Store(e) => store_hint(e),
        Error::Image { source, .. } => match source.as_ref() {
                ImageError::Store(e) => store_hint(e),
                _ => None,
            },
        Error::NeedsLayerData { store, operation, .. } => {
            let image = store.strip_prefix("docker://").unwrap_or(store);
            Some(format!(
                "copy the image to a layout, {operation} it there, and copy it back: skopeo copy docker://{image} oci:DIR:TAG && layercrypt {operation} … oci:DIR:TAG && skopeo copy oci:DIR:TAG docker://{image}"
            ))
        }
        Error::NotOnBase { .. } => Some(
            "name the image it was built FROM (`layercrypt inspect` lists layer digests of both), or drop --base to encrypt every layer".into(),
        ),
        Error::CrossStore { .. } => Some(
            "re-key in the registry itself (no destination, or another tag of the same repository), or copy the image with skopeo copy first".into(),
        ),
        Error::Recipient {
                spec,
                source: RecipientError::NoScheme,
            } => Some(format!(
                "a recipient names its scheme: jwe:{spec} for a public key file, pkcs7:{spec} for an X.509 certificate, pgp:{spec} for an OpenPGP certificate or e-mail address"
            )),
        Error::Recipient { source, .. } => recipient_hint(source),
        Error::UnknownKeyProvider { .. } => Some(PROVIDER_CONFIG_HINT.into()),
        Error::Key(e) => key_source_hint(e),
        Error::NoRecipients => Some("name at least one recipient with -r jwe:PUBLIC-KEY-FILE".into()),
        Error::OnePlatformPerImage { .. } => {
            Some("choose one with --platform OS/ARCH[/VARIANT]".into())
        }
        Error::LayerStaysEncrypted { .. } => Some(
            "decrypt every layer (drop --layer), or write to oci:DIR[:REF] or oci-archive:FILE[:REF]"
                .into(),
        ),
        Error::EncryptedToDockerArchive { .. } => {
                Some("write the encrypted image to oci:DIR[:REF] or oci-archive:FILE[:REF] instead".into())
            }
        Error::NoKeys => Some("name the private key with -k KEY-FILE".into()),
        Error::RemovedNothing { .. } => Some(
                "`layercrypt inspect` lists each layer's recipients; remove by the recipient string used with -r, an OpenPGP key id or fingerprint, a JWE kid, or pkcs7:CERT".into(),
            ),
        Error::Layer { source, .. } => match source.as_ref() {
                LayerError::Unwrap(UnwrapError::NoKeysGiven { .. }) => Some(
                    "name the private key with -k KEY-FILE (`layercrypt inspect` lists the layer's recipients)".into(),
                ),
                LayerError::Unwrap(UnwrapError::NoUsableKeys { schemes, problems })
                    if schemes.iter().any(|s| s.starts_with("provider."))
                        && problems.iter().any(|p| p.starts_with("provider.")) =>
                {
                    Some(PROVIDER_CONFIG_HINT.into())
                }
                LayerError::Unwrap(UnwrapError::NoUsableKeys { .. }) => Some(
                    "pass a private key of a scheme the layer is encrypted for (see `layercrypt inspect`)".into(),
                ),
                LayerError::Unwrap(UnwrapError::NoKeyOpened { .. }) => Some(
                    "each key's reason is given above; `layercrypt inspect` lists the layer's recipients".into(),
                ),
                LayerError::Cipher(CipherError::HmacMismatch) => Some(
                    "the layer blob was modified or damaged; copy the image again from its source".into(),
                ),
                LayerError::Store(e) => e.hint(),
                LayerError::Rekey(RekeyError::Remove {
                    reason: RemoveError::Unidentifiable(_) | RemoveError::Unsupported,
                    ..
                }) => Some(
                    "replace every recipient instead: --set RECIPIENT... (with --rotate, so that the removed party's copy of the layer key stops working)".into(),
                ),
                LayerError::Rekey(RekeyError::UnhandledScheme { .. }) => Some(
                    "configure that scheme for this run (OCICRYPT_KEYPROVIDER_CONFIG for a key provider), or add and remove recipients with --add/--remove, which keep it".into(),
                ),
                LayerError::Rekey(RekeyError::TooManyEntries { .. }) => Some(
                    "use --set to wrap the key once for every recipient".into(),
                ),
                LayerError::Rekey(RekeyError::NoneLeft { .. }) => Some(
                    "add the new recipients in the same run (--add), or use --set".into(),
                ),
                _ => None,
            },
            _ => None,
        }
}

/// What to use instead of an SSH or age key.
const SSH_AGE_HINT: &str = "SSH and age keys are not ocicrypt key types; make an RSA or EC key with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem`";

/// Where OpenPGP keys go, in this build.
#[cfg(feature = "pgp")]
const PGP_KEY_HINT: &str = "OpenPGP certificates are recipients as pgp:FILE (or pgp:EMAIL from the GnuPG home); decryption takes the secret keyring from `gpg --export-secret-keys KEYID > secring.gpg` as -k secring.gpg";
#[cfg(not(feature = "pgp"))]
const PGP_KEY_HINT: &str = "this build of layercrypt has no OpenPGP support (it was built without the cargo feature `pgp`)";

/// A likely fix for a key file that cannot be used.
fn key_hint(error: &KeyError) -> Option<String> {
    let text = match error {
        // A key where a PKCS#7 recipient certificate belongs.
        KeyError::WrongKind {
            found: FileKind::PublicKey | FileKind::PublicJwk,
            expected,
        } if *expected == EXPECT_CERTIFICATE => {
            "pkcs7: recipients are X.509 certificates; a bare public key is a JWE recipient: use jwe:FILE"
        }
        KeyError::WrongKind {
            found: FileKind::PrivateKey | FileKind::EncryptedPrivateKey | FileKind::PrivateJwk,
            expected,
        } if *expected == EXPECT_CERTIFICATE => {
            "pkcs7: recipients are X.509 certificates: give the recipient's certificate, not a private key"
        }
        KeyError::WrongKind {
            found: FileKind::PrivateKey | FileKind::EncryptedPrivateKey | FileKind::PrivateJwk,
            ..
        } => {
            "a recipient is a public key; extract it with `openssl pkey -in KEY.pem -pubout -out KEY.pub.pem`"
        }
        KeyError::WrongKind {
            found: FileKind::PublicKey | FileKind::PublicJwk,
            ..
        } => "decryption needs the private key that belongs to the recipient's public key",
        KeyError::WrongKind {
            found: FileKind::Certificate,
            ..
        } => {
            "X.509 certificates are PKCS#7 recipients: write pkcs7:CERT (for jwe:, extract the public key with `openssl x509 -in CERT -pubkey -noout`)"
        }
        KeyError::WrongKind {
            found: FileKind::OpenSshPrivateKey | FileKind::SshPublicKey | FileKind::AgeKey,
            ..
        } => SSH_AGE_HINT,
        KeyError::WrongKind {
            found: FileKind::PgpPublicKey | FileKind::PgpSecretKey,
            ..
        } => PGP_KEY_HINT,
        KeyError::UnsupportedAlgorithm(_) => {
            "ocicrypt keys are RSA or EC P-256/P-384/P-521; make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out key.pem`"
        }
        KeyError::WrongPassword => {
            "check the passphrase (a trailing newline in a passphrase file is tried with and without)"
        }
        _ => return None,
    };
    Some(text.to_string())
}

/// A likely fix for a key that cannot be loaded (`-k`, `--key-dir`).
fn key_source_hint(error: &KeySourceError) -> Option<String> {
    match error {
        KeySourceError::Key {
            source: KeyError::PasswordRequired,
            path,
        } => Some(format!(
            "give the passphrase with -k {0}:file=PATH, -k {0}:env=VAR, -k {0}:fd=N or --passphrase-file PATH",
            path.display()
        )),
        KeySourceError::Key { source, .. } => key_hint(source),
        KeySourceError::UnsupportedKind {
            kind: FileKind::PublicKey | FileKind::PublicJwk,
            ..
        } => Some(
            "decryption needs the private key that belongs to the recipient's public key"
                .into(),
        ),
        KeySourceError::UnsupportedKind {
            kind: FileKind::PgpPublicKey | FileKind::PgpSecretKey,
            ..
        } => Some(PGP_KEY_HINT.into()),
        KeySourceError::UnsupportedKind {
            kind: FileKind::OpenSshPrivateKey | FileKind::SshPublicKey | FileKind::AgeKey,
            ..
        } => Some(SSH_AGE_HINT.into()),
        KeySourceError::NoUsableKey { .. } => Some(
            "each file was skipped for the reason given; mend it (its permissions, the link, a passphrase with --passphrase-file), or name a key with -k"
                .into(),
        ),
        _ => None,
    }
}

/// A likely fix for a recipient that cannot be used (`-r`, `--add`, `--set`).
fn recipient_hint(error: &RecipientError) -> Option<String> {
    match error {
        RecipientError::NoScheme | RecipientError::UnknownScheme(_) => Some(
            "write the recipient as jwe:PUBLIC-KEY-FILE, pgp:EMAIL, pkcs7:CERT-FILE, pkcs11:FILE or provider:NAME".into(),
        ),
        RecipientError::UnknownProvider(_) => Some(
            "set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file with a \"key-providers\" entry of that name".into(),
        ),
        RecipientError::Key { source, .. } => key_hint(source),
        _ => None,
    }
}

/// A store error's fix; a registry's names the registry options.
fn store_hint(error: &StoreError) -> Option<String> {
    match error {
        StoreError::Registry(e) => registry_hint(e),
        e => e.hint(),
    }
}

fn registry_hint(error: &RegistryError) -> Option<String> {
    Some(match error {
        RegistryError::NotBuilt => "build layercrypt with its default features (the `registry` feature), or copy the image to a layout with `skopeo copy docker://… oci:DIR:TAG`".into(),
        RegistryError::Denied { credentials: false, registry, .. } => format!(
            "log in first (`skopeo login {registry}` or `podman login {registry}` write the auth file layercrypt reads), or give --creds USER (the password is asked for) or --creds-file FILE"
        ),
        RegistryError::Denied { credentials: true, .. } => "check the user name and password (--creds, --creds-file, --authfile), and that they may read (and, to re-key, push to) this repository".into(),
        RegistryError::Tls { registry, .. } => format!(
            "trust the registry's CA: put it in --cert-dir DIR (as DIR/ca.crt) or /etc/containers/certs.d/{registry}/; --tls-verify=false turns verification off"
        ),
        RegistryError::Unreachable { .. } => "check the host and port; a registry without TLS needs --tls-verify=false".into(),
        RegistryError::NotFound { .. } => "check the repository and tag; `layercrypt inspect docker://HOST/REPO` (no tag) shows every tag".into(),
        RegistryError::Redirect { .. }
        | RegistryError::TooLarge { .. }
        | RegistryError::DigestMismatch { .. }
        | RegistryError::BadAnswer { .. } => "the registry's answer cannot be trusted; nothing was changed".into(),
        RegistryError::AuthFile { .. } => "fix or remove the file, or name another with --authfile".into(),
        _ => return None,
    })
}
