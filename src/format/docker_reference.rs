//! Docker image references as `docker save`, `docker load` and skopeo spell them:
//! `[host[:port]/]path[:tag]`, normalised as Docker's `ParseNormalizedNamed` normalises them
//! (`alpine` → `docker.io/library/alpine:latest`), so that any spelling of a tag finds the
//! image an archive lists under another, and a registry reference names its registry and
//! repository the way skopeo does.
//!
//! Pure string work on names a hostile archive may hold: no I/O, no panic on any input, and
//! never accepts a digest reference (an archive names its images by tag; a registry
//! reference's digest is split off before). The grammar is kept
//! by hand rather than taken from `oci_spec::distribution::Reference`, which lacks Docker's
//! rule that a first component with an upper-case letter is a host.

/// A reference that is not a Docker `repo[:tag]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not a Docker image reference (repo[:tag]): {reason}")]
pub struct ReferenceError {
    /// The reference as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Normalise a Docker reference `[host[:port]/]path[:tag]` to `host/path:tag` as Docker's
/// `ParseNormalizedNamed` does (`alpine` → `docker.io/library/alpine:latest`). Digests are
/// refused: an archive names its images by tag.
pub fn normalize_reference(reference: &str) -> Result<String, ReferenceError> {
    let (name, tag) = split_reference(reference)?;
    Ok(format!("{name}:{}", tag.unwrap_or("latest")))
}

/// Split and normalise a reference into its full name and its tag, if it has one.
pub(crate) fn split_reference(reference: &str) -> Result<(String, Option<&str>), ReferenceError> {
    let fail = |reason: &str| ReferenceError {
        reference: reference.to_string(),
        reason: reason.to_string(),
    };
    if reference.contains('@') {
        return Err(fail("digest references are not supported; name a tag"));
    }
    let last_part = reference.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match reference[last_part..].rfind(':') {
        Some(i) => (
            &reference[..last_part + i],
            Some(&reference[last_part + i + 1..]),
        ),
        None => (reference, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let valid = tag.len() <= 128
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(fail(
                "the tag may hold up to 128 letters, digits, `_`, `.` and `-`, and must not start with `.` or `-`",
            ));
        }
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    if !valid_domain(domain) {
        return Err(fail("the registry host is not valid"));
    }
    if !path.split('/').all(valid_path_component) {
        return Err(fail(
            "the repository must be lowercase letters and digits, separated by `/`, `.`, `_`, `__` or `-`",
        ));
    }
    let full = format!("{domain}/{path}");
    if full.len() > 255 {
        return Err(fail("the name is longer than 255 characters"));
    }
    Ok((full, tag))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        });
    port_ok && host_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "."
            || sep == "_"
            || sep == "__"
            || (!sep.is_empty() && sep.bytes().all(|b| b == b'-'));
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_docker() {
        for (input, expected) in [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.19", "docker.io/library/alpine:3.19"),
            ("library/alpine", "docker.io/library/alpine:latest"),
            ("docker.io/alpine:1", "docker.io/library/alpine:1"),
            ("user/app:v_1.0-rc", "docker.io/user/app:v_1.0-rc"),
            ("localhost/app:1", "localhost/app:1"),
            ("localhost:5000/a/b:2", "localhost:5000/a/b:2"),
            ("quay.io/org/my__app-x:tag", "quay.io/org/my__app-x:tag"),
            ("Example.com/app:1", "Example.com/app:1"),
        ] {
            assert_eq!(normalize_reference(input).unwrap(), expected, "{input}");
        }
        for bad in [
            "",
            "UPPER:1",
            "app:",
            "app:-x",
            "a//b",
            "app@sha256:00",
            "app_:1",
            "host:port/a",
            ":tag",
            "a/-b",
        ] {
            assert!(normalize_reference(bad).is_err(), "{bad:?} accepted");
        }
    }
}
