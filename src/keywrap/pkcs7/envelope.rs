//! The PKCS#7 / CMS `EnvelopedData` structure: read leniently into a small model, and written
//! in exactly the form Go's `smallstep/pkcs7` writes for ocicrypt.
//!
//! Reading accepts what Go, skopeo 1.9 (`fullsailor/pkcs7`) and OpenSSL write: DER or BER
//! (indefinite lengths, segmented strings), `KeyTransRecipientInfo` by issuer and serial or by
//! subject key identifier (other kinds of RecipientInfo are listed, not used), RSAES-PKCS1-v1_5
//! and RSAES-OAEP key transport, and AES-GCM (Go's `0x10` parameters, a plain SEQUENCE holding
//! Go's inner SEQUENCE, or the RFC 5084 form), AES-CBC, DES-EDE3-CBC and DES-CBC content.
//! Anything else is an error naming the element, and nothing here trusts a length it has not
//! checked (see [`super::ber`]).
//!
//! Writing uses `der` for the leaf values (object identifiers, lengths, OCTET STRINGs) and
//! assembles the constructed elements by hand, because Go's GCM parameter element (identifier
//! `0x10`) is not something `der`'s types can express.

use std::borrow::Cow;
use std::fmt;

use der::Encode;
use der::oid::ObjectIdentifier;

use super::ber::{Reader, Tlv, tag};
use super::{MAX_CONTENT, MAX_ENCRYPTED_KEY, MAX_RECIPIENT_INFOS};

/// Object identifiers this module reads or writes.
pub(super) mod oid {
    use der::oid::ObjectIdentifier as Oid;

    /// PKCS#7 data.
    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    /// PKCS#7 envelopedData.
    pub const ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
    /// rsaEncryption: RSAES-PKCS1-v1_5 key transport.
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    /// id-RSAES-OAEP.
    pub const RSAES_OAEP: Oid = Oid::new_unwrap("1.2.840.113549.1.1.7");
    /// id-mgf1.
    pub const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
    /// id-pSpecified.
    pub const P_SPECIFIED: Oid = Oid::new_unwrap("1.2.840.113549.1.1.9");
    /// SHA-1.
    pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
    /// SHA-224.
    pub const SHA224: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.4");
    /// SHA-256.
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// SHA-384.
    pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// SHA-512.
    pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// AES-128-GCM.
    pub const AES128_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.6");
    /// AES-192-GCM.
    pub const AES192_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.26");
    /// AES-256-GCM.
    pub const AES256_GCM: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.46");
    /// AES-128-CBC.
    pub const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
    /// AES-192-CBC.
    pub const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
    /// AES-256-CBC.
    pub const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
    /// DES-EDE3-CBC.
    pub const DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
    /// DES-CBC.
    pub const DES_CBC: Oid = Oid::new_unwrap("1.3.14.3.2.7");
}

/// The GCM nonce length Go writes (and RFC 5084 recommends).
pub(super) const GCM_NONCE_LEN: usize = 12;
/// The GCM tag length Go writes.
pub(super) const GCM_TAG_LEN: usize = 16;
/// Longest serial number accepted (RFC 5280 allows 20 octets; some CAs write a few more).
const MAX_SERIAL: usize = 64;
/// Longest OAEP label accepted.
const MAX_OAEP_LABEL: usize = 1024;

/// A parsed `EnvelopedData`.
#[derive(Debug)]
pub(super) struct Envelope<'a> {
    /// Its RecipientInfos, in order.
    pub recipients: Vec<Entry<'a>>,
    /// The encrypted content.
    pub content: Content<'a>,
}

/// One RecipientInfo.
#[derive(Debug)]
pub(super) enum Entry<'a> {
    /// A `KeyTransRecipientInfo`, the kind RSA recipients use.
    KeyTransport(KeyTransport<'a>),
    /// Another kind (key agreement, KEK, password, other), named.
    Other(&'static str),
}

/// A `KeyTransRecipientInfo`.
pub(super) struct KeyTransport<'a> {
    /// Which certificate it is for.
    pub id: RecipientId<'a>,
    /// How the content key was encrypted.
    pub algorithm: KeyTransportAlgorithm,
    /// The encrypted content key.
    pub encrypted_key: Cow<'a, [u8]>,
}

impl fmt::Debug for KeyTransport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTransport")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("encrypted_key_len", &self.encrypted_key.len())
            .finish()
    }
}

/// How a RecipientInfo names its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RecipientId<'a> {
    /// `IssuerAndSerialNumber`: the issuer Name (its whole DER element) and the serial number
    /// (minimal two's-complement bytes).
    IssuerSerial {
        /// The issuer `Name`, identifier octet included, as it appears in the certificate.
        issuer: &'a [u8],
        /// The serial number, minimal two's complement.
        serial: Vec<u8>,
    },
    /// `[0] SubjectKeyIdentifier`.
    SubjectKeyId(&'a [u8]),
}

/// A hash function named by OAEP parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hash {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Hash> {
        Some(match *oid {
            oid::SHA1 => Hash::Sha1,
            oid::SHA224 => Hash::Sha224,
            oid::SHA256 => Hash::Sha256,
            oid::SHA384 => Hash::Sha384,
            oid::SHA512 => Hash::Sha512,
            _ => return None,
        })
    }

    /// The usual name ("SHA-256").
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha224 => "SHA-224",
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }
}

/// Key-transport algorithms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum KeyTransportAlgorithm {
    /// RSAES-PKCS1-v1_5 (`rsaEncryption`).
    RsaPkcs1,
    /// RSAES-OAEP.
    RsaOaep {
        /// The OAEP hash.
        hash: Hash,
        /// The MGF1 hash when the parameters name one. When they do not, RFC 4055 says
        /// SHA-1, but Go uses the OAEP hash; both are tried.
        mgf1: Option<Hash>,
        /// The OAEP label (pSpecified), usually empty.
        label: Vec<u8>,
    },
    /// Something else, by object identifier.
    Unsupported(String),
}

impl KeyTransportAlgorithm {
    /// The name `inspect` shows.
    pub fn name(&self) -> String {
        match self {
            KeyTransportAlgorithm::RsaPkcs1 => "RSA".into(),
            KeyTransportAlgorithm::RsaOaep { .. } => "RSA-OAEP".into(),
            KeyTransportAlgorithm::Unsupported(oid) => format!("unsupported key transport {oid}"),
        }
    }
}

/// The encrypted content and how it was encrypted.
pub(super) struct Content<'a> {
    /// The content-encryption algorithm and its parameters.
    pub cipher: ContentCipher,
    /// The ciphertext (for GCM, followed by the tag).
    pub ciphertext: Cow<'a, [u8]>,
}

impl fmt::Debug for Content<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Content")
            .field("cipher", &self.cipher)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Content-encryption algorithms, with their parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ContentCipher {
    /// AES-GCM with a key of `key_len` bytes.
    AesGcm {
        /// 16, 24 or 32.
        key_len: usize,
        /// The nonce.
        nonce: Vec<u8>,
        /// The tag length (12..=16) at the end of the ciphertext.
        tag_len: usize,
    },
    /// AES-CBC with PKCS#7 padding.
    AesCbc {
        /// 16, 24 or 32.
        key_len: usize,
        /// The IV.
        iv: [u8; 16],
    },
    /// DES-EDE3-CBC (24-byte key) with PKCS#7 padding.
    DesEde3Cbc {
        /// The IV.
        iv: [u8; 8],
    },
    /// DES-CBC (8-byte key) with PKCS#7 padding.
    DesCbc {
        /// The IV.
        iv: [u8; 8],
    },
    /// Something else, by object identifier.
    Unsupported(String),
}

impl ContentCipher {
    /// The key length the cipher needs, if it is supported.
    pub fn key_len(&self) -> Option<usize> {
        match self {
            ContentCipher::AesGcm { key_len, .. } | ContentCipher::AesCbc { key_len, .. } => {
                Some(*key_len)
            }
            ContentCipher::DesEde3Cbc { .. } => Some(24),
            ContentCipher::DesCbc { .. } => Some(8),
            ContentCipher::Unsupported(_) => None,
        }
    }

    /// Whether decrypting with a wrong key is detected (an AEAD tag), rather than giving
    /// garbage that may even pass the padding check.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, ContentCipher::AesGcm { .. })
    }

    /// The usual name ("AES-128-GCM").
    pub fn name(&self) -> String {
        match self {
            ContentCipher::AesGcm { key_len, .. } => format!("AES-{}-GCM", key_len * 8),
            ContentCipher::AesCbc { key_len, .. } => format!("AES-{}-CBC", key_len * 8),
            ContentCipher::DesEde3Cbc { .. } => "DES-EDE3-CBC".into(),
            ContentCipher::DesCbc { .. } => "DES-CBC".into(),
            ContentCipher::Unsupported(oid) => format!("unsupported cipher {oid}"),
        }
    }
}

/// Parse a DER/BER `ContentInfo` holding an `EnvelopedData`.
pub(super) fn parse(blob: &[u8]) -> Result<Envelope<'_>, String> {
    let mut top = Reader::new(blob);
    let content_info = top.expect(tag::SEQUENCE, "ContentInfo")?;
    top.finish("the envelope")?;
    let mut r = content_info.children("ContentInfo")?;
    let content_type = read_oid(&mut r, "ContentInfo contentType")?;
    if content_type != oid::ENVELOPED_DATA {
        return Err(format!(
            "the content type is {content_type}, not envelopedData ({})",
            oid::ENVELOPED_DATA
        ));
    }
    let explicit = r.expect(tag::CONTEXT_0_CONSTRUCTED, "ContentInfo content")?;
    r.finish("ContentInfo")?;
    let mut inner = explicit.children("ContentInfo content")?;
    let enveloped = inner.expect(tag::SEQUENCE, "EnvelopedData")?;
    inner.finish("ContentInfo content")?;

    let mut r = enveloped.children("EnvelopedData")?;
    let version = read_small_int(&mut r, "EnvelopedData version")?;
    if version > 4 {
        return Err(format!("EnvelopedData version {version} is unknown"));
    }
    // originatorInfo carries certificates and CRLs, which decryption does not need.
    r.optional(tag::CONTEXT_0_CONSTRUCTED, "EnvelopedData originatorInfo")?;
    let set = r.expect(tag::SET, "EnvelopedData recipientInfos")?;
    let mut infos = set.children("recipientInfos")?;
    let mut recipients = Vec::new();
    while !infos.is_empty() {
        if recipients.len() == MAX_RECIPIENT_INFOS {
            return Err(format!(
                "more than {MAX_RECIPIENT_INFOS} recipientInfos (refused as unreasonable)"
            ));
        }
        let what = format!("RecipientInfo {}", recipients.len());
        let info = infos.read().map_err(|e| format!("{what}: {e}"))?;
        recipients.push(match info.tag {
            tag::SEQUENCE => Entry::KeyTransport(parse_key_transport(&info, &what)?),
            tag::CONTEXT_1_CONSTRUCTED => Entry::Other("KeyAgreeRecipientInfo (key agreement)"),
            tag::CONTEXT_2_CONSTRUCTED => Entry::Other("KEKRecipientInfo (key-encryption key)"),
            tag::CONTEXT_3_CONSTRUCTED => Entry::Other("PasswordRecipientInfo (password)"),
            tag::CONTEXT_4_CONSTRUCTED => Entry::Other("OtherRecipientInfo"),
            other => {
                return Err(format!(
                    "{what}: identifier 0x{other:02x} is not a kind of RecipientInfo"
                ));
            }
        });
    }
    if recipients.is_empty() {
        return Err("the envelope has no recipientInfos".into());
    }
    let eci = r.expect(tag::SEQUENCE, "EnvelopedData encryptedContentInfo")?;
    r.optional(tag::CONTEXT_1_CONSTRUCTED, "EnvelopedData unprotectedAttrs")?;
    r.finish("EnvelopedData")?;
    let content = parse_encrypted_content_info(&eci)?;
    Ok(Envelope {
        recipients,
        content,
    })
}

/// The envelope without the RecipientInfos whose position `drop` flags (in the order
/// [`parse`] lists them). Every other element is copied as it was; only the lengths of the
/// elements around the recipientInfos SET are written anew (definite, as DER has them).
pub(super) fn without_recipients(blob: &[u8], drop: &[bool]) -> Result<Vec<u8>, String> {
    let mut top = Reader::new(blob);
    let content_info = top.expect(tag::SEQUENCE, "ContentInfo")?;
    let mut r = content_info.children("ContentInfo")?;
    let content_type = r.expect(tag::OID, "ContentInfo contentType")?;
    let explicit = r.expect(tag::CONTEXT_0_CONSTRUCTED, "ContentInfo content")?;
    let mut inner = explicit.children("ContentInfo content")?;
    let enveloped = inner.expect(tag::SEQUENCE, "EnvelopedData")?;
    let mut r = enveloped.children("EnvelopedData")?;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    parts.push(
        r.expect(tag::INTEGER, "EnvelopedData version")?
            .raw
            .to_vec(),
    );
    if let Some(originator) =
        r.optional(tag::CONTEXT_0_CONSTRUCTED, "EnvelopedData originatorInfo")?
    {
        parts.push(originator.raw.to_vec());
    }
    let set = r.expect(tag::SET, "EnvelopedData recipientInfos")?;
    let mut infos = set.children("recipientInfos")?;
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut position = 0;
    while !infos.is_empty() {
        let info = infos.read()?;
        if !drop.get(position).copied().unwrap_or(false) {
            kept.push(info.raw);
        }
        position += 1;
    }
    parts.push(tlv(tag::SET, &kept)?);
    while !r.is_empty() {
        parts.push(r.read()?.raw.to_vec());
    }
    let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let enveloped = tlv(tag::SEQUENCE, &parts)?;
    tlv(
        tag::SEQUENCE,
        &[
            content_type.raw,
            &tlv(tag::CONTEXT_0_CONSTRUCTED, &[&enveloped])?,
        ],
    )
}

fn parse_key_transport<'a>(info: &Tlv<'a>, what: &str) -> Result<KeyTransport<'a>, String> {
    let mut r = info.children(what)?;
    let version = read_small_int(&mut r, &format!("{what} version"))?;
    if version != 0 && version != 2 {
        return Err(format!(
            "{what}: version {version} is not a KeyTransRecipientInfo version (0 or 2)"
        ));
    }
    let id = match r.peek_tag() {
        Some(tag::SEQUENCE) => {
            let ias = r.expect(tag::SEQUENCE, &format!("{what} issuerAndSerialNumber"))?;
            let mut ir = ias.children(what)?;
            let issuer = ir.expect(tag::SEQUENCE, &format!("{what} issuer"))?.raw;
            let serial = ir.expect(tag::INTEGER, &format!("{what} serialNumber"))?;
            ir.finish(&format!("{what} issuerAndSerialNumber"))?;
            if serial.content.is_empty() || serial.content.len() > MAX_SERIAL {
                return Err(format!(
                    "{what}: a serial number of {} bytes is not valid",
                    serial.content.len()
                ));
            }
            RecipientId::IssuerSerial {
                issuer,
                serial: minimal_integer(serial.content),
            }
        }
        Some(tag::CONTEXT_0) => {
            let ski = r.expect(tag::CONTEXT_0, &format!("{what} subjectKeyIdentifier"))?;
            RecipientId::SubjectKeyId(ski.content)
        }
        Some(other) => {
            return Err(format!(
                "{what}: identifier 0x{other:02x} names no recipient (expected issuerAndSerialNumber or subjectKeyIdentifier)"
            ));
        }
        None => return Err(format!("{what}: the recipient identifier is missing")),
    };
    let (alg, params) = read_algorithm(&mut r, &format!("{what} keyEncryptionAlgorithm"))?;
    let algorithm = match alg {
        oid::RSA_ENCRYPTION => match params {
            None => KeyTransportAlgorithm::RsaPkcs1,
            Some(p) if p.tag == tag::NULL && p.content.is_empty() => {
                KeyTransportAlgorithm::RsaPkcs1
            }
            Some(p) => {
                return Err(format!(
                    "{what}: rsaEncryption has parameters of identifier 0x{:02x} (expected none or NULL)",
                    p.tag
                ));
            }
        },
        oid::RSAES_OAEP => parse_oaep(params, what)?,
        other => KeyTransportAlgorithm::Unsupported(other.to_string()),
    };
    let key = r.read().map_err(|e| format!("{what} encryptedKey: {e}"))?;
    if key.tag != tag::OCTET_STRING && key.tag != tag::OCTET_STRING_CONSTRUCTED {
        return Err(format!(
            "{what} encryptedKey: expected an OCTET STRING, found identifier 0x{:02x}",
            key.tag
        ));
    }
    let encrypted_key = key.octets(MAX_ENCRYPTED_KEY, &format!("{what} encryptedKey"))?;
    r.finish(what)?;
    Ok(KeyTransport {
        id,
        algorithm,
        encrypted_key,
    })
}

/// RSAES-OAEP-params (RFC 4055): every field optional, each an explicitly tagged
/// AlgorithmIdentifier.
fn parse_oaep(params: Option<Tlv<'_>>, what: &str) -> Result<KeyTransportAlgorithm, String> {
    let what = format!("{what} RSAES-OAEP parameters");
    let mut hash = Hash::Sha1;
    let mut mgf1 = None;
    let mut label = Vec::new();
    let params = match params {
        // Absent parameters (or NULL) are taken as all defaults.
        None => None,
        Some(p) if p.tag == tag::NULL => None,
        Some(p) if p.tag == tag::SEQUENCE => Some(p),
        Some(p) => {
            return Err(format!(
                "{what}: identifier 0x{:02x}, expected a SEQUENCE",
                p.tag
            ));
        }
    };
    if let Some(params) = params {
        let mut r = params.children(&what)?;
        if let Some(h) = r.optional(tag::CONTEXT_0_CONSTRUCTED, &what)? {
            hash = read_hash(&h, &format!("{what} hashAlgorithm"))?;
        }
        if let Some(m) = r.optional(tag::CONTEXT_1_CONSTRUCTED, &what)? {
            let mwhat = format!("{what} maskGenAlgorithm");
            let mut mr = m.children(&mwhat)?;
            let (mgf, mparams) = read_algorithm(&mut mr, &mwhat)?;
            mr.finish(&mwhat)?;
            if mgf != oid::MGF1 {
                return Err(format!("{mwhat}: {mgf} is not MGF1"));
            }
            let Some(mparams) = mparams.filter(|p| p.tag == tag::SEQUENCE) else {
                return Err(format!("{mwhat}: MGF1 names no hash algorithm"));
            };
            mgf1 = Some(hash_from_algorithm(&mparams, &mwhat)?);
        }
        if let Some(p) = r.optional(tag::CONTEXT_2_CONSTRUCTED, &what)? {
            let pwhat = format!("{what} pSourceAlgorithm");
            let mut pr = p.children(&pwhat)?;
            let (source, sparams) = read_algorithm(&mut pr, &pwhat)?;
            pr.finish(&pwhat)?;
            if source != oid::P_SPECIFIED {
                return Err(format!("{pwhat}: {source} is not pSpecified"));
            }
            if let Some(s) = sparams {
                if s.tag != tag::OCTET_STRING {
                    return Err(format!("{pwhat}: the label is not an OCTET STRING"));
                }
                label = s.octets(MAX_OAEP_LABEL, &pwhat)?.into_owned();
            }
        }
        r.finish(&what)?;
    }
    Ok(KeyTransportAlgorithm::RsaOaep { hash, mgf1, label })
}

/// `[n] EXPLICIT AlgorithmIdentifier` naming a hash.
fn read_hash(explicit: &Tlv<'_>, what: &str) -> Result<Hash, String> {
    let mut r = explicit.children(what)?;
    let alg = r.expect(tag::SEQUENCE, what)?;
    r.finish(what)?;
    hash_from_algorithm(&alg, what)
}

/// An AlgorithmIdentifier SEQUENCE naming a hash (parameters absent or NULL).
fn hash_from_algorithm(alg: &Tlv<'_>, what: &str) -> Result<Hash, String> {
    let mut r = alg.children(what)?;
    let oid = read_oid(&mut r, what)?;
    r.optional(tag::NULL, what)?;
    r.finish(what)?;
    Hash::from_oid(&oid).ok_or_else(|| {
        format!("{what}: hash {oid} is not supported (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512)")
    })
}

fn parse_encrypted_content_info<'a>(eci: &Tlv<'a>) -> Result<Content<'a>, String> {
    let what = "encryptedContentInfo";
    let mut r = eci.children(what)?;
    // The content type is data for ocicrypt; nothing depends on it.
    read_oid(&mut r, "encryptedContentInfo contentType")?;
    let (alg, params) = read_algorithm(&mut r, "contentEncryptionAlgorithm")?;
    let cipher = parse_content_cipher(&alg, params)?;
    let content = match r.peek_tag() {
        Some(tag::CONTEXT_0 | tag::CONTEXT_0_CONSTRUCTED) => {
            let tlv = r.read().map_err(|e| format!("encryptedContent: {e}"))?;
            tlv.octets(MAX_CONTENT, "encryptedContent")?
        }
        None => {
            return Err(
                "the envelope carries no encryptedContent (detached content is not supported)"
                    .into(),
            );
        }
        Some(other) => {
            return Err(format!(
                "encryptedContent: expected identifier 0x80 or 0xa0, found 0x{other:02x}"
            ));
        }
    };
    r.finish(what)?;
    Ok(Content {
        cipher,
        ciphertext: content,
    })
}

fn parse_content_cipher(
    alg: &ObjectIdentifier,
    params: Option<Tlv<'_>>,
) -> Result<ContentCipher, String> {
    let what = format!("{} parameters", algorithm_name(alg));
    let gcm = |key_len| parse_gcm(key_len, params, &what);
    let iv = |len: usize| -> Result<Vec<u8>, String> {
        match params {
            Some(p) if p.tag == tag::OCTET_STRING && p.content.len() == len => {
                Ok(p.content.to_vec())
            }
            Some(p) if p.tag == tag::OCTET_STRING => Err(format!(
                "{what}: the IV has {} bytes, expected {len}",
                p.content.len()
            )),
            Some(p) => Err(format!(
                "{what}: identifier 0x{:02x}, expected an OCTET STRING IV",
                p.tag
            )),
            None => Err(format!("{what}: the IV is missing")),
        }
    };
    let iv16 = |v: Vec<u8>| <[u8; 16]>::try_from(v).map_err(|_| format!("{what}: bad IV"));
    let iv8 = |v: Vec<u8>| <[u8; 8]>::try_from(v).map_err(|_| format!("{what}: bad IV"));
    Ok(match *alg {
        oid::AES128_GCM => gcm(16)?,
        oid::AES192_GCM => gcm(24)?,
        oid::AES256_GCM => gcm(32)?,
        oid::AES128_CBC => ContentCipher::AesCbc {
            key_len: 16,
            iv: iv16(iv(16)?)?,
        },
        oid::AES192_CBC => ContentCipher::AesCbc {
            key_len: 24,
            iv: iv16(iv(16)?)?,
        },
        oid::AES256_CBC => ContentCipher::AesCbc {
            key_len: 32,
            iv: iv16(iv(16)?)?,
        },
        oid::DES_EDE3_CBC => ContentCipher::DesEde3Cbc { iv: iv8(iv(8)?)? },
        oid::DES_CBC => ContentCipher::DesCbc { iv: iv8(iv(8)?)? },
        ref other => ContentCipher::Unsupported(other.to_string()),
    })
}

/// GCM parameters in any of the three forms seen: Go's (identifier `0x10` whose content is a
/// whole SEQUENCE holding `[4] nonce` and the tag length), the same inner SEQUENCE under a
/// proper `0x30`, and RFC 5084's `SEQUENCE { OCTET STRING nonce, INTEGER tag length }`.
fn parse_gcm(key_len: usize, params: Option<Tlv<'_>>, what: &str) -> Result<ContentCipher, String> {
    let Some(params) = params else {
        return Err(format!("{what}: the GCM parameters are missing"));
    };
    if params.tag != tag::SEQUENCE && params.tag != tag::GO_GCM_PARAMETERS {
        return Err(format!(
            "{what}: identifier 0x{:02x}, expected a SEQUENCE (0x30, or Go's 0x10)",
            params.tag
        ));
    }
    let mut outer = params.children(what)?;
    let first = outer.read().map_err(|e| format!("{what}: {e}"))?;
    let mut r = if first.tag == tag::SEQUENCE && outer.is_empty() {
        first.children(what)?
    } else {
        params.children(what)?
    };
    let nonce = match r.peek_tag() {
        Some(tag::OCTET_STRING | tag::CONTEXT_4) => r.read().map_err(|e| format!("{what}: {e}"))?,
        Some(other) => {
            return Err(format!(
                "{what}: identifier 0x{other:02x}, expected the nonce (0x04 or 0x84)"
            ));
        }
        None => return Err(format!("{what}: the nonce is missing")),
    };
    if nonce.content.is_empty() || nonce.content.len() > 64 {
        return Err(format!(
            "{what}: a nonce of {} bytes is not valid",
            nonce.content.len()
        ));
    }
    // RFC 5084: the tag length defaults to 12.
    let tag_len = match r.peek_tag() {
        Some(_) => read_small_int(&mut r, &format!("{what} ICV length"))? as usize,
        None => 12,
    };
    if !(12..=16).contains(&tag_len) {
        return Err(format!(
            "{what}: a tag length of {tag_len} bytes is not valid (12 to 16)"
        ));
    }
    r.finish(what)?;
    Ok(ContentCipher::AesGcm {
        key_len,
        nonce: nonce.content.to_vec(),
        tag_len,
    })
}

fn algorithm_name(alg: &ObjectIdentifier) -> String {
    match *alg {
        oid::AES128_GCM => "AES-128-GCM".into(),
        oid::AES192_GCM => "AES-192-GCM".into(),
        oid::AES256_GCM => "AES-256-GCM".into(),
        oid::AES128_CBC => "AES-128-CBC".into(),
        oid::AES192_CBC => "AES-192-CBC".into(),
        oid::AES256_CBC => "AES-256-CBC".into(),
        oid::DES_EDE3_CBC => "DES-EDE3-CBC".into(),
        oid::DES_CBC => "DES-CBC".into(),
        ref other => other.to_string(),
    }
}

fn read_oid(r: &mut Reader<'_>, what: &str) -> Result<ObjectIdentifier, String> {
    let tlv = r.expect(tag::OID, what)?;
    ObjectIdentifier::from_bytes(tlv.content)
        .map_err(|e| format!("{what}: not a valid object identifier ({e})"))
}

/// An AlgorithmIdentifier: its OID and its parameters element, if any.
fn read_algorithm<'a>(
    r: &mut Reader<'a>,
    what: &str,
) -> Result<(ObjectIdentifier, Option<Tlv<'a>>), String> {
    let seq = r.expect(tag::SEQUENCE, what)?;
    let mut ar = seq.children(what)?;
    let oid = read_oid(&mut ar, what)?;
    let params = if ar.is_empty() {
        None
    } else {
        Some(ar.read().map_err(|e| format!("{what}: {e}"))?)
    };
    ar.finish(what)?;
    Ok((oid, params))
}

/// A small non-negative INTEGER (versions, tag lengths).
fn read_small_int(r: &mut Reader<'_>, what: &str) -> Result<u32, String> {
    let tlv = r.expect(tag::INTEGER, what)?;
    let bytes = minimal_integer(tlv.content);
    match bytes.as_slice() {
        [] => Err(format!("{what}: an INTEGER with no content")),
        [b, ..] if b & 0x80 != 0 => Err(format!("{what}: negative")),
        b if b.len() > 4 => Err(format!("{what}: too large")),
        b => Ok(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x))),
    }
}

/// The minimal two's-complement form of an INTEGER's content (BER allows redundant leading
/// `00`/`ff` octets; Go's big.Int comparison ignores them).
pub(super) fn minimal_integer(content: &[u8]) -> Vec<u8> {
    let mut b = content;
    while b.len() > 1 && ((b[0] == 0x00 && b[1] & 0x80 == 0) || (b[0] == 0xff && b[1] & 0x80 != 0))
    {
        b = &b[1..];
    }
    b.to_vec()
}

/// A serial number (minimal two's complement) as `inspect` and messages show it: lowercase
/// hex of its magnitude, with a `-` for the (invalid, but seen) negative ones.
pub(super) fn serial_hex(serial: &[u8]) -> String {
    match serial.first() {
        Some(b) if b & 0x80 != 0 => {
            // Two's complement negation, big-endian.
            let mut magnitude: Vec<u8> = serial.iter().map(|b| !b).collect();
            for byte in magnitude.iter_mut().rev() {
                let (v, carry) = byte.overflowing_add(1);
                *byte = v;
                if !carry {
                    break;
                }
            }
            let first = magnitude
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(magnitude.len());
            format!("-{}", hex::encode(&magnitude[first..]))
        }
        _ => {
            let first = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
            if first == serial.len() {
                "00".into()
            } else {
                hex::encode(&serial[first..])
            }
        }
    }
}

/// The issuer Name (whole DER element) and serial number (minimal two's complement) of a DER
/// certificate, exactly as Go's `cert.RawIssuer` and `cert.SerialNumber` give them.
pub(super) fn issuer_and_serial(cert_der: &[u8]) -> Result<(&[u8], Vec<u8>), String> {
    let what = "certificate";
    let mut top = Reader::new(cert_der);
    let cert = top.expect(tag::SEQUENCE, what)?;
    let mut r = cert.children(what)?;
    let tbs = r.expect(tag::SEQUENCE, "tbsCertificate")?;
    let mut t = tbs.children("tbsCertificate")?;
    t.optional(tag::CONTEXT_0_CONSTRUCTED, "tbsCertificate version")?;
    let serial = t.expect(tag::INTEGER, "serialNumber")?;
    if serial.content.is_empty() || serial.content.len() > MAX_SERIAL {
        return Err(format!(
            "a serial number of {} bytes is not valid",
            serial.content.len()
        ));
    }
    t.expect(tag::SEQUENCE, "tbsCertificate signature")?;
    let issuer = t.expect(tag::SEQUENCE, "issuer")?;
    Ok((issuer.raw, minimal_integer(serial.content)))
}

/// How the encrypted content is encoded when writing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentEncoding {
    /// `[0] IMPLICIT` primitive (`80 …`), as current Go (`smallstep/pkcs7`) writes it.
    #[default]
    Primitive,
    /// `[0]` constructed around one OCTET STRING (`a0 … 04 …`), as skopeo 1.9
    /// (`fullsailor/pkcs7`) writes it.
    Constructed,
}

/// One recipient to write: the certificate's issuer and serial, and the encrypted content key.
pub(super) struct RecipientOut<'a> {
    /// The issuer Name element, as in the certificate.
    pub issuer: &'a [u8],
    /// The serial number, minimal two's complement.
    pub serial: &'a [u8],
    /// RSAES-PKCS1-v1_5 of the content key.
    pub encrypted_key: &'a [u8],
}

/// Go's AlgorithmIdentifier for AES-128-GCM with `nonce`: identifier `0x10` around the DER
/// SEQUENCE `{ [4] IMPLICIT nonce, INTEGER 16 }`.
pub(super) fn go_gcm_algorithm(nonce: &[u8; GCM_NONCE_LEN]) -> Result<Vec<u8>, String> {
    let inner = tlv(
        tag::SEQUENCE,
        &[
            &tlv(tag::CONTEXT_4, &[nonce])?,
            &tlv(tag::INTEGER, &[&[GCM_TAG_LEN as u8]])?,
        ],
    )?;
    let oid = oid::AES128_GCM.to_der().map_err(der_error)?;
    tlv(
        tag::SEQUENCE,
        &[&oid, &tlv(tag::GO_GCM_PARAMETERS, &[&inner])?],
    )
}

/// Write a `ContentInfo { envelopedData, [0] EXPLICIT EnvelopedData }` in Go's form: version 0,
/// one KeyTransRecipientInfo per recipient (version 0, issuerAndSerialNumber, rsaEncryption
/// with its parameters omitted), sorted as Go's DER encoder sorts a SET OF, then the
/// AES-128-GCM content: `nonce` in Go's parameter form, `sealed` (ciphertext‖tag) as `form`
/// says.
pub(super) fn encode(
    recipients: &[RecipientOut<'_>],
    nonce: &[u8; GCM_NONCE_LEN],
    sealed: &[u8],
    form: ContentEncoding,
) -> Result<Vec<u8>, String> {
    let rsa = tlv(
        tag::SEQUENCE,
        &[&oid::RSA_ENCRYPTION.to_der().map_err(der_error)?],
    )?;
    let mut infos = recipients
        .iter()
        .map(|r| {
            let ias = tlv(tag::SEQUENCE, &[r.issuer, &tlv(tag::INTEGER, &[r.serial])?])?;
            let key = der::asn1::OctetStringRef::new(r.encrypted_key)
                .and_then(|o| o.to_der())
                .map_err(der_error)?;
            tlv(
                tag::SEQUENCE,
                &[&tlv(tag::INTEGER, &[&[0]])?, &ias, &rsa, &key],
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    // DER orders a SET OF by the encodings of its elements; Go's encoder does the same.
    infos.sort();
    let infos: Vec<&[u8]> = infos.iter().map(Vec::as_slice).collect();
    let content = match form {
        ContentEncoding::Primitive => tlv(tag::CONTEXT_0, &[sealed])?,
        ContentEncoding::Constructed => tlv(
            tag::CONTEXT_0_CONSTRUCTED,
            &[&tlv(tag::OCTET_STRING, &[sealed])?],
        )?,
    };
    let eci = tlv(
        tag::SEQUENCE,
        &[
            &oid::DATA.to_der().map_err(der_error)?,
            &go_gcm_algorithm(nonce)?,
            &content,
        ],
    )?;
    let enveloped = tlv(
        tag::SEQUENCE,
        &[&tlv(tag::INTEGER, &[&[0]])?, &tlv(tag::SET, &infos)?, &eci],
    )?;
    tlv(
        tag::SEQUENCE,
        &[
            &oid::ENVELOPED_DATA.to_der().map_err(der_error)?,
            &tlv(tag::CONTEXT_0_CONSTRUCTED, &[&enveloped])?,
        ],
    )
}

/// One element: identifier, DER length (written by `der`), and the concatenated `parts`.
pub(super) fn tlv(identifier: u8, parts: &[&[u8]]) -> Result<Vec<u8>, String> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    out.push(identifier);
    der::Length::try_from(len)
        .and_then(|l| l.encode_to_vec(&mut out))
        .map_err(der_error)?;
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

fn der_error(e: der::Error) -> String {
    format!("DER encoding failed: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_gcm_algorithm_identifier_is_byte_exact() {
        // ocicrypt-format.md §5: the AlgorithmIdentifier Go writes for an all-zero nonce.
        let want = "3020\
                    0609608648016503040106\
                    1013\
                    3011\
                    840c000000000000000000000000\
                    020110";
        assert_eq!(hex::encode(go_gcm_algorithm(&[0; 12]).unwrap()), want);
    }

    #[test]
    fn integers_are_compared_in_minimal_form() {
        assert_eq!(minimal_integer(&[0x00, 0x00, 0x7f]), vec![0x7f]);
        assert_eq!(minimal_integer(&[0x00, 0x80]), vec![0x00, 0x80]);
        assert_eq!(minimal_integer(&[0xff, 0xff, 0x80]), vec![0x80]);
        assert_eq!(serial_hex(&[0x00, 0x9a, 0x01]), "9a01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0xff]), "-01");
        assert_eq!(serial_hex(&[0x80]), "-80");
        assert_eq!(serial_hex(&[0xfe, 0xff]), "-0101");
    }
}
