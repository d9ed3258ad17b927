//! Certificate directories, as containers-certs.d(5) describes them: in `--cert-dir DIR`, or
//! else `/etc/containers/certs.d/HOST[:PORT]/` (then `/etc/docker/certs.d/HOST[:PORT]/`),
//! every `*.crt` is a CA to trust beside the system's, and a `NAME.cert` with its `NAME.key`
//! is the client certificate to present.

use std::fs;
use std::path::{Path, PathBuf};

use reqwest::{Certificate, Identity};
use zeroize::Zeroizing;

use super::RegistryError;

/// Largest certificate or key file read.
const MAX_FILE: u64 = 1024 * 1024;

/// What a certificate directory holds.
#[derive(Default)]
pub(crate) struct Tls {
    /// CA certificates to trust.
    pub roots: Vec<Certificate>,
    /// The client certificate and key.
    pub identity: Option<Identity>,
}

/// Load the certificate directory for `registry` (`host[:port]`): `cert_dir` if given, else
/// the system's, if it exists.
pub(crate) fn load(cert_dir: Option<&Path>, registry: &str) -> Result<Tls, RegistryError> {
    let dir = match cert_dir {
        Some(d) => d.to_path_buf(),
        None => {
            let found = ["/etc/containers/certs.d", "/etc/docker/certs.d"]
                .iter()
                .map(|root| Path::new(root).join(registry))
                .find(|d| d.is_dir());
            match found {
                Some(d) => d,
                None => return Ok(Tls::default()),
            }
        }
    };
    let fail = |path: &Path, reason: String| RegistryError::Certificates {
        path: path.to_path_buf(),
        reason,
    };
    let entries = fs::read_dir(&dir).map_err(|e| fail(&dir, e.to_string()))?;
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut tls = Tls::default();
    for path in &names {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "crt" => {
                let pem = read(path).map_err(|e| fail(path, e))?;
                let certs = Certificate::from_pem_bundle(&pem)
                    .map_err(|e| fail(path, format!("not PEM certificates: {e}")))?;
                if certs.is_empty() {
                    return Err(fail(path, "holds no certificate".into()));
                }
                tls.roots.extend(certs);
            }
            "cert" => {
                let key_path = path.with_extension("key");
                if !key_path.is_file() {
                    return Err(fail(
                        path,
                        format!("its key {} is missing", key_path.display()),
                    ));
                }
                if tls.identity.is_some() {
                    return Err(fail(path, "a second client certificate; keep one".into()));
                }
                let cert = read(path).map_err(|e| fail(path, e))?;
                let key = Zeroizing::new(read(&key_path).map_err(|e| fail(&key_path, e))?);
                // The key may be PKCS#1 or SEC1; the TLS library takes PKCS#8.
                let key = openssl::pkey::PKey::private_key_from_pem(&key)
                    .and_then(|k| k.private_key_to_pem_pkcs8())
                    .map(Zeroizing::new)
                    .map_err(|e| fail(&key_path, format!("not a PEM private key: {e}")))?;
                let identity = Identity::from_pkcs8_pem(&cert, &key)
                    .map_err(|e| fail(path, format!("not usable with its key: {e}")))?;
                tls.identity = Some(identity);
            }
            "key" if !path.with_extension("cert").is_file() => {
                return Err(fail(path, "a key without its .cert".into()));
            }
            _ => {}
        }
    }
    Ok(tls)
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut out))
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};

    /// A self-signed certificate and its key (PKCS#1 PEM, as `openssl genrsa` writes it).
    fn self_signed() -> (Vec<u8>, Vec<u8>) {
        let rsa = Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa.clone()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "client").unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        (
            cert.build().to_pem().unwrap(),
            rsa.private_key_to_pem().unwrap(),
        )
    }

    #[test]
    fn a_certificate_directory_gives_cas_and_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        fs::write(dir.path().join("ca.crt"), &cert).unwrap();
        fs::write(dir.path().join("client.cert"), &cert).unwrap();
        fs::write(dir.path().join("client.key"), &key).unwrap();
        fs::write(dir.path().join("README"), "ignored").unwrap();
        let tls = load(Some(dir.path()), "reg:5000").unwrap();
        assert_eq!(tls.roots.len(), 1);
        assert!(tls.identity.is_some());

        // A key without its certificate, a certificate without its key, and a .crt that
        // holds no certificate are each refused, naming the file.
        fs::remove_file(dir.path().join("client.cert")).unwrap();
        let err = load(Some(dir.path()), "reg:5000").unwrap_err().to_string();
        assert!(
            err.contains("client.key") && err.contains("without its .cert"),
            "{err}"
        );
        fs::remove_file(dir.path().join("client.key")).unwrap();
        fs::write(dir.path().join("client.cert"), &cert).unwrap();
        let err = load(Some(dir.path()), "reg:5000").unwrap_err().to_string();
        assert!(err.contains("is missing"), "{err}");
        fs::remove_file(dir.path().join("client.cert")).unwrap();
        fs::write(dir.path().join("ca.crt"), "not PEM").unwrap();
        assert!(load(Some(dir.path()), "reg:5000").is_err());
        // No directory named and none for this registry: nothing to add.
        let none = load(None, "no-such-registry.invalid:1").unwrap();
        assert!(none.roots.is_empty() && none.identity.is_none());
    }
}
