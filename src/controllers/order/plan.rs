//! What an Order needs next, and the objects it should own: pure functions.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::acme::orders::key_authorization;
use crate::acme::{NewOrderRequest, OrderSnapshot};
use crate::api::acme::{AcmeChallengeSolver, AcmeState, ParentReference};
use crate::api::challenge::{ChallengeSpec, ChallengeType};
use crate::api::order::{AcmeAuthorization, AcmeChallenge};
use crate::api::{Challenge, Order};

/// What the Order controller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The Order is final: nothing but clean-up of its Challenges.
    Final,
    /// No ACME order yet: create it (the only place an order is created).
    Create,
    /// The ACME order exists but its authorizations are not recorded yet: fetch them.
    Details,
    /// Some pending authorization has no Challenge yet: create them.
    CreateChallenges,
    /// Every Challenge is final: ask the server how the order is now.
    Refresh,
    /// The order is ready: finalize it with the CSR.
    Finalize,
    /// The order is processing or valid: fetch the certificate.
    Certificate,
    /// Challenges are being solved: nothing to do until one changes.
    Wait,
}

/// The next step for `order`, given the Challenges it owns.
pub fn next_step(order: &Order, challenges: &[Challenge]) -> Step {
    let status = order.status.as_ref();
    // `valid` is written together with the certificate, so it is final like the failures.
    if order.state().is_some_and(|s| s.is_final()) {
        return Step::Final;
    }
    if status
        .and_then(|s| s.url.as_deref())
        .is_none_or(str::is_empty)
    {
        return Step::Create;
    }
    let Some(authorizations) = status.and_then(|s| s.authorizations.as_ref()) else {
        return Step::Details;
    };
    match order.state() {
        Some(AcmeState::Ready) => return Step::Finalize,
        Some(AcmeState::Processing) => return Step::Certificate,
        _ => {}
    }
    let pending: Vec<&AcmeAuthorization> = authorizations
        .iter()
        .filter(|a| a.initial_state != Some(AcmeState::Valid))
        .collect();
    let challenge_for = |a: &AcmeAuthorization| {
        challenges
            .iter()
            .find(|c| c.spec.authorization_url == a.url && c.meta().deletion_timestamp.is_none())
    };
    if pending.iter().any(|a| challenge_for(a).is_none()) {
        return Step::CreateChallenges;
    }
    let states: Vec<Option<AcmeState>> = pending
        .iter()
        .map(|a| challenge_for(a).and_then(|c| c.state()))
        .collect();
    if states.iter().any(|s| s.is_some_and(|s| s.is_failure()))
        || states.iter().all(|s| *s == Some(AcmeState::Valid))
    {
        Step::Refresh
    } else {
        Step::Wait
    }
}

/// The identifiers to order: DNS names (plus a Common Name not among them) and IP addresses.
pub fn new_order_request(order: &Order) -> Result<NewOrderRequest, String> {
    let spec = &order.spec;
    let mut dns_names: Vec<String> = spec.dns_names.clone().unwrap_or_default();
    let mut ip_addresses = Vec::new();
    for ip in spec.ip_addresses.iter().flatten() {
        let parsed: IpAddr = ip
            .parse()
            .map_err(|_| format!("ipAddresses: {ip:?} is not an IP address"))?;
        if !ip_addresses.contains(&parsed) {
            ip_addresses.push(parsed);
        }
    }
    if let Some(cn) = spec.common_name.as_deref().filter(|cn| !cn.is_empty()) {
        match cn.parse::<IpAddr>() {
            Ok(ip) if !ip_addresses.contains(&ip) => ip_addresses.push(ip),
            Ok(_) => {}
            Err(_) if !dns_names.iter().any(|n| n == cn) => dns_names.push(cn.to_owned()),
            Err(_) => {}
        }
    }
    dns_names.dedup();
    if dns_names.is_empty() && ip_addresses.is_empty() {
        return Err("the Order names no DNS name or IP address".to_owned());
    }
    Ok(NewOrderRequest {
        dns_names,
        ip_addresses,
        profile: spec.profile.clone().filter(|p| !p.is_empty()),
        replaces: spec.replaces.clone().filter(|r| !r.is_empty()),
    })
}

/// The DER of the CSR in `spec.request`: PEM (as cert-manager copies it) or DER.
pub fn csr_der(request: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(request).ok().map(str::trim_start);
    match text {
        Some(t) if t.starts_with("-----BEGIN") => {
            let blocks =
                pem::parse_many(t).map_err(|e| format!("spec.request is not valid PEM: {e}"))?;
            blocks
                .into_iter()
                .find(|b| b.tag().ends_with("CERTIFICATE REQUEST"))
                .map(|b| b.into_contents())
                .ok_or_else(|| "spec.request holds no CERTIFICATE REQUEST".to_owned())
        }
        _ if request.first() == Some(&0x30) => Ok(request.to_vec()),
        _ => Err("spec.request is neither a PEM nor a DER certificate request".to_owned()),
    }
}

/// `status.authorizations` from a snapshot that lists every authorization.
pub fn status_authorizations(snapshot: &OrderSnapshot) -> Vec<AcmeAuthorization> {
    snapshot
        .authorizations
        .iter()
        .map(|a| AcmeAuthorization {
            url: a.url.clone(),
            identifier: Some(a.identifier.clone()),
            wildcard: Some(a.wildcard),
            initial_state: Some(a.status),
            challenges: Some(
                a.challenges
                    .iter()
                    .map(|c| AcmeChallenge {
                        url: c.url.clone(),
                        token: c.token.clone(),
                        type_: c.type_.clone(),
                    })
                    .collect(),
            ),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Solver selection (cert-manager's precedence).
// ---------------------------------------------------------------------------------------------

/// How well a solver's selector matches a domain; greater is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// 2: a `dnsNames` match; 1: a `dnsZones` match; 0: no name criteria.
    kind: u8,
    /// The length of the matching zone (longer is more specific).
    zone_len: usize,
    /// How many `matchLabels` the solver requires (all of which match).
    labels: usize,
}

fn rank(
    solver: &AcmeChallengeSolver,
    domain: &str,
    labels: &BTreeMap<String, String>,
) -> Option<Rank> {
    let Some(selector) = &solver.selector else {
        return Some(Rank {
            kind: 0,
            zone_len: 0,
            labels: 0,
        });
    };
    let match_labels = selector.match_labels.clone().unwrap_or_default();
    if !match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return None;
    }
    let names = selector.dns_names.as_deref().unwrap_or_default();
    let zones = selector.dns_zones.as_deref().unwrap_or_default();
    let labels = match_labels.len();
    if names.iter().any(|n| n.eq_ignore_ascii_case(domain)) {
        return Some(Rank {
            kind: 2,
            zone_len: 0,
            labels,
        });
    }
    let domain_lower = domain.to_ascii_lowercase();
    let zone = zones
        .iter()
        .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
        .filter(|z| {
            !z.is_empty() && (domain_lower == *z || domain_lower.ends_with(&format!(".{z}")))
        })
        .map(|z| z.len())
        .max();
    if let Some(zone_len) = zone {
        return Some(Rank {
            kind: 1,
            zone_len,
            labels,
        });
    }
    if names.is_empty() && zones.is_empty() {
        return Some(Rank {
            kind: 0,
            zone_len: 0,
            labels,
        });
    }
    None
}

/// The solver for an identifier (`dns_name` without `*.`), from the issuer's `solvers`, as
/// cert-manager picks it: a `dnsNames` match beats a `dnsZones` match, a longer zone beats a
/// shorter one, more `matchLabels` beat fewer, and the solver listed first wins ties. A solver
/// without a selector matches everything. A wildcard can only be validated with DNS-01, an IP
/// address only with HTTP-01; the server must offer the solver's challenge type.
pub fn select_solver<'a>(
    solvers: &'a [AcmeChallengeSolver],
    dns_name: &str,
    wildcard: bool,
    ip: bool,
    labels: &BTreeMap<String, String>,
    offered: &[&str],
) -> Option<(&'a AcmeChallengeSolver, ChallengeType)> {
    let domain = if wildcard {
        format!("*.{dns_name}")
    } else {
        dns_name.to_owned()
    };
    let mut best: Option<(Rank, &AcmeChallengeSolver, ChallengeType)> = None;
    for solver in solvers {
        let challenge_type = match (&solver.http01, &solver.dns01) {
            (Some(_), None) if !wildcard => ChallengeType::Http01,
            (None, Some(_)) if !ip => ChallengeType::Dns01,
            _ => continue,
        };
        if !offered.contains(&challenge_type.acme_type()) {
            continue;
        }
        let Some(rank) = rank(solver, &domain, labels) else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _, _)| rank > *b) {
            best = Some((rank, solver, challenge_type));
        }
    }
    best.map(|(_, solver, t)| (solver, t))
}

// ---------------------------------------------------------------------------------------------
// Challenges.
// ---------------------------------------------------------------------------------------------

/// FNV-1 (32-bit), the hash Go's `fnv.New32` computes and cert-manager names objects with.
fn fnv1_32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(*b);
    }
    hash
}

/// cert-manager's `DNSSafeShortenTo52Characters`.
fn shorten_to_52(name: &str) -> &str {
    if name.len() <= 52 {
        return name;
    }
    let mut end = 52;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim_end_matches(['-', '.'])
}

/// `<order name, shortened to 52 characters>-<FNV-1 hash of the spec>`, as cert-manager names
/// Challenges.
pub fn challenge_name(order_name: &str, spec: &ChallengeSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    format!("{}-{}", shorten_to_52(order_name), fnv1_32(&json))
}

/// Order annotations (copied from the Certificate through its CertificateRequest; the Ingress
/// shim sets them) that override an HTTP-01 Ingress solver, as cert-manager's
/// `applyIngressParameterAnnotationOverrides`: the name of an existing Ingress to edit, or the
/// class or ingressClassName of the Ingresses to create. Each replaces the other two.
pub const OVERRIDE_INGRESS_NAME: &str = "acme.cert-manager.io/http01-override-ingress-name";
pub const OVERRIDE_INGRESS_CLASS: &str = "acme.cert-manager.io/http01-override-ingress-class";
pub const OVERRIDE_INGRESS_CLASS_NAME: &str =
    "acme.cert-manager.io/http01-override-ingress-ingressclassname";

/// Order annotations (set by the Gateway shim) that replace the `parentRefs` of an HTTP-01
/// `gatewayHTTPRoute` solver with the Gateway the Certificate came from.
pub const OVERRIDE_PARENT_REF_KIND: &str = "acme.cert-manager.io/http01-parentrefkind";
pub const OVERRIDE_PARENT_REF_NAME: &str = "acme.cert-manager.io/http01-parentrefname";
pub const OVERRIDE_PARENT_REF_NAMESPACE: &str = "acme.cert-manager.io/http01-parentrefnamespace";

/// `solver` with the Order's Ingress (and Gateway parentRef) overrides applied (the name wins over the class, which
/// wins over the ingressClassName; the Ingress shim never sets two). Solvers other than an
/// HTTP-01 Ingress are returned unchanged.
pub fn with_ingress_overrides(
    solver: &AcmeChallengeSolver,
    annotations: &BTreeMap<String, String>,
) -> AcmeChallengeSolver {
    let mut solver = solver.clone();
    let value = |key: &str| annotations.get(key).cloned();
    if let Some(route) = solver
        .http01
        .as_mut()
        .and_then(|h| h.gateway_http_route.as_mut())
        && let (Some(kind), Some(name)) = (
            value(OVERRIDE_PARENT_REF_KIND),
            value(OVERRIDE_PARENT_REF_NAME),
        )
    {
        route.parent_refs = Some(vec![ParentReference {
            kind: Some(kind),
            name,
            namespace: value(OVERRIDE_PARENT_REF_NAMESPACE),
            ..ParentReference::default()
        }]);
    }
    let Some(ingress) = solver.http01.as_mut().and_then(|h| h.ingress.as_mut()) else {
        return solver;
    };
    if let Some(name) = value(OVERRIDE_INGRESS_NAME) {
        (ingress.name, ingress.class, ingress.ingress_class_name) = (Some(name), None, None);
    } else if let Some(class) = value(OVERRIDE_INGRESS_CLASS) {
        (ingress.name, ingress.class, ingress.ingress_class_name) = (None, Some(class), None);
    } else if let Some(class_name) = value(OVERRIDE_INGRESS_CLASS_NAME) {
        (ingress.name, ingress.class, ingress.ingress_class_name) = (None, None, Some(class_name));
    }
    solver
}

/// The Challenges an Order should own, and the identifiers no solver can validate.
#[derive(Clone, Debug, Default)]
pub struct ChallengePlan {
    pub challenges: Vec<Challenge>,
    /// Identifiers (with `*.` for wildcards) for which no configured solver fits.
    pub unsolvable: Vec<String>,
}

/// One Challenge per authorization that is not already valid, with the solver picked from
/// `solvers`, owned by the Order and carrying its labels.
pub fn desired_challenges(
    order: &Order,
    solvers: &[AcmeChallengeSolver],
    thumbprint: &str,
) -> ChallengePlan {
    let mut plan = ChallengePlan::default();
    let authorizations = order
        .status
        .as_ref()
        .and_then(|s| s.authorizations.as_deref())
        .unwrap_or_default();
    let labels = order.labels().clone();
    for authorization in authorizations {
        if authorization.initial_state == Some(AcmeState::Valid) {
            continue;
        }
        let identifier = authorization.identifier.clone().unwrap_or_default();
        let wildcard = authorization.wildcard.unwrap_or(false);
        let ip = identifier.parse::<IpAddr>().is_ok();
        let offered_challenges = authorization.challenges.as_deref().unwrap_or_default();
        let offered: Vec<&str> = offered_challenges
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        let display = if wildcard {
            format!("*.{identifier}")
        } else {
            identifier.clone()
        };
        let Some((solver, challenge_type)) =
            select_solver(solvers, &identifier, wildcard, ip, &labels, &offered)
        else {
            plan.unsolvable.push(display);
            continue;
        };
        let Some(acme_challenge) = offered_challenges
            .iter()
            .find(|c| c.type_ == challenge_type.acme_type())
        else {
            plan.unsolvable.push(display);
            continue;
        };
        let (key_authorization, dns_value) = key_authorization(&acme_challenge.token, thumbprint);
        let spec = ChallengeSpec {
            url: acme_challenge.url.clone(),
            authorization_url: authorization.url.clone(),
            dns_name: identifier.clone(),
            wildcard: Some(wildcard),
            type_: challenge_type,
            token: acme_challenge.token.clone(),
            key: match challenge_type {
                ChallengeType::Http01 => key_authorization,
                ChallengeType::Dns01 => dns_value,
            },
            solver: with_ingress_overrides(solver, order.annotations()),
            issuer_ref: order.spec.issuer_ref.clone(),
        };
        let name = challenge_name(&order.name_any(), &spec);
        let challenge = Challenge {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: order.namespace(),
                labels: (!labels.is_empty()).then(|| labels.clone()),
                owner_references: order.controller_owner_ref(&()).map(|r| vec![r]),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        };
        plan.challenges.push(challenge);
    }
    plan
}

/// Why the order failed, from its failed Challenges (their reason holds the ACME error).
pub fn failed_challenge_reason(challenges: &[Challenge]) -> Option<String> {
    challenges
        .iter()
        .filter(|c| c.state().is_some_and(|s| s.is_failure()))
        .find_map(|c| {
            let reason = c.status.as_ref()?.reason.clone()?;
            Some(format!("{} ({}): {reason}", c.spec.dns_name, c.spec.type_))
        })
}

/// cert-manager's message when no solver fits.
pub fn no_solver_message(identifiers: &[String]) -> String {
    format!(
        "Failed to determine a valid solver configuration for the set of domains on the Order: no configured challenge solvers can be used for this challenge ({})",
        identifiers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::{AuthorizationSnapshot, ChallengeSnapshot};
    use crate::api::acme::{
        AcmeChallengeSolverDns01, AcmeChallengeSolverHttp01, CertificateDnsNameSelector,
    };
    use crate::api::challenge::ChallengeStatus;
    use crate::api::order::OrderStatus;

    fn order(yaml_status: &str) -> Order {
        let order: Order = serde_saphyr::from_str(&format!(
            r#"
apiVersion: acme.cert-manager.io/v1
kind: Order
metadata:
  name: web-tls-1-2807719523
  namespace: default
  uid: 0b6c5e38-6a37-4c8f-9d55-2c1c0d8c1e7a
  labels:
    team: web
spec:
  commonName: example.com
  dnsNames: [example.com, "*.example.com"]
  issuerRef: {{name: le, kind: ClusterIssuer}}
  request: LS0tLS0K
{yaml_status}
"#
        ))
        .unwrap();
        order
    }

    fn with_authorizations() -> Order {
        order(
            r#"status:
  url: https://acme.example/order/1
  finalizeURL: https://acme.example/finalize/1
  state: pending
  authorizations:
  - url: https://acme.example/authz/1
    identifier: example.com
    wildcard: false
    initialState: pending
    challenges:
    - {url: https://acme.example/chall/1h, token: tok1, type: http-01}
    - {url: https://acme.example/chall/1d, token: tok1, type: dns-01}
  - url: https://acme.example/authz/2
    identifier: example.com
    wildcard: true
    initialState: pending
    challenges:
    - {url: https://acme.example/chall/2d, token: tok2, type: dns-01}
  - url: https://acme.example/authz/3
    identifier: www.example.com
    wildcard: false
    initialState: valid
"#,
        )
    }

    fn http01() -> AcmeChallengeSolver {
        AcmeChallengeSolver {
            http01: Some(AcmeChallengeSolverHttp01::default()),
            ..AcmeChallengeSolver::default()
        }
    }

    fn dns01(selector: Option<CertificateDnsNameSelector>) -> AcmeChallengeSolver {
        AcmeChallengeSolver {
            selector,
            dns01: Some(AcmeChallengeSolverDns01::default()),
            ..AcmeChallengeSolver::default()
        }
    }

    fn zones(zones: &[&str]) -> Option<CertificateDnsNameSelector> {
        Some(CertificateDnsNameSelector {
            dns_zones: Some(zones.iter().map(|z| z.to_string()).collect()),
            ..CertificateDnsNameSelector::default()
        })
    }

    fn challenge(
        order: &Order,
        authz: &str,
        state: Option<AcmeState>,
        reason: Option<&str>,
    ) -> Challenge {
        let mut c = Challenge::new(
            "c",
            ChallengeSpec {
                authorization_url: authz.into(),
                dns_name: "example.com".into(),
                ..ChallengeSpec::default()
            },
        );
        c.metadata.namespace = order.namespace();
        c.status = Some(ChallengeStatus {
            state,
            reason: reason.map(str::to_owned),
            ..ChallengeStatus::default()
        });
        c
    }

    #[test]
    fn steps_follow_the_order_through_its_life() {
        let fresh = order("");
        assert_eq!(next_step(&fresh, &[]), Step::Create);

        let mut only_url = fresh.clone();
        only_url.status = Some(OrderStatus {
            url: Some("https://acme.example/order/1".into()),
            ..OrderStatus::default()
        });
        assert_eq!(next_step(&only_url, &[]), Step::Details);

        let o = with_authorizations();
        assert_eq!(next_step(&o, &[]), Step::CreateChallenges);
        let one = challenge(
            &o,
            "https://acme.example/authz/1",
            Some(AcmeState::Valid),
            None,
        );
        assert_eq!(
            next_step(&o, std::slice::from_ref(&one)),
            Step::CreateChallenges
        );
        let two = challenge(
            &o,
            "https://acme.example/authz/2",
            Some(AcmeState::Pending),
            None,
        );
        assert_eq!(
            next_step(&o, &[one.clone(), two]),
            Step::Wait,
            "authz 3 was valid already"
        );
        let two = challenge(
            &o,
            "https://acme.example/authz/2",
            Some(AcmeState::Valid),
            None,
        );
        assert_eq!(next_step(&o, &[one.clone(), two]), Step::Refresh);
        let failed = challenge(
            &o,
            "https://acme.example/authz/2",
            Some(AcmeState::Invalid),
            Some("x"),
        );
        assert_eq!(next_step(&o, &[one, failed]), Step::Refresh);

        for (state, step) in [
            (AcmeState::Ready, Step::Finalize),
            (AcmeState::Processing, Step::Certificate),
        ] {
            let mut o = with_authorizations();
            o.status.as_mut().unwrap().state = Some(state);
            assert_eq!(next_step(&o, &[]), step);
        }
        for state in [AcmeState::Invalid, AcmeState::Errored, AcmeState::Expired] {
            let mut o = with_authorizations();
            o.status.as_mut().unwrap().state = Some(state);
            o.status.as_mut().unwrap().certificate = None;
            assert_eq!(next_step(&o, &[]), Step::Final);
        }
        let mut done = with_authorizations();
        done.status.as_mut().unwrap().state = Some(AcmeState::Valid);
        done.status.as_mut().unwrap().certificate =
            Some(k8s_openapi::ByteString(b"chain".to_vec()));
        assert_eq!(next_step(&done, &[]), Step::Final);
    }

    #[test]
    fn order_requests_include_the_common_name_and_ips() {
        let mut o = order("");
        o.spec.common_name = Some("cn.example.com".into());
        o.spec.ip_addresses = Some(vec![
            "192.0.2.1".into(),
            "2001:db8::1".into(),
            "192.0.2.1".into(),
        ]);
        o.spec.profile = Some("shortlived".into());
        let request = new_order_request(&o).unwrap();
        assert_eq!(
            request.dns_names,
            ["example.com", "*.example.com", "cn.example.com"]
        );
        assert_eq!(request.ip_addresses.len(), 2);
        assert_eq!(request.profile.as_deref(), Some("shortlived"));
        o.spec.ip_addresses = Some(vec!["not-an-ip".into()]);
        assert!(new_order_request(&o).is_err());
        o.spec = Default::default();
        assert!(new_order_request(&o).is_err());
    }

    #[test]
    fn csrs_are_read_from_pem_or_der() {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(vec!["example.com".to_owned()])
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let der = csr.der().to_vec();
        assert_eq!(csr_der(csr.pem().unwrap().as_bytes()).unwrap(), der);
        assert_eq!(csr_der(&der).unwrap(), der);
        assert!(
            csr_der(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
        assert!(csr_der(b"hello").is_err());
    }

    #[test]
    fn solver_precedence_follows_cert_manager() {
        let labels = BTreeMap::from([("team".to_owned(), "web".to_owned())]);
        let both = ["http-01", "dns-01"];
        let default_http = http01();
        let zone_short = dns01(zones(&["example.com"]));
        let zone_long = dns01(zones(&["sub.example.com"]));
        let by_name = dns01(Some(CertificateDnsNameSelector {
            dns_names: Some(vec!["www.sub.example.com".into()]),
            ..CertificateDnsNameSelector::default()
        }));
        let with_labels = dns01(Some(CertificateDnsNameSelector {
            dns_zones: Some(vec!["example.com".into()]),
            match_labels: Some(labels.clone()),
            ..CertificateDnsNameSelector::default()
        }));
        let wrong_labels = dns01(Some(CertificateDnsNameSelector {
            dns_names: Some(vec!["www.sub.example.com".into()]),
            match_labels: Some(BTreeMap::from([("team".to_owned(), "db".to_owned())])),
            ..CertificateDnsNameSelector::default()
        }));
        let solvers = vec![
            default_http.clone(),
            zone_short.clone(),
            zone_long.clone(),
            by_name.clone(),
            with_labels.clone(),
            wrong_labels,
        ];
        let pick = |name: &str, wildcard: bool| {
            select_solver(&solvers, name, wildcard, false, &labels, &both)
                .map(|(s, t)| (s.clone(), t))
        };
        // dnsNames beats every zone.
        assert_eq!(
            pick("www.sub.example.com", false),
            Some((by_name.clone(), ChallengeType::Dns01))
        );
        // The most specific zone wins.
        assert_eq!(
            pick("a.sub.example.com", false),
            Some((zone_long.clone(), ChallengeType::Dns01))
        );
        // Same zone: more matchLabels wins over the one listed first.
        assert_eq!(
            pick("x.example.com", false),
            Some((with_labels.clone(), ChallengeType::Dns01))
        );
        // Nothing specific: the solver without selector.
        assert_eq!(
            pick("other.org", false),
            Some((default_http.clone(), ChallengeType::Http01))
        );
        // A wildcard cannot use HTTP-01.
        assert_eq!(pick("other.org", true), None);
        assert_eq!(
            pick("example.com", true),
            Some((with_labels, ChallengeType::Dns01))
        );
        // Ties go to the first listed.
        let twins = vec![zone_short.clone(), dns01(zones(&["example.com"]))];
        assert!(std::ptr::eq(
            select_solver(&twins, "a.example.com", false, false, &labels, &both)
                .unwrap()
                .0,
            &twins[0]
        ));
        // The server must offer the type; IP addresses only get HTTP-01.
        assert_eq!(
            select_solver(&solvers, "other.org", false, false, &labels, &["dns-01"]),
            None
        );
        let ip_solvers = [zone_short, default_http.clone()];
        let ip = select_solver(&ip_solvers, "192.0.2.1", false, true, &labels, &both);
        assert_eq!(
            ip.map(|(s, t)| (s.clone(), t)),
            Some((default_http, ChallengeType::Http01))
        );
    }

    #[test]
    fn challenges_are_built_for_pending_authorizations() {
        let o = with_authorizations();
        let solvers = vec![http01(), dns01(zones(&["example.com"]))];
        let plan = desired_challenges(&o, &solvers, "THUMB");
        assert!(plan.unsolvable.is_empty());
        assert_eq!(
            plan.challenges.len(),
            2,
            "the valid authorization needs none"
        );
        let http = &plan.challenges[0];
        // dnsZones beats the solver without selector, and dns-01 is offered.
        assert_eq!(http.spec.type_, ChallengeType::Dns01);
        let (ka, dns) = key_authorization("tok1", "THUMB");
        assert_eq!(http.spec.key, dns);
        assert_ne!(http.spec.key, ka);
        let wildcard = &plan.challenges[1];
        assert_eq!(wildcard.spec.dns_name, "example.com");
        assert_eq!(wildcard.spec.wildcard, Some(true));
        assert_eq!(wildcard.spec.url, "https://acme.example/chall/2d");
        assert_eq!(wildcard.spec.issuer_ref.name, "le");
        let owner = &wildcard.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Order", Some(true))
        );
        assert_eq!(wildcard.metadata.labels.as_ref().unwrap()["team"], "web");
        assert_eq!(wildcard.metadata.namespace.as_deref(), Some("default"));
        let name = wildcard.metadata.name.as_deref().unwrap();
        assert!(name.starts_with("web-tls-1-2807719523-"), "{name}");
        assert_eq!(name, challenge_name("web-tls-1-2807719523", &wildcard.spec));

        // HTTP-01 only: the plain name gets HTTP-01 with the key authorization, the wildcard
        // has no solver.
        let plan = desired_challenges(&o, &[http01()], "THUMB");
        assert_eq!(plan.challenges.len(), 1);
        assert_eq!(plan.challenges[0].spec.type_, ChallengeType::Http01);
        assert_eq!(plan.challenges[0].spec.key, "tok1.THUMB");
        assert_eq!(plan.unsolvable, ["*.example.com"]);
        assert!(no_solver_message(&plan.unsolvable).contains("*.example.com"));
    }

    #[test]
    fn ingress_overrides_from_order_annotations() {
        let solver: AcmeChallengeSolver = serde_json::from_value(serde_json::json!(
            {"http01": {"ingress": {"ingressClassName": "nginx", "serviceType": "ClusterIP"}}}
        ))
        .unwrap();
        let ingress = |s: &AcmeChallengeSolver| s.http01.clone().unwrap().ingress.unwrap();
        let none = BTreeMap::new();
        assert_eq!(with_ingress_overrides(&solver, &none), solver);
        let name = BTreeMap::from([(OVERRIDE_INGRESS_NAME.to_owned(), "web".to_owned())]);
        let edited = ingress(&with_ingress_overrides(&solver, &name));
        assert_eq!(edited.name.as_deref(), Some("web"));
        assert_eq!((edited.class, edited.ingress_class_name), (None, None));
        assert_eq!(edited.service_type.as_deref(), Some("ClusterIP"));
        let class = BTreeMap::from([(OVERRIDE_INGRESS_CLASS.to_owned(), "gce".to_owned())]);
        let edited = ingress(&with_ingress_overrides(&solver, &class));
        assert_eq!(
            (edited.class.as_deref(), edited.ingress_class_name),
            (Some("gce"), None)
        );
        let class_name =
            BTreeMap::from([(OVERRIDE_INGRESS_CLASS_NAME.to_owned(), "traefik".to_owned())]);
        let edited = ingress(&with_ingress_overrides(&solver, &class_name));
        assert_eq!(edited.ingress_class_name.as_deref(), Some("traefik"));
        // DNS-01 solvers are not touched.
        let dns = dns01(None);
        assert_eq!(with_ingress_overrides(&dns, &name), dns);
        // A Gateway's Certificate routes through that Gateway.
        let route: AcmeChallengeSolver = serde_json::from_value(serde_json::json!(
            {"http01": {"gatewayHTTPRoute": {"parentRefs": [{"name": "other"}], "serviceType": "ClusterIP"}}}
        ))
        .unwrap();
        let gw = BTreeMap::from([
            (OVERRIDE_PARENT_REF_KIND.to_owned(), "Gateway".to_owned()),
            (OVERRIDE_PARENT_REF_NAME.to_owned(), "gw".to_owned()),
        ]);
        let edited = with_ingress_overrides(&route, &gw)
            .http01
            .unwrap()
            .gateway_http_route
            .unwrap();
        assert_eq!(
            edited.parent_refs.unwrap(),
            [ParentReference {
                kind: Some("Gateway".into()),
                name: "gw".into(),
                ..Default::default()
            }]
        );
        assert_eq!(edited.service_type.as_deref(), Some("ClusterIP"));
        assert_eq!(with_ingress_overrides(&route, &name), route);
    }

    #[test]
    fn names_are_shortened_and_hashed_like_cert_manager() {
        // Go: fnv.New32() over "" is the offset basis; over "a" it is 0x050c5d7e.
        assert_eq!(fnv1_32(b""), 0x811c9dc5);
        assert_eq!(fnv1_32(b"a"), 0x050c5d7e);
        let long = format!("{}-.x", "a".repeat(50));
        assert_eq!(shorten_to_52(&long), "a".repeat(50));
        assert_eq!(shorten_to_52("short"), "short");
    }

    #[test]
    fn snapshots_become_status_authorizations() {
        let snapshot = OrderSnapshot {
            url: "u".into(),
            status: AcmeState::Pending,
            finalize_url: "f".into(),
            authorization_urls: vec!["a".into()],
            authorizations: vec![AuthorizationSnapshot {
                url: "a".into(),
                identifier: "example.com".into(),
                ip: false,
                wildcard: false,
                status: AcmeState::Pending,
                challenges: vec![ChallengeSnapshot {
                    type_: "http-01".into(),
                    url: "c".into(),
                    token: "t".into(),
                    status: AcmeState::Pending,
                    error: None,
                    key_authorization: "t.k".into(),
                    dns_value: "d".into(),
                }],
                retry_after: None,
            }],
            certificate_url: None,
            error: None,
            retry_after: None,
        };
        let status = status_authorizations(&snapshot);
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].initial_state, Some(AcmeState::Pending));
        assert_eq!(status[0].challenges.as_ref().unwrap()[0].type_, "http-01");
        let json = serde_json::to_string(&status).unwrap();
        assert!(
            !json.contains("t.k"),
            "the key authorization is not part of the Order status"
        );
    }

    #[test]
    fn failed_challenges_explain_the_order() {
        let o = with_authorizations();
        let failed = challenge(
            &o,
            "https://acme.example/authz/1",
            Some(AcmeState::Invalid),
            Some(
                "Error accepting authorization: 403 urn:ietf:params:acme:error:unauthorized: nope",
            ),
        );
        let ok = challenge(
            &o,
            "https://acme.example/authz/2",
            Some(AcmeState::Valid),
            None,
        );
        assert_eq!(
            failed_challenge_reason(&[ok, failed]).unwrap(),
            "example.com (HTTP-01): Error accepting authorization: 403 urn:ietf:params:acme:error:unauthorized: nope"
        );
    }
}
