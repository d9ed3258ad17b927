# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_layercrypt_global_optspecs
    string join \n h/help V/version
end

function __fish_layercrypt_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_layercrypt_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_layercrypt_using_subcommand
    set -l cmd (__fish_layercrypt_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c layercrypt -n "__fish_layercrypt_needs_command" -s h -l help -d 'Print help'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "encrypt" -d 'Encrypt the layers of images for one or more recipients'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "decrypt" -d 'Decrypt the encrypted layers of images with private keys'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "rekey" -d 'Change who can open encrypted layers: add, remove or replace recipients, or rotate the layer key'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "inspect" -d 'Show, per platform and layer, what is encrypted and for whom'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "verify" -d 'Check that the selected layers open with the given keys (and, with --full, are intact)'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "man" -d 'Print the man page (roff) on stdout: every command, its options and examples'
complete -c layercrypt -n "__fish_layercrypt_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -s r -l recipient -d 'A recipient (repeatable; schemes can be mixed): jwe:PUBLIC-KEY-FILE, pgp:EMAIL|NAME|KEYID|FINGERPRINT, pkcs7:CERTIFICATE-FILE, pkcs11:YAML-OR-PUBLIC-KEY-FILE, provider:NAME[:ARGS]' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l base -d 'The image SRC was built on (any image reference, docker:// included: only its manifests and configs are read). The bottom layers SRC shares with it, at the same position with the same digest or the same diff_id, stay plain, so registries keep sharing them. Without a digest in REF, an image\'s org.opencontainers.image.base.digest annotation chooses among REF\'s images; else the one of its platform matching most layers. An image whose bottom layers are not the base\'s is refused' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l gpg-homedir -d 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l platform -d 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l layer -d 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -s j -l jobs -d 'Worker threads (default: one per CPU core)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l progress -d 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none' -r -f -a "auto\t'Only when stderr is a terminal, and once the run has taken a moment'
always\t'Always, on stderr, even when it is a file or a pipe'
never\t'Never'"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l creds -d 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l creds-file -d 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l authfile -d 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l tls-verify -d 'Verify the registry\'s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP' -r -f -a "true\t''
false\t''"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l cert-dir -d 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l from-file -d 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l shard -d 'Take only shard K of N (0 <= K < N) of the images: those whose SRC\'s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l journal -d 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l dry-run -d 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l json -d 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -s q -l quiet -d 'Print only errors'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -s v -l verbose -d 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -l json-lines -d 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand encrypt" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -s k -l key -d 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l key-dir -d 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l dec-recipient -d 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l passphrase-file -d 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l gpg-homedir -d 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l platform -d 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l layer -d 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -s j -l jobs -d 'Worker threads (default: one per CPU core)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l progress -d 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none' -r -f -a "auto\t'Only when stderr is a terminal, and once the run has taken a moment'
always\t'Always, on stderr, even when it is a file or a pipe'
never\t'Never'"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l from-file -d 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l shard -d 'Take only shard K of N (0 <= K < N) of the images: those whose SRC\'s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l journal -d 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l dry-run -d 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l json -d 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -s q -l quiet -d 'Print only errors'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -s v -l verbose -d 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -l json-lines -d 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand decrypt" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -s k -l key -d 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l key-dir -d 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l dec-recipient -d 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l passphrase-file -d 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l gpg-homedir -d 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l add -d 'Wrap the layer key for one more recipient, as for `encrypt -r` (repeatable). One that a layer already has is skipped with a warning' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l remove -d 'Drop a recipient (repeatable): the recipient string used with `-r`, an OpenPGP key id or fingerprint, a JWE kid, pkcs7:CERT, or provider:NAME. Not revocation: see below' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l set -d 'Make these the only recipients (repeatable)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l creds -d 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l creds-file -d 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l authfile -d 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l tls-verify -d 'Verify the registry\'s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP' -r -f -a "true\t''
false\t''"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l cert-dir -d 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l platform -d 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l layer -d 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -s j -l jobs -d 'Worker threads (default: one per CPU core)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l progress -d 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none' -r -f -a "auto\t'Only when stderr is a terminal, and once the run has taken a moment'
always\t'Always, on stderr, even when it is a file or a pipe'
never\t'Never'"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l from-file -d 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l shard -d 'Take only shard K of N (0 <= K < N) of the images: those whose SRC\'s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l journal -d 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l rotate -d 'Re-encrypt the layer data under a fresh layer key for the --set recipients (digests change)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l in-place -d 'Re-key every image named in place, even when there are exactly two'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l delete-old -d 'docker:// images: delete the manifests the re-key replaced, by digest, where the registry allows it (whoever can pull an old manifest can read its wrapped keys)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l dry-run -d 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l json -d 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -s q -l quiet -d 'Print only errors'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -s v -l verbose -d 'Explain decisions: which key opened which layer, what was copied, why layers were kept'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -l json-lines -d 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand rekey" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l recipient -d 'With --by-recipient: only this recipient (a JWE kid, an OpenPGP key id, provider:NAME, or the name --by-recipient shows; repeatable). The table becomes the list of images it opens, one per line, which --from-file - reads' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l dec-recipient -d 'A certificate whose subject names matching PKCS#7 recipients: pkcs7:CERT-FILE (repeatable)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l gpg-homedir -d 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l platform -d 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l layer -d 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l creds -d 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l creds-file -d 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l authfile -d 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l tls-verify -d 'Verify the registry\'s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP' -r -f -a "true\t''
false\t''"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l cert-dir -d 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l from-file -d 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l shard -d 'Take only shard K of N (0 <= K < N) of the images: those whose SRC\'s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l journal -d 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l json -d 'Print JSON (schema in the README) instead of a table'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l by-recipient -d 'Turn the view around: for every recipient in the images given, the images, platforms and layers it can open (for finding what a leaked key opens)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -l json-lines -d 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -s k -l key -d 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l key-dir -d 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l dec-recipient -d 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l passphrase-file -d 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l gpg-homedir -d 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l base -d 'The image SRC was built on: the bottom layers it shares with it (same position and digest, or same diff_id) may be plain. An image whose bottom layers are not the base\'s fails. As for encrypt --base' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l platform -d 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l layer -d 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -s j -l jobs -d 'Worker threads for --full (default: one per CPU core)' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l progress -d 'Progress bars on stderr while --full reads layers: auto (only on a terminal), always, never. -q draws none' -r -f -a "auto\t'Only when stderr is a terminal, and once the run has taken a moment'
always\t'Always, on stderr, even when it is a file or a pipe'
never\t'Never'"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l creds -d 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l creds-file -d 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l authfile -d 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l tls-verify -d 'Verify the registry\'s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP' -r -f -a "true\t''
false\t''"
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l cert-dir -d 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l from-file -d 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l shard -d 'Take only shard K of N (0 <= K < N) of the images: those whose SRC\'s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed' -r
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l journal -d 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it' -r -F
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l full -d 'Also decrypt every selected layer to nowhere and check the HMAC, the blob\'s digest and size, the recorded plaintext digest and the config\'s diff_ids (needs a key). For a docker:// image this downloads every selected layer (to memory, never to disk)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l require-encrypted -d 'Fail when a selected layer is a plain filesystem layer (foreign and non-filesystem layers are skipped, not failed; --base exempts the layers of a public base image)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l json -d 'Print JSON (schema in the README) instead of one line per layer'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -s q -l quiet -d 'Print only the layers that failed'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -s v -l verbose -d 'Also say which key opened each layer and which checks passed'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -l json-lines -d 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand verify" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand completions" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand man" -s h -l help -d 'Print help'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand man" -s V -l version -d 'Print version'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "encrypt" -d 'Encrypt the layers of images for one or more recipients'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "decrypt" -d 'Decrypt the encrypted layers of images with private keys'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "rekey" -d 'Change who can open encrypted layers: add, remove or replace recipients, or rotate the layer key'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "inspect" -d 'Show, per platform and layer, what is encrypted and for whom'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "verify" -d 'Check that the selected layers open with the given keys (and, with --full, are intact)'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "man" -d 'Print the man page (roff) on stdout: every command, its options and examples'
complete -c layercrypt -n "__fish_layercrypt_using_subcommand help; and not __fish_seen_subcommand_from encrypt decrypt rekey inspect verify completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
