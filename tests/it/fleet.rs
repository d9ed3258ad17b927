//! Many images in one run (issue 17): lists, shards, JSON lines, journals, statuses and exit
//! statuses, and a local run that plays a cluster: N workers with `--shard i/N` over a few
//! hundred images, one killed with SIGKILL mid-run and rerun with its journal.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use common::*;

fn jwe(name: &str) -> String {
    format!("jwe:{}", key(name))
}

/// An image encrypted for rsa2048 under `dir/name`.
fn encrypted(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    layercrypt()
        .args(["encrypt", "-q", "-r", &jwe("rsa2048.pub.pem")])
        .arg(oci(&testdata("images/plain"), "v1"))
        .arg(oci(&out, "v1"))
        .assert()
        .success();
    out
}

/// `count` copies of one encrypted image, and a list naming them.
fn fleet(dir: &Path, count: usize) -> (Vec<String>, PathBuf) {
    let first = encrypted(dir, "img-0");
    let mut refs = vec![oci(&first, "v1")];
    for i in 1..count {
        let copy = dir.join(format!("img-{i}"));
        copy_tree(&first, &copy);
        refs.push(oci(&copy, "v1"));
    }
    let list = dir.join("list.txt");
    fs::write(&list, format!("# the fleet\n{}\n", refs.join("\n"))).unwrap();
    (refs, list)
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_list_with_a_malformed_line_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (refs, _) = fleet(tmp.path(), 2);
    let before = snapshot(&tmp.path().join("img-0"));
    let list = tmp.path().join("bad.txt");
    fs::write(&list, format!("{}\n\n# fine\n{} a b\n", refs[0], refs[1])).unwrap();
    let out = layercrypt()
        .args([
            "rekey",
            "-k",
            &key("rsa2048.pem"),
            "--add",
            &jwe("ec256.pub.pem"),
        ])
        .arg("--from-file")
        .arg(&list)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 4: expected SRC [DST], found 3 fields"),
        "{err}"
    );
    assert_eq!(snapshot(&tmp.path().join("img-0")), before);
}

/// Every command takes a list from stdin and streams one JSON line per image, then a summary;
/// running it again changes nothing (`unchanged`); a decrypt of what is plain and an encrypt
/// of what is encrypted are `unchanged` too.
#[test]
fn json_lines_and_statuses_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (refs, list) = fleet(tmp.path(), 3);
    let run = |args: &[&str]| {
        let out = layercrypt()
            .args(args)
            .args(["--json-lines", "--from-file", "-"])
            .write_stdin(fs::read(&list).unwrap())
            .output()
            .unwrap();
        (out.status.code(), lines(&out.stdout), stderr_of(&out))
    };
    let add = [
        "rekey",
        "-k",
        &key("rsa2048.pem"),
        "--add",
        &jwe("ec256.pub.pem"),
    ];
    let (code, first, err) = run(&add);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(first.len(), 4, "{first:#?}");
    for (line, r) in first.iter().zip(&refs) {
        assert_eq!(line["source"], r.as_str());
        assert_eq!(line["status"], "changed", "{line:#}");
        assert_ne!(line["old_digest"], line["new_digest"]);
    }
    assert_eq!(first[3]["summary"]["changed"], 3);
    let (code, again, err) = run(&add);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        again[..3].iter().all(|l| l["status"] == "unchanged"),
        "{again:#?}"
    );
    let (code, encrypt, err) = run(&["encrypt", "-r", &jwe("rsa2048.pub.pem")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        encrypt[..3].iter().all(|l| l["status"] == "unchanged"),
        "{encrypt:#?}"
    );
    let (code, inspect, err) = run(&["inspect"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(inspect.len(), 4);
    let (code, verify, err) = run(&["verify", "-k", &key("ec256.pem")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        verify[..3].iter().all(|l| l["status"] == "unchanged"),
        "{verify:#?}"
    );
    let (code, decrypt, err) = run(&["decrypt", "-k", &key("ec256.pem")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        decrypt[..3].iter().all(|l| l["status"] == "changed"),
        "{decrypt:#?}"
    );
    let (code, again, err) = run(&["decrypt", "-k", &key("ec256.pem")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        again[..3].iter().all(|l| l["status"] == "unchanged"),
        "{again:#?}"
    );
    // verify --require-encrypted now fails every image: exit 1, each `failed`.
    let (code, plain, _) = run(&["verify", "--require-encrypted"]);
    assert_eq!(code, Some(1));
    assert!(
        plain[..3].iter().all(|l| l["status"] == "failed"),
        "{plain:#?}"
    );
}

/// A journal in use by another run is refused with exit 3 (retry later).
#[test]
fn a_journal_in_use_is_refused_as_transient() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, list) = fleet(tmp.path(), 1);
    let journal = tmp.path().join("journal");
    let held = fs::File::create(&journal).unwrap();
    held.lock().unwrap();
    let out = layercrypt()
        .args(["inspect", "--from-file"])
        .arg(&list)
        .arg("--journal")
        .arg(&journal)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is in use by another run"), "{err}");
}

/// N workers, one killed with SIGKILL mid-run and rerun with its journal: every image is
/// re-keyed exactly once, and the JSON lines of all runs together name every image.
#[test]
fn sharded_workers_with_journals_cover_a_fleet_exactly_once_across_a_kill() {
    const IMAGES: usize = 240;
    const WORKERS: usize = 4;
    let tmp = tempfile::tempdir().unwrap();
    let (refs, list) = fleet(tmp.path(), IMAGES);
    let worker = |i: usize| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_layercrypt"));
        cmd.args(["rekey", "-q", "--json-lines", "-k", &key("rsa2048.pem")])
            .args(["--add", &jwe("ec256.pub.pem")])
            .arg("--from-file")
            .arg(&list)
            .args(["--shard", &format!("{i}/{WORKERS}")])
            .arg("--journal")
            .arg(tmp.path().join(format!("journal-{i}")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd.spawn().unwrap()
    };
    let mut outputs: Vec<Value> = Vec::new();
    let mut children: Vec<_> = (0..WORKERS).map(worker).collect();
    // Kill worker 0 once it has finished a few images.
    {
        let victim = &mut children[0];
        let mut reader = BufReader::new(victim.stdout.take().unwrap());
        let mut seen = 0;
        let mut line = String::new();
        while seen < 5 && reader.read_line(&mut line).unwrap() > 0 {
            outputs.push(serde_json::from_str(line.trim()).unwrap());
            line.clear();
            seen += 1;
        }
        victim.kill().unwrap();
        victim.wait().unwrap();
    }
    for child in children.into_iter().skip(1) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        outputs.extend(lines(&out.stdout));
    }
    let rerun = worker(0).wait_with_output().unwrap();
    assert!(rerun.status.success());
    let rerun_lines = lines(&rerun.stdout);
    assert!(
        rerun_lines.iter().any(|l| l["journal"] == true),
        "the rerun did not use its journal"
    );
    outputs.extend(rerun_lines);

    let named: BTreeSet<&str> = outputs
        .iter()
        .filter_map(|l| l["source"].as_str())
        .collect();
    assert_eq!(
        named,
        refs.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    // Exactly once: every journal together records each image `changed` once, and each image
    // holds the added recipient once.
    let mut changed: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..WORKERS {
        let text = fs::read_to_string(tmp.path().join(format!("journal-{i}"))).unwrap();
        for entry in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            if entry["status"] == "changed" {
                *changed
                    .entry(entry["source"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(changed.len(), IMAGES);
    assert!(changed.values().all(|n| *n == 1), "{changed:?}");
    let inspect = layercrypt()
        .args(["inspect", "--json-lines", "--from-file"])
        .arg(&list)
        .output()
        .unwrap();
    for line in lines(&inspect.stdout)
        .iter()
        .filter(|l| l.get("summary").is_none())
    {
        for layer in line["images"][0]["manifests"][0]["layers"]
            .as_array()
            .unwrap()
        {
            assert_eq!(layer["recipients"].as_array().unwrap().len(), 2, "{line:#}");
        }
    }
}

/// A key leaked: `inspect --by-recipient --recipient ID` lists exactly the images it opens,
/// and that list feeds `rekey --rotate --set … --from-file -`; afterwards it opens nothing.
#[test]
fn a_leaked_key_is_found_and_rotated_out_of_every_image_it_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let mut refs = Vec::new();
    for (name, recipients) in [
        ("a", vec!["rsa2048.pub.pem", "ec256.pub.pem"]),
        ("b", vec!["rsa2048.pub.pem"]),
        ("c", vec!["rsa2048.pub.pem", "ec256.pub.pem"]),
    ] {
        let out = tmp.path().join(name);
        let mut cmd = layercrypt();
        cmd.args(["encrypt", "-q"]);
        for r in recipients {
            cmd.args(["-r", &jwe(r)]);
        }
        cmd.arg(oci(&testdata("images/plain"), "v1"))
            .arg(oci(&out, "v1"))
            .assert()
            .success();
        refs.push(oci(&out, "v1"));
    }
    let all = tmp.path().join("all.txt");
    fs::write(&all, refs.join("\n")).unwrap();
    let view = layercrypt()
        .args(["inspect", "--by-recipient", "--json", "--from-file"])
        .arg(&all)
        .output()
        .unwrap();
    assert!(view.status.success(), "{}", stderr_of(&view));
    let view: Value = serde_json::from_slice(&view.stdout).unwrap();
    let leaked = view["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["info"]["curve"] == "P-256")
        .unwrap_or_else(|| panic!("{view:#}"));
    let id = leaked["remove"].as_str().unwrap().to_string();
    assert_eq!(leaked["images"].as_array().unwrap().len(), 2, "{leaked:#}");

    let list = layercrypt()
        .args([
            "inspect",
            "--by-recipient",
            "--recipient",
            &id,
            "--from-file",
        ])
        .arg(&all)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    let listed: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(listed, [refs[0].as_str(), refs[2].as_str()], "{text}");

    let rotate = layercrypt()
        .args([
            "rekey",
            "--json-lines",
            "-k",
            &key("rsa2048.pem"),
            "--rotate",
        ])
        .args(["--set", &jwe("rsa2048.pub.pem"), "--from-file", "-"])
        .write_stdin(text.clone())
        .output()
        .unwrap();
    assert!(rotate.status.success(), "{}", stderr_of(&rotate));
    let done = lines(&rotate.stdout);
    assert_eq!(done.len(), 3, "{done:#?}");
    assert!(
        done[..2].iter().all(|l| l["status"] == "changed"),
        "{done:#?}"
    );

    let after = layercrypt()
        .args([
            "inspect",
            "--by-recipient",
            "--recipient",
            &id,
            "--from-file",
        ])
        .arg(&all)
        .output()
        .unwrap();
    let after = String::from_utf8_lossy(&after.stdout).into_owned();
    assert_eq!(
        after.lines().filter(|l| !l.starts_with('#')).count(),
        0,
        "{after}"
    );
}

// ------------------------------------------------------------------------------------------
// The cluster examples (examples/kubernetes, examples/argo)

/// A YAML file of the repository, as JSON.
fn yaml(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    serde_saphyr::from_str(&fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The string values of a YAML sequence.
fn strs(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The value following `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args.iter().position(|a| a == flag);
    at.and_then(|i| args.get(i + 1))
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
}

/// The kind of volume (`configMap`, `secret`, `persistentVolumeClaim`, …) mounted at the
/// longest mount path of `container` that `path` lies under.
fn volume_kind(volumes: &Value, container: &Value, path: &str) -> String {
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| path.starts_with(m["mountPath"].as_str().unwrap()))
        .max_by_key(|m| m["mountPath"].as_str().unwrap().len())
        .unwrap_or_else(|| panic!("{path} is on no volume"));
    let volume = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let kinds: Vec<&String> = volume
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "name")
        .collect();
    kinds[0].clone()
}

/// The validators (kubernetes-validate in strict mode for two Kubernetes releases, hera's
/// generated Argo Workflows models with unknown fields refused) accept every example, after
/// refusing broken copies of them; see scripts/validate_examples.py.
#[test]
fn the_cluster_examples_are_valid_against_the_upstream_schemas() {
    let out =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-examples.sh"))
            .output()
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr_of(&out));
    for expected in [
        "examples/kubernetes/job.yaml: Job layercrypt-rekey: valid",
        "examples/kubernetes/config.yaml: ConfigMap layercrypt-images: valid",
        "examples/kubernetes/secrets.yaml: Secret layercrypt-keys: valid",
        "examples/kubernetes/journal-pvc.yaml: PersistentVolumeClaim layercrypt-journals: valid",
        "examples/argo/workflow.yaml: Workflow layercrypt-rekey-: valid",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
}

/// The Job and the Workflow say what the README promises (N shards of the list from a
/// ConfigMap, keys from Secrets, journals on a volume, exit 3 retried, 2 failed at once), and
/// their command lines, run here as N local workers on layouts, re-key a fleet exactly once,
/// the Workflow's resuming from the Job's journals.
#[test]
fn the_cluster_examples_run_as_shards_of_one_fleet() {
    let job = yaml("examples/kubernetes/job.yaml");
    let spec = &job["spec"];
    let shards = spec["completions"].as_u64().unwrap() as usize;
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["parallelism"].as_u64(), Some(shards as u64));
    assert!(spec["backoffLimitPerIndex"].as_u64().unwrap() > 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let action_for = |code: u64| {
        spec["podFailurePolicy"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["onExitCodes"]["operator"] == "In"
                    && r["onExitCodes"]["containerName"] == container["name"]
                    && r["onExitCodes"]["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v.as_u64() == Some(code))
            })
            .map(|r| r["action"].as_str().unwrap().to_string())
    };
    assert_eq!(action_for(3).as_deref(), Some("Count"), "exit 3 is retried");
    assert_eq!(
        action_for(2).as_deref(),
        Some("FailIndex"),
        "exit 2 fails fast"
    );
    assert_eq!(action_for(1).as_deref(), Some("FailIndex"));
    let job_args = strs(&container["args"]);
    assert_eq!(job_args[0], "rekey");
    assert_eq!(
        flag(&job_args, "--shard"),
        format!("$(JOB_COMPLETION_INDEX)/{shards}")
    );
    assert!(flag(&job_args, "--journal").contains("$(JOB_COMPLETION_INDEX)"));
    let volumes = &pod["volumes"];
    let on = |path: &str| volume_kind(volumes, container, path);
    assert_eq!(on(flag(&job_args, "--from-file")), "configMap");
    assert_eq!(on(flag(&job_args, "--key")), "secret");
    assert_eq!(on(flag(&job_args, "--authfile")), "secret");
    assert_eq!(on(flag(&job_args, "--journal")), "persistentVolumeClaim");
    assert!(job_args.iter().any(|a| a == "--json-lines"));

    let workflow = yaml("examples/argo/workflow.yaml");
    let templates = workflow["spec"]["templates"].as_array().unwrap();
    let shard = templates
        .iter()
        .find(|t| t.get("container").is_some())
        .unwrap();
    assert!(
        shard["retryStrategy"]["expression"]
            .as_str()
            .unwrap()
            .contains("asInt(lastRetry.exitCode) == 3"),
        "{shard:#}"
    );
    let argo_shards: usize = workflow["spec"]["arguments"]["parameters"][0]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(argo_shards, shards);
    let argo_args = strs(&shard["container"]["args"]);
    // The same command as the Job's, with Argo's placeholders for the index and the count.
    let as_job = |a: &String| {
        a.replace("{{inputs.parameters.index}}", "$(JOB_COMPLETION_INDEX)")
            .replace("{{workflow.parameters.shards}}", &shards.to_string())
    };
    assert_eq!(argo_args.iter().map(as_job).collect::<Vec<_>>(), job_args);
    assert_eq!(
        volume_kind(
            &workflow["spec"]["volumes"],
            &shard["container"],
            flag(&argo_args, "--journal")
        ),
        "persistentVolumeClaim"
    );

    // Play the cluster: the Job's command line for every index, on layouts.
    let tmp = tempfile::tempdir().unwrap();
    let (refs, list) = fleet(tmp.path(), 40);
    let journals = tmp.path().join("journals");
    fs::create_dir(&journals).unwrap();
    fs::write(tmp.path().join("auth.json"), "{\"auths\":{}}").unwrap();
    let local = |arg: &str, index: usize| {
        arg.replace("/etc/layercrypt/images.txt", list.to_str().unwrap())
            .replace("/etc/layercrypt/keys/ops.pem", &key("rsa2048.pem"))
            .replace(
                "/etc/layercrypt/recipients/new-team.pub.pem",
                &key("ec256.pub.pem"),
            )
            .replace(
                "/etc/layercrypt/auth/config.json",
                tmp.path().join("auth.json").to_str().unwrap(),
            )
            .replace("/var/lib/layercrypt", journals.to_str().unwrap())
            .replace("$(JOB_COMPLETION_INDEX)", &index.to_string())
            .replace("{{inputs.parameters.index}}", &index.to_string())
            .replace("{{workflow.parameters.shards}}", &shards.to_string())
    };
    let run = |args: &[String], index: usize| {
        Command::new(env!("CARGO_BIN_EXE_layercrypt"))
            .args(args.iter().map(|a| local(a, index)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let workers: Vec<_> = (0..shards).map(|i| run(&job_args, i)).collect();
    let mut changed: BTreeMap<String, usize> = BTreeMap::new();
    for worker in workers {
        let out = worker.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        for line in lines(&out.stdout) {
            if line["status"] == "changed" {
                *changed
                    .entry(line["source"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    assert_eq!(
        changed.keys().cloned().collect::<BTreeSet<_>>(),
        refs.into_iter().collect::<BTreeSet<_>>()
    );
    assert!(changed.values().all(|n| *n == 1), "{changed:?}");
    // The Workflow's step for every index, on the same journals: all done already.
    for i in 0..shards {
        let out = run(&argo_args, i).wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let lines = lines(&out.stdout);
        let (summary, images) = lines.split_last().unwrap();
        assert!(images.iter().all(|l| l["journal"] == true), "{lines:#?}");
        assert_eq!(
            summary["summary"]["from_journal"].as_u64(),
            Some(images.len() as u64),
            "{summary:#}"
        );
    }
}
