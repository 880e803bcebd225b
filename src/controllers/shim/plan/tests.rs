use super::*;

fn settings() -> ShimSettings {
    ShimSettings::default()
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "networking.k8s.io/v1".into(),
        kind: "Ingress".into(),
        name: "web".into(),
        uid: "uid-web".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn meta(pairs: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some("web".into()),
        namespace: Some("apps".into()),
        uid: Some("uid-web".into()),
        annotations: Some(annotations(pairs)),
        ..ObjectMeta::default()
    }
}

fn tls(secret: &str, hosts: &[&str]) -> TlsBlock {
    TlsBlock {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        secret_name: secret.into(),
    }
}

fn one(pairs: &[(&str, &str)]) -> Result<Certificate, String> {
    let certs = desired_certificates(
        &meta(pairs),
        owner(),
        &[tls("web-tls", &["a.example.com"])],
        &settings(),
    )?;
    assert_eq!(certs.len(), 1);
    Ok(certs.into_iter().next().unwrap())
}

const CI: (&str, &str) = ("cert-manager.io/cluster-issuer", "pebble");

#[test]
fn trigger_annotations() {
    let s = settings();
    assert!(!has_shim_annotation(&annotations(&[]), &s, true));
    assert!(has_shim_annotation(&annotations(&[CI]), &s, true));
    assert!(has_shim_annotation(
        &annotations(&[("cert-manager.io/issuer", "x")]),
        &s,
        false
    ));
    let acme = |v: &str| annotations(&[("kubernetes.io/tls-acme", v)]);
    for yes in ["true", "True", "TRUE", "1", "t"] {
        assert!(has_shim_annotation(&acme(yes), &s, true), "{yes}");
    }
    for no in ["false", "yes", "", "0"] {
        assert!(!has_shim_annotation(&acme(no), &s, true), "{no}");
    }
    // Only Ingresses honour the auto-certificate annotations.
    assert!(!has_shim_annotation(&acme("true"), &s, false));
    let custom = ShimSettings {
        auto_certificate_annotations: vec!["example.com/tls".into()],
        ..settings()
    };
    assert!(!has_shim_annotation(&acme("true"), &custom, true));
    assert!(has_shim_annotation(
        &annotations(&[("example.com/tls", "true")]),
        &custom,
        true
    ));
}

#[test]
fn issuer_selection() {
    let s = settings();
    let r = issuer_ref(&annotations(&[("cert-manager.io/issuer", "local")]), &s).unwrap();
    assert_eq!(
        (r.name.as_str(), r.kind.as_deref(), r.group.as_deref()),
        ("local", Some("Issuer"), Some("cert-manager.io"))
    );
    let r = issuer_ref(&annotations(&[CI]), &s).unwrap();
    assert_eq!(
        (r.name.as_str(), r.kind.as_deref()),
        ("pebble", Some("ClusterIssuer"))
    );
    let r = issuer_ref(
        &annotations(&[
            ("cert-manager.io/issuer", "ext"),
            ("cert-manager.io/issuer-kind", "AWSPCAIssuer"),
            ("cert-manager.io/issuer-group", "awspca.cert-manager.io"),
        ]),
        &s,
    )
    .unwrap();
    assert_eq!(
        (r.name.as_str(), r.kind.as_deref(), r.group.as_deref()),
        ("ext", Some("AWSPCAIssuer"), Some("awspca.cert-manager.io"))
    );
    // Defaults for tls-acme.
    let defaults = ShimSettings {
        default_issuer_name: "le".into(),
        default_issuer_kind: "ClusterIssuer".into(),
        ..settings()
    };
    let r = issuer_ref(
        &annotations(&[("kubernetes.io/tls-acme", "true")]),
        &defaults,
    )
    .unwrap();
    assert_eq!(
        (r.name.as_str(), r.kind.as_deref()),
        ("le", Some("ClusterIssuer"))
    );
    // No default issuer configured.
    assert!(issuer_ref(&annotations(&[("kubernetes.io/tls-acme", "true")]), &s).is_err());
}

#[test]
fn conflicting_issuer_annotations_are_errors() {
    let s = settings();
    for pairs in [
        vec![CI, ("cert-manager.io/issuer", "x")],
        vec![CI, ("cert-manager.io/issuer-kind", "Foo")],
        vec![CI, ("cert-manager.io/issuer-group", "foo.io")],
    ] {
        let e = issuer_ref(&annotations(&pairs), &s).unwrap_err();
        assert!(e.contains("may not be set"), "{e}");
    }
}

#[test]
fn one_certificate_per_secret_with_the_hosts_owned_by_the_ingress() {
    let mut m = meta(&[CI]);
    m.labels = Some(annotations(&[
        ("app", "web"),
        ("applyset.kubernetes.io/part-of", "set"),
    ]));
    let certs = desired_certificates(
        &m,
        owner(),
        &[
            tls("a-tls", &["a.example.com", "www.a.example.com"]),
            tls("b-tls", &["b.example.com"]),
            tls("a-tls", &["a.example.com", "c.example.com"]),
        ],
        &settings(),
    )
    .unwrap();
    assert_eq!(certs.len(), 2);
    let a = &certs[0];
    assert_eq!(a.metadata.name.as_deref(), Some("a-tls"));
    assert_eq!(a.metadata.namespace.as_deref(), Some("apps"));
    assert_eq!(a.spec.secret_name, "a-tls");
    assert_eq!(
        a.spec.dns_names.clone().unwrap(),
        ["a.example.com", "www.a.example.com", "c.example.com"]
    );
    assert_eq!(a.spec.usages.clone().unwrap(), KeyUsage::DEFAULT.to_vec());
    assert_eq!(a.spec.issuer_ref.name, "pebble");
    assert_eq!(a.metadata.owner_references.clone().unwrap(), vec![owner()]);
    assert_eq!(
        a.metadata.labels.clone().unwrap(),
        annotations(&[("app", "web")])
    );
    assert_eq!(a.metadata.annotations, None);
    assert_eq!(certs[1].spec.dns_names.clone().unwrap(), ["b.example.com"]);
}

#[test]
fn tls_entries_need_a_secret_and_hosts() {
    let e =
        desired_certificates(&meta(&[CI]), owner(), &[tls("", &["a"])], &settings()).unwrap_err();
    assert!(e.contains("must specify a secretName"), "{e}");
    let e = desired_certificates(&meta(&[CI]), owner(), &[tls("x", &[])], &settings()).unwrap_err();
    assert!(e.contains("no hosts"), "{e}");
    // No TLS entries: nothing to do.
    assert!(
        desired_certificates(&meta(&[CI]), owner(), &[], &settings())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn every_spec_annotation_is_translated() {
    let c = one(&[
        CI,
        ("cert-manager.io/common-name", "a.example.com"),
        ("cert-manager.io/alt-names", "x.example.com, y.example.com"),
        ("cert-manager.io/ip-sans", "192.0.2.1,2001:db8::1"),
        ("cert-manager.io/uri-sans", "spiffe://example.com/web"),
        ("cert-manager.io/email-sans", "ops@example.com"),
        (
            "cert-manager.io/subject-organizations",
            "\"Acme, Inc.\",Other",
        ),
        ("cert-manager.io/subject-organizationalunits", "Web"),
        ("cert-manager.io/subject-countries", "NL"),
        ("cert-manager.io/subject-provinces", "NH"),
        ("cert-manager.io/subject-localities", "Amsterdam"),
        ("cert-manager.io/subject-postalcodes", "1000"),
        ("cert-manager.io/subject-streetaddresses", "Dam 1"),
        ("cert-manager.io/subject-serialnumber", "42"),
        ("cert-manager.io/duration", "720h"),
        ("cert-manager.io/renew-before", "90m"),
        ("cert-manager.io/renew-before-percentage", "30"),
        ("cert-manager.io/usages", "server auth, digital signature"),
        ("cert-manager.io/revision-history-limit", "3"),
        ("cert-manager.io/private-key-algorithm", "ECDSA"),
        ("cert-manager.io/private-key-encoding", "PKCS8"),
        ("cert-manager.io/private-key-size", "384"),
        ("cert-manager.io/private-key-rotation-policy", "Never"),
        (
            "cert-manager.io/secret-template",
            r#"{"annotations":{"a":"1"},"labels":{"l":"2"}}"#,
        ),
    ])
    .unwrap();
    let s = &c.spec;
    assert_eq!(s.common_name.as_deref(), Some("a.example.com"));
    assert_eq!(
        s.dns_names.clone().unwrap(),
        ["a.example.com", "x.example.com", "y.example.com"]
    );
    assert_eq!(
        s.ip_addresses.clone().unwrap(),
        ["192.0.2.1", "2001:db8::1"]
    );
    assert_eq!(s.uris.clone().unwrap(), ["spiffe://example.com/web"]);
    assert_eq!(s.email_addresses.clone().unwrap(), ["ops@example.com"]);
    let subject = s.subject.clone().unwrap();
    assert_eq!(subject.organizations.unwrap(), ["Acme, Inc.", "Other"]);
    assert_eq!(subject.organizational_units.unwrap(), ["Web"]);
    assert_eq!(subject.countries.unwrap(), ["NL"]);
    assert_eq!(subject.provinces.unwrap(), ["NH"]);
    assert_eq!(subject.localities.unwrap(), ["Amsterdam"]);
    assert_eq!(subject.postal_codes.unwrap(), ["1000"]);
    assert_eq!(subject.street_addresses.unwrap(), ["Dam 1"]);
    assert_eq!(subject.serial_number.as_deref(), Some("42"));
    // Durations are written as Go's metav1.Duration prints them.
    assert_eq!(s.duration.as_deref(), Some("720h0m0s"));
    assert_eq!(s.renew_before.as_deref(), Some("1h30m0s"));
    assert_eq!(s.renew_before_percentage, Some(30));
    assert_eq!(
        s.usages.clone().unwrap(),
        [KeyUsage::ServerAuth, KeyUsage::DigitalSignature]
    );
    assert_eq!(s.revision_history_limit, Some(3));
    let key = s.private_key.clone().unwrap();
    assert_eq!(key.algorithm, Some(PrivateKeyAlgorithm::Ecdsa));
    assert_eq!(key.encoding, Some(PrivateKeyEncoding::Pkcs8));
    assert_eq!(key.size, Some(384));
    assert_eq!(key.rotation_policy, Some(PrivateKeyRotationPolicy::Never));
    let template = s.secret_template.clone().unwrap();
    assert_eq!(template.annotations.unwrap()["a"], "1");
    assert_eq!(template.labels.unwrap()["l"], "2");
}

#[test]
fn invalid_annotations_are_reported_together() {
    let bad = [
        ("cert-manager.io/common-name", &"x".repeat(65) as &str),
        ("cert-manager.io/ip-sans", "not-an-ip"),
        ("cert-manager.io/email-sans", "Ops <ops@example.com>"),
        ("cert-manager.io/uri-sans", "no scheme"),
        ("cert-manager.io/duration", "30m"),
        ("cert-manager.io/renew-before", "1m"),
        ("cert-manager.io/renew-before-percentage", "ten"),
        ("cert-manager.io/usages", "server auth,flying"),
        ("cert-manager.io/revision-history-limit", "0"),
        ("cert-manager.io/private-key-algorithm", "DSA"),
        ("cert-manager.io/private-key-encoding", "PEM"),
        ("cert-manager.io/private-key-rotation-policy", "Sometimes"),
        ("cert-manager.io/subject-countries", "\"NL"),
        (
            "cert-manager.io/secret-template",
            r#"{"labels":{},"extra":1}"#,
        ),
    ];
    for (key, value) in bad {
        let e = one(&[CI, (key, value)]).unwrap_err();
        assert!(e.contains(key), "{key}={value}: {e}");
    }
    let all: Vec<(&str, &str)> = bad.iter().copied().chain([CI]).collect();
    let e = one(&all).unwrap_err();
    for (key, _) in bad {
        assert!(e.contains(key), "{key} missing from {e}");
    }
}

#[test]
fn key_size_is_checked_against_the_algorithm() {
    let size = |alg: Option<&str>, size: &str| {
        let mut pairs = vec![CI, ("cert-manager.io/private-key-size", size)];
        if let Some(alg) = alg {
            pairs.push(("cert-manager.io/private-key-algorithm", alg));
        }
        one(&pairs).map(|c| c.spec.private_key.unwrap().size)
    };
    assert_eq!(size(None, "4096"), Ok(Some(4096)));
    assert!(size(None, "256").is_err());
    assert!(size(None, "1024").is_err());
    assert_eq!(size(Some("ECDSA"), "521"), Ok(Some(521)));
    assert!(size(Some("ECDSA"), "2048").is_err());
    assert!(size(Some("RSA"), "abc").is_err());
}

#[test]
fn secret_template_rejects_reserved_annotations() {
    let e = one(&[
        CI,
        (
            "cert-manager.io/secret-template",
            r#"{"annotations":{"cert-manager.io/issuer-name":"x"}}"#,
        ),
    ])
    .unwrap_err();
    assert!(e.contains("reserved"), "{e}");
}

#[test]
fn csv_splitting_follows_go_csv() {
    assert_eq!(split_csv("a,b").unwrap(), ["a", "b"]);
    assert_eq!(split_csv("\"a,b\",c").unwrap(), ["a,b", "c"]);
    assert_eq!(split_csv("\"say \"\"hi\"\"\"").unwrap(), ["say \"hi\""]);
    assert_eq!(split_csv("").unwrap(), [""]);
    assert!(split_csv("\"open").is_err());
    assert!(split_csv("a\"b").is_err());
    assert!(split_csv("\"a\"b").is_err());
}

#[test]
fn http01_annotations_become_certificate_overrides() {
    let c = one(&[CI, ("acme.cert-manager.io/http01-edit-in-place", "true")]).unwrap();
    assert_eq!(
        c.metadata.annotations.unwrap(),
        annotations(&[
            ("acme.cert-manager.io/http01-override-ingress-name", "web"),
            ("cert-manager.io/issue-temporary-certificate", "true"),
        ])
    );
    // Only exactly "true" edits in place.
    let c = one(&[CI, ("acme.cert-manager.io/http01-edit-in-place", "yes")]).unwrap();
    assert_eq!(c.metadata.annotations, None);
    let c = one(&[CI, ("acme.cert-manager.io/http01-ingress-class", "nginx")]).unwrap();
    assert_eq!(
        c.metadata.annotations.unwrap(),
        annotations(&[(
            "acme.cert-manager.io/http01-override-ingress-class",
            "nginx"
        )])
    );
    let c = one(&[
        CI,
        (
            "acme.cert-manager.io/http01-ingress-ingressclassname",
            "traefik",
        ),
    ])
    .unwrap();
    assert_eq!(
        c.metadata.annotations.unwrap(),
        annotations(&[(
            "acme.cert-manager.io/http01-override-ingress-ingressclassname",
            "traefik"
        )])
    );
    let e = one(&[
        CI,
        ("acme.cert-manager.io/http01-edit-in-place", "true"),
        ("acme.cert-manager.io/http01-ingress-class", "nginx"),
    ])
    .unwrap_err();
    assert!(e.contains("only one of"), "{e}");
}

fn existing(desired: &Certificate) -> Certificate {
    let mut c = desired.clone();
    c.metadata.resource_version = Some("7".into());
    c.metadata.annotations = Some(annotations(&[(
        "kubectl.kubernetes.io/last-applied-configuration",
        "{}",
    )]));
    c
}

#[test]
fn unchanged_certificates_are_not_rewritten() {
    let want = one(&[CI]).unwrap();
    let have = existing(&want);
    assert!(up_to_date(&have, &want));
    assert_eq!(
        actions(std::slice::from_ref(&want), &[have], "uid-web"),
        vec![]
    );
}

#[test]
fn annotation_edits_update_the_certificate() {
    let have = existing(&one(&[CI]).unwrap());
    let want = one(&[CI, ("cert-manager.io/duration", "48h")]).unwrap();
    assert_eq!(
        actions(
            std::slice::from_ref(&want),
            std::slice::from_ref(&have),
            "uid-web"
        ),
        vec![Action::Update(Box::new(want))]
    );
    // Removing a shim-managed annotation is a change too.
    let mut with_class = have.clone();
    with_class.metadata.annotations.as_mut().unwrap().insert(
        "acme.cert-manager.io/http01-override-ingress-class".into(),
        "nginx".into(),
    );
    let want = one(&[CI]).unwrap();
    assert!(!up_to_date(&with_class, &want));
    // So is a label.
    let mut labelled = want.clone();
    labelled.metadata.labels = Some(annotations(&[("team", "a")]));
    assert!(!up_to_date(&have, &labelled));
}

#[test]
fn certificates_of_others_are_never_touched() {
    let want = one(&[CI]).unwrap();
    let mut foreign = existing(&want);
    foreign.spec.dns_names = Some(vec!["other.example.com".into()]);
    foreign.metadata.owner_references = None;
    assert_eq!(
        actions(std::slice::from_ref(&want), &[foreign.clone()], "uid-web"),
        vec![Action::NotOwned("web-tls".into())]
    );
    // Owned by something else, or only as a non-controller owner.
    let mut other = foreign.clone();
    other.metadata.owner_references = Some(vec![OwnerReference {
        controller: None,
        ..owner()
    }]);
    assert_eq!(
        actions(std::slice::from_ref(&want), &[other], "uid-web"),
        vec![Action::NotOwned("web-tls".into())]
    );
    // Unowned Certificates are not deleted either.
    assert_eq!(actions(&[], &[foreign], "uid-web"), vec![]);
}

#[test]
fn new_certificates_are_created_and_unrequired_owned_ones_deleted() {
    let want = one(&[CI]).unwrap();
    let mut old = existing(&want);
    old.metadata.name = Some("old-tls".into());
    old.spec.secret_name = "old-tls".into();
    assert_eq!(
        actions(std::slice::from_ref(&want), &[old], "uid-web"),
        vec![
            Action::Create(Box::new(want)),
            Action::Delete("old-tls".into())
        ]
    );
}
