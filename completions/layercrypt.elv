
use builtin;
use str;

set edit:completion:arg-completer[layercrypt] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'layercrypt'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'layercrypt'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand encrypt 'Encrypt the layers of images for one or more recipients'
            cand decrypt 'Decrypt the encrypted layers of images with private keys'
            cand rekey 'Change who can open encrypted layers: add, remove or replace recipients, or rotate the layer key'
            cand inspect 'Show, per platform and layer, what is encrypted and for whom'
            cand verify 'Check that the selected layers open with the given keys (and, with --full, are intact)'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page (roff) on stdout: every command, its options and examples'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'layercrypt;encrypt'= {
            cand -r 'A recipient (repeatable; schemes can be mixed): jwe:PUBLIC-KEY-FILE, pgp:EMAIL|NAME|KEYID|FINGERPRINT, pkcs7:CERTIFICATE-FILE, pkcs11:YAML-OR-PUBLIC-KEY-FILE, provider:NAME[:ARGS]'
            cand --recipient 'A recipient (repeatable; schemes can be mixed): jwe:PUBLIC-KEY-FILE, pgp:EMAIL|NAME|KEYID|FINGERPRINT, pkcs7:CERTIFICATE-FILE, pkcs11:YAML-OR-PUBLIC-KEY-FILE, provider:NAME[:ARGS]'
            cand --base 'The image SRC was built on (any image reference, docker:// included: only its manifests and configs are read). The bottom layers SRC shares with it, at the same position with the same digest or the same diff_id, stay plain, so registries keep sharing them. Without a digest in REF, an image''s org.opencontainers.image.base.digest annotation chooses among REF''s images; else the one of its platform matching most layers. An image whose bottom layers are not the base''s is refused'
            cand --gpg-homedir 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)'
            cand --platform 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched'
            cand --layer 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error'
            cand -j 'Worker threads (default: one per CPU core)'
            cand --jobs 'Worker threads (default: one per CPU core)'
            cand --progress 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none'
            cand --creds 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use'
            cand --creds-file 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR'
            cand --authfile 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)'
            cand --tls-verify 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP'
            cand --cert-dir 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/'
            cand --from-file 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input'
            cand --shard 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed'
            cand --journal 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it'
            cand --dry-run 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing'
            cand --json 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
            cand --verbose 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
            cand --json-lines 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'layercrypt;decrypt'= {
            cand -k 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file'
            cand --key 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file'
            cand --key-dir 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)'
            cand --dec-recipient 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)'
            cand --passphrase-file 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)'
            cand --gpg-homedir 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)'
            cand --platform 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched'
            cand --layer 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error'
            cand -j 'Worker threads (default: one per CPU core)'
            cand --jobs 'Worker threads (default: one per CPU core)'
            cand --progress 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none'
            cand --from-file 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input'
            cand --shard 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed'
            cand --journal 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it'
            cand --dry-run 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing'
            cand --json 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
            cand --verbose 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
            cand --json-lines 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'layercrypt;rekey'= {
            cand -k 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file'
            cand --key 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file'
            cand --key-dir 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)'
            cand --dec-recipient 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)'
            cand --passphrase-file 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)'
            cand --gpg-homedir 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)'
            cand --add 'Wrap the layer key for one more recipient, as for `encrypt -r` (repeatable). One that a layer already has is skipped with a warning'
            cand --remove 'Drop a recipient (repeatable): the recipient string used with `-r`, an OpenPGP key id or fingerprint, a JWE kid, pkcs7:CERT, or provider:NAME. Not revocation: see below'
            cand --set 'Make these the only recipients (repeatable)'
            cand --creds 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use'
            cand --creds-file 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR'
            cand --authfile 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)'
            cand --tls-verify 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP'
            cand --cert-dir 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/'
            cand --platform 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched'
            cand --layer 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error'
            cand -j 'Worker threads (default: one per CPU core)'
            cand --jobs 'Worker threads (default: one per CPU core)'
            cand --progress 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none'
            cand --from-file 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input'
            cand --shard 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed'
            cand --journal 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it'
            cand --rotate 'Re-encrypt the layer data under a fresh layer key for the --set recipients (digests change)'
            cand --in-place 'Re-key every image named in place, even when there are exactly two'
            cand --delete-old 'docker:// images: delete the manifests the re-key replaced, by digest, where the registry allows it (whoever can pull an old manifest can read its wrapped keys)'
            cand --dry-run 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing'
            cand --json 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)'
            cand -q 'Print only errors'
            cand --quiet 'Print only errors'
            cand -v 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
            cand --verbose 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
            cand --json-lines 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'layercrypt;inspect'= {
            cand --recipient 'With --by-recipient: only this recipient (a JWE kid, an OpenPGP key id, provider:NAME, or the name --by-recipient shows; repeatable). The table becomes the list of images it opens, one per line, which --from-file - reads'
            cand --dec-recipient 'A certificate whose subject names matching PKCS#7 recipients: pkcs7:CERT-FILE (repeatable)'
            cand --gpg-homedir 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)'
            cand --platform 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched'
            cand --layer 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error'
            cand --creds 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use'
            cand --creds-file 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR'
            cand --authfile 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)'
            cand --tls-verify 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP'
            cand --cert-dir 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/'
            cand --from-file 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input'
            cand --shard 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed'
            cand --journal 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it'
            cand --json 'Print JSON (schema in the README) instead of a table'
            cand --by-recipient 'Turn the view around: for every recipient in the images given, the images, platforms and layers it can open (for finding what a leaked key opens)'
            cand --json-lines 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'layercrypt;verify'= {
            cand -k 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file'
            cand --key 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file'
            cand --key-dir 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)'
            cand --dec-recipient 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)'
            cand --passphrase-file 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)'
            cand --gpg-homedir 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)'
            cand --base 'The image SRC was built on: the bottom layers it shares with it (same position and digest, or same diff_id) may be plain. An image whose bottom layers are not the base''s fails. As for encrypt --base'
            cand --platform 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched'
            cand --layer 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error'
            cand -j 'Worker threads for --full (default: one per CPU core)'
            cand --jobs 'Worker threads for --full (default: one per CPU core)'
            cand --progress 'Progress bars on stderr while --full reads layers: auto (only on a terminal), always, never. -q draws none'
            cand --creds 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use'
            cand --creds-file 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR'
            cand --authfile 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)'
            cand --tls-verify 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP'
            cand --cert-dir 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/'
            cand --from-file 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input'
            cand --shard 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed'
            cand --journal 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it'
            cand --full 'Also decrypt every selected layer to nowhere and check the HMAC, the blob''s digest and size, the recorded plaintext digest and the config''s diff_ids (needs a key). For a docker:// image this downloads every selected layer (to memory, never to disk)'
            cand --require-encrypted 'Fail when a selected layer is a plain filesystem layer (foreign and non-filesystem layers are skipped, not failed; --base exempts the layers of a public base image)'
            cand --json 'Print JSON (schema in the README) instead of one line per layer'
            cand -q 'Print only the layers that failed'
            cand --quiet 'Print only the layers that failed'
            cand -v 'Also say which key opened each layer and which checks passed'
            cand --verbose 'Also say which key opened each layer and which checks passed'
            cand --json-lines 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'layercrypt;completions'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'layercrypt;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'layercrypt;help'= {
            cand encrypt 'Encrypt the layers of images for one or more recipients'
            cand decrypt 'Decrypt the encrypted layers of images with private keys'
            cand rekey 'Change who can open encrypted layers: add, remove or replace recipients, or rotate the layer key'
            cand inspect 'Show, per platform and layer, what is encrypted and for whom'
            cand verify 'Check that the selected layers open with the given keys (and, with --full, are intact)'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page (roff) on stdout: every command, its options and examples'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'layercrypt;help;encrypt'= {
        }
        &'layercrypt;help;decrypt'= {
        }
        &'layercrypt;help;rekey'= {
        }
        &'layercrypt;help;inspect'= {
        }
        &'layercrypt;help;verify'= {
        }
        &'layercrypt;help;completions'= {
        }
        &'layercrypt;help;man'= {
        }
        &'layercrypt;help;help'= {
        }
    ]
    $completions[$command]
}
