//! The Helm chart `charts/certsmith`: `helm lint`, `helm template` (values switches, no `*` in
//! RBAC), a server-side dry run of its output, `helm install` on the local control plane, and
//! the proof that its RBAC is enough: the real controller binary, authenticated as the chart's
//! ServiceAccount, issues a SelfSigned and an ACME (HTTP-01, Pebble) certificate.
//!
//! helm comes from `e2e/tools.sh helm` (built from the Go module proxy into the tools cache).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use certsmith::api::certificate::Certificate;
use certsmith::api::issuer::Issuer;
use certsmith_e2e::ControlPlane;
use certsmith_e2e::stack::Stack;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kube::api::Api;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    repo().join("charts/certsmith")
}

/// helm's path: `e2e/tools.sh helm` builds it once if the cache lacks it.
fn helm_path() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new(repo().join("e2e/tools.sh"))
            .arg("helm")
            .stderr(Stdio::inherit())
            .output()
            .expect("running e2e/tools.sh helm");
        assert!(out.status.success(), "e2e/tools.sh helm failed");
        let path = String::from_utf8(out.stdout).unwrap();
        let path = PathBuf::from(path.lines().last().expect("tools.sh printed helm's path"));
        assert!(path.is_file(), "{} is not a file", path.display());
        path
    })
}

/// A helm command with its state (cache, config, data) in a directory of its own.
fn helm() -> Command {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut cmd = Command::new(helm_path());
    cmd.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `helm template` of the chart with `--set` values, as YAML text.
fn template_text(release: &str, namespace: &str, set: &[&str]) -> String {
    let mut cmd = helm();
    cmd.args(["template", release])
        .arg(chart())
        .args(["--namespace", namespace]);
    for s in set {
        cmd.args(["--set", s]);
    }
    run(cmd, "helm template")
}

/// `helm template` parsed into its objects.
fn template(set: &[&str]) -> Vec<Value> {
    let text = template_text("certsmith", "certsmith", set);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("helm template is YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// Panics if a rule grants `*` (or nothing) in verbs, resources or apiGroups.
fn assert_no_wildcards(what: &str, rules: &[PolicyRule]) {
    assert!(!rules.is_empty(), "{what} has no rules");
    for rule in rules {
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        for (field, values) in [
            ("verbs", &rule.verbs),
            ("resources", &resources),
            ("apiGroups", &groups),
        ] {
            assert!(
                !values.iter().any(|v| v.contains('*')),
                "{what} has a rule with `*` in {field}: {rule:?}"
            );
        }
        assert!(
            !resources.is_empty() && !rule.verbs.is_empty(),
            "{what}: {rule:?}"
        );
        assert!(
            rule.non_resource_urls.is_none(),
            "{what} grants non-resource URLs: {rule:?}"
        );
    }
}

fn rules_of(object: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(object["rules"].clone()).expect("rules are PolicyRules")
}

#[test]
fn chart_crds_are_copies_of_the_crds_directory() {
    let read = |dir: PathBuf| -> BTreeMap<String, String> {
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect()
    };
    let crds = read(repo().join("crds"));
    let copies = read(chart().join("crds-files"));
    assert_eq!(
        crds.keys().collect::<Vec<_>>(),
        copies.keys().collect::<Vec<_>>(),
        "charts/certsmith/crds-files must hold the files of crds/: cp crds/*.yaml charts/certsmith/crds-files/"
    );
    for (name, text) in &crds {
        assert!(
            copies[name] == *text,
            "charts/certsmith/crds-files/{name} differs from crds/{name}: cp crds/*.yaml charts/certsmith/crds-files/"
        );
    }
}

#[test]
fn chart_versions_follow_the_crate() {
    let text = std::fs::read_to_string(chart().join("Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn helm_lint_passes() {
    let mut cmd = helm();
    cmd.args(["lint", "--strict"]).arg(chart());
    run(cmd, "helm lint --strict");
    // The optional parts lint too.
    let mut cmd = helm();
    cmd.args(["lint", "--strict"]).arg(chart()).args([
        "--set",
        "prometheus.servicemonitor.enabled=true",
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "replicaCount=2",
    ]);
    run(cmd, "helm lint --strict (all optional parts)");
}

#[test]
fn default_values_render_the_controller_restricted_and_with_its_crds() {
    let objects = template(&[]);
    let crds = of_kind(&objects, "CustomResourceDefinition");
    assert_eq!(crds.len(), 6, "the six CRDs are installed by default");
    for crd in &crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "crds.keep defaults to true"
        );
    }
    let deployments = of_kind(&objects, "Deployment");
    assert_eq!(deployments.len(), 1);
    let pod = &deployments[0]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let image = format!("ghcr.io/certsmith/certsmith:{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(container["image"], image.as_str());
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "controller",
            "--cluster-resource-namespace=certsmith",
            &format!("--acme-http01-solver-image={image}"),
        ]
    );
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["POD_NAME", "POD_NAMESPACE"]);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"port": "http-healthz", "path": "/healthz", "scheme": "HTTP"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"port": "http-healthz", "path": "/readyz", "scheme": "HTTP"})
    );
    assert_eq!(container["ports"][1]["containerPort"], 9403);
    let sc = &container["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let services = of_kind(&objects, "Service");
    assert_eq!(services.len(), 1);
    assert_eq!(
        services[0]["spec"]["ports"][0],
        json!({"name": "http-metrics", "port": 9402, "targetPort": "http-metrics", "protocol": "TCP"})
    );
    assert!(of_kind(&objects, "ServiceMonitor").is_empty());
    assert!(of_kind(&objects, "PodDisruptionBudget").is_empty());
    // Leases only in the release namespace.
    let roles = of_kind(&objects, "Role");
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["metadata"]["namespace"], "certsmith");
    assert_eq!(
        roles[0]["rules"][0]["apiGroups"],
        json!(["coordination.k8s.io"])
    );
    assert_eq!(roles[0]["rules"][0]["resources"], json!(["leases"]));
}

#[test]
fn values_switch_the_optional_parts() {
    let objects = template(&[
        "crds.enabled=false",
        "prometheus.servicemonitor.enabled=true",
        "podDisruptionBudget.enabled=true",
        "replicaCount=2",
        "clusterResourceNamespace=cert-secrets",
        "disableAutoApproval=true",
        "extraArgs={--log-format=json}",
        "image.tag=test",
    ]);
    assert!(of_kind(&objects, "CustomResourceDefinition").is_empty());
    assert_eq!(of_kind(&objects, "ServiceMonitor").len(), 1);
    let pdb = of_kind(&objects, "PodDisruptionBudget");
    assert_eq!(pdb.len(), 1);
    assert_eq!(pdb[0]["spec"]["minAvailable"], 1);
    let deployment = of_kind(&objects, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        json!([
            "controller",
            "--cluster-resource-namespace=cert-secrets",
            "--acme-http01-solver-image=ghcr.io/certsmith/certsmith:test",
            "--disable-auto-approval",
            "--log-format=json",
        ])
    );
    let objects = template(&["crds.keep=false"]);
    for crd in of_kind(&objects, "CustomResourceDefinition") {
        assert!(crd["metadata"]["annotations"]["helm.sh/resource-policy"].is_null());
    }
    let objects = template(&["serviceAccount.create=false", "serviceAccount.name=mine"]);
    assert!(of_kind(&objects, "ServiceAccount").is_empty());
    let binding = of_kind(&objects, "ClusterRoleBinding")[0];
    assert_eq!(binding["subjects"][0]["name"], "mine");
}

#[test]
fn rbac_rules_use_no_wildcards() {
    let objects = template(&[]);
    let cluster_roles = of_kind(&objects, "ClusterRole");
    assert_eq!(cluster_roles.len(), 1);
    assert_no_wildcards("the chart's ClusterRole", &rules_of(cluster_roles[0]));
    for role in of_kind(&objects, "Role") {
        assert_no_wildcards("the chart's Role", &rules_of(role));
    }
    // The check itself catches a wildcard.
    let wildcard: Vec<PolicyRule> = serde_json::from_value(
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]),
    )
    .unwrap();
    let caught = std::panic::catch_unwind(|| assert_no_wildcards("a test rule", &wildcard));
    assert!(caught.is_err(), "a `*` verb must fail the check");
}

/// Pipes `input` into `kubectl <args>` of the control plane.
fn kubectl_stdin(cp: &ControlPlane, args: &[&str], input: &str) -> String {
    let mut cmd = cp.kubectl();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running kubectl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_template_passes_a_server_side_dry_run() {
    let cp = ControlPlane::shared();
    let namespace = cp.create_namespace("helm-dry-run").await.unwrap();
    let text = template_text(
        "certsmith-dry-run",
        &namespace,
        &["podDisruptionBudget.enabled=true", "replicaCount=2"],
    );
    let out = kubectl_stdin(cp, &["apply", "--dry-run=server", "-f", "-"], &text);
    for kind in [
        "customresourcedefinition.apiextensions.k8s.io/certificates.cert-manager.io",
        "deployment.apps/certsmith-dry-run",
        "clusterrole.rbac.authorization.k8s.io/certsmith-dry-run-controller",
        "role.rbac.authorization.k8s.io/certsmith-dry-run-leader-election",
        "service/certsmith-dry-run",
        "serviceaccount/certsmith-dry-run",
        "poddisruptionbudget.policy/certsmith-dry-run",
    ] {
        assert!(
            out.contains(kind),
            "{kind} missing from the dry run:\n{out}"
        );
    }
}

/// A kubeconfig that authenticates with `token` (a ServiceAccount's) to the control plane.
fn token_kubeconfig(cp: &ControlPlane, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(cp.serving_ca_pem());
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": cp.apiserver_url(),
            "certificate-authority-data": ca,
        }}],
        "users": [{"name": "certsmith", "user": {"token": token}}],
        "contexts": [{"name": "certsmith", "context": {"cluster": "local", "user": "certsmith"}}],
        "current-context": "certsmith",
    });
    // JSON is YAML.
    serde_json::to_string_pretty(&config).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_install_then_the_controller_issues_with_the_chart_service_account() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let release_ns = cp.create_namespace("certsmith").await.unwrap();
    let release = "certsmith-e2e";

    // The control plane has the CRDs already (from crds/, not owned by a release).
    let mut cmd = helm();
    cmd.args(["install", release])
        .arg(chart())
        .args(["--namespace", &release_ns])
        .arg("--kubeconfig")
        .arg(cp.kubeconfig_path())
        .args(["--set", "crds.enabled=false"]);
    let out = run(cmd, "helm install");
    assert!(out.contains("STATUS: deployed"), "{out}");

    // What was installed, as the API server has it.
    let cluster_role = Api::<ClusterRole>::all(client.clone())
        .get(&format!("{release}-controller"))
        .await
        .expect("the chart's ClusterRole");
    assert_no_wildcards(
        "the installed ClusterRole",
        cluster_role.rules.as_deref().unwrap_or_default(),
    );
    let role = Api::<Role>::namespaced(client.clone(), &release_ns)
        .get(&format!("{release}-leader-election"))
        .await
        .expect("the chart's leader-election Role");
    assert_no_wildcards(
        "the installed Role",
        role.rules.as_deref().unwrap_or_default(),
    );
    let mut cmd = cp.kubectl();
    cmd.args([
        "get",
        "deployment,serviceaccount,service",
        "-n",
        &release_ns,
        "-o",
        "name",
    ]);
    let names = run(cmd, "kubectl get");
    for name in [
        format!("deployment.apps/{release}"),
        format!("serviceaccount/{release}"),
        format!("service/{release}"),
    ] {
        assert!(names.contains(&name), "{name} not installed:\n{names}");
    }

    // A token for the chart's ServiceAccount (TokenRequest API) and a kubeconfig with it.
    let mut cmd = cp.kubectl();
    cmd.args([
        "create",
        "token",
        release,
        "-n",
        &release_ns,
        "--duration=1h",
    ]);
    let token = run(cmd, "kubectl create token").trim().to_owned();
    let dir = cp.work_dir().join(format!("helm-{release_ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, token_kubeconfig(cp, &token)).unwrap();

    // The stand-in kubelet and ingress controller of the HTTP-01 stack, without the stack's own
    // (admin) controller: only the chart-authorised one below reconciles.
    let stack = Stack::shared(env!("CARGO_BIN_EXE_certsmith"));
    stack.kill_controller();

    // The real controller, cluster-wide, with only the chart's permissions: the stack's command
    // line (solver image, self-check nameservers, debug logs) with the ServiceAccount's kubeconfig.
    let template = stack.controller_command();
    let mut args: Vec<OsString> = template.get_args().map(OsString::from).collect();
    let at = args
        .iter()
        .position(|a| a == "--kubeconfig")
        .expect("the stack passes --kubeconfig");
    args[at + 1] = kubeconfig.clone().into_os_string();
    let log = dir.join("certsmith.log");
    let mut cmd = Command::new(template.get_program());
    cmd.args(args)
        .arg(format!("--cluster-resource-namespace={release_ns}"))
        .env("POD_NAME", "certsmith-e2e-0")
        .env("POD_NAMESPACE", &release_ns);
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let controller = certsmith_e2e::process::spawn("certsmith-helm", cmd, &log).unwrap();

    // A SelfSigned Issuer and a Certificate, created by the admin.
    let namespace = cp.create_namespace("helm-issue").await.unwrap();
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &namespace);
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": "selfsigned"}, "spec": {"selfSigned": {}}}),
    )
    .await;
    let certificates: Api<Certificate> = Api::namespaced(client.clone(), &namespace);
    create(
        &certificates,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "web"},
               "spec": {"secretName": "web-tls", "commonName": "web.example.com",
                        "dnsNames": ["web.example.com"],
                        "issuerRef": {"name": "selfsigned", "kind": "Issuer"}}}),
    )
    .await;
    let ready = tokio::time::timeout(
        TIMEOUT,
        wait_for(
            &certificates,
            "web",
            TIMEOUT * 2,
            "Certificate Ready=True",
            is_ready,
        ),
    )
    .await;
    if ready.is_err() {
        panic!(
            "the Certificate did not become Ready; controller log:\n{}",
            controller.log_tail(60)
        );
    }
    let secret = Api::<Secret>::namespaced(client.clone(), &namespace)
        .get("web-tls")
        .await
        .expect("the Certificate's Secret");
    assert!(secret_text(&secret, "tls.crt").contains("BEGIN CERTIFICATE"));
    assert!(secret_text(&secret, "tls.key").contains("PRIVATE KEY"));

    // An ACME certificate through Pebble and HTTP-01: solver Pod, Service and Ingress, Order,
    // Challenge, account key Secret.
    let spec = acme_spec(
        &cp.pebble().directory_url(),
        cp.pebble().ca_pem(),
        "pebble-account",
    );
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": "pebble"}, "spec": spec}),
    )
    .await;
    let host = format!("helm.{namespace}.certsmith.test");
    create(
        &certificates,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "acme"},
               "spec": {"secretName": "acme-tls", "dnsNames": [host],
                        "privateKey": {"algorithm": "ECDSA", "size": 256},
                        "issuerRef": {"name": "pebble", "kind": "Issuer"}}}),
    )
    .await;
    let ready = tokio::time::timeout(
        ISSUANCE_TIMEOUT,
        wait_for(
            &certificates,
            "acme",
            ISSUANCE_TIMEOUT * 2,
            "Certificate Ready=True",
            is_ready,
        ),
    )
    .await;
    if ready.is_err() {
        panic!(
            "the ACME Certificate did not become Ready; controller log:\n{}",
            controller.log_tail(80)
        );
    }
    let secret = Api::<Secret>::namespaced(client.clone(), &namespace)
        .get("acme-tls")
        .await
        .expect("the ACME Certificate's Secret");
    assert!(secret_text(&secret, "tls.crt").contains("BEGIN CERTIFICATE"));
    controller
        .check_running()
        .expect("the controller is still running");

    // Nothing the controller did was refused.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("forbidden") && !text.contains("Forbidden"),
        "the controller was refused something with the chart's RBAC:\n{text}"
    );
    drop(controller);

    let mut cmd = helm();
    cmd.args(["uninstall", release, "--namespace", &release_ns])
        .arg("--kubeconfig")
        .arg(cp.kubeconfig_path());
    run(cmd, "helm uninstall");
}
