//! Talking to a PKCS#11 token through its module (`cryptoki`): load and initialise a module
//! once per path, find the token and the key object a URI names, log in, and run
//! `CKM_RSA_PKCS_OAEP` encryption or decryption on it.
//!
//! Operations on one module are serialised: PKCS#11 login state is shared by every session of
//! an application on a token, so a logout (or a failed login) in one thread would disturb
//! another; the token operations here are a few milliseconds per layer, so nothing is lost.
//!
//! This module must never load a module the policy has not allowed (callers pass only paths
//! from [`super::config::find_module`]), never retry a PIN the token refused (tokens lock
//! after a few wrong PINs), and never put a PIN in a message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;
use zeroize::Zeroizing;

use super::envelope::OaepHash;
use super::uri::Pkcs11Uri;

/// Most objects a search looks at: a URI must name exactly one, and ocicrypt also stops
/// at 100.
const MAX_MATCHES: usize = 100;

/// Which key object an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClass {
    /// `CKO_PUBLIC_KEY`, to encrypt.
    Public,
    /// `CKO_PRIVATE_KEY`, to decrypt.
    Private,
}

impl KeyClass {
    fn object_class(self) -> ObjectClass {
        match self {
            KeyClass::Public => ObjectClass::PUBLIC_KEY,
            KeyClass::Private => ObjectClass::PRIVATE_KEY,
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyClass::Public => "public key (CKO_PUBLIC_KEY)",
            KeyClass::Private => "private key (CKO_PRIVATE_KEY)",
        }
    }
}

/// Why a token operation failed, in words that say what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The module cannot be loaded.
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    Load {
        /// The module file.
        module: String,
        /// The loader's message.
        reason: String,
    },
    /// `C_Initialize` failed.
    #[error("the PKCS#11 module {module} failed to initialise: {reason}")]
    Initialize {
        /// The module file.
        module: String,
        /// The PKCS#11 return value.
        reason: String,
    },
    /// No slot holds a token with the label.
    #[error("no token labelled \"{label}\" is present ({})", if available.is_empty() { "the module shows no token at all; check the module's configuration, e.g. SOFTHSM2_CONF".to_string() } else { format!("tokens present: {}", available.iter().map(|l| format!("\"{l}\"")).collect::<Vec<_>>().join(", ")) })]
    TokenNotFound {
        /// The label looked for.
        label: String,
        /// The labels of the tokens that are present.
        available: Vec<String>,
    },
    /// The token refused the PIN.
    #[error(
        "{token}: the token refused the PIN (CKR_PIN_INCORRECT); check pin-value or pin-source in the key file"
    )]
    WrongPin {
        /// Which token.
        token: String,
    },
    /// The PIN is locked.
    #[error(
        "{token}: the user PIN is locked (CKR_PIN_LOCKED); the token's security officer must unlock it"
    )]
    PinLocked {
        /// Which token.
        token: String,
    },
    /// No object matches.
    #[error("{token}: no {class} with {object}")]
    ObjectNotFound {
        /// Which token.
        token: String,
        /// The label/id looked for.
        object: String,
        /// The class looked for.
        class: &'static str,
    },
    /// Several objects match.
    #[error(
        "{token}: {count} objects are {class}s with {object}; the URI must name exactly one (add an id)"
    )]
    TooManyObjects {
        /// Which token.
        token: String,
        /// The label/id looked for.
        object: String,
        /// The class looked for.
        class: &'static str,
        /// How many matched (at most [`MAX_MATCHES`]).
        count: usize,
    },
    /// The object is not an RSA key.
    #[error(
        "Unsupported key object type for pkcs11 public key: {token}: the key with {object} is not an RSA key ({key_type}); PKCS#11 recipients are RSA keys"
    )]
    NotRsa {
        /// Which token.
        token: String,
        /// The label/id.
        object: String,
        /// What it is.
        key_type: String,
    },
    /// The token refused the OAEP parameters.
    #[error("{token}: the token does not support RSA-OAEP with {hash} ({reason}){fix}")]
    HashRefused {
        /// Which token.
        token: String,
        /// The hash.
        hash: &'static str,
        /// The PKCS#11 return value.
        reason: String,
        /// What to do.
        fix: &'static str,
    },
    /// Decryption failed: usually, this key is not the entry's recipient.
    #[error(
        "{token}: decryption failed ({reason}); this key is probably not the one the entry was made for"
    )]
    DecryptFailed {
        /// Which token.
        token: String,
        /// The PKCS#11 return value.
        reason: String,
    },
    /// Any other PKCS#11 failure.
    #[error("{token}: {reason}")]
    Other {
        /// Which token (or module).
        token: String,
        /// The PKCS#11 function and return value.
        reason: String,
    },
}

impl TokenError {
    /// Whether the token refused the PIN itself (as opposed to not finding the token or
    /// object); such a PIN is never tried again in this process.
    pub fn is_pin_refusal(&self) -> bool {
        matches!(
            self,
            TokenError::WrongPin { .. } | TokenError::PinLocked { .. }
        )
    }
}

/// `C_Login` returned this, as `CKR_PIN_INCORRECT`.
fn rv_name(rv: &RvError) -> String {
    let debug = format!("{rv:?}");
    if !debug.chars().all(|c| c.is_ascii_alphanumeric()) {
        return debug;
    }
    let mut out = String::from("CKR");
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A cryptoki error as `C_Login returned CKR_PIN_INCORRECT`.
fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {}", rv_name(rv)),
        other => other.to_string(),
    }
}

fn rv_of(e: &CkError) -> Option<&RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(rv),
        _ => None,
    }
}

/// The loaded modules of the process, one per module file, each initialised once and never
/// finalised. `C_Initialize` state belongs to the process, not to a scheme instance: a
/// `C_Finalize` by one [`super::Pkcs11Wrapper`] would break the sessions of another, so the
/// cache is process-wide.
pub fn modules() -> &'static Modules {
    static MODULES: OnceLock<Modules> = OnceLock::new();
    MODULES.get_or_init(Modules::default)
}

/// Loaded modules by file.
#[derive(Default)]
pub struct Modules {
    loaded: Mutex<HashMap<PathBuf, Arc<Module>>>,
}

impl std::fmt::Debug for Modules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded = lock(&self.loaded);
        f.debug_list().entries(loaded.keys()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves nothing half-done that matters here.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Modules {
    /// The module at `path` (already allowed by the policy), loaded and initialised on first
    /// use.
    pub fn get(&self, path: &Path) -> Result<Arc<Module>, TokenError> {
        // The same library under two names (a symlink) is one module.
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut loaded = lock(&self.loaded);
        if let Some(m) = loaded.get(&key) {
            return Ok(Arc::clone(m));
        }
        let module = Arc::new(Module::open(path)?);
        loaded.insert(key, Arc::clone(&module));
        Ok(module)
    }
}

/// A loaded, initialised PKCS#11 module.
pub struct Module {
    path: String,
    ctx: Pkcs11,
    /// Serialises operations (see the module documentation).
    busy: Mutex<()>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Module {
    fn open(path: &Path) -> Result<Module, TokenError> {
        let shown = path.display().to_string();
        let ctx = Pkcs11::new(path).map_err(|e| TokenError::Load {
            module: shown.clone(),
            reason: e.to_string(),
        })?;
        // OS locking: the module may be called from several threads (one at a time here, but
        // not always the same thread). Someone else in the process (a library user) may have
        // initialised it already; that is fine.
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(TokenError::Initialize {
                    module: shown,
                    reason: describe(&e),
                });
            }
        }
        Ok(Module {
            path: shown,
            ctx,
            busy: Mutex::new(()),
        })
    }

    /// Open a session on the token `uri` names, log in with `pin` when one is given (and
    /// non-empty, as in Go), find the one object of `class` the URI names, and run `op` on it.
    pub fn with_key<T>(
        &self,
        uri: &Pkcs11Uri,
        pin: Option<&[u8]>,
        class: KeyClass,
        op: impl FnOnce(&Session, ObjectHandle, &str) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let _busy = lock(&self.busy);
        let (session, token) = self.open_session(uri, pin)?;
        let object = find_object(&session, uri, class, &token)?;
        let result = op(&session, object, &token);
        if pin.is_some_and(|p| !p.is_empty()) {
            let _ = session.logout();
        }
        drop(session);
        result
    }

    fn other(&self, token: &str, e: &CkError) -> TokenError {
        TokenError::Other {
            token: token.to_string(),
            reason: describe(e),
        }
    }

    /// The session, and a description of the token for messages.
    fn open_session(
        &self,
        uri: &Pkcs11Uri,
        pin: Option<&[u8]>,
    ) -> Result<(Session, String), TokenError> {
        let slot_id = uri.slot_id().map_err(|e| TokenError::Other {
            token: uri.token_description(),
            reason: e.to_string(),
        })?;
        if let Some(id) = slot_id {
            let token = format!("slot {id}");
            let slot = Slot::try_from(id).map_err(|e| self.other(&token, &e))?;
            let session = self.login(slot, pin, &token)?;
            return Ok((session, token));
        }
        let Some(label) = uri.token() else {
            return Err(TokenError::Other {
                token: self.path.clone(),
                reason: "the URI names neither a token nor a slot-id".into(),
            });
        };
        let label = String::from_utf8_lossy(label).into_owned();
        let token = format!("token \"{label}\"");
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| self.other(&self.path, &e))?;
        let mut available = Vec::new();
        let mut last_error = None;
        for slot in slots {
            let Ok(info) = self.ctx.get_token_info(slot) else {
                continue;
            };
            if info.label() != label {
                // SoftHSM always offers a slot with a fresh, uninitialised token: not worth
                // listing.
                if info.token_initialized() {
                    available.push(info.label().to_string());
                }
                continue;
            }
            // Several tokens may carry the label: the first one that lets us in is used, as
            // in Go. A refused PIN stops the search (trying it elsewhere risks a lock-out).
            match self.login(slot, pin, &token) {
                Ok(session) => return Ok((session, token)),
                Err(e) if e.is_pin_refusal() => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(TokenError::TokenNotFound { label, available }))
    }

    fn login(&self, slot: Slot, pin: Option<&[u8]>, token: &str) -> Result<Session, TokenError> {
        let session = match self.ctx.open_rw_session(slot) {
            Ok(s) => s,
            // A read-only token is still fine for encrypting and decrypting.
            Err(CkError::Pkcs11(RvError::TokenWriteProtected, _)) => self
                .ctx
                .open_ro_session(slot)
                .map_err(|e| self.other(token, &e))?,
            Err(e) => {
                return Err(match rv_of(&e) {
                    Some(RvError::SlotIdInvalid) => TokenError::Other {
                        token: token.to_string(),
                        reason: "no such slot (CKR_SLOT_ID_INVALID)".into(),
                    },
                    Some(RvError::TokenNotPresent) => TokenError::Other {
                        token: token.to_string(),
                        reason: "no token in the slot (CKR_TOKEN_NOT_PRESENT)".into(),
                    },
                    _ => self.other(token, &e),
                });
            }
        };
        if let Some(pin) = pin.filter(|p| !p.is_empty()) {
            let secret = RawAuthPin::new(Box::new(pin.to_vec()));
            match session.login_with_raw(UserType::User, &secret) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                    return Err(TokenError::WrongPin {
                        token: token.to_string(),
                    });
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    return Err(TokenError::PinLocked {
                        token: token.to_string(),
                    });
                }
                Err(e) => return Err(self.other(token, &e)),
            }
        }
        Ok(session)
    }
}

/// The one object of `class` with the URI's label and/or id. As in Go, an empty `object=` or
/// `id=` is left out of the search template.
fn find_object(
    session: &Session,
    uri: &Pkcs11Uri,
    class: KeyClass,
    token: &str,
) -> Result<ObjectHandle, TokenError> {
    let mut template = vec![Attribute::Class(class.object_class())];
    if let Some(label) = uri.object().filter(|l| !l.is_empty()) {
        template.push(Attribute::Label(label.to_vec()));
    }
    if let Some(id) = uri.id().filter(|i| !i.is_empty()) {
        template.push(Attribute::Id(id.to_vec()));
    }
    let other = |e: &CkError| TokenError::Other {
        token: token.to_string(),
        reason: describe(e),
    };
    let found: Vec<ObjectHandle> = session
        .iter_objects(&template)
        .map_err(|e| other(&e))?
        .take(MAX_MATCHES)
        .collect::<Result<_, _>>()
        .map_err(|e| other(&e))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(TokenError::ObjectNotFound {
            token: token.to_string(),
            object: uri.object_description(),
            class: class.name(),
        }),
        many => Err(TokenError::TooManyObjects {
            token: token.to_string(),
            object: uri.object_description(),
            class: class.name(),
            count: many.len(),
        }),
    }
}

/// The OAEP mechanism ocicrypt uses: the hash, MGF1 with the same hash, and an empty label:
/// `CKZ_DATA_SPECIFIED` with a NULL pointer and length 0 (SoftHSM refuses a non-NULL pointer
/// even with length 0, with CKR_ARGUMENTS_BAD).
fn oaep(hash: OaepHash) -> Mechanism<'static> {
    let (h, mgf) = match hash {
        OaepHash::Sha1 => (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        OaepHash::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
    };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(h, mgf, PkcsOaepSource::empty()))
}

/// Whether a failure at `C_EncryptInit`/`C_DecryptInit` means the token refused the OAEP
/// parameters (SoftHSM 2.6 answers CKR_ARGUMENTS_BAD to anything but SHA-1).
fn refuses_parameters(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::ArgumentsBad | RvError::MechanismParamInvalid | RvError::MechanismInvalid,
            cryptoki::context::Function::EncryptInit | cryptoki::context::Function::DecryptInit
        )
    )
}

/// The modulus size of an RSA public key object, after checking it is RSA.
pub fn rsa_bits(
    session: &Session,
    key: ObjectHandle,
    token: &str,
    object: &str,
) -> Result<u32, TokenError> {
    let attributes = session
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::ModulusBits,
            ],
        )
        .map_err(|e| TokenError::Other {
            token: token.to_string(),
            reason: describe(&e),
        })?;
    let mut bits = None;
    for a in &attributes {
        match a {
            Attribute::KeyType(t) if *t != KeyType::RSA => {
                return Err(TokenError::NotRsa {
                    token: token.to_string(),
                    object: object.to_string(),
                    key_type: format!("{t}"),
                });
            }
            Attribute::Modulus(n) => {
                let n = &n[n.iter().take_while(|b| **b == 0).count()..];
                if let Some(first) = n.first() {
                    let len = u32::try_from(n.len()).unwrap_or(u32::MAX / 8);
                    bits = Some(len * 8 - first.leading_zeros());
                }
            }
            Attribute::ModulusBits(b) if bits.is_none() => {
                bits = u32::try_from(u64::from(*b)).ok();
            }
            _ => {}
        }
    }
    bits.ok_or_else(|| TokenError::Other {
        token: token.to_string(),
        reason: format!("the key with {object} has no readable modulus"),
    })
}

/// `C_EncryptInit` + `C_Encrypt` with RSA-OAEP.
pub fn encrypt(
    session: &Session,
    key: ObjectHandle,
    hash: OaepHash,
    message: &[u8],
    token: &str,
) -> Result<Vec<u8>, TokenError> {
    session
        .encrypt(&oaep(hash), key, message)
        .map_err(|e| match e {
            e if refuses_parameters(&e) => TokenError::HashRefused {
                token: token.to_string(),
                hash: hash.display(),
                reason: describe(&e),
                fix: if hash == OaepHash::Sha1 {
                    ""
                } else {
                    "; SoftHSM 2.6 supports only SHA-1: set OCICRYPT_OAEP_HASHALG=sha1"
                },
            },
            e => TokenError::Other {
                token: token.to_string(),
                reason: describe(&e),
            },
        })
}

/// `C_DecryptInit` + `C_Decrypt` with RSA-OAEP.
pub fn decrypt(
    session: &Session,
    key: ObjectHandle,
    hash: OaepHash,
    ciphertext: &[u8],
    token: &str,
) -> Result<Zeroizing<Vec<u8>>, TokenError> {
    session
        .decrypt(&oaep(hash), key, ciphertext)
        .map(Zeroizing::new)
        .map_err(|e| {
            if refuses_parameters(&e) {
                TokenError::HashRefused {
                    token: token.to_string(),
                    hash: hash.display(),
                    reason: describe(&e),
                    fix: if hash == OaepHash::Sha1 {
                        ""
                    } else {
                        "; SoftHSM 2.6 supports only SHA-1, so it cannot open this entry (images for it are encrypted with OCICRYPT_OAEP_HASHALG=sha1)"
                    },
                }
            } else {
                TokenError::DecryptFailed {
                    token: token.to_string(),
                    reason: describe(&e),
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_are_named_as_in_the_standard() {
        assert_eq!(rv_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(rv_name(&RvError::ArgumentsBad), "CKR_ARGUMENTS_BAD");
        assert_eq!(
            rv_name(&RvError::CryptokiAlreadyInitialized),
            "CKR_CRYPTOKI_ALREADY_INITIALIZED"
        );
        assert_eq!(
            describe(&CkError::Pkcs11(
                RvError::EncryptedDataInvalid,
                cryptoki::context::Function::Decrypt
            )),
            "C_Decrypt returned CKR_ENCRYPTED_DATA_INVALID"
        );
    }

    #[test]
    fn a_module_that_is_no_library_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("libfake.so");
        std::fs::write(&fake, b"not a shared object").unwrap();
        let err = Modules::default().get(&fake).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "cannot load the PKCS#11 module {}",
                fake.display()
            )),
            "{err}"
        );
    }
}
