//! The demo: a local control plane, Pebble as the ACME CA, certsmith as a process, and one
//! Certificate issued through real HTTP-01 validation, with progress shown as it happens.
//!
//!     cargo run -p certsmith-e2e --bin demo -- target/debug/certsmith
//!
//! (`make demo` builds everything first.) Everything it starts stops when it exits.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certsmith_e2e::ControlPlane;
use certsmith_e2e::stack::{ControllerOptions, Stack};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const NAMESPACE: &str = "demo";
const DNS_NAMES: [&str; 2] = ["demo.certsmith.test", "www.demo.certsmith.test"];

fn main() -> std::process::ExitCode {
    match demo() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn demo() -> anyhow::Result<()> {
    let certsmith = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: demo <path to the certsmith binary>")?,
    );
    // The stand-in kubelet runs this binary from the control plane's work dir.
    let certsmith = certsmith.canonicalize().unwrap_or(certsmith);
    if !certsmith.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --bin certsmith`",
            certsmith.display()
        );
    }
    step("Starting the local control plane: etcd, kube-apiserver, kube-controller-manager, Pebble");
    let started = Instant::now();
    let cp = ControlPlane::shared();
    done(&format!(
        "up in {:.1}s; the ACME directory is {}",
        started.elapsed().as_secs_f64(),
        cp.pebble().directory_url()
    ));

    step("Starting certsmith, a stand-in kubelet and a stand-in ingress controller");
    let stack = Stack::start(cp, &certsmith, ControllerOptions::default())?;
    done(&format!(
        "certsmith's log: {}; metrics: {}",
        cp.work_dir().join("certsmith-controller-0.log").display(),
        stack.metrics_url()
    ));

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(&stack))
}

async fn run(stack: &Stack) -> anyhow::Result<()> {
    let cp = stack.control_plane();
    let client = cp.client().await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;

    step("Applying a ClusterIssuer for the ACME server and a Certificate");
    let issuer = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
        "metadata": {"name": "pebble"},
        "spec": {"acme": {
            "server": cp.pebble().directory_url(),
            "email": "demo@certsmith.test",
            "caBundle": base64(cp.pebble().ca_pem()),
            "profile": "default",
            "privateKeySecretRef": {"name": "pebble-account-key"},
            "solvers": [{"http01": {"ingress": {"ingressClassName": "stand-in"}}}]
        }}
    });
    let certificate = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "demo", "namespace": NAMESPACE},
        "spec": {
            "secretName": "demo-tls",
            "dnsNames": DNS_NAMES,
            "issuerRef": {"name": "pebble", "kind": "ClusterIssuer"}
        }
    });
    print_yaml(&issuer);
    print_yaml(&certificate);
    apply(&client, &issuer).await?;
    let created = Instant::now();
    apply(&client, &certificate).await?;

    step("Waiting for the Certificate to become Ready");
    let mut seen = BTreeSet::new();
    let deadline = created + Duration::from_secs(120);
    loop {
        for line in progress(&client).await? {
            if seen.insert(line.clone()) {
                println!("    {:>5.1}s  {line}", created.elapsed().as_secs_f64());
            }
        }
        if ready(&client).await? {
            break;
        }
        if Instant::now() > deadline {
            bail!("the Certificate is not Ready after 120s; see certsmith's log above");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done(&format!(
        "Ready {:.1}s after the Certificate was created",
        created.elapsed().as_secs_f64()
    ));

    step("The issued certificate (Secret demo/demo-tls)");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), NAMESPACE);
    let secret = secrets.get("demo-tls").await?;
    let data = secret.data.unwrap_or_default();
    let crt = String::from_utf8(data.get("tls.crt").context("tls.crt")?.0.clone())?;
    describe(&crt)?;
    println!(
        "    Secret keys: {}",
        data.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    step("Stopping everything");
    Ok(())
}

fn resource(kind: &str) -> ApiResource {
    let group = if matches!(kind, "Order" | "Challenge") {
        "acme.cert-manager.io"
    } else {
        "cert-manager.io"
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1", kind))
}

async fn apply(client: &kube::Client, obj: &Value) -> anyhow::Result<()> {
    let kind = obj["kind"].as_str().unwrap();
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource(kind)),
        None => Api::all_with(client.clone(), &resource(kind)),
    };
    api.create(
        &PostParams::default(),
        &serde_json::from_value(obj.clone())?,
    )
    .await?;
    Ok(())
}

/// One line per object and state, e.g. `Order demo-1-123: pending`.
async fn progress(client: &kube::Client) -> anyhow::Result<Vec<String>> {
    let mut lines = vec![];
    for kind in ["Certificate", "CertificateRequest", "Order", "Challenge"] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NAMESPACE, &resource(kind));
        for obj in api.list(&ListParams::default()).await? {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let status = &obj.data["status"];
            let state = match kind {
                "Order" | "Challenge" => {
                    let state = status["state"].as_str().unwrap_or("");
                    let reason = status["reason"].as_str().unwrap_or("");
                    if state.is_empty() && reason.is_empty() {
                        continue;
                    } else {
                        format!("{state} {reason}")
                    }
                }
                _ => {
                    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
                    if conditions.is_empty() {
                        continue;
                    }
                    conditions
                        .iter()
                        .map(|c| {
                            format!(
                                "{}={} ({})",
                                c["type"].as_str().unwrap_or(""),
                                c["status"].as_str().unwrap_or(""),
                                c["reason"].as_str().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            lines.push(format!("{kind} {name}: {}", state.trim()));
        }
    }
    Ok(lines)
}

async fn ready(client: &kube::Client) -> anyhow::Result<bool> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource("Certificate"));
    let cert = api.get("demo").await?;
    Ok(cert.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        }))
}

/// Prints subject, SANs, issuer and validity with openssl-like wording, read with the same
/// X.509 parser certsmith uses (through the `x509-parser` crate).
fn describe(chain_pem: &str) -> anyhow::Result<()> {
    let blocks = pem::parse_many(chain_pem)?;
    let leaf = blocks.first().context("no certificate in tls.crt")?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.contents())?;
    let sans: Vec<String> = cert
        .subject_alternative_name()?
        .map(|san| san.value.general_names.iter().map(general_name).collect())
        .unwrap_or_default();
    println!(
        "    Subject:    {}",
        display_or(
            cert.subject().to_string(),
            "(empty: the names are in the SANs)"
        )
    );
    println!("    SANs:       {}", sans.join(", "));
    println!("    Issuer:     {}", cert.issuer());
    println!("    Not before: {}", cert.validity().not_before);
    println!("    Not after:  {}", cert.validity().not_after);
    println!("    Serial:     {}", cert.raw_serial_as_string());
    println!("    Chain:      {} certificates", blocks.len());
    Ok(())
}

fn general_name(name: &x509_parser::extensions::GeneralName) -> String {
    use x509_parser::extensions::GeneralName;
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => format!(
                "IP:{}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).unwrap())
            ),
            16 => format!(
                "IP:{}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).unwrap())
            ),
            _ => "IP:?".into(),
        },
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        other => other.to_string(),
    }
}

fn display_or(s: String, fallback: &str) -> String {
    if s.is_empty() { fallback.to_owned() } else { s }
}

fn print_yaml(obj: &Value) {
    let mut obj = obj.clone();
    if obj["spec"]["acme"]["caBundle"].is_string() {
        obj["spec"]["acme"]["caBundle"] = Value::from("<base64 of Pebble's CA certificate>");
    }
    let yaml = serde_saphyr::to_string(&obj).unwrap_or_default();
    for line in yaml.lines() {
        println!("    | {line}");
    }
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn step(text: &str) {
    println!("\n==> {text}");
}

fn done(text: &str) {
    println!("    {text}");
}
