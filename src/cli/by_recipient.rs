//! `inspect --by-recipient`: turn the per-image inspection around, for a compromise response.
//! For every recipient identity found in the images given, the images, platforms and layers
//! it can open. With `--recipient ID`, only those, and the human output is a plain list of the
//! image references they open, one per line, which `--from-file -` reads back:
//!
//! ```sh
//! layercrypt inspect --by-recipient --recipient KID --from-file all.txt \
//!   | layercrypt rekey --rotate --remove KID --set … --from-file -
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};

use layercrypt::inspect::InspectReport;
use layercrypt::keywrap::RecipientInfo;
use serde_json::{Value, json};

/// One recipient identity, and what it opens.
#[derive(Default)]
struct Opens {
    /// The identity as shown (`jwe kid=… RSA-OAEP`).
    info: Value,
    /// What `rekey --remove` takes for it, when there is such a string.
    remove: Option<String>,
    /// Image source → (image name, platform, layer index) it opens.
    layers: BTreeMap<String, Vec<(String, String, usize)>>,
}

/// The identity key of a recipient entry, and what `--remove` takes for it.
fn identity(r: &RecipientInfo) -> (String, Option<String>) {
    let scheme = r.scheme.as_str();
    match (scheme, &r.key_id, &r.issuer, &r.serial) {
        ("jwe", Some(kid), _, _) => (format!("jwe:{kid}"), Some(kid.clone())),
        ("pgp", Some(id), _, _) => (format!("pgp:{id}"), Some(id.clone())),
        ("pkcs7", _, Some(issuer), Some(serial)) => {
            (format!("pkcs7:issuer={issuer},serial={serial}"), None)
        }
        (s, _, _, _) if s.starts_with("provider.") => {
            let name = &s["provider.".len()..];
            (format!("provider:{name}"), Some(format!("provider:{name}")))
        }
        // No key id (Go's JWE entries, PKCS#11): as far as the entry tells.
        (s, _, _, _) => (
            format!(
                "{s}:{}{}",
                r.algorithm.as_deref().unwrap_or("unknown"),
                r.hash
                    .as_deref()
                    .map(|h| format!("/{h}"))
                    .unwrap_or_default()
            ),
            None,
        ),
    }
}

/// Whether recipient `key` (with its `--remove` string) is one of `wanted`.
fn wanted(key: &str, remove: Option<&str>, wanted: &[String]) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| {
            let w = w.trim();
            let bare = key.split_once(':').map_or(key, |(_, rest)| rest);
            w.eq_ignore_ascii_case(key)
                || w.eq_ignore_ascii_case(bare)
                || remove.is_some_and(|r| w.eq_ignore_ascii_case(r))
                || w.trim_start_matches("0x")
                    .eq_ignore_ascii_case(bare.trim_start_matches("0x"))
        })
}

/// Print the by-recipient view of `reports` (source reference, report).
pub(super) fn print(
    reports: &[(String, InspectReport)],
    recipients: &[String],
    json_out: bool,
    json_lines: bool,
) -> io::Result<()> {
    let mut by: BTreeMap<String, Opens> = BTreeMap::new();
    for (source, report) in reports {
        for image in &report.images {
            for manifest in &image.manifests {
                for layer in &manifest.layers {
                    for r in &layer.recipients {
                        let (key, remove) = identity(r);
                        if !wanted(&key, remove.as_deref(), recipients) {
                            continue;
                        }
                        let entry = by.entry(key).or_default();
                        if entry.info.is_null() {
                            entry.info = serde_json::to_value(r).unwrap_or_default();
                            entry.remove = remove;
                        }
                        entry.layers.entry(source.clone()).or_default().push((
                            image.name.clone(),
                            manifest.platform.clone(),
                            layer.index,
                        ));
                    }
                }
            }
        }
    }
    let as_json = |key: &str, opens: &Opens| {
        json!({
            "recipient": key,
            "remove": opens.remove,
            "info": opens.info,
            "images": opens.layers.iter().map(|(source, layers)| json!({
                "source": source,
                "layers": layers.iter().map(|(name, platform, index)| json!({
                    "image": name, "platform": platform, "index": index,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    };
    let mut out = io::stdout().lock();
    if json_lines {
        for (key, opens) in &by {
            serde_json::to_writer(&mut out, &as_json(key, opens))?;
            writeln!(out)?;
        }
        return Ok(());
    }
    if json_out {
        let all: Vec<Value> = by.iter().map(|(k, o)| as_json(k, o)).collect();
        serde_json::to_writer_pretty(&mut out, &json!({ "recipients": all }))?;
        return writeln!(out);
    }
    if !recipients.is_empty() {
        // A list for --from-file: every image any of the named recipients opens.
        let mut sources: Vec<&String> = by.values().flat_map(|o| o.layers.keys()).collect();
        sources.sort();
        sources.dedup();
        writeln!(
            out,
            "# images that {} can open ({} of {})",
            recipients.join(", "),
            sources.len(),
            reports.len()
        )?;
        for s in sources {
            writeln!(out, "{s}")?;
        }
        return Ok(());
    }
    for (key, opens) in &by {
        let layers: usize = opens.layers.values().map(Vec::len).sum();
        writeln!(
            out,
            "{key}  {}  opens {layers} layer{} of {} image{}{}",
            opens.info["algorithm"].as_str().unwrap_or(""),
            if layers == 1 { "" } else { "s" },
            opens.layers.len(),
            if opens.layers.len() == 1 { "" } else { "s" },
            opens
                .remove
                .as_deref()
                .map(|r| format!("  (rekey --remove {r})"))
                .unwrap_or_default()
        )?;
        for (source, layers) in &opens.layers {
            let mut shown: Vec<String> = layers
                .iter()
                .map(|(_, platform, index)| format!("{platform}#{index}"))
                .collect();
            shown.dedup();
            writeln!(out, "  {source}  {}", shown.join(" "))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_named_by_what_rekey_remove_takes() {
        let jwe = RecipientInfo {
            scheme: "jwe".into(),
            algorithm: Some("RSA-OAEP".into()),
            key_id: Some("Abc".into()),
            curve: None,
            issuer: None,
            serial: None,
            subject: None,
            user_ids: Vec::new(),
            hash: None,
        };
        let (key, remove) = identity(&jwe);
        assert_eq!((key.as_str(), remove.as_deref()), ("jwe:Abc", Some("Abc")));
        assert!(wanted(&key, remove.as_deref(), &["abc".into()]));
        assert!(wanted(&key, remove.as_deref(), &["jwe:Abc".into()]));
        assert!(!wanted(&key, remove.as_deref(), &["other".into()]));
        assert!(wanted(&key, remove.as_deref(), &[]));
        let pgp = RecipientInfo {
            scheme: "pgp".into(),
            key_id: Some("0x3631BE422BDA5120".into()),
            ..jwe.clone()
        };
        let (key, remove) = identity(&pgp);
        assert!(wanted(
            &key,
            remove.as_deref(),
            &["3631be422bda5120".into()]
        ));
    }
}
