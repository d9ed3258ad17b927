//! JSON Web Keys (RFC 7517, 7518): reading RSA and EC keys from JWK text
//! with the checks a hostile key needs (bounded integers, p·q = n before
//! OpenSSL's own key check, points on their curve), completing missing RSA
//! CRT values as Go tolerates, and the RFC 7638 thumbprints that identify a
//! key whatever file format it came in.
//!
//! It must never panic or do unbounded work on a hostile JWK (members are
//! size-checked before they are decoded), and never leave private members
//! outside zeroizing buffers.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcKey};
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{EcCurve, KeyError, KeyKind, MAX_RSA_BITS, check_rsa_exponent};

/// The largest big-endian integer a JWK member may hold (an RSA-16384 modulus).
const MAX_JWK_INT_BYTES: usize = (MAX_RSA_BITS / 8) as usize;

/// The base64url dialect JOSE data is read with: padding optional and
/// non-zero trailing bits tolerated, as Go's `base64.RawURLEncoding` (used by
/// go-jose after trimming `=`) does. Output is always unpadded.
pub(crate) const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// RFC 7638 thumbprint: SHA-256 of the required JWK members in
/// lexicographic order with no whitespace, base64url without padding.
pub(super) fn thumbprint_of<T: HasPublic>(
    pkey: &PKeyRef<T>,
    kind: KeyKind,
) -> Result<String, KeyError> {
    let b64 = |b: &[u8]| B64URL_LENIENT.encode(b);
    let err =
        |e: openssl::error::ErrorStack| KeyError::Malformed(format!("cannot read the key: {e}"));
    let json = match kind {
        KeyKind::Rsa { .. } => {
            let rsa = pkey.rsa().map_err(err)?;
            format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64(&rsa.e().to_vec()),
                b64(&rsa.n().to_vec())
            )
        }
        KeyKind::Ec { curve } => {
            let ec = pkey.ec_key().map_err(err)?;
            let (x, y) = ec_coordinates(&ec, curve)?;
            format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.jwk_name(),
                b64(&x),
                b64(&y)
            )
        }
    };
    Ok(b64(&Sha256::digest(json.as_bytes())))
}

/// The affine coordinates of an EC public key, each padded to the field size.
pub(super) fn ec_coordinates<T: HasPublic>(
    ec: &EcKey<T>,
    curve: EcCurve,
) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let err = |e: openssl::error::ErrorStack| {
        KeyError::Malformed(format!("cannot read the EC point: {e}"))
    };
    let mut ctx = BigNumContext::new().map_err(err)?;
    let mut x = BigNum::new().map_err(err)?;
    let mut y = BigNum::new().map_err(err)?;
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
        .map_err(err)?;
    // field_bytes() is at most 66, so the cast cannot truncate.
    let len = curve.field_bytes() as i32;
    Ok((
        x.to_vec_padded(len).map_err(err)?,
        y.to_vec_padded(len).map_err(err)?,
    ))
}

/// The JWK members we read. Private members are zeroized when this is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct RawJwk {
    pub(super) kty: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    pub(super) d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    #[zeroize(skip)]
    oth: Option<serde::de::IgnoredAny>,
    #[zeroize(skip)]
    keys: Option<serde::de::IgnoredAny>,
}

pub(super) enum ParsedJwk {
    Public {
        pkey: PKey<Public>,
        alg: Option<String>,
        kid: Option<String>,
    },
    Private {
        pkey: PKey<Private>,
        alg: Option<String>,
        kid: Option<String>,
    },
}

pub(super) fn parse_jwk(text: &str) -> Result<ParsedJwk, KeyError> {
    let jwk: RawJwk = serde_json::from_str(text)
        .map_err(|e| KeyError::Malformed(format!("invalid JSON Web Key: {e}")))?;
    if jwk.keys.is_some() {
        return Err(KeyError::Malformed(
            "this is a JWK set (\"keys\"); give a single JSON Web Key".into(),
        ));
    }
    let kty = jwk
        .kty
        .as_deref()
        .ok_or_else(|| KeyError::Malformed("JSON Web Key without \"kty\"".into()))?;
    let alg = jwk.alg.clone();
    let kid = jwk.kid.clone();
    match kty {
        "RSA" => {
            if jwk.oth.is_some() {
                return Err(KeyError::UnsupportedAlgorithm(
                    "multi-prime RSA JWK (\"oth\")".into(),
                ));
            }
            let n = jwk_int(&jwk.n, "n")?;
            let e = jwk_int(&jwk.e, "e")?;
            if n.num_bits() > MAX_RSA_BITS as i32 {
                return Err(KeyError::UnsupportedAlgorithm(format!(
                    "RSA-{} is too long (at most {MAX_RSA_BITS} bits are accepted)",
                    n.num_bits()
                )));
            }
            check_rsa_exponent(&e)?;
            if jwk.d.is_some() {
                let pkey = rsa_private_from_jwk(&jwk, n, e)?;
                Ok(ParsedJwk::Private { pkey, alg, kid })
            } else {
                let pkey = Rsa::from_public_components(n, e)
                    .and_then(PKey::from_rsa)
                    .map_err(|err| KeyError::Malformed(format!("invalid RSA JWK: {err}")))?;
                Ok(ParsedJwk::Public { pkey, alg, kid })
            }
        }
        "EC" => {
            let crv = jwk
                .crv
                .as_deref()
                .ok_or_else(|| KeyError::Malformed("EC JSON Web Key without \"crv\"".into()))?;
            let curve = EcCurve::from_jwk_name(crv)
                .ok_or_else(|| KeyError::UnsupportedAlgorithm(format!("EC curve \"{crv}\"")))?;
            let group = EcGroup::from_curve_name(curve.nid())
                .map_err(|e| KeyError::Malformed(format!("cannot load curve {curve}: {e}")))?;
            let x = jwk_coordinate(&jwk.x, "x", curve)?;
            let y = jwk_coordinate(&jwk.y, "y", curve)?;
            // Checks that the point lies on the curve.
            let public = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
                .map_err(|e| KeyError::Malformed(format!("EC JWK point is not on {curve}: {e}")))?;
            if jwk.d.is_some() {
                let d = jwk_coordinate(&jwk.d, "d", curve)?;
                let private = EcKey::from_private_components(&group, &d, public.public_key())
                    .map_err(|e| KeyError::Malformed(format!("invalid EC private JWK: {e}")))?;
                // Verifies that d·G is the public point given as x, y.
                private.check_key().map_err(|e| {
                    KeyError::Malformed(format!("EC private JWK: d does not match x, y ({e})"))
                })?;
                let pkey = PKey::from_ec_key(private)
                    .map_err(|e| KeyError::Malformed(format!("invalid EC private JWK: {e}")))?;
                Ok(ParsedJwk::Private { pkey, alg, kid })
            } else {
                let pkey = PKey::from_ec_key(public)
                    .map_err(|e| KeyError::Malformed(format!("invalid EC JWK: {e}")))?;
                Ok(ParsedJwk::Public { pkey, alg, kid })
            }
        }
        "OKP" => Err(KeyError::UnsupportedAlgorithm(format!(
            "{} (OKP JSON Web Key)",
            jwk.crv.as_deref().unwrap_or("octet key pair")
        ))),
        "oct" => Err(KeyError::UnsupportedAlgorithm(
            "symmetric JSON Web Key (kty \"oct\"); a public/private key pair is needed".into(),
        )),
        other => Err(KeyError::UnsupportedAlgorithm(format!(
            "JSON Web Key type \"{other}\""
        ))),
    }
}

fn rsa_private_from_jwk(jwk: &RawJwk, n: BigNum, e: BigNum) -> Result<PKey<Private>, KeyError> {
    let err = |e: openssl::error::ErrorStack| {
        KeyError::Malformed(format!("invalid RSA private JWK: {e}"))
    };
    let d = jwk_int(&jwk.d, "d")?;
    // go-jose needs the primes too; OpenSSL needs them to check the key.
    let (Some(_), Some(_)) = (&jwk.p, &jwk.q) else {
        return Err(KeyError::Malformed(
            "RSA private JWK without the primes \"p\" and \"q\" is not supported".into(),
        ));
    };
    let p = jwk_int(&jwk.p, "p")?;
    let q = jwk_int(&jwk.q, "q")?;
    let mut ctx = BigNumContext::new().map_err(err)?;
    // Cheap consistency check first, so a hostile JWK cannot make
    // RSA_check_key run primality tests on huge unrelated numbers.
    let mut pq = BigNum::new().map_err(err)?;
    pq.checked_mul(&p, &q, &mut ctx).map_err(err)?;
    if pq != n {
        return Err(KeyError::Malformed(
            "RSA private JWK: p·q is not the modulus n".into(),
        ));
    }
    // go-jose and some writers omit the CRT values; OpenSSL needs them.
    let dp = match &jwk.dp {
        Some(_) => jwk_int(&jwk.dp, "dp")?,
        None => d_mod_prime_minus_one(&d, &p, &mut ctx).map_err(err)?,
    };
    let dq = match &jwk.dq {
        Some(_) => jwk_int(&jwk.dq, "dq")?,
        None => d_mod_prime_minus_one(&d, &q, &mut ctx).map_err(err)?,
    };
    let qi = match &jwk.qi {
        Some(_) => jwk_int(&jwk.qi, "qi")?,
        None => {
            let mut qi = BigNum::new().map_err(err)?;
            qi.mod_inverse(&q, &p, &mut ctx).map_err(|_| {
                KeyError::Malformed("RSA private JWK: q has no inverse modulo p".into())
            })?;
            qi
        }
    };
    let rsa = Rsa::from_private_components(n, e, d, p, q, dp, dq, qi).map_err(err)?;
    match rsa.check_key() {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            return Err(KeyError::Malformed(
                "RSA private JWK is inconsistent (its numbers do not form a valid key)".into(),
            ));
        }
    }
    PKey::from_rsa(rsa).map_err(err)
}

/// d mod (prime - 1): the CRT exponent for that prime.
fn d_mod_prime_minus_one(
    d: &BigNumRef,
    prime: &BigNumRef,
    ctx: &mut BigNumContext,
) -> Result<BigNum, openssl::error::ErrorStack> {
    let mut prime_minus_one = BigNum::new()?;
    prime_minus_one.checked_sub(prime, BigNum::from_u32(1)?.as_ref())?;
    let mut result = BigNum::new()?;
    result.nnmod(d, &prime_minus_one, ctx)?;
    Ok(result)
}

/// A JWK big-endian unsigned integer member (RFC 7518 §2 "Base64urlUInt").
fn jwk_int(value: &Option<String>, name: &str) -> Result<BigNum, KeyError> {
    let bytes = jwk_bytes(value, name, MAX_JWK_INT_BYTES)?;
    BigNum::from_slice(&bytes)
        .map_err(|e| KeyError::Malformed(format!("JWK member \"{name}\": {e}")))
}

/// An EC coordinate or scalar: at most the field size (shorter values are
/// taken as missing leading zeros, which some writers drop).
fn jwk_coordinate(value: &Option<String>, name: &str, curve: EcCurve) -> Result<BigNum, KeyError> {
    let bytes = jwk_bytes(value, name, curve.field_bytes())?;
    BigNum::from_slice(&bytes)
        .map_err(|e| KeyError::Malformed(format!("JWK member \"{name}\": {e}")))
}

fn jwk_bytes(
    value: &Option<String>,
    name: &str,
    max_bytes: usize,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let text = value
        .as_deref()
        .ok_or_else(|| KeyError::Malformed(format!("JSON Web Key without \"{name}\"")))?;
    // Refuse before decoding so a huge member costs nothing.
    if text.len() > max_bytes.div_ceil(3) * 4 + 2 {
        return Err(KeyError::Malformed(format!(
            "JWK member \"{name}\" is too large (more than {max_bytes} bytes)"
        )));
    }
    let bytes = B64URL_LENIENT
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Malformed(format!("JWK member \"{name}\" is not base64url: {e}")))?;
    if bytes.is_empty() {
        return Err(KeyError::Malformed(format!(
            "JWK member \"{name}\" is empty"
        )));
    }
    if bytes.len() > max_bytes {
        return Err(KeyError::Malformed(format!(
            "JWK member \"{name}\" is too large ({} bytes, at most {max_bytes})",
            bytes.len()
        )));
    }
    Ok(bytes)
}
