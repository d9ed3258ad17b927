//! X.509 certificates: PKCS#7 recipients, and the certificates that locate a PKCS#7 entry by
//! issuer and serial number when decrypting.
//!
//! Only the parts the schemes need are exposed: the DER forms of issuer and serial (to match
//! `IssuerAndSerialNumber`), readable names for messages, and the RSA public key.

use std::fmt;

use openssl::nid::Nid;
use openssl::x509::{X509, X509NameRef};

use super::{FileKind, KeyError, sniff};

/// What [`Certificate::from_bytes`] expected, in its `WrongKind` errors (hints tell this case
/// apart: a key given where a PKCS#7 certificate belongs).
pub const EXPECT_CERTIFICATE: &str = "an X.509 certificate (PEM or DER)";

/// An X.509 certificate.
#[derive(Clone)]
pub struct Certificate {
    x509: X509,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &self.serial_hex())
            .finish()
    }
}

impl Certificate {
    /// Parse a certificate: PEM (the first `CERTIFICATE` block) or DER.
    pub fn from_bytes(data: &[u8]) -> Result<Certificate, KeyError> {
        let looks_pem = data.trim_ascii_start().starts_with(b"-----BEGIN");
        let parsed = if looks_pem {
            X509::from_pem(data)
        } else {
            X509::from_der(data)
        };
        match parsed {
            Ok(x509) => Ok(Certificate { x509 }),
            Err(e) => match sniff(data) {
                FileKind::Certificate => Err(KeyError::Malformed(format!(
                    "the certificate cannot be parsed: {e}"
                ))),
                found => Err(KeyError::WrongKind {
                    found,
                    expected: EXPECT_CERTIFICATE,
                }),
            },
        }
    }

    /// The OpenSSL certificate.
    pub fn x509(&self) -> &X509 {
        &self.x509
    }

    /// DER encoding of the whole certificate.
    pub fn to_der(&self) -> Vec<u8> {
        self.x509.to_der().unwrap_or_default()
    }

    /// DER encoding of the issuer name, as it appears in `IssuerAndSerialNumber`.
    pub fn issuer_der(&self) -> Vec<u8> {
        self.x509.issuer_name().to_der().unwrap_or_default()
    }

    /// The serial number as unsigned big-endian bytes.
    pub fn serial_bytes(&self) -> Vec<u8> {
        self.x509
            .serial_number()
            .to_bn()
            .map(|bn| bn.to_vec())
            .unwrap_or_default()
    }

    /// The serial number in lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(self.serial_bytes())
    }

    /// The subject as an RFC 4514 string (`CN=alice,O=Example`).
    pub fn subject(&self) -> String {
        name_to_string(self.x509.subject_name())
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer(&self) -> String {
        name_to_string(self.x509.issuer_name())
    }

    /// Whether this certificate is the one an `IssuerAndSerialNumber` names.
    pub fn matches(&self, issuer_der: &[u8], serial: &[u8]) -> bool {
        let strip = |b: &[u8]| -> Vec<u8> {
            let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
            b[first..].to_vec()
        };
        self.issuer_der() == issuer_der && strip(&self.serial_bytes()) == strip(serial)
    }
}

/// An X.509 name as an RFC 4514 string: most specific attribute first, `,`-separated.
pub fn name_to_string(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = match e.object().nid() {
                Nid::COMMONNAME => "CN".to_string(),
                Nid::ORGANIZATIONNAME => "O".to_string(),
                Nid::ORGANIZATIONALUNITNAME => "OU".to_string(),
                Nid::COUNTRYNAME => "C".to_string(),
                Nid::STATEORPROVINCENAME => "ST".to_string(),
                Nid::LOCALITYNAME => "L".to_string(),
                nid => nid
                    .short_name()
                    .map(str::to_string)
                    .unwrap_or_else(|_| e.object().to_string()),
            };
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| hex::encode(e.data().as_slice()));
            format!("{key}={}", escape_rfc4514(&value))
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../../testdata/samples/small-multi/keys/x509.crt");

    #[test]
    fn reads_the_skopeo_sample_certificate() {
        let c = Certificate::from_bytes(SAMPLE).unwrap();
        assert_eq!(c.subject(), "CN=peer-pkcs7");
        assert_eq!(c.issuer(), "CN=peer-pkcs7");
        // The serial the sample's PKCS#7 envelope names (pkcs7-asn1parse.txt).
        assert_eq!(c.serial_hex(), "7d9aea6b62b79b0d021a09008899f9dbe81741c2");
        assert!(c.matches(&c.issuer_der(), &c.serial_bytes()));
        let der = Certificate::from_bytes(&c.to_der()).unwrap();
        assert_eq!(der.serial_hex(), c.serial_hex());
    }

    #[test]
    fn says_what_a_non_certificate_is() {
        let key = include_bytes!("../../testdata/keys/rsa2048.pub.pem");
        let e = Certificate::from_bytes(key).unwrap_err().to_string();
        assert!(e.contains("public key") && e.contains("X.509"), "{e}");
        assert!(Certificate::from_bytes(b"").is_err());
    }
}
