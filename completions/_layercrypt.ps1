
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'layercrypt' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'layercrypt'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'layercrypt' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('encrypt', 'encrypt', [CompletionResultType]::ParameterValue, 'Encrypt the layers of images for one or more recipients')
            [CompletionResult]::new('decrypt', 'decrypt', [CompletionResultType]::ParameterValue, 'Decrypt the encrypted layers of images with private keys')
            [CompletionResult]::new('rekey', 'rekey', [CompletionResultType]::ParameterValue, 'Change who can open encrypted layers: add, remove or replace recipients, or rotate the layer key')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show, per platform and layer, what is encrypted and for whom')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check that the selected layers open with the given keys (and, with --full, are intact)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) on stdout: every command, its options and examples')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'layercrypt;encrypt' {
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'A recipient (repeatable; schemes can be mixed): jwe:PUBLIC-KEY-FILE, pgp:EMAIL|NAME|KEYID|FINGERPRINT, pkcs7:CERTIFICATE-FILE, pkcs11:YAML-OR-PUBLIC-KEY-FILE, provider:NAME[:ARGS]')
            [CompletionResult]::new('--recipient', '--recipient', [CompletionResultType]::ParameterName, 'A recipient (repeatable; schemes can be mixed): jwe:PUBLIC-KEY-FILE, pgp:EMAIL|NAME|KEYID|FINGERPRINT, pkcs7:CERTIFICATE-FILE, pkcs11:YAML-OR-PUBLIC-KEY-FILE, provider:NAME[:ARGS]')
            [CompletionResult]::new('--base', '--base', [CompletionResultType]::ParameterName, 'The image SRC was built on (any image reference, docker:// included: only its manifests and configs are read). The bottom layers SRC shares with it, at the same position with the same digest or the same diff_id, stay plain, so registries keep sharing them. Without a digest in REF, an image''s org.opencontainers.image.base.digest annotation chooses among REF''s images; else the one of its platform matching most layers. An image whose bottom layers are not the base''s is refused')
            [CompletionResult]::new('--gpg-homedir', '--gpg-homedir', [CompletionResultType]::ParameterName, 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched')
            [CompletionResult]::new('--layer', '--layer', [CompletionResultType]::ParameterName, 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Worker threads (default: one per CPU core)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Worker threads (default: one per CPU core)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none')
            [CompletionResult]::new('--creds', '--creds', [CompletionResultType]::ParameterName, 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use')
            [CompletionResult]::new('--creds-file', '--creds-file', [CompletionResultType]::ParameterName, 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)')
            [CompletionResult]::new('--tls-verify', '--tls-verify', [CompletionResultType]::ParameterName, 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP')
            [CompletionResult]::new('--cert-dir', '--cert-dir', [CompletionResultType]::ParameterName, 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed')
            [CompletionResult]::new('--journal', '--journal', [CompletionResultType]::ParameterName, 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain decisions: which key opened which layer, what was copied, why layers were kept')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain decisions: which key opened which layer, what was copied, why layers were kept')
            [CompletionResult]::new('--json-lines', '--json-lines', [CompletionResultType]::ParameterName, 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'layercrypt;decrypt' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file')
            [CompletionResult]::new('--key-dir', '--key-dir', [CompletionResultType]::ParameterName, 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)')
            [CompletionResult]::new('--dec-recipient', '--dec-recipient', [CompletionResultType]::ParameterName, 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)')
            [CompletionResult]::new('--gpg-homedir', '--gpg-homedir', [CompletionResultType]::ParameterName, 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched')
            [CompletionResult]::new('--layer', '--layer', [CompletionResultType]::ParameterName, 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Worker threads (default: one per CPU core)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Worker threads (default: one per CPU core)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed')
            [CompletionResult]::new('--journal', '--journal', [CompletionResultType]::ParameterName, 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain decisions: which key opened which layer, what was copied, why layers were kept')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain decisions: which key opened which layer, what was copied, why layers were kept')
            [CompletionResult]::new('--json-lines', '--json-lines', [CompletionResultType]::ParameterName, 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'layercrypt;rekey' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file')
            [CompletionResult]::new('--key-dir', '--key-dir', [CompletionResultType]::ParameterName, 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)')
            [CompletionResult]::new('--dec-recipient', '--dec-recipient', [CompletionResultType]::ParameterName, 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)')
            [CompletionResult]::new('--gpg-homedir', '--gpg-homedir', [CompletionResultType]::ParameterName, 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)')
            [CompletionResult]::new('--add', '--add', [CompletionResultType]::ParameterName, 'Wrap the layer key for one more recipient, as for `encrypt -r` (repeatable). One that a layer already has is skipped with a warning')
            [CompletionResult]::new('--remove', '--remove', [CompletionResultType]::ParameterName, 'Drop a recipient (repeatable): the recipient string used with `-r`, an OpenPGP key id or fingerprint, a JWE kid, pkcs7:CERT, or provider:NAME. Not revocation: see below')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Make these the only recipients (repeatable)')
            [CompletionResult]::new('--creds', '--creds', [CompletionResultType]::ParameterName, 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use')
            [CompletionResult]::new('--creds-file', '--creds-file', [CompletionResultType]::ParameterName, 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)')
            [CompletionResult]::new('--tls-verify', '--tls-verify', [CompletionResultType]::ParameterName, 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP')
            [CompletionResult]::new('--cert-dir', '--cert-dir', [CompletionResultType]::ParameterName, 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched')
            [CompletionResult]::new('--layer', '--layer', [CompletionResultType]::ParameterName, 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Worker threads (default: one per CPU core)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Worker threads (default: one per CPU core)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr, per layer and in total: auto (only on a terminal), always, never. -q draws none')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed')
            [CompletionResult]::new('--journal', '--journal', [CompletionResultType]::ParameterName, 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it')
            [CompletionResult]::new('--rotate', '--rotate', [CompletionResultType]::ParameterName, 'Re-encrypt the layer data under a fresh layer key for the --set recipients (digests change)')
            [CompletionResult]::new('--in-place', '--in-place', [CompletionResultType]::ParameterName, 'Re-key every image named in place, even when there are exactly two')
            [CompletionResult]::new('--delete-old', '--delete-old', [CompletionResultType]::ParameterName, 'docker:// images: delete the manifests the re-key replaced, by digest, where the registry allows it (whoever can pull an old manifest can read its wrapped keys)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (what would be encrypted, decrypted or kept, and why); change nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print a machine-readable report on stdout (old and new digest of every changed layer, manifest and index)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain decisions: which key opened which layer, what was copied, why layers were kept')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain decisions: which key opened which layer, what was copied, why layers were kept')
            [CompletionResult]::new('--json-lines', '--json-lines', [CompletionResultType]::ParameterName, 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'layercrypt;inspect' {
            [CompletionResult]::new('--recipient', '--recipient', [CompletionResultType]::ParameterName, 'With --by-recipient: only this recipient (a JWE kid, an OpenPGP key id, provider:NAME, or the name --by-recipient shows; repeatable). The table becomes the list of images it opens, one per line, which --from-file - reads')
            [CompletionResult]::new('--dec-recipient', '--dec-recipient', [CompletionResultType]::ParameterName, 'A certificate whose subject names matching PKCS#7 recipients: pkcs7:CERT-FILE (repeatable)')
            [CompletionResult]::new('--gpg-homedir', '--gpg-homedir', [CompletionResultType]::ParameterName, 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched')
            [CompletionResult]::new('--layer', '--layer', [CompletionResultType]::ParameterName, 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error')
            [CompletionResult]::new('--creds', '--creds', [CompletionResultType]::ParameterName, 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use')
            [CompletionResult]::new('--creds-file', '--creds-file', [CompletionResultType]::ParameterName, 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)')
            [CompletionResult]::new('--tls-verify', '--tls-verify', [CompletionResultType]::ParameterName, 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP')
            [CompletionResult]::new('--cert-dir', '--cert-dir', [CompletionResultType]::ParameterName, 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed')
            [CompletionResult]::new('--journal', '--journal', [CompletionResultType]::ParameterName, 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in the README) instead of a table')
            [CompletionResult]::new('--by-recipient', '--by-recipient', [CompletionResultType]::ParameterName, 'Turn the view around: for every recipient in the images given, the images, platforms and layers it can open (for finding what a leaked key opens)')
            [CompletionResult]::new('--json-lines', '--json-lines', [CompletionResultType]::ParameterName, 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'layercrypt;verify' {
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR, or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file')
            [CompletionResult]::new('--key-dir', '--key-dir', [CompletionResultType]::ParameterName, 'Use every key file below DIR (repeatable; symbolic links followed, each file once; what is no key is skipped, what cannot be used is skipped with a warning)')
            [CompletionResult]::new('--dec-recipient', '--dec-recipient', [CompletionResultType]::ParameterName, 'A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable)')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'Passphrase for encrypted keys that name no passphrase source of their own (default: ask on the terminal)')
            [CompletionResult]::new('--gpg-homedir', '--gpg-homedir', [CompletionResultType]::ParameterName, 'GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg)')
            [CompletionResult]::new('--base', '--base', [CompletionResultType]::ParameterName, 'The image SRC was built on: the bottom layers it shares with it (same position and digest, or same diff_id) may be plain. An image whose bottom layers are not the base''s fails. As for encrypt --base')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other platforms stay in the output untouched')
            [CompletionResult]::new('--layer', '--layer', [CompletionResultType]::ParameterName, 'Only this layer: an index (0 = bottom, negative counts from the top) or a digest (repeatable; default: all layers). An index out of range is an error')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Worker threads for --full (default: one per CPU core)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Worker threads for --full (default: one per CPU core)')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress bars on stderr while --full reads layers: auto (only on a terminal), always, never. -q draws none')
            [CompletionResult]::new('--creds', '--creds', [CompletionResultType]::ParameterName, 'Credentials for the registry: USER[:PASSWORD] (without the password, it is asked for on the terminal). Default: the auth files skopeo and podman use')
            [CompletionResult]::new('--creds-file', '--creds-file', [CompletionResultType]::ParameterName, 'Read USER:PASSWORD from FILE, fd=N (an open file descriptor) or env=VAR')
            [CompletionResult]::new('--authfile', '--authfile', [CompletionResultType]::ParameterName, 'Auth file to read credentials from instead of $REGISTRY_AUTH_FILE or $XDG_RUNTIME_DIR/containers/auth.json (~/.config/containers/auth.json and ~/.docker/config.json are still searched after it)')
            [CompletionResult]::new('--tls-verify', '--tls-verify', [CompletionResultType]::ParameterName, 'Verify the registry''s TLS certificate (default). `--tls-verify=false` accepts any certificate, and plain HTTP')
            [CompletionResult]::new('--cert-dir', '--cert-dir', [CompletionResultType]::ParameterName, 'CA certificates (*.crt) and a client certificate (*.cert with its *.key) for the registry, instead of /etc/containers/certs.d/HOST[:PORT]/')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines skipped; `-` reads standard input')
            [CompletionResult]::new('--shard', '--shard', [CompletionResultType]::ParameterName, 'Take only shard K of N (0 <= K < N) of the images: those whose SRC''s SHA-256 (first 8 bytes, big-endian) modulo N is K. Stable when other lines are added or removed')
            [CompletionResult]::new('--journal', '--journal', [CompletionResultType]::ParameterName, 'Record every finished image in FILE (appended, fsynced); a rerun with the same FILE skips what it records as done. Locked while a run uses it')
            [CompletionResult]::new('--full', '--full', [CompletionResultType]::ParameterName, 'Also decrypt every selected layer to nowhere and check the HMAC, the blob''s digest and size, the recorded plaintext digest and the config''s diff_ids (needs a key). For a docker:// image this downloads every selected layer (to memory, never to disk)')
            [CompletionResult]::new('--require-encrypted', '--require-encrypted', [CompletionResultType]::ParameterName, 'Fail when a selected layer is a plain filesystem layer (foreign and non-filesystem layers are skipped, not failed; --base exempts the layers of a public base image)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (schema in the README) instead of one line per layer')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only the layers that failed')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only the layers that failed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Also say which key opened each layer and which checks passed')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Also say which key opened each layer and which checks passed')
            [CompletionResult]::new('--json-lines', '--json-lines', [CompletionResultType]::ParameterName, 'Print one JSON object per image on stdout as soon as it is done (the --json schema plus `status`: changed, unchanged or failed), and a summary object last')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'layercrypt;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'layercrypt;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'layercrypt;help' {
            [CompletionResult]::new('encrypt', 'encrypt', [CompletionResultType]::ParameterValue, 'Encrypt the layers of images for one or more recipients')
            [CompletionResult]::new('decrypt', 'decrypt', [CompletionResultType]::ParameterValue, 'Decrypt the encrypted layers of images with private keys')
            [CompletionResult]::new('rekey', 'rekey', [CompletionResultType]::ParameterValue, 'Change who can open encrypted layers: add, remove or replace recipients, or rotate the layer key')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show, per platform and layer, what is encrypted and for whom')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check that the selected layers open with the given keys (and, with --full, are intact)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) on stdout: every command, its options and examples')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'layercrypt;help;encrypt' {
            break
        }
        'layercrypt;help;decrypt' {
            break
        }
        'layercrypt;help;rekey' {
            break
        }
        'layercrypt;help;inspect' {
            break
        }
        'layercrypt;help;verify' {
            break
        }
        'layercrypt;help;completions' {
            break
        }
        'layercrypt;help;man' {
            break
        }
        'layercrypt;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
