//! The Pod, Service and Ingress of an HTTP-01 challenge, built exactly as cert-manager builds
//! them (same labels, names, ports and annotations), so that either controller recognises the
//! other's solver objects, and tooling written for cert-manager keeps working. Pure: no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector, Pod,
    PodSecurityContext, PodSpec, ResourceRequirements, SeccompProfile, SecurityContext, Service,
    ServicePort, ServiceSpec,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Http01Error, Http01Settings};
use crate::api::Challenge;
use crate::api::acme::{
    AcmeChallengeSolverHttp01Ingress, AcmeChallengeSolverHttp01PodSecurityContext,
    AcmeChallengeSolverHttp01PodTemplate,
};
use crate::api::challenge::ChallengeType;
use crate::api::meta::{ACME_GROUP, VERSION};

/// The port the solver listens on, in the Pod, the Service and the Ingress backend.
pub const SOLVER_PORT: i32 = 8089;
/// `metadata.generateName` of every solver object.
pub const GENERATE_NAME: &str = "cm-acme-http-solver-";
/// The name of the solver container (cert-manager's).
pub const CONTAINER_NAME: &str = "acmesolver";
/// The path under which ACME servers fetch HTTP-01 key authorizations (RFC 8555 §8.3).
pub const CHALLENGE_PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// Label: adler32 of the challenge's `dnsName`, in decimal.
pub const DOMAIN_LABEL: &str = "acme.cert-manager.io/http-domain";
/// Label: adler32 of the challenge's token, in decimal.
pub const TOKEN_LABEL: &str = "acme.cert-manager.io/http-token";
/// Label that marks every HTTP-01 solver object, `"true"`.
pub const SOLVER_LABEL: &str = "acme.cert-manager.io/http01-solver";

const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const WHITELIST_ANNOTATION: &str = "nginx.ingress.kubernetes.io/whitelist-source-range";
/// Suffixes of the annotations that restrict source addresses; a template that sets one of them
/// (for any ingress controller) takes over from the permissive default.
const SOURCE_RANGE_SUFFIXES: [&str; 2] = ["/whitelist-source-range", "/allowlist-source-range"];

/// Adler-32 (RFC 1950 §8.2), the hash cert-manager puts into the domain and token labels.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 is the largest n with 255·n·(n+1)/2 + (n+1)·(MOD−1) < 2^32: the sums cannot overflow
    // before the reduction at the end of each chunk.
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The three labels that identify the solver objects of one challenge (cert-manager's
/// `podLabels`); also the Service's selector.
pub fn identity_labels(challenge: &Challenge) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            DOMAIN_LABEL.to_owned(),
            adler32(challenge.spec.dns_name.as_bytes()).to_string(),
        ),
        (
            TOKEN_LABEL.to_owned(),
            adler32(challenge.spec.token.as_bytes()).to_string(),
        ),
        (SOLVER_LABEL.to_owned(), "true".to_owned()),
    ])
}

/// The label selector (`k=v,…`) that finds the solver objects of one challenge.
pub fn label_selector(challenge: &Challenge) -> String {
    identity_labels(challenge)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The labels of every solver object: the extra labels, then the identity labels, which nothing
/// may override (objects that lost them would never be found again, neither for reuse nor for
/// clean-up).
pub fn object_labels(
    challenge: &Challenge,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = extra.clone();
    labels.extend(identity_labels(challenge));
    labels
}

/// The controller reference from a solver object to its Challenge, so that deleting the
/// Challenge garbage-collects what clean-up missed.
pub fn owner_reference(challenge: &Challenge) -> Result<OwnerReference, Http01Error> {
    let meta = &challenge.metadata;
    Ok(OwnerReference {
        api_version: format!("{ACME_GROUP}/{VERSION}"),
        kind: "Challenge".to_owned(),
        name: meta
            .name
            .clone()
            .ok_or(Http01Error::IncompleteChallenge("metadata.name"))?,
        uid: meta
            .uid
            .clone()
            .ok_or(Http01Error::IncompleteChallenge("metadata.uid"))?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The namespace of the challenge, where its solver objects live.
pub fn namespace(challenge: &Challenge) -> Result<&str, Http01Error> {
    challenge
        .metadata
        .namespace
        .as_deref()
        .ok_or(Http01Error::IncompleteChallenge("metadata.namespace"))
}

/// Whether `meta` says the object is controlled by `challenge` (by UID: a Challenge recreated
/// under the same name is another challenge).
pub fn is_controlled_by(meta: &ObjectMeta, challenge: &Challenge) -> bool {
    let Some(uid) = challenge.metadata.uid.as_deref() else {
        return false;
    };
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// The `http01.ingress` solver of an HTTP-01 challenge.
pub fn ingress_solver(
    challenge: &Challenge,
) -> Result<&AcmeChallengeSolverHttp01Ingress, Http01Error> {
    let http01 = (challenge.spec.type_ == ChallengeType::Http01)
        .then_some(challenge.spec.solver.http01.as_ref())
        .flatten()
        .ok_or(Http01Error::NotHttp01)?;
    match (&http01.ingress, &http01.gateway_http_route) {
        (Some(ingress), _) => Ok(ingress),
        (None, Some(_)) => Err(Http01Error::Unsupported("http01.gatewayHTTPRoute")),
        (None, None) => Err(Http01Error::NotHttp01),
    }
}

/// The `podTemplate` and `serviceType` of an HTTP-01 challenge's solver, Ingress or
/// `gatewayHTTPRoute`.
pub fn pod_and_service_options(
    challenge: &Challenge,
) -> Result<
    (
        Option<&AcmeChallengeSolverHttp01PodTemplate>,
        Option<&String>,
    ),
    Http01Error,
> {
    if let Some(route) = super::httproute::route_solver(challenge) {
        return Ok((route.pod_template.as_ref(), route.service_type.as_ref()));
    }
    let solver = ingress_solver(challenge)?;
    Ok((solver.pod_template.as_ref(), solver.service_type.as_ref()))
}

/// The path the ACME server fetches for `token`.
pub fn challenge_path(token: &str) -> String {
    format!("{CHALLENGE_PATH_PREFIX}{token}")
}

/// The Ingress rule host for an identifier: the name itself, or none (any host) for an IP
/// address, which an Ingress host cannot hold.
pub fn ingress_host(dns_name: &str) -> Option<String> {
    let bare = dns_name.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(_) => None,
        Err(_) => Some(dns_name.to_owned()),
    }
}

fn quantities(pairs: [(&str, &str); 2]) -> BTreeMap<String, Quantity> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
        .collect()
}

/// The solver Pod: the defaults of cert-manager with `podTemplate` merged over them.
pub fn build_pod(challenge: &Challenge, settings: &Http01Settings) -> Result<Pod, Http01Error> {
    let (pod_template, _) = pod_and_service_options(challenge)?;
    let spec = &challenge.spec;
    let container = Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(settings.solver_image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        // The certsmith image's entrypoint is the `certsmith` binary, hence the subcommand.
        args: Some(vec![
            "solver".to_owned(),
            format!("--listen-port={SOLVER_PORT}"),
            format!("--domain={}", spec.dns_name),
            format!("--token={}", spec.token),
            format!("--key={}", spec.key),
        ]),
        // The solver binds the Pod's own address when it knows it; that keeps it off other
        // interfaces, and lets a test stand-in run many solver Pods on one machine.
        env: Some(vec![EnvVar {
            name: "POD_IP".to_owned(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".to_owned()),
                    field_path: "status.podIP".to_owned(),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_owned()),
            container_port: SOLVER_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(quantities([("cpu", "10m"), ("memory", "64Mi")])),
            limits: Some(quantities([("cpu", "100m"), ("memory", "64Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let mut pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some(GENERATE_NAME.to_owned()),
            namespace: Some(namespace(challenge)?.to_owned()),
            labels: Some(object_labels(challenge, &settings.extra_labels)),
            annotations: Some(BTreeMap::from([
                ("sidecar.istio.io/inject".to_owned(), "false".to_owned()),
                (
                    "cluster-autoscaler.kubernetes.io/safe-to-evict".to_owned(),
                    "true".to_owned(),
                ),
            ])),
            owner_references: Some(vec![owner_reference(challenge)?]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("OnFailure".to_owned()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            node_selector: Some(BTreeMap::from([(
                "kubernetes.io/os".to_owned(),
                "linux".to_owned(),
            )])),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(settings.run_as_non_root),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        }),
        status: None,
    };
    if let Some(template) = pod_template {
        merge_pod_template(&mut pod, template);
        // Template labels may add to the identity labels, never replace them.
        pod.metadata
            .labels
            .get_or_insert_default()
            .extend(identity_labels(challenge));
    }
    Ok(pod)
}

/// Merges a solver's `podTemplate` over a solver Pod. Maps merge key by key (the template
/// wins), lists append, single values replace. The security context merges field by field,
/// unlike cert-manager, which replaces it whole: a template that sets only `runAsUser` keeps
/// the seccomp profile and `runAsNonRoot`, so the Pod stays admissible under the "restricted"
/// Pod Security Standard.
pub fn merge_pod_template(pod: &mut Pod, template: &AcmeChallengeSolverHttp01PodTemplate) {
    if let Some(meta) = &template.metadata {
        if let Some(labels) = &meta.labels {
            pod.metadata
                .labels
                .get_or_insert_default()
                .extend(labels.clone());
        }
        if let Some(annotations) = &meta.annotations {
            pod.metadata
                .annotations
                .get_or_insert_default()
                .extend(annotations.clone());
        }
    }
    let (Some(t), Some(spec)) = (&template.spec, pod.spec.as_mut()) else {
        return;
    };
    if let Some(node_selector) = &t.node_selector {
        spec.node_selector
            .get_or_insert_default()
            .extend(node_selector.clone());
    }
    if let Some(affinity) = &t.affinity {
        spec.affinity = Some(affinity.clone());
    }
    if let Some(tolerations) = &t.tolerations {
        spec.tolerations
            .get_or_insert_default()
            .extend(tolerations.iter().cloned());
    }
    if let Some(name) = t.priority_class_name.as_ref().filter(|n| !n.is_empty()) {
        spec.priority_class_name = Some(name.clone());
    }
    if let Some(name) = t.service_account_name.as_ref().filter(|n| !n.is_empty()) {
        spec.service_account_name = Some(name.clone());
    }
    if let Some(secrets) = &t.image_pull_secrets {
        spec.image_pull_secrets
            .get_or_insert_default()
            .extend(secrets.iter().cloned());
    }
    if let Some(sc) = &t.security_context {
        merge_security_context(spec.security_context.get_or_insert_default(), sc);
    }
    if let (Some(r), Some(container)) = (&t.resources, spec.containers.first_mut()) {
        let resources = container.resources.get_or_insert_default();
        let template_requests = r.requests.clone().unwrap_or_default();
        if let Some(limits) = &r.limits {
            resources
                .limits
                .get_or_insert_default()
                .extend(limits.clone());
            // A resource that the template limits without requesting is requested at its
            // limit (Kubernetes' own defaulting), so a lowered limit never falls below the
            // default request.
            let requests = resources.requests.get_or_insert_default();
            for (name, limit) in limits {
                if !template_requests.contains_key(name) {
                    requests.insert(name.clone(), limit.clone());
                }
            }
        }
        resources
            .requests
            .get_or_insert_default()
            .extend(template_requests);
    }
}

fn merge_security_context(
    target: &mut PodSecurityContext,
    t: &AcmeChallengeSolverHttp01PodSecurityContext,
) {
    fn set<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
        if value.is_some() {
            target.clone_from(value);
        }
    }
    set(&mut target.se_linux_options, &t.se_linux_options);
    set(&mut target.run_as_user, &t.run_as_user);
    set(&mut target.run_as_group, &t.run_as_group);
    set(&mut target.run_as_non_root, &t.run_as_non_root);
    set(&mut target.supplemental_groups, &t.supplemental_groups);
    set(&mut target.fs_group, &t.fs_group);
    set(&mut target.sysctls, &t.sysctls);
    set(
        &mut target.fs_group_change_policy,
        &t.fs_group_change_policy,
    );
    set(&mut target.seccomp_profile, &t.seccomp_profile);
}

/// The solver Service: port `http` 8089 to the solver Pod, `NodePort` unless `serviceType` says
/// otherwise (ingress controllers such as ingress-gce need a NodePort).
pub fn build_service(
    challenge: &Challenge,
    settings: &Http01Settings,
) -> Result<Service, Http01Error> {
    let (_, service_type) = pod_and_service_options(challenge)?;
    Ok(Service {
        metadata: ObjectMeta {
            generate_name: Some(GENERATE_NAME.to_owned()),
            namespace: Some(namespace(challenge)?.to_owned()),
            labels: Some(object_labels(challenge, &settings.extra_labels)),
            // Istio must not require mutual TLS from the ACME server.
            annotations: Some(BTreeMap::from([(
                format!("auth.istio.io/{SOLVER_PORT}"),
                "NONE".to_owned(),
            )])),
            owner_references: Some(vec![owner_reference(challenge)?]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(
                service_type
                    .cloned()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "NodePort".to_owned()),
            ),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: SOLVER_PORT,
                target_port: Some(IntOrString::Int(SOLVER_PORT)),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            selector: Some(identity_labels(challenge)),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// The Ingress path that sends the challenge's token path to the solver Service.
pub fn ingress_path(token: &str, service_name: &str) -> HTTPIngressPath {
    HTTPIngressPath {
        path: Some(challenge_path(token)),
        // cert-manager's ACMEHTTP01IngressPathTypeExact gate, on by default since v1.18: an
        // Exact path cannot be shadowed by, or shadow, the application's own prefixes.
        path_type: "Exact".to_owned(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: service_name.to_owned(),
                port: Some(ServiceBackendPort {
                    number: Some(SOLVER_PORT),
                    ..ServiceBackendPort::default()
                }),
            }),
            ..IngressBackend::default()
        },
    }
}

/// The solver Ingress (when the solver names no existing Ingress): one rule for the challenge's
/// host with the challenge path.
pub fn build_ingress(
    challenge: &Challenge,
    settings: &Http01Settings,
    service_name: &str,
) -> Result<Ingress, Http01Error> {
    let solver = ingress_solver(challenge)?;
    let template = solver
        .ingress_template
        .as_ref()
        .and_then(|t| t.metadata.as_ref());
    let template_annotations = template
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    let mut annotations = BTreeMap::new();
    // cert-manager keeps this for existing users whose ingress-nginx would otherwise refuse
    // the ACME server's addresses; a template that restricts the source range replaces it.
    let template_restricts = template_annotations
        .keys()
        .any(|k| SOURCE_RANGE_SUFFIXES.iter().any(|s| k.ends_with(s)));
    if !template_restricts {
        annotations.insert(WHITELIST_ANNOTATION.to_owned(), "0.0.0.0/0,::/0".to_owned());
    }
    if let Some(class) = solver.class.as_ref().filter(|c| !c.is_empty()) {
        annotations.insert(INGRESS_CLASS_ANNOTATION.to_owned(), class.clone());
    }
    annotations.extend(template_annotations);
    let mut labels = object_labels(challenge, &settings.extra_labels);
    if let Some(template_labels) = template.and_then(|m| m.labels.as_ref()) {
        labels.extend(template_labels.clone());
        labels.extend(identity_labels(challenge));
    }
    Ok(Ingress {
        metadata: ObjectMeta {
            generate_name: Some(GENERATE_NAME.to_owned()),
            namespace: Some(namespace(challenge)?.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(challenge)?]),
            ..ObjectMeta::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: solver.ingress_class_name.clone().filter(|c| !c.is_empty()),
            rules: Some(vec![IngressRule {
                host: ingress_host(&challenge.spec.dns_name),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![ingress_path(&challenge.spec.token, service_name)],
                }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    })
}

/// Adds `path` to the rule for `host` of an existing Ingress (first, so that it takes
/// precedence in controllers that match in order), replacing a path with the same value that
/// routes elsewhere, or adds a rule for the host. Returns whether the Ingress changed.
pub fn add_challenge_path(
    ingress: &mut Ingress,
    host: Option<&str>,
    path: HTTPIngressPath,
) -> bool {
    let rules = ingress
        .spec
        .get_or_insert_default()
        .rules
        .get_or_insert_default();
    let same_host =
        |rule: &&mut IngressRule| rule.host.as_deref().unwrap_or("") == host.unwrap_or("");
    match rules.iter_mut().find(same_host) {
        Some(rule) => {
            let paths = &mut rule.http.get_or_insert_default().paths;
            match paths.iter_mut().find(|p| p.path == path.path) {
                Some(existing) if *existing == path => false,
                Some(existing) => {
                    *existing = path;
                    true
                }
                None => {
                    paths.insert(0, path);
                    true
                }
            }
        }
        None => {
            rules.push(IngressRule {
                host: host.map(str::to_owned),
                http: Some(HTTPIngressRuleValue { paths: vec![path] }),
            });
            true
        }
    }
}

/// Removes the path `path` from the rule for `host` of an existing Ingress, and the rule too if
/// it is left without paths and has no other content. Returns whether the Ingress changed.
pub fn remove_challenge_path(ingress: &mut Ingress, host: Option<&str>, path: &str) -> bool {
    let Some(rules) = ingress.spec.as_mut().and_then(|s| s.rules.as_mut()) else {
        return false;
    };
    let mut changed = false;
    for rule in rules
        .iter_mut()
        .filter(|r| r.host.as_deref().unwrap_or("") == host.unwrap_or(""))
    {
        if let Some(http) = rule.http.as_mut() {
            let before = http.paths.len();
            http.paths.retain(|p| p.path.as_deref() != Some(path));
            changed |= http.paths.len() != before;
        }
    }
    if changed {
        // An HTTP rule must hold at least one path; drop the rules this left empty (only the
        // ones we emptied can be empty: the API server rejects empty ones).
        rules.retain(|r| r.http.as_ref().is_none_or(|h| !h.paths.is_empty()));
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::acme::{
        AcmeChallengeSolver, AcmeChallengeSolverHttp01, AcmeChallengeSolverHttp01IngressTemplate,
        AcmeChallengeSolverHttp01PodResources, AcmeChallengeSolverHttp01PodSpec, SolverObjectMeta,
    };
    use crate::api::challenge::ChallengeSpec;
    use k8s_openapi::api::core::v1::{LocalObjectReference, Toleration};

    fn challenge(ingress: AcmeChallengeSolverHttp01Ingress) -> Challenge {
        let mut challenge = Challenge::new(
            "example-com-1-2-3",
            ChallengeSpec {
                url: "https://acme.example/chall/1".into(),
                authorization_url: "https://acme.example/authz/1".into(),
                dns_name: "example.com".into(),
                type_: ChallengeType::Http01,
                token: "tok-1".into(),
                key: "tok-1.thumbprint".into(),
                solver: AcmeChallengeSolver {
                    http01: Some(AcmeChallengeSolverHttp01 {
                        ingress: Some(ingress),
                        gateway_http_route: None,
                    }),
                    ..AcmeChallengeSolver::default()
                },
                ..ChallengeSpec::default()
            },
        );
        challenge.metadata.namespace = Some("apps".into());
        challenge.metadata.uid = Some("uid-1".into());
        challenge
    }

    fn settings() -> Http01Settings {
        Http01Settings::new("certsmith:test")
    }

    fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn adler32_matches_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b"example.com"), 0x1AA0_045A);
        // Long enough to need the modular reduction inside the loop.
        let long = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &long {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(u64::from(adler32(&long)), (b << 16) | a);
    }

    #[test]
    fn identity_labels_are_cert_managers() {
        let ch = challenge(Default::default());
        let labels = identity_labels(&ch);
        assert_eq!(labels[DOMAIN_LABEL], adler32(b"example.com").to_string());
        assert_eq!(labels[TOKEN_LABEL], adler32(b"tok-1").to_string());
        assert_eq!(labels[SOLVER_LABEL], "true");
        assert_eq!(
            label_selector(&ch),
            format!(
                "{DOMAIN_LABEL}={},{TOKEN_LABEL}={},{SOLVER_LABEL}=true",
                adler32(b"example.com"),
                adler32(b"tok-1")
            )
        );
        let extra = BTreeMap::from([
            ("team".to_owned(), "web".to_owned()),
            (SOLVER_LABEL.to_owned(), "false".to_owned()),
        ]);
        let labels = object_labels(&ch, &extra);
        assert_eq!(labels["team"], "web");
        assert_eq!(labels[SOLVER_LABEL], "true", "identity labels are reserved");
    }

    #[test]
    fn pod_has_cert_managers_defaults_and_is_restricted() {
        let ch = challenge(Default::default());
        let mut s = settings();
        s.extra_labels.insert("team".into(), "web".into());
        let pod = json(&build_pod(&ch, &s).unwrap());
        assert_eq!(pod["metadata"]["generateName"], "cm-acme-http-solver-");
        assert_eq!(pod["metadata"]["namespace"], "apps");
        assert_eq!(pod["metadata"]["labels"]["team"], "web");
        assert_eq!(pod["metadata"]["labels"][SOLVER_LABEL], "true");
        assert_eq!(
            pod["metadata"]["annotations"],
            serde_json::json!({
                "sidecar.istio.io/inject": "false",
                "cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
            })
        );
        assert_eq!(
            pod["metadata"]["ownerReferences"],
            serde_json::json!([{
                "apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge",
                "name": "example-com-1-2-3", "uid": "uid-1",
                "controller": true, "blockOwnerDeletion": true,
            }])
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "OnFailure");
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(spec["enableServiceLinks"], false);
        assert_eq!(
            spec["nodeSelector"],
            serde_json::json!({"kubernetes.io/os": "linux"})
        );
        assert_eq!(
            spec["securityContext"],
            serde_json::json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
        );
        let c = &spec["containers"][0];
        assert_eq!(c["name"], "acmesolver");
        assert_eq!(c["image"], "certsmith:test");
        assert_eq!(
            c["args"],
            serde_json::json!([
                "solver",
                "--listen-port=8089",
                "--domain=example.com",
                "--token=tok-1",
                "--key=tok-1.thumbprint"
            ])
        );
        assert_eq!(
            c["env"],
            serde_json::json!([{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}])
        );
        assert_eq!(
            c["ports"],
            serde_json::json!([{"name": "http", "containerPort": 8089, "protocol": "TCP"}])
        );
        assert_eq!(
            c["resources"],
            serde_json::json!({"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}})
        );
        assert_eq!(
            c["securityContext"],
            serde_json::json!({"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
        );

        s.run_as_non_root = false;
        let pod = build_pod(&ch, &s).unwrap();
        let sc = pod.spec.unwrap().security_context.unwrap();
        assert_eq!(sc.run_as_non_root, Some(false));
    }

    #[test]
    fn pod_template_merges_over_the_defaults() {
        let template: AcmeChallengeSolverHttp01PodTemplate = serde_json::from_value(serde_json::json!({
            "metadata": {
                "labels": {"team": "platform", TOKEN_LABEL: "overridden"},
                "annotations": {"sidecar.istio.io/inject": "true", "extra": "x"},
            },
            "spec": {
                "nodeSelector": {"pool": "ingress"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ingress", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}}},
                "priorityClassName": "high",
                "serviceAccountName": "solver",
                "imagePullSecrets": [{"name": "regcred"}],
                "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
                "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "20m"}},
            },
        }))
        .unwrap();
        let ch = challenge(AcmeChallengeSolverHttp01Ingress {
            pod_template: Some(template),
            ..Default::default()
        });
        let pod = build_pod(&ch, &settings()).unwrap();
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "platform");
        assert_eq!(labels[TOKEN_LABEL], adler32(b"tok-1").to_string());
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["sidecar.istio.io/inject"], "true");
        assert_eq!(annotations["extra"], "x");
        assert_eq!(
            annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"],
            "true"
        );
        let spec = pod.spec.unwrap();
        assert_eq!(
            spec.node_selector.unwrap(),
            BTreeMap::from([
                ("kubernetes.io/os".to_owned(), "linux".to_owned()),
                ("pool".to_owned(), "ingress".to_owned()),
            ])
        );
        assert_eq!(
            spec.tolerations.unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
        assert!(spec.affinity.unwrap().node_affinity.is_some());
        assert_eq!(spec.priority_class_name.as_deref(), Some("high"));
        assert_eq!(spec.service_account_name.as_deref(), Some("solver"));
        assert_eq!(
            spec.image_pull_secrets.unwrap(),
            [LocalObjectReference {
                name: "regcred".into()
            }]
        );
        let sc = spec.security_context.unwrap();
        assert_eq!(sc.run_as_user, Some(1000));
        assert_eq!(sc.fs_group, Some(2000));
        assert_eq!(sc.run_as_non_root, Some(true), "kept from the defaults");
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let resources = json(&spec.containers[0].resources);
        assert_eq!(
            resources,
            serde_json::json!({
                "requests": {"cpu": "20m", "memory": "128Mi"},
                "limits": {"cpu": "100m", "memory": "128Mi"},
            })
        );
    }

    #[test]
    fn template_tolerations_and_secrets_append() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                tolerations: Some(vec![Toleration {
                    key: Some("a".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let template = AcmeChallengeSolverHttp01PodTemplate {
            metadata: None,
            spec: Some(AcmeChallengeSolverHttp01PodSpec {
                tolerations: Some(vec![Toleration {
                    key: Some("b".into()),
                    ..Default::default()
                }]),
                resources: Some(AcmeChallengeSolverHttp01PodResources {
                    requests: Some(BTreeMap::from([("cpu".into(), Quantity("1".into()))])),
                    limits: None,
                }),
                priority_class_name: Some(String::new()),
                ..Default::default()
            }),
        };
        merge_pod_template(&mut pod, &template);
        let spec = pod.spec.unwrap();
        let keys: Vec<_> = spec
            .tolerations
            .unwrap()
            .into_iter()
            .filter_map(|t| t.key)
            .collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(spec.priority_class_name, None, "empty strings are unset");
    }

    #[test]
    fn service_selects_the_solver_pod() {
        let ch = challenge(Default::default());
        let svc = json(&build_service(&ch, &settings()).unwrap());
        assert_eq!(svc["metadata"]["generateName"], "cm-acme-http-solver-");
        assert_eq!(
            svc["metadata"]["annotations"],
            serde_json::json!({"auth.istio.io/8089": "NONE"})
        );
        assert_eq!(svc["spec"]["type"], "NodePort");
        assert_eq!(
            svc["spec"]["ports"],
            serde_json::json!([{"name": "http", "port": 8089, "targetPort": 8089, "protocol": "TCP"}])
        );
        assert_eq!(svc["spec"]["selector"], json(&identity_labels(&ch)));
        let ch = challenge(AcmeChallengeSolverHttp01Ingress {
            service_type: Some("ClusterIP".into()),
            ..Default::default()
        });
        let svc = build_service(&ch, &settings()).unwrap();
        assert_eq!(svc.spec.unwrap().type_.as_deref(), Some("ClusterIP"));
    }

    #[test]
    fn ingress_routes_the_token_path_exactly() {
        let ch = challenge(AcmeChallengeSolverHttp01Ingress {
            ingress_class_name: Some("nginx".into()),
            ..Default::default()
        });
        let ing = json(&build_ingress(&ch, &settings(), "cm-acme-http-solver-abcde").unwrap());
        assert_eq!(ing["metadata"]["generateName"], "cm-acme-http-solver-");
        assert_eq!(ing["metadata"]["labels"], json(&identity_labels(&ch)));
        assert_eq!(
            ing["metadata"]["annotations"],
            serde_json::json!({"nginx.ingress.kubernetes.io/whitelist-source-range": "0.0.0.0/0,::/0"})
        );
        assert_eq!(
            ing["spec"],
            serde_json::json!({
                "ingressClassName": "nginx",
                "rules": [{"host": "example.com", "http": {"paths": [{
                    "path": "/.well-known/acme-challenge/tok-1",
                    "pathType": "Exact",
                    "backend": {"service": {"name": "cm-acme-http-solver-abcde", "port": {"number": 8089}}},
                }]}}],
            })
        );
    }

    #[test]
    fn ingress_class_annotation_and_template() {
        let ch = challenge(AcmeChallengeSolverHttp01Ingress {
            class: Some("traefik".into()),
            ingress_template: Some(AcmeChallengeSolverHttp01IngressTemplate {
                metadata: Some(SolverObjectMeta {
                    annotations: Some(BTreeMap::from([
                        (
                            "nginx.ingress.kubernetes.io/whitelist-source-range".into(),
                            "10.0.0.0/8".into(),
                        ),
                        ("a".into(), "b".into()),
                    ])),
                    labels: Some(BTreeMap::from([("exposed".into(), "true".into())])),
                }),
            }),
            ..Default::default()
        });
        let ing = build_ingress(&ch, &settings(), "svc").unwrap();
        let annotations = ing.metadata.annotations.unwrap();
        assert_eq!(annotations["kubernetes.io/ingress.class"], "traefik");
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/whitelist-source-range"],
            "10.0.0.0/8"
        );
        assert_eq!(annotations["a"], "b");
        assert_eq!(ing.metadata.labels.unwrap()["exposed"], "true");
        assert_eq!(ing.spec.unwrap().ingress_class_name, None);

        let ch = challenge(AcmeChallengeSolverHttp01Ingress {
            ingress_template: Some(AcmeChallengeSolverHttp01IngressTemplate {
                metadata: Some(SolverObjectMeta {
                    annotations: Some(BTreeMap::from([(
                        "nginx.ingress.kubernetes.io/allowlist-source-range".into(),
                        "10.0.0.0/8".into(),
                    )])),
                    labels: None,
                }),
            }),
            ..Default::default()
        });
        let annotations = build_ingress(&ch, &settings(), "svc")
            .unwrap()
            .metadata
            .annotations
            .unwrap();
        assert!(
            !annotations.contains_key(WHITELIST_ANNOTATION),
            "{annotations:?}"
        );
    }

    #[test]
    fn ip_identifiers_get_a_hostless_rule() {
        let mut ch = challenge(Default::default());
        ch.spec.dns_name = "2001:db8::1".into();
        let ing = build_ingress(&ch, &settings(), "svc").unwrap();
        assert_eq!(ing.spec.unwrap().rules.unwrap()[0].host, None);
        assert_eq!(ingress_host("192.0.2.1"), None);
        assert_eq!(ingress_host("example.com").as_deref(), Some("example.com"));
    }

    #[test]
    fn existing_ingress_gets_the_path_and_loses_it_again() {
        let mut ing: Ingress = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"rules": [
                {"host": "other.example", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}},
                {"host": "example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}},
            ]},
        }))
        .unwrap();
        let original = ing.clone();
        let path = ingress_path("tok-1", "svc-1");
        assert!(add_challenge_path(
            &mut ing,
            Some("example.com"),
            path.clone()
        ));
        assert!(
            !add_challenge_path(&mut ing, Some("example.com"), path.clone()),
            "idempotent"
        );
        let rules = ing.spec.as_ref().unwrap().rules.as_ref().unwrap();
        assert_eq!(rules[1].http.as_ref().unwrap().paths[0], path);
        assert_eq!(rules[1].http.as_ref().unwrap().paths.len(), 2);
        // A new Service name replaces the path's backend.
        assert!(add_challenge_path(
            &mut ing,
            Some("example.com"),
            ingress_path("tok-1", "svc-2")
        ));
        assert_eq!(
            ing.spec.as_ref().unwrap().rules.as_ref().unwrap()[1]
                .http
                .as_ref()
                .unwrap()
                .paths
                .len(),
            2
        );
        // Another host gets a rule of its own.
        assert!(add_challenge_path(
            &mut ing,
            Some("new.example"),
            ingress_path("tok-2", "svc-3")
        ));
        assert_eq!(ing.spec.as_ref().unwrap().rules.as_ref().unwrap().len(), 3);

        assert!(remove_challenge_path(
            &mut ing,
            Some("example.com"),
            "/.well-known/acme-challenge/tok-1"
        ));
        assert!(remove_challenge_path(
            &mut ing,
            Some("new.example"),
            "/.well-known/acme-challenge/tok-2"
        ));
        assert!(!remove_challenge_path(
            &mut ing,
            Some("new.example"),
            "/.well-known/acme-challenge/tok-2"
        ));
        assert_eq!(ing, original);
    }

    #[test]
    fn only_http01_ingress_solvers() {
        let mut ch = challenge(Default::default());
        ch.spec.type_ = ChallengeType::Dns01;
        assert!(matches!(ingress_solver(&ch), Err(Http01Error::NotHttp01)));
        let mut ch = challenge(Default::default());
        ch.spec.solver.http01 = Some(AcmeChallengeSolverHttp01 {
            ingress: None,
            gateway_http_route: Some(Default::default()),
        });
        assert!(matches!(
            ingress_solver(&ch),
            Err(Http01Error::Unsupported(_))
        ));
        let mut ch = challenge(Default::default());
        ch.metadata.uid = None;
        assert!(matches!(
            build_pod(&ch, &settings()),
            Err(Http01Error::IncompleteChallenge("metadata.uid"))
        ));
    }

    #[test]
    fn controlled_by_uid() {
        let ch = challenge(Default::default());
        let mut meta = ObjectMeta {
            owner_references: Some(vec![owner_reference(&ch).unwrap()]),
            ..Default::default()
        };
        assert!(is_controlled_by(&meta, &ch));
        meta.owner_references.as_mut().unwrap()[0].uid = "other".into();
        assert!(!is_controlled_by(&meta, &ch));
    }
}
