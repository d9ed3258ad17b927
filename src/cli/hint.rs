//! `hint:` lines: for a library error, a likely fix in the command's own words (its flags,
//! its subcommands). The library's errors never name a flag; the names live here, beside the
//! flags they name, as rage keeps its recommended fixes in its binary.

use layercrypt::cipher::CipherError;
use layercrypt::error::{Error, LayerError};
use layercrypt::image::ImageError;
use layercrypt::keywrap::{RecipientError, RekeyError, RemoveError, UnwrapError};

/// What to do about a key provider that is named but not configured.
const PROVIDER_CONFIG_HINT: &str = "set OCICRYPT_KEYPROVIDER_CONFIG to a JSON file whose \"key-providers\" has an entry of that name (README: Key providers)";

/// A likely fix for `error`, for the `hint:` line under it.
pub fn hint(error: &Error) -> Option<String> {
    match error {
        Error::Store(e) => e.hint(),
        Error::Image { source, .. } => match source.as_ref() {
                ImageError::Store(e) => e.hint(),
                _ => None,
            },
        Error::Recipient {
                spec,
                source: RecipientError::NoScheme,
            } => Some(format!(
                "a recipient names its scheme: jwe:{spec} for a public key file, pkcs7:{spec} for an X.509 certificate, pgp:{spec} for an OpenPGP certificate or e-mail address"
            )),
        Error::Recipient { source, .. } => source.hint(),
        Error::UnknownKeyProvider { .. } => Some(PROVIDER_CONFIG_HINT.into()),
        Error::Key(e) => e.hint(),
        Error::NoRecipients => Some("name at least one recipient with -r jwe:PUBLIC-KEY-FILE".into()),
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
                LayerError::Rekey(RekeyError::NoneLeft { .. }) => Some(
                    "add the new recipients in the same run (--add), or use --set".into(),
                ),
                _ => None,
            },
            _ => None,
        }
}
